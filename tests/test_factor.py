"""Tests for genbound.factor: CP algebra, the factored update (Eqs. 2-3), CP fitting."""
from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genbound import factor as F
from genbound.factor import DegeneracyWarning
from genbound.nn import sgd_direction

SETTINGS = settings(max_examples=40, deadline=None)


# ----------------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------------

def assert_sum_close(lhs, terms, rtol=1e-12, inputs=()):
    """||lhs - sum(terms)|| <= rtol * (||lhs|| + sum ||term|| + sum ||input||): norm-wise, for sums that cancel.

    ``inputs`` are the arrays that were added or subtracted to compute ``lhs`` (their rounding is in it).
    """
    lhs = np.asarray(lhs)
    total = sum(np.asarray(t) for t in terms)
    scale = (np.linalg.norm(lhs) + sum(np.linalg.norm(t) for t in terms)
             + sum(np.linalg.norm(a) for a in inputs))
    err = np.linalg.norm(lhs - total)
    assert err <= rtol * scale + 1e-300, f"norm-wise error {err:.3e} > {rtol:.0e} * {scale:.3e}"


def random_factors(rng, O, R, sizes, scale=1.0):
    return [scale * rng.normal(size=(O, R, n)) for n in sizes]


def outer(*vs):
    out = vs[0]
    for v in vs[1:]:
        out = np.multiply.outer(out, v)
    return out


def rank1(*vs):
    """Order-3 factored outer product for (O, 1, n) arrays, as in the paper's notation."""
    return F.reconstruct(*vs)


def naive_delta(factors, grads, lr):
    """Delta by the definition: the sum over non-empty subsets of modes (slow, obviously right)."""
    d = len(factors)
    O, R = factors[0].shape[:2]
    out = np.zeros((O,) + tuple(f.shape[2] for f in factors))
    for k in range(1, d + 1):
        for S in itertools.combinations(range(d), k):
            arrs = [grads[n] if n in S else factors[n] for n in range(d)]
            out += (-lr) ** (k - 1) * F.reconstruct(factors=arrs)
    return out


shapes_strategy = st.tuples(st.integers(1, 3), st.integers(1, 4), st.lists(st.integers(1, 3), min_size=1, max_size=5))
lr_strategy = st.one_of(st.just(0.0), st.floats(-10, 0.3).map(lambda e: 10.0**e), st.floats(0.05, 2.0))


# ----------------------------------------------------------------------------------------------------
# reconstruct, chain rule, Jacobian
# ----------------------------------------------------------------------------------------------------

def test_reconstruct_rank1_and_rank_r():
    rng = np.random.default_rng(0)
    p, q, t = random_factors(rng, 2, 3, (4, 3, 2))
    W = F.reconstruct(p, q, t)
    assert W.shape == (2, 4, 3, 2)
    expected = np.array([sum(outer(p[o, r], q[o, r], t[o, r]) for r in range(3)) for o in range(2)])
    np.testing.assert_allclose(W, expected, rtol=1e-13, atol=1e-13)
    np.testing.assert_array_equal(F.reconstruct(factors=[p, q, t]), W)


@pytest.mark.parametrize("sizes", [(3,), (2, 5), (2, 3, 2, 2)])
def test_reconstruct_other_orders(sizes):
    rng = np.random.default_rng(1)
    fs = random_factors(rng, 2, 2, sizes)
    W = F.reconstruct(factors=fs)
    expected = np.array([sum(outer(*[f[o, r] for f in fs]) for r in range(2)) for o in range(2)])
    np.testing.assert_allclose(W, expected, rtol=1e-13, atol=1e-13)


def test_reconstruct_keeps_float32():
    rng = np.random.default_rng(2)
    fs = [f.astype(np.float32) for f in random_factors(rng, 1, 1, (2, 3, 3))]
    assert F.reconstruct(*fs).dtype == np.float32
    assert F.reconstruct(fs[0], fs[1], fs[2].astype(np.float64)).dtype == np.float64


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), shapes=shapes_strategy)
def test_chain_rule_matches_finite_differences(seed, shapes):
    # L(W) = <G, W> is linear in each factor, so central differences are exact up to rounding
    O, R, sizes = shapes
    rng = np.random.default_rng(seed)
    fs = random_factors(rng, O, R, sizes)
    G = rng.normal(size=(O,) + tuple(sizes))
    grads = F.factor_grads(G, factors=fs)
    h = 1e-3
    for n in range(len(fs)):
        v = rng.normal(size=fs[n].shape)
        plus = [f + h * v if m == n else f for m, f in enumerate(fs)]
        minus = [f - h * v if m == n else f for m, f in enumerate(fs)]
        fd = (np.sum(G * F.reconstruct(factors=plus)) - np.sum(G * F.reconstruct(factors=minus))) / (2 * h)
        analytic = np.sum(grads[n] * v)
        scale = np.linalg.norm(G) * np.prod([np.linalg.norm(f) for f in fs]) * np.linalg.norm(v)
        assert abs(fd - analytic) <= 1e-9 * (scale + 1.0)


def test_chain_rule_formula_order3():
    rng = np.random.default_rng(3)
    p, q, t = random_factors(rng, 2, 2, (3, 4, 2))
    G = rng.normal(size=(2, 3, 4, 2))
    gp, gq, gt = F.factor_grads(G, p, q, t)
    for o, r in itertools.product(range(2), range(2)):
        np.testing.assert_allclose(gp[o, r], [np.sum(G[o, i] * np.outer(q[o, r], t[o, r])) for i in range(3)])
        np.testing.assert_allclose(gq[o, r], np.einsum("ijk,i,k->j", G[o], p[o, r], t[o, r]))
        np.testing.assert_allclose(gt[o, r], np.einsum("ijk,i,j->k", G[o], p[o, r], q[o, r]))


def explicit_jacobian(p, q, t):
    """J column by column: W is linear in each factor, so dW/dp[r, i] = e_i x q_r x t_r, etc."""
    R = p.shape[0]
    cols = []
    for mode, f in enumerate((p, q, t)):
        for r in range(R):
            for i in range(f.shape[1]):
                vs = [p[r], q[r], t[r]]
                e = np.zeros(f.shape[1])
                e[i] = 1.0
                vs[mode] = e
                cols.append(outer(*vs).ravel())
    return np.array(cols).T


@pytest.mark.parametrize("R,sizes", [(1, (3, 2, 2)), (2, (4, 3, 3)), (3, (2, 2, 5))])
def test_cp_jacobian_explicit(R, sizes):
    rng = np.random.default_rng(4)
    p, q, t = (rng.normal(size=(R, n)) for n in sizes)
    J = F.cp_jacobian(p, q, t)
    assert J.shape == (np.prod(sizes), R * sum(sizes))
    np.testing.assert_allclose(J, explicit_jacobian(p, q, t), rtol=0, atol=1e-14)
    G = rng.normal(size=sizes)
    grads = F.factor_grads(G[None], p[None], q[None], t[None])
    np.testing.assert_allclose(J.T @ G.ravel(), np.concatenate([g[0].ravel() for g in grads]), atol=1e-12)


@pytest.mark.parametrize("I,J,K", [(1, 3, 3), (2, 2, 2), (3, 4, 5), (16, 3, 3), (32, 3, 3)])
def test_rank1_manifold_dimension(I, J, K):
    dim, tol, s = F.cp_manifold_dimension(I, J, K, rank=1, seed=0)
    assert dim == I + J + K - 2
    assert tol > 0 and s.shape == (I + J + K,)
    # the gap is clear: the two scaling directions are at rounding level
    assert s[dim - 1] > 1e6 * tol and np.all(s[dim:] <= tol)


@pytest.mark.parametrize("C,kh,kw,R,expected", [
    (16, 3, 3, 2, 2 * (16 + 3 + 3 - 2)),
    (8, 3, 3, 3, 3 * (8 + 3 + 3 - 2)),
    (2, 2, 2, 3, 8),                       # fills the space
    (3, 3, 3, 4, 26),                      # defective (Strassen): expected 27, the secant variety is a hypersurface
])
def test_cp_manifold_dimension_rank_r(C, kh, kw, R, expected):
    res = F.cp_manifold_dimension(C, kh, kw, rank=R, seed=1)
    assert res.dim == expected


# ----------------------------------------------------------------------------------------------------
# Eqs. 2-3
# ----------------------------------------------------------------------------------------------------

@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), shapes=shapes_strategy, lr=lr_strategy)
def test_delta_identity_any_order_and_rank(seed, shapes, lr):
    O, R, sizes = shapes
    rng = np.random.default_rng(seed)
    fs = random_factors(rng, O, R, sizes)
    gs = random_factors(rng, O, R, sizes, scale=rng.uniform(0.1, 3.0))
    W = F.reconstruct(factors=fs)
    D = F.delta(factors=fs, grads=gs, lr=lr)
    W2 = F.reconstruct(factors=F.factor_step(factors=fs, grads=gs, lr=lr))
    assert D.shape == W.shape
    assert_sum_close(W2, [W, -lr * D])
    # Eq. 2: w'' = w' - lr (Delta - G), for any weight-space G
    G = rng.normal(size=W.shape)
    w1 = F.weight_step(W, G, lr)
    assert_sum_close(F.eq2_step(W, G, D, lr), [w1, -lr * D, lr * G])
    assert_sum_close(W2, [w1, -lr * D, lr * G])
    # against the subset-sum definition
    if len(sizes) <= 4:
        assert_sum_close(D, [naive_delta(fs, gs, lr)])


def test_delta_order3_explicit_and_misprint():
    rng = np.random.default_rng(5)
    p, q, t, gp, gq, gt = random_factors(rng, 2, 1, (3, 2, 4) * 2)
    lr = 0.37
    corrected = (rank1(p, q, gt) + rank1(gp, q, t) + rank1(p, gq, t)
                 - lr * (rank1(p, gq, gt) + rank1(gp, q, gt) + rank1(gp, gq, t))
                 + lr**2 * rank1(gp, gq, gt))
    D = F.delta(p, q, t, gp, gq, gt, lr)
    np.testing.assert_allclose(D, corrected, rtol=1e-12, atol=1e-12)
    # as printed, the last bracketed term reads t gp gt where t gp gq belongs; read entrywise it puts gt in
    # the q slot (i, j, k) -> gp_i gt_j t_k, which needs kh == kw: compare on a cube
    p, q, t, gp, gq, gt = random_factors(rng, 1, 1, (3, 3, 3) * 2)
    W = rank1(p, q, t)
    W2 = rank1(p - lr * gp, q - lr * gq, t - lr * gt)
    printed = (rank1(p, q, gt) + rank1(gp, q, t) + rank1(p, gq, t)
               - lr * (rank1(p, gq, gt) + rank1(gp, q, gt) + rank1(gp, gt, t))
               + lr**2 * rank1(gp, gq, gt))
    off = W2 - (W - lr * printed)
    expected = lr**2 * (rank1(gp, gq, t) - rank1(gp, gt, t))
    np.testing.assert_allclose(off, expected, rtol=1e-10, atol=1e-12)
    assert np.linalg.norm(off) > 1e-3


def test_delta_is_accurate_as_lr_goes_to_zero():
    rng = np.random.default_rng(6)
    p, q, t, gp, gq, gt = random_factors(rng, 2, 2, (3, 3, 3) * 2)
    first = F.reconstruct(gp, q, t) + F.reconstruct(p, gq, t) + F.reconstruct(p, q, gt)
    np.testing.assert_allclose(F.delta(p, q, t, gp, gq, gt, 0.0), first, rtol=1e-13, atol=1e-13)
    for lr in (1e-8, 1e-12, 1e-200):
        D = F.delta(p, q, t, gp, gq, gt, lr)
        assert np.linalg.norm(D - first) <= 10 * lr * np.linalg.norm(first) + 1e-13 * np.linalg.norm(first)


def test_delta_rank_r_is_sum_of_rank1():
    rng = np.random.default_rng(7)
    fs = random_factors(rng, 3, 4, (2, 3, 2))
    gs = random_factors(rng, 3, 4, (2, 3, 2))
    total = F.delta(factors=fs, grads=gs, lr=0.2)
    parts = [F.delta(factors=[f[:, r:r + 1] for f in fs], grads=[g[:, r:r + 1] for g in gs], lr=0.2) for r in range(4)]
    assert_sum_close(total, parts)


def test_call_forms_agree():
    rng = np.random.default_rng(8)
    p, q, t, gp, gq, gt = random_factors(rng, 2, 1, (3, 2, 2) * 2)
    a = F.delta(p, q, t, gp, gq, gt, 0.1)
    np.testing.assert_array_equal(a, F.delta(p, q, t, gp, gq, gt, lr=0.1))
    np.testing.assert_array_equal(a, F.delta(factors=[p, q, t], grads=[gp, gq, gt], lr=0.1))
    np.testing.assert_array_equal(a, F.delta(factors=(p, q, t), grads=(gp, gq, gt), lr=0.1))
    stepped = F.factor_step(p, q, t, gp, gq, gt, 0.1)
    assert isinstance(stepped, tuple) and len(stepped) == 3
    np.testing.assert_array_equal(stepped[0], p - 0.1 * gp)
    assert isinstance(F.factor_step(factors=[p, q, t], grads=[gp, gq, gt], lr=0.1), list)
    G = rng.normal(size=(2, 3, 2, 2))
    np.testing.assert_array_equal(F.reconstruct(p, q, t), F.reconstruct(factors=[p, q, t]))
    grads = F.factor_grads(G, p, q, t)
    assert isinstance(grads, tuple)
    for g, h in zip(grads, F.factor_grads(G, factors=[p, q, t])):
        np.testing.assert_array_equal(g, h)
    np.testing.assert_array_equal(F.departure(p, q, t, G, 0.1).total, F.departure(factors=[p, q, t], G=G, lr=0.1).total)
    np.testing.assert_array_equal(F.cp_jacobian(p[0], q[0], t[0]), F.cp_jacobian(factors=[p[0], q[0], t[0]]))


@pytest.mark.parametrize("call,message", [
    # the old list form, positional: refused, not guessed
    (lambda p, q, t, G: F.delta([p, q, t], [p, q, t], 0.1), r"delta: missing gp, gq, gt.*factors=\[f1, \.\.\., fd\]"),
    (lambda p, q, t, G: F.factor_step([p, q, t], [p, q, t], 0.1), r"factor_step: missing gp, gq, gt"),
    (lambda p, q, t, G: F.reconstruct([p, q, t]), r"reconstruct: missing q, t; call as reconstruct\(p, q, t\)"),
    (lambda p, q, t, G: F.factor_grads(G, [p, q, t]), r"factor_grads: missing q, t"),
    (lambda p, q, t, G: F.departure([p, q, t], G, 0.1), r"p: expected an array, got a list"),
    (lambda p, q, t, G: F.cp_jacobian([p[0], q[0], t[0]]), r"cp_jacobian: missing q, t"),
    # a list where an array belongs
    (lambda p, q, t, G: F.reconstruct([p], q, t), r"p: expected an array, got a list"),
    # the two forms mixed
    (lambda p, q, t, G: F.reconstruct(p, q, t, factors=[p, q, t]), r"reconstruct: give either p, q, t or factors="),
    (lambda p, q, t, G: F.delta(p, q, t, p, q, t, 0.1, factors=[p, q, t], grads=[p, q, t]), r"delta: give either"),
    (lambda p, q, t, G: F.departure(p, factors=[p, q, t], G=G, lr=0.1), r"departure: give either"),
    # half of the keyword form
    (lambda p, q, t, G: F.delta(factors=[p, q, t], lr=0.1), r"delta: missing grads="),
    (lambda p, q, t, G: F.delta(factors=p, grads=[p, q, t], lr=0.1), r"factors: expected a list of factor arrays"),
    (lambda p, q, t, G: F.delta(factors=[p, q, t], grads=[p, q, t]), r"lr: a learning rate is required"),
    (lambda p, q, t, G: F.departure(factors=[p, q, t], lr=0.1), r"departure: missing G"),
])
def test_ambiguous_and_mixed_calls_are_refused(call, message):
    rng = np.random.default_rng(22)
    p, q, t = random_factors(rng, 2, 1, (3, 2, 2))
    G = rng.normal(size=(2, 3, 2, 2))
    with pytest.raises(TypeError, match=message):
        call(p, q, t, G)


def test_weight_step_and_eq2_step():
    rng = np.random.default_rng(9)
    W, G, D = rng.normal(size=(3, 2, 3, 3, 3))
    np.testing.assert_array_equal(F.weight_step(W, G, 0.5), W - 0.5 * G)
    assert_sum_close(F.eq2_step(W, G, D, 0.5), [W, -0.5 * D])


# ----------------------------------------------------------------------------------------------------
# momentum and weight decay
# ----------------------------------------------------------------------------------------------------

def reference_sgd(params, grads, bufs, lr, mu, wd, dampening=0.0, nesterov=False):
    """PyTorch's torch.optim.SGD step, written out."""
    new_p, new_b = [], []
    for p, g, b in zip(params, grads, bufs):
        d = g + wd * p
        if mu != 0:
            b = d.copy() if b is None else mu * b + (1 - dampening) * d
            d = d + mu * b if nesterov else b
        new_p.append(p - lr * d)
        new_b.append(b)
    return new_p, new_b


@pytest.mark.parametrize("mu,wd,damp,nesterov", [(0.0, 0.0, 0.0, False), (0.9, 0.0, 0.0, False),
                                                 (0.9, 5e-4, 0.0, False), (0.5, 1e-2, 0.1, False),
                                                 (0.9, 1e-3, 0.0, True), (0.0, 1e-2, 0.0, False)])
def test_sgd_direction_gives_the_exact_weight_move(mu, wd, damp, nesterov):
    rng = np.random.default_rng(10)
    fs = random_factors(rng, 2, 2, (3, 3, 3))
    ref = [f.copy() for f in fs]
    bufs = [None] * 3
    ref_bufs = [None] * 3
    lr = 0.05
    for _ in range(4):
        G = rng.normal(size=(2, 3, 3, 3))
        grads = F.factor_grads(G, factors=fs)
        dirs = []
        for n in range(3):
            d, bufs[n] = sgd_direction(grads[n], fs[n], bufs[n], momentum=mu, weight_decay=wd,
                                         dampening=damp, nesterov=nesterov)
            dirs.append(d)
        W = F.reconstruct(factors=fs)
        D = F.delta(factors=fs, grads=dirs, lr=lr)
        new = F.factor_step(factors=fs, grads=dirs, lr=lr)
        ref, ref_bufs = reference_sgd(ref, grads, ref_bufs, lr, mu, wd, damp, nesterov)
        for a, b in zip(new, ref):
            np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-14)
        assert_sum_close(F.reconstruct(factors=new), [W, -lr * D])
        fs = new
        if mu == 0:
            assert all(b is None for b in bufs)


def test_sgd_direction_validation():
    g = np.ones((2, 2))
    with pytest.raises(ValueError, match="momentum: expected a number >= 0"):
        sgd_direction(g, g, momentum=-0.1)
    with pytest.raises(ValueError, match="nesterov"):
        sgd_direction(g, g, momentum=0.0, nesterov=True)
    with pytest.raises(ValueError, match="grad: expected shape"):
        sgd_direction(np.ones(3), g)


# ----------------------------------------------------------------------------------------------------
# departure of the factored step from the plain step
# ----------------------------------------------------------------------------------------------------

@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), O=st.integers(1, 2), R=st.integers(1, 3),
       sizes=st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3)), lr=lr_strategy)
def test_departure_orders_sum_to_total(seed, O, R, sizes, lr):
    rng = np.random.default_rng(seed)
    p, q, t = random_factors(rng, O, R, sizes)
    G = rng.normal(size=(O,) + sizes)
    dep = F.departure(p, q, t, G, lr)
    W = F.reconstruct(p, q, t)
    w2 = F.reconstruct(*F.factor_step(p, q, t, *F.factor_grads(G, p, q, t), lr))
    w1 = F.weight_step(W, G, lr)
    np.testing.assert_array_equal(dep.total, w2 - w1)
    assert_sum_close(dep.total, [dep.first, dep.second, dep.third], inputs=[w2, w1])
    gp, gq, gt = F.factor_grads(G, p, q, t)
    assert_sum_close(dep.second, [lr**2 * (F.reconstruct(p, gq, gt) + F.reconstruct(gp, q, gt)
                                           + F.reconstruct(gp, gq, t))])
    assert_sum_close(dep.third, [-lr**3 * F.reconstruct(gp, gq, gt)])
    # first order against a dense Jacobian built column by column
    for o in range(O):
        J = explicit_jacobian(p[o], q[o], t[o])
        first = -lr * (J @ (J.T @ G[o].ravel()) - G[o].ravel())
        assert_sum_close(dep.first[o].ravel(), [first])


@pytest.mark.parametrize("sizes", [(3, 4), (2, 2, 3, 2)])
def test_departure_other_orders(sizes):
    rng = np.random.default_rng(11)
    fs = random_factors(rng, 2, 2, sizes)
    G = rng.normal(size=(2,) + sizes)
    dep = F.departure(factors=fs, G=G, lr=0.3)
    assert dep.order == len(sizes)
    assert_sum_close(dep.total, list(dep.terms), inputs=[F.reconstruct(factors=fs), G])
    if len(sizes) == 2:
        assert np.all(dep.third == 0)


def test_departure_table():
    rng = np.random.default_rng(12)
    p, q, t = random_factors(rng, 2, 1, (3, 3, 3))
    deps = [F.departure(p, q, t, rng.normal(size=(2, 3, 3, 3)), lr) for lr in (0.01, 0.1, 1.0)]
    table = F.departure_table(deps, steps=[10, 20, 30])
    assert list(table["step"]) == [10, 20, 30]
    for col in ("lr", "grad_norm", "order_1", "order_2", "order_3", "total", "remainder", "ratio_2_1"):
        assert col in table.columns
    assert np.all(table["remainder"] <= 1e-12 * (table["order_1"] + table["order_2"] + table["order_3"] + 100))
    # higher orders grow with lr relative to the first
    assert table["ratio_2_1"].is_monotonic_increasing
    assert len(F.departure_table(deps[0])) == 1
    with pytest.raises(TypeError, match="Departure"):
        F.departure_table([1, 2])


# ----------------------------------------------------------------------------------------------------
# decompose and project_rank
# ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(3, 1, 3, 3), (3, 4, 3, 3), (2, 16, 3, 3), (2, 2, 5, 4), (2, 6, 2, 7)])
@pytest.mark.parametrize("R", [1, 2, 3])
def test_decompose_recovers_planted_rank(shape, R):
    O, C, kh, kw = shape
    rng = np.random.default_rng(100 * R + C)
    W = F.reconstruct(factors=random_factors(rng, O, R, (C, kh, kw)))
    with warnings.catch_warnings():
        warnings.simplefilter("error", DegeneracyWarning)
        res = F.decompose(W, R, seed=0)
    assert res.p.shape == (O, R, C) and res.q.shape == (O, R, kh) and res.t.shape == (O, R, kw)
    rel = np.linalg.norm(res.reconstruct() - W) / np.linalg.norm(W)
    assert rel <= 1e-10
    assert res.error <= 1e-10 and np.all(res.errors <= 1e-10)
    assert res.errors.shape == (O,) and res.converged.shape == (O,) and res.n_iter.shape == (O,)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), R=st.integers(1, 2),
       sizes=st.tuples(st.integers(2, 6), st.integers(2, 4), st.integers(2, 4)))
def test_decompose_recovery_property(seed, R, sizes):
    rng = np.random.default_rng(seed)
    W = F.reconstruct(factors=random_factors(rng, 2, R, sizes))
    res = F.decompose(W, R, seed=seed % 1000)
    assert np.linalg.norm(res.reconstruct() - W) <= 1e-10 * np.linalg.norm(W)


def test_decompose_rank1_is_hopm_fixed_point():
    # a rank-1 fit is the leading singular triple: p x q x t with W x_2 q x_3 t parallel to p
    rng = np.random.default_rng(13)
    W = rng.normal(size=(4, 5, 3, 3))
    res = F.decompose(W, 1, seed=0)
    assert np.all(res.converged)
    for o in range(4):
        p, q, t = res.p[o, 0], res.q[o, 0], res.t[o, 0]
        lam = np.linalg.norm(p) * np.linalg.norm(q) * np.linalg.norm(t)
        v = np.einsum("ijk,j,k->i", W[o], q / np.linalg.norm(q), t / np.linalg.norm(t))
        np.testing.assert_allclose(v, lam * p / np.linalg.norm(p), rtol=1e-6, atol=1e-8)
        # balanced factors
        np.testing.assert_allclose(np.linalg.norm(p), np.linalg.norm(q), rtol=1e-12)
        # the error is the norm left over by the rank-1 term
        np.testing.assert_allclose(res.errors[o], np.sqrt(1 - lam**2 / np.sum(W[o] ** 2)), rtol=1e-6)


@pytest.mark.parametrize("R", [1, 2, 3])
def test_decompose_no_worse_than_its_restarts(R):
    rng = np.random.default_rng(14)
    W = rng.normal(size=(4, 4, 3, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegeneracyWarning)
        res = F.decompose(W, R, seed=7, config=F.DecomposeConfig(n_restarts=3))
        assert len(res.restart_seeds) == 3 and res.restart_errors.shape == (4, 4)
        alone = [F.decompose(W, R, seed=7, config=F.DecomposeConfig(n_restarts=0)).errors]
        alone += [F.decompose(W, R, seed=s, init="random", config=F.DecomposeConfig(n_restarts=0)).errors
                  for s in res.restart_seeds]
    alone = np.array(alone)
    np.testing.assert_allclose(res.restart_errors, alone, rtol=1e-12, atol=1e-15)
    assert np.all(res.errors <= alone.min(axis=0) * (1 + 1e-12))
    assert np.all(res.errors == res.restart_errors[res.best_start, np.arange(4)])
    # overall error is the layer-wide relative error of the kept factors
    np.testing.assert_allclose(res.error, np.linalg.norm(res.reconstruct() - W) / np.linalg.norm(W))


def test_decompose_is_seeded():
    W = np.random.default_rng(15).normal(size=(2, 3, 3, 3))
    a = F.decompose(W, 2, seed=3, warn=False)
    b = F.decompose(W, 2, seed=np.random.default_rng(3), warn=False)
    np.testing.assert_array_equal(a.p, b.p)
    assert a.restart_seeds == b.restart_seeds


@pytest.mark.parametrize("n", [2, 3, 4])
def test_decompose_warns_on_degenerate_rank2(n):
    # a x a x b + a x b x a + b x a x a has rank 3 but border rank 2: no best rank-2 approximation
    # (de Silva & Lim 2008); the fit drives two components apart with opposite signs
    a = np.zeros(n)
    b = np.zeros(n)
    a[0], b[1] = 1.0, 1.0
    T = outer(a, a, b) + outer(a, b, a) + outer(b, a, a)
    with pytest.warns(DegeneracyWarning, match="degenerate.*best rank-2 approximation may not exist"):
        res = F.decompose(T, 2, seed=0)
    assert res.p.shape == (1, 2, n)
    assert res.degenerate[0] and not res.converged[0]
    assert res.degeneracy[0] > 5 and res.errors[0] < 0.01
    # the components nearly cancel: congruence close to -1
    unit = [f[0] / np.linalg.norm(f[0], axis=1, keepdims=True) for f in res.factors]
    assert np.prod([u[0] @ u[1] for u in unit]) < -0.9
    # silence on request; rank 3 fits it exactly
    with warnings.catch_warnings():
        warnings.simplefilter("error", DegeneracyWarning)
        F.decompose(T, 2, seed=0, warn=False)
        assert F.decompose(T, 3, seed=0).errors[0] < 1e-10


@pytest.mark.parametrize("layer_seed", range(20))
def test_decompose_rank2_of_exact_rank1_layer_never_fails(layer_seed):
    # 32 exact rank-1 filters fitted with rank 2: components become collinear and the ALS Gram matrix
    # singular (this raised LinAlgError: Singular matrix for 3 of these 20 layers); every filter is fitted
    rng = np.random.default_rng(layer_seed)
    W = F.reconstruct(*random_factors(rng, 32, 1, (16, 3, 3)))
    res = F.decompose(W, 2, seed=layer_seed, warn=False)
    assert np.all(np.isfinite(res.p)) and np.all(res.best_start >= 0)
    assert res.error <= 1e-10 and np.all(res.errors <= 1e-10)


def test_decompose_singular_start_keeps_the_best_other_start():
    # a start with a zero factor makes every Gram matrix singular for that filter: it is solved by least
    # squares (no LinAlgError), and the filter keeps the restart that fits it
    rng = np.random.default_rng(23)
    W = F.reconstruct(*random_factors(rng, 3, 2, (4, 3, 3)))
    start = [f.copy() for f in random_factors(rng, 3, 2, (4, 3, 3))]
    start[1][1] = 0.0
    start[2][1] = 0.0
    res = F.decompose(W, 2, seed=0, init=tuple(start))
    assert res.restart_errors[0, 1] > 1e-3 and res.best_start[1] > 0
    assert np.all(res.errors <= 1e-10)


def test_decompose_restarts_are_diverse():
    W = np.random.default_rng(24).normal(size=(3, 4, 3, 3))
    res = F.decompose(W, 2, seed=5, config=F.DecomposeConfig(n_restarts=4, max_iter=0, n_polish=0), warn=False)
    assert len(set(res.restart_seeds)) == 4
    # with no iterations every start is its own point: distinct errors for every filter
    for o in range(3):
        assert len(set(np.round(res.restart_errors[:, o], 12))) == 5
    a = F.decompose(W, 2, seed=5, config=F.DecomposeConfig(n_restarts=2), warn=False)
    b = F.decompose(W, 2, seed=6, config=F.DecomposeConfig(n_restarts=2), warn=False)
    assert a.restart_seeds != b.restart_seeds


def test_decompose_config_is_data():
    import dataclasses

    cfg = F.DecomposeConfig(n_restarts=3)
    assert cfg == F.DecomposeConfig(n_restarts=3) and "n_restarts=3" in repr(cfg)
    assert dataclasses.asdict(cfg) == {"n_restarts": 3, "max_iter": 500, "tol": 1e-12, "n_polish": 200,
                                       "degeneracy_threshold": 5.0}
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.n_restarts = 1
    with pytest.raises(ValueError, match="degeneracy_threshold"):
        F.DecomposeConfig(degeneracy_threshold=0.0)


def test_decompose_single_filter_zero_and_float32():
    rng = np.random.default_rng(16)
    f = rng.normal(size=(4, 3, 3))
    res = F.decompose(f, 1)
    assert res.p.shape == (1, 1, 4)
    W = np.zeros((2, 3, 3, 3))
    W[1] = f[:3]
    res = F.decompose(W, 2, warn=False)
    assert res.errors[0] == 0 and np.all(res.p[0] == 0) and res.converged[0]
    res32 = F.decompose(W.astype(np.float32), 1)
    assert res32.p.dtype == np.float32


def test_project_rank():
    rng = np.random.default_rng(17)
    fs = random_factors(rng, 3, 2, (5, 3, 3))
    W = F.reconstruct(*fs)
    start = [f + 0.05 * rng.normal(size=f.shape) for f in fs]
    p, q, t = F.project_rank(W, *start, max_iter=200)
    assert p.shape == (3, 2, 5)
    assert np.linalg.norm(F.reconstruct(p, q, t) - W) <= 1e-6 * np.linalg.norm(W)
    # one gradient step in weight space then projection: stays close to the stepped weight
    G = rng.normal(size=W.shape)
    stepped = W - 1e-3 * G
    proj = F.project_rank(stepped, *fs, max_iter=5)
    err_proj = np.linalg.norm(F.reconstruct(*proj) - stepped)
    assert err_proj <= np.linalg.norm(W - stepped)
    # max_iter = 0 only rebalances
    same = F.project_rank(W, *start, max_iter=0)
    np.testing.assert_allclose(F.reconstruct(*same), F.reconstruct(*start), rtol=1e-12, atol=1e-12)
    p32 = F.project_rank(W.astype(np.float32), *[f.astype(np.float32) for f in fs], max_iter=1)[0]
    assert p32.dtype == np.float32
    with pytest.raises(ValueError, match=r"q0|q: expected shape"):
        F.project_rank(W, fs[0], fs[1][:, :, :2], fs[2])


# ----------------------------------------------------------------------------------------------------
# clear errors
# ----------------------------------------------------------------------------------------------------

def _f(rng, *shape):
    return rng.normal(size=shape)


def test_errors_mismatched_factors():
    rng = np.random.default_rng(18)
    p, q, t = _f(rng, 2, 1, 3), _f(rng, 2, 1, 3), _f(rng, 2, 1, 3)
    with pytest.raises(ValueError, match=r"share the output and rank axes.*q \(2, 2, 3\)"):
        F.reconstruct(p, _f(rng, 2, 2, 3), t)
    with pytest.raises(ValueError, match=r"share the output and rank axes.*t \(3, 1, 3\)"):
        F.reconstruct(p, q, _f(rng, 3, 1, 3))
    with pytest.raises(ValueError, match=r"gq: expected shape \(2, 1, 3\) to match q, got \(2, 1, 4\)"):
        F.delta(p, q, t, p, _f(rng, 2, 1, 4), t, 0.1)
    with pytest.raises(ValueError, match=r"3 factor arrays but 2 gradient arrays"):
        F.delta(factors=[p, q, t], grads=[p, q], lr=0.1)
    with pytest.raises(ValueError, match=r"p: expected a 3-d factor array"):
        F.reconstruct(p[0], q, t)
    with pytest.raises(ValueError, match=r"G: expected shape \(2, 3, 3, 3\)"):
        F.factor_grads(_f(rng, 2, 3, 3), p, q, t)
    with pytest.raises(ValueError, match=r"rank axis must have length >= 1"):
        F.reconstruct(np.zeros((2, 0, 3)), np.zeros((2, 0, 3)), np.zeros((2, 0, 3)))
    with pytest.raises(TypeError, match=r"call as delta"):
        F.delta(p, q, t, 0.1)
    with pytest.raises(ValueError, match=r"G: expected shape"):
        F.weight_step(_f(rng, 2, 3), _f(rng, 3, 2), 0.1)
    with pytest.raises(ValueError, match=r"expected a 2-d factor array \(R, n\) for one filter"):
        F.cp_jacobian(p, q, t)


@pytest.mark.parametrize("lr", [np.nan, np.inf, -np.inf])
def test_errors_non_finite_lr(lr):
    rng = np.random.default_rng(19)
    fs = [_f(rng, 1, 1, 2) for _ in range(3)]
    with pytest.raises(ValueError, match="lr: expected a finite number"):
        F.delta(*fs, *fs, lr)
    with pytest.raises(ValueError, match="lr: expected a finite number"):
        F.factor_step(factors=fs, grads=fs, lr=lr)
    with pytest.raises(ValueError, match="lr: expected a finite number"):
        F.departure(*fs, _f(rng, 1, 2, 2, 2), lr)
    with pytest.raises(ValueError, match="lr: expected a finite number"):
        F.weight_step(fs[0], fs[0], lr)
    with pytest.raises(TypeError, match="lr: expected a real number"):
        F.delta(*fs, *fs, "0.1")


def test_errors_bad_values_and_dtypes():
    rng = np.random.default_rng(20)
    p, q, t = (_f(rng, 1, 1, 2) for _ in range(3))
    bad = p.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="p: expected finite values"):
        F.reconstruct(bad, q, t)
    with pytest.raises(ValueError, match="gt: expected finite values"):
        F.delta(p, q, t, p, q, bad, 0.1)
    with pytest.raises(TypeError, match="q: expected a numeric float array"):
        F.reconstruct(p, q > 0, t)
    with pytest.raises(TypeError, match="complex"):
        F.reconstruct(p, q + 1j, t)
    with pytest.raises(TypeError, match="W: expected a numeric float array"):
        F.decompose(np.array([["a"]]).reshape(1, 1, 1), 1)
    with pytest.raises(ValueError, match="W: expected finite values"):
        F.decompose(np.full((2, 2, 2), np.nan), 1)


def test_errors_decompose_arguments():
    W = np.random.default_rng(21).normal(size=(2, 3, 3, 3))
    for rank in (0, -1):
        with pytest.raises(ValueError, match=r"rank: expected an int >= 1"):
            F.decompose(W, rank)
    with pytest.raises(TypeError, match=r"rank: expected an int"):
        F.decompose(W, 1.5)
    with pytest.raises(ValueError, match=r"W: expected filters \(O, C, kh, kw\)"):
        F.decompose(W[0, 0], 1)
    with pytest.raises(ValueError, match=r"init: expected 'hosvd', 'random'"):
        F.decompose(W, 1, init="svd")
    with pytest.raises(ValueError, match=r"n_restarts: expected an int >= 0"):
        F.decompose(W, 1, config=F.DecomposeConfig(n_restarts=-1))
    with pytest.raises(TypeError, match=r"config: expected a DecomposeConfig"):
        F.decompose(W, 1, config={"n_restarts": 1})
    with pytest.raises(ValueError, match=r"p0: expected shape \(2, 2, 3\)"):
        F.decompose(W, 2, init=(np.ones((2, 1, 3)),) * 3)
    with pytest.raises(ValueError, match=r"rank: expected an int >= 1"):
        F.cp_manifold_dimension(3, 3, 3, rank=0)
