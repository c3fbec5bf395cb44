"""Tests for genbound.symbolic: derived identities, the printed Eq. 3, numeric agreement."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from genbound import factor as F
from genbound import symbolic as S


def sym(name):
    return sp.Symbol(name, real=True)


p, q, t, gp, gq, gt = (sym(n) for n in ("p", "q", "t", "g_p", "g_q", "g_t"))
alpha = S.ALPHA


# ----------------------------------------------------------------------------------------------------
# Eq. 3
# ----------------------------------------------------------------------------------------------------

def test_eq3_corrected_holds():
    res = S.verify_eq3(printed=False)
    assert res.holds and res.ok and res.expected
    assert res.residual == 0
    assert res.name == "eq3"
    # the derived Delta, checked against a transcription made here in the test
    expected = (p * q * gt + q * t * gp + p * t * gq - alpha * (p * gq * gt + q * gp * gt + t * gp * gq)
                + alpha**2 * gp * gq * gt)
    assert sp.expand(S.eq3_corrected() - expected) == 0
    assert r"\frac{\partial L}{\partial p}" in res.latex and r"\alpha" in res.latex


def test_eq3_printed_fails_with_the_known_residual():
    res = S.verify_eq3(printed=True)
    assert not res.holds and res.ok and res.expected is False
    expected = alpha**2 * t * gp * (gq - gt)
    assert sp.simplify(res.residual - expected) == 0
    assert sp.expand(res.residual - expected) == 0
    assert "t gp" in res.statement or "g_p*g_t*t" in res.statement
    assert S.verify_eq3_misprint().holds


def test_printed_eq3_is_data_with_one_wrong_term():
    assert len(S.EQ3_PRINTED) == 7
    assert all(isinstance(term, S.Eq3Term) for term in S.EQ3_PRINTED)
    mis = S.eq3_misprints()
    assert mis["printed_only"] == (S.Eq3Term(-1, 1, ("t", "g_p", "g_t")),)
    assert mis["derived_only"] == (S.Eq3Term(-1, 1, ("t", "g_p", "g_q")),)
    # the data round-trips through expressions
    assert sp.expand(S.expr_from_terms(S.terms_from_expr(S.eq3_printed())) - S.eq3_printed()) == 0
    with pytest.raises(ValueError, match="unknown symbol"):
        S.expr_from_terms([S.Eq3Term(1, 0, ("x",))])


def test_symbol_names_read_as_the_paper():
    (factors,), (grads,) = (row for row in S.factor_symbols(3, 1))
    assert [s.name for s in factors] == ["p", "q", "t"]
    assert [s.name for s in grads] == ["g_p", "g_q", "g_t"]
    assert S.to_latex(grads[0]) == r"\frac{\partial L}{\partial p}"
    assert S.ALPHA.name == "alpha"
    f2, g2 = S.factor_symbols(3, 2)
    assert [s.name for s in f2[1]] == ["p_2", "q_2", "t_2"]
    assert S.to_latex(g2[1][0]) == r"\frac{\partial L}{\partial p_{2}}"
    f4, _ = S.factor_symbols(4, 1)
    assert [s.name for s in f4[0]] == ["a1", "a2", "a3", "a4"]


# ----------------------------------------------------------------------------------------------------
# rank, order, chain rule, Eq. 2, first-order departure, dimension, Eq. 1
# ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("R", [1, 2, 3, 4])
def test_verify_rank(R):
    res = S.verify_rank(R)
    assert res.holds and res.residual == 0


@pytest.mark.parametrize("d", [1, 2, 3, 4, 5])
def test_verify_order(d):
    res = S.verify_order(d)
    assert res.holds and res.residual == 0
    # number of terms: every non-empty subset of modes
    assert len(sp.Add.make_args(S.derive_delta(d, 1))) == 2**d - 1


def test_delta_elementary_matches_derivation_rank_2_order_4():
    assert sp.expand(S.derive_delta(4, 2) - S.delta_elementary(4, 2)) == 0


@pytest.mark.parametrize("sizes", [(2, 2, 2), (1, 2, 3), (3, 1, 2)])
def test_verify_chain_rule(sizes):
    res = S.verify_chain_rule(*sizes)
    assert res.holds
    assert isinstance(res.residual, sp.MatrixBase) and res.residual.shape == (sum(sizes), 1)
    assert all(e == 0 for e in res.residual)


@pytest.mark.parametrize("sizes", [(2, 2, 2), (1, 2, 3)])
def test_verify_eq2(sizes):
    res = S.verify_eq2(*sizes)
    assert res.holds and res.residual.shape == (int(np.prod(sizes)), 1)


@pytest.mark.parametrize("sizes,rank", [((2, 2, 2), 1), ((2, 1, 2), 2)])
def test_verify_first_order_departure(sizes, rank):
    assert S.verify_first_order_departure(*sizes, rank=rank).holds


@pytest.mark.parametrize("sizes", [(2, 2, 2), (1, 2, 3), (2, 3, 4), (3, 3, 3)])
def test_verify_rank1_dimension(sizes):
    res = S.verify_rank1_dimension(*sizes)
    assert res.holds and res.details["rank"] == sum(sizes) - 2


def test_rank1_dimension_numeric_larger():
    # the one numeric counterpart is genbound.factor.cp_manifold_dimension (symbolic keeps no alias)
    assert not hasattr(S, "rank1_manifold_dimension") and not hasattr(F, "rank1_manifold_dimension")
    for sizes in [(16, 3, 3), (32, 3, 3), (1, 5, 5)]:
        dim, tol, s = F.cp_manifold_dimension(*sizes, rank=1)
        assert dim == sum(sizes) - 2 and s[dim - 1] > 1e6 * tol


def test_verify_eq1_samples():
    res = S.verify_eq1_samples()
    assert res.holds and res.residual == 0
    assert res.details["example_N1194_eps_half"] == sp.Interval(4776, sp.oo)


# ----------------------------------------------------------------------------------------------------
# symbolic and numeric paths agree
# ----------------------------------------------------------------------------------------------------

@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), order=st.integers(1, 4), rank=st.integers(1, 3),
       O=st.integers(1, 2), lr=st.floats(-6, 0).map(lambda e: 10.0**e))
def test_lambdify_delta_agrees_with_factor_delta(seed, order, rank, O, lr):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 4, size=order)
    fs = [rng.normal(size=(O, rank, n)) for n in sizes]
    gs = [rng.normal(size=(O, rank, n)) for n in sizes]
    fn = S.lambdify_delta(order, rank)
    got = fn(factors=fs, grads=gs, lr=lr)
    want = F.delta(factors=fs, grads=gs, lr=lr)
    assert got.shape == want.shape
    scale = sum(np.linalg.norm(F.reconstruct(factors=[g if m in S_ else f for m, (f, g) in enumerate(zip(fs, gs))]))
                for S_ in [set(range(order))] + [{m} for m in range(order)]) + 1.0
    assert np.linalg.norm(got - want) <= 1e-12 * scale * 2**order


def test_lambdify_delta_order3_call_forms_and_errors():
    rng = np.random.default_rng(0)
    fs = [rng.normal(size=(2, 1, n)) for n in (3, 2, 2)]
    gs = [rng.normal(size=(2, 1, n)) for n in (3, 2, 2)]
    fn = S.lambdify_delta()
    np.testing.assert_allclose(fn(*fs, *gs, 0.1), F.delta(*fs, *gs, 0.1), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(fn(*fs, *gs, lr=0.1), F.delta(*fs, *gs, 0.1), rtol=1e-12, atol=1e-13)
    assert sp.expand(fn.expr - S.eq3_corrected()) == 0
    np.testing.assert_allclose(fn(factors=fs, grads=gs, lr=0.1), F.delta(*fs, *gs, 0.1), rtol=1e-12, atol=1e-13)
    with pytest.raises(ValueError, match="generated for order 3 and rank 1"):
        fn(factors=[f.repeat(2, axis=1) for f in fs], grads=[g.repeat(2, axis=1) for g in gs], lr=0.1)
    with pytest.raises(ValueError, match="lr: expected a finite number"):
        fn(factors=fs, grads=gs, lr=float("nan"))
    # the old positional list form is refused, not guessed
    with pytest.raises(TypeError, match=r"delta_from_sympy: missing gp, gq, gt"):
        fn(fs, gs, 0.1)
    with pytest.raises(TypeError, match=r"delta_from_sympy: give either"):
        fn(*fs, *gs, 0.1, factors=fs, grads=gs)


def test_printed_eq3_numerically_off_by_the_residual():
    # evaluate the printed formula through lambdify on scalars: off by alpha^2 t gp (gq - gt)
    args = (p, q, t, gp, gq, gt, alpha)
    printed = sp.lambdify(args, S.eq3_printed())
    rng = np.random.default_rng(1)
    vals = rng.normal(size=7)
    w2 = (vals[0] - vals[6] * vals[3]) * (vals[1] - vals[6] * vals[4]) * (vals[2] - vals[6] * vals[5])
    off = w2 - (vals[0] * vals[1] * vals[2] - vals[6] * printed(*vals))
    np.testing.assert_allclose(off, vals[6] ** 2 * vals[2] * vals[3] * (vals[4] - vals[5]), rtol=1e-10)


# ----------------------------------------------------------------------------------------------------
# all results: table, LaTeX, report
# ----------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def results():
    return S.all_verifications()


def test_all_verifications(results):
    assert all(isinstance(v, S.Verification) for v in results)
    assert all(v.ok for v in results), [str(v) for v in results if not v.ok]
    names = [v.name for v in results]
    assert len(set(names)) == len(names)
    for needed in ("eq1_samples", "eq2", "eq3", "eq3_printed", "chain_rule", "first_order_departure",
                   "rank1_dimension"):
        assert needed in names
    assert [v.holds for v in results if v.name == "eq3_printed"] == [False]


def test_derivation_table(results):
    table = S.derivation_table(results)
    assert list(table.columns[:3]) == ["name", "statement", "holds"]
    assert len(table) == len(results) and table["ok"].all()
    assert not table.set_index("name").loc["eq3_printed", "holds"]


def test_write_latex(tmp_path, results):
    md = S.write_latex(tmp_path / "derivations.md", results)
    text = md.read_text()
    assert text.count("$$") == 2 * sum(len(v.latex.splitlines()) for v in results)
    assert r"\frac{\partial L}{\partial p}" in text and "eq3_printed (does not hold)" in text
    tex = S.write_latex(tmp_path / "derivations.tex", results)
    text = tex.read_text()
    assert r"\[" in text and r"\paragraph{eq3 printed}" in text


def test_report_and_exit_code(results):
    text = S.format_report(results, title="All")
    assert text.startswith("All\n===") and f"{len(results)}/{len(results)} checks as expected" in text
    assert "residual: alpha**2*g_p*t*(g_q - g_t)" in text
    assert S.exit_code(results) == 0
    failing = S.Verification("bad", "a failing check", False, sp.Integer(1), "1 = 0")
    assert S.exit_code(results + [failing]) == 1
    assert "FAILED: bad" in S.format_report([failing])


def test_bad_arguments():
    with pytest.raises(ValueError, match="R: expected an int >= 1"):
        S.verify_rank(0)
    with pytest.raises(ValueError, match="d: expected an int >= 1"):
        S.verify_order(0)
    with pytest.raises(TypeError, match="I: expected an int"):
        S.verify_chain_rule(1.5)
    with pytest.raises(ValueError, match="order: expected an int >= 1"):
        S.factor_symbols(0)


@pytest.mark.parametrize("call,message", [
    (lambda: S.verify_order(10**6), r"d: expected an int <= 10"),
    (lambda: S.verify_order(11), r"d: expected an int <= 10"),
    (lambda: S.verify_rank(10**5), r"R: expected an int <= 40"),
    (lambda: S.derive_delta(order=40), r"order: expected an int <= 10"),
    (lambda: S.derive_delta(10, 3), r"order, rank: expected rank \* 2\*\*order <= 2048"),
    (lambda: S.delta_elementary(order=12), r"order: expected an int <= 10"),
    (lambda: S.expansion(3, rank=41), r"rank: expected an int <= 40"),
    (lambda: S.lambdify_delta(order=40), r"order: expected an int <= 10"),
    (lambda: S.factor_symbols(10**6), r"order: expected an int <= 10"),
    (lambda: S.verify_eq2(4, 4, 4), r"I, J, K: expected I \* J \* K <= 20 entries"),
    (lambda: S.verify_chain_rule(10**6), r"I, J, K: expected I \* J \* K <= 216 entries"),
    (lambda: S.verify_first_order_departure(3, 3, 3), r"I, J, K: expected I \* J \* K <= 18 entries"),
    (lambda: S.verify_first_order_departure(2, 3, 3, rank=3), r"rank: expected an int <= 2"),
    (lambda: S.verify_rank1_dimension(9, 9, 9), r"I, J, K: expected I \* J \* K <= 512 entries"),
])
def test_sizes_have_a_documented_maximum(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_maxima_are_reachable():
    assert S.verify_order(S.MAX_ORDER).holds
    assert S.verify_rank(S.MAX_RANK).holds


def test_registry_names_sizes_other_than_the_defaults():
    assert S.verify_chain_rule(1, 3, 2).name == "chain_rule_1x3x2"
    assert S.verify_first_order_departure(2, 1, 2, rank=2).name == "first_order_departure_2x1x2_rank2"
    assert S.verify_rank1_dimension().name == "rank1_dimension"
    check = S.registered("eq2")[1]
    assert check == S.Check("eq2", "verify_eq2", (1, 2, 3)) and check.run().name == "eq2_1x2x3"


def test_symbolic_uses_no_private_name_of_factor():
    import pathlib
    import re

    root = pathlib.Path(S.__file__).parent
    for path in root.glob("*.py"):
        text = path.read_text()
        assert not re.search(r"factor\._|from genbound\.factor\S* import .*\b_", text), path.name


def test_import_genbound_does_not_import_sympy():
    code = "import sys, genbound, genbound.factor; assert 'sympy' not in sys.modules, 'sympy imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
