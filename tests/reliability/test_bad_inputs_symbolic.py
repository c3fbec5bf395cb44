"""Bad inputs to genbound.symbolic: every size has a documented maximum (genbound.symbolic.limits), so no call
grows memory without end."""
import time

import pytest

S = pytest.importorskip("genbound.symbolic")
from genbound.symbolic.limits import MAX_ENTRIES, MAX_ORDER, MAX_RANK  # noqa: E402
from tests.reliability import case, check_raises  # noqa: E402

CASES = [
    case(lambda: S.verify_order(10**6), "verify_order d=1e6", ValueError, "d"),
    case(lambda: S.verify_order(MAX_ORDER + 1), "verify_order d=MAX_ORDER+1", ValueError, "d"),
    case(lambda: S.verify_order(0), "verify_order d=0", ValueError, "d"),
    case(lambda: S.verify_order(3.0), "verify_order d=3.0", TypeError, "d"),
    case(lambda: S.verify_rank(10**5), "verify_rank R=1e5", ValueError, "R"),
    case(lambda: S.verify_rank(MAX_RANK + 1), "verify_rank R=MAX_RANK+1", ValueError, "R"),
    case(lambda: S.verify_rank(True), "verify_rank R=True", TypeError, "R"),
    case(lambda: S.derive_delta(order=40), "derive_delta order=40", ValueError, "order"),
    case(lambda: S.derive_delta(rank=0), "derive_delta rank=0", ValueError, "rank"),
    case(lambda: S.derive_delta(order=10, rank=40), "derive_delta rank*2^order too large", ValueError, "rank"),
    case(lambda: S.expansion(order=40), "expansion order=40", ValueError, "order"),
    case(lambda: S.delta_elementary(order=40), "delta_elementary order=40", ValueError, "order"),
    case(lambda: S.lambdify_delta(order=40), "lambdify_delta order=40", ValueError, "order"),
    case(lambda: S.factor_symbols(order=10**6), "factor_symbols order=1e6", ValueError, "order"),
    case(lambda: S.verify_chain_rule(100, 100, 100), "verify_chain_rule 1e6 entries", ValueError, "I"),
    case(lambda: S.verify_chain_rule(0, 2, 2), "verify_chain_rule I=0", ValueError, "I"),
    case(lambda: S.verify_eq2(10, 10, 10), "verify_eq2 1000 entries", ValueError, "I"),
    case(lambda: S.verify_first_order_departure(3, 3, 3, rank=5), "verify_first_order_departure too large",
         ValueError, "I"),
    case(lambda: S.verify_rank1_dimension(100, 100, 100), "verify_rank1_dimension 1e6 entries", ValueError, "I"),
    case(lambda: S.verify_rank1_dimension(2.5, 2, 2), "verify_rank1_dimension I=2.5", TypeError, "I"),
    case(lambda: S.run_checks("nope"), "run_checks unknown script", ValueError, "script"),
    case(lambda: S.explicit_factors((1000, 1000, 1000)), "explicit_factors 1e9 symbols", ValueError, "sizes"),
    case(lambda: S.explicit_factors((2, 2, 2), rank=10**6), "explicit_factors rank=1e6", ValueError, "rank"),
]


@pytest.mark.parametrize("call, exc, fragment", CASES)
def test_bad_input(call, exc, fragment):
    check_raises(call, exc, fragment)


@pytest.mark.parametrize("call", [
    lambda: S.verify_order(10**9), lambda: S.verify_rank(10**9), lambda: S.derive_delta(order=10**9),
    lambda: S.expansion(order=64, rank=64), lambda: S.lambdify_delta(order=10**9),
    lambda: S.verify_chain_rule(10**4, 10**4, 10**4), lambda: S.verify_eq2(10**3, 10**3, 10**3),
    lambda: S.verify_rank1_dimension(10**4, 10**4, 10**4),
    lambda: S.verify_first_order_departure(2, 3, 3, rank=10**6),
], ids=["verify_order", "verify_rank", "derive_delta", "expansion", "lambdify_delta", "verify_chain_rule",
        "verify_eq2", "verify_rank1_dimension", "verify_first_order_departure"])
def test_no_hang_sizes_beyond_their_maximum_raise_fast(call):
    """A hang is impossible: a size far beyond its documented maximum raises a ValueError in well under a
    second, before any expansion starts."""
    start = time.perf_counter()
    check_raises(call, ValueError, "expected", seconds=5)
    assert time.perf_counter() - start < 1.0
    assert MAX_ENTRIES  # the table of maxima exists and is documented
