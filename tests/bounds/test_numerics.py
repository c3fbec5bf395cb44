"""Every inverse errs on the valid side, at the extreme inputs, against mpmath at 60 digits.

An upper kl inverse r is valid iff r >= the exact root, i.e. iff kl(q || r) >= c exactly (kl(q || .) grows on
[q, 1]); a lower one iff r <= the exact root, i.e. kl(q || r) >= c on [0, q]. The checks below evaluate the
exact kl of the returned float with mpmath, so they need no reference root finder.
"""
import itertools
import math
from fractions import Fraction

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genbound.bounds import (code_length_bits, dziugaite_roy_bound, kl_bernoulli, kl_inverse, kl_inverse_lower,
                             samples_needed, sqrt_gap_bound)

mpmath.mp.dps = 60

QS = [0.0, 5e-324, 1e-310, 1e-300, 1e-200, 1e-20, 1e-8, 0.01, 0.3, 0.5, 1 - 1e-8, 1 - 1e-16, 1.0 - 2 ** -53, 1.0]
CS = [0.0, 5e-324, 1e-310, 1e-300, 1e-200, 1e-30, 1e-16, 1e-8, 1e-3, 0.1, 1.0, 10.0, 700.0, 800.0, 1e5]


def kl_exact(q, p):
    """kl(q || p) of two floats, in 60-digit arithmetic (log1p for the second term: 1 - q may need 300 digits)."""
    q, p = mpmath.mpf(q), mpmath.mpf(p)
    if q == p:
        return mpmath.mpf(0)
    if p == 0 or p == 1:
        return mpmath.inf
    t1 = 0 if q == 0 else q * mpmath.log(q / p)
    t2 = 0 if q == 1 else (1 - q) * mpmath.log1p((p - q) / (1 - p))
    return t1 + t2


@pytest.mark.parametrize("q, c", list(itertools.product(QS, CS)))
def test_kl_inverse_never_below_the_root(q, c):
    r = kl_inverse(q, c)
    assert q <= r <= 1.0
    assert r == 1.0 or kl_exact(q, r) >= c
    if 0 < c < math.inf and q < r < 1.0:
        # and tight: one float less (or a relative 1e-9 less) is inside the budget, unless that is q
        below = max(q, min(np.nextafter(r, 0.0), r * (1 - 1e-9)))
        assert below == q or kl_exact(q, below) <= c * (1 + 2e-12) + 2e-320


@pytest.mark.parametrize("q, c", list(itertools.product(QS, CS)))
def test_kl_inverse_lower_never_above_the_root(q, c):
    r = kl_inverse_lower(q, c)
    assert 0.0 <= r <= q
    assert r == 0.0 or c == 0 and r == q or kl_exact(q, r) >= c
    if 0 < c < math.inf and 0.0 < r < q:
        above = min(q, max(np.nextafter(r, 1.0), r * (1 + 1e-9)))
        assert above == q or kl_exact(q, above) <= c * (1 + 2e-12) + 2e-320


def test_kl_inverse_subnormal_product_moves_off_q():
    # q * c underflows and the root lies within one float of q: the answer is the next float, never q itself
    for q in (0.5, 0.3, 1e-300):
        r = kl_inverse(q, 1e-310)
        assert r > q and kl_exact(q, r) >= 1e-310
        rl = kl_inverse_lower(q, 1e-310)
        assert rl < q and kl_exact(q, rl) >= 1e-310


@given(st.floats(0.0, 1.0), st.floats(0.0, 1e3))
@settings(max_examples=200, deadline=None)
def test_kl_inverses_valid_side_property(q, c):
    r, rl = kl_inverse(q, c), kl_inverse_lower(q, c)
    assert r == 1.0 or c == 0 or kl_exact(q, r) >= c
    assert rl == 0.0 or c == 0 or kl_exact(q, rl) >= c


@pytest.mark.parametrize("q, p", [
    (0.3, 0.3 + 1e-12), (0.3, 0.3 * (1 + 1e-9)), (1e-10, 1.0000001e-10), (0.9999, 0.99990001), (0.5, 0.5 + 2 ** -53),
    (0.7, 0.7 - 1e-13), (0.1, 0.1 * (1 + 1e-15)), (1 - 1e-10, 1 - 1.1e-10), (0.028, 0.0935), (1e-300, 3e-300),
    (0.5, 1e-320), (1e-320, 0.5), (1 - 2 ** -53, 0.5), (0.5, 1 - 2 ** -53), (0.0, 1e-300), (1.0, 1e-300),
])
def test_kl_bernoulli_relative_precision(q, p):
    got, exact = kl_bernoulli(q, p), kl_exact(q, p)
    if exact > 2.3e-308:  # normal range: relative error
        assert abs(got - exact) <= 1e-13 * exact
    else:  # subnormal results: absolute error of a few subnormal units
        assert abs(got - exact) <= 1e-321


@given(st.floats(1e-6, 1 - 1e-6), st.floats(-1e-6, 1e-6))
@settings(max_examples=200, deadline=None)
def test_kl_bernoulli_near_p_equal_q(q, rel):
    p = min(max(q * (1 + rel), 0.0), 1.0)
    exact = kl_exact(q, p)
    assert abs(kl_bernoulli(q, p) - exact) <= 1e-13 * exact + 1e-320


def test_dziugaite_roy_refuses_empty_statement():
    with pytest.raises(ValueError, match="^delta_prime"):
        dziugaite_roy_bound(0.05, 100.0, 1000, delta=0.6, n_samples=100, delta_prime=0.4)
    with pytest.raises(ValueError, match="^delta_prime"):
        dziugaite_roy_bound(0.05, 100.0, 1000, delta=0.5, n_samples=100, delta_prime=0.6)
    assert dziugaite_roy_bound(0.05, 100.0, 1000, delta=0.5, n_samples=100, delta_prime=0.49) < 1


def test_samples_needed_tiny_eps_is_exact():
    m = samples_needed(10, 1e-200)
    assert m == math.ceil(Fraction(10) / Fraction(1e-200) ** 2)
    assert Fraction(10, m) <= Fraction(1e-200) ** 2 < Fraction(10, m - 1)
    assert samples_needed(0, 1e-300) == 1
    m = samples_needed(5130, 0.5)
    assert sqrt_gap_bound(5130, m) <= 0.5 < sqrt_gap_bound(5130, m - 1)


def _entropy_bits_exact(counts):
    n = sum(counts)
    num, den = n ** n, math.prod(c ** c for c in counts if c)
    b = 0
    while (den << b) < num:
        b += 1
    return b


@pytest.mark.parametrize("counts", [[2, 2], [1, 1, 1, 1], [4, 4, 8], [3, 5], [1, 1000], [7], [1, 2, 3, 4, 5],
                                    [512, 512], [100, 0, 28]])
def test_code_length_entropy_never_drops_a_bit(counts):
    idx = np.repeat(np.arange(len(counts)), counts)
    k = len(counts)
    n = idx.size
    bits = code_length_bits(idx, k, scheme="entropy", level_bits=0, header_bits=0)
    assert bits == k * n.bit_length() + _entropy_bits_exact(counts)
    # n H exactly an integer (powers of two) stays that integer; otherwise it is the ceiling
    nh = mpmath.mpf(n) * mpmath.log(n, 2) - sum(mpmath.mpf(c) * mpmath.log(c, 2) for c in counts if c)
    assert bits - k * n.bit_length() == int(mpmath.ceil(nh - mpmath.mpf(10) ** -40))


def test_code_length_entropy_two_symbols_scan():
    # every split of up to 118 indices into two symbols, some with n H a hair above an integer
    for a in range(1, 60):
        for b in range(1, 60):
            n = a + b
            nh = mpmath.mpf(n) * mpmath.log(n, 2) - a * mpmath.log(a, 2) - b * mpmath.log(b, 2)
            bits = code_length_bits(np.repeat([0, 1], [a, b]), 2, scheme="entropy", level_bits=0, header_bits=0)
            assert bits - 2 * n.bit_length() == int(mpmath.ceil(nh - mpmath.mpf(10) ** -40))
