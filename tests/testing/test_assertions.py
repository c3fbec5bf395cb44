"""assert_update_equivalence, assert_hvp_symmetric, assert_bound_valid: pass on the library's own results,
fail on planted wrong ones, handle unusual inputs."""
import math

import numpy as np
import pytest
from hypothesis import given, settings

import genbound as gb
import genbound.testing.assertions as assertions
from genbound.testing import assert_bound_valid, assert_hvp_symmetric, assert_update_equivalence
from genbound.testing.strategies import cp_steps, datasets, normal_array, small_cnns


def _rank1(seed=0, o=2, sizes=(3, 2, 4)):
    rng = np.random.default_rng(seed)
    fs = [rng.normal(size=(o, 1, n)) for n in sizes]
    gs = [rng.normal(size=(o, 1, n)) for n in sizes]
    return fs, gs


# ----- Eq. 2-3 ------------------------------------------------------------------------------------------------

@given(cp_steps())
def test_update_equivalence_any_rank_and_order(step):
    factors, grads, lr = step
    assert assert_update_equivalence(factors=factors, grads=grads, lr=lr) <= 1e-12


def test_update_equivalence_order3_form_and_float32():
    (p, q, t), grads = _rank1()
    assert assert_update_equivalence(p, q, t, grads, 0.1) <= 1e-12
    p32, q32, t32 = (a.astype(np.float32) for a in (p, q, t))
    g32 = [g.astype(np.float32) for g in grads]
    err = assert_update_equivalence(p32, q32, t32, g32, 0.1)  # float32 default tolerance 1e-5
    assert 1e-12 < err <= 1e-5
    with pytest.raises(AssertionError):
        assert_update_equivalence(p32, q32, t32, g32, 0.1, rtol=1e-12)


def test_the_printed_eq3_is_caught(monkeypatch):
    """With delta replaced by Eq. 3 as printed (t gp gt in place of t gp gq), the assertion fails."""

    def printed(factors, grads, lr):
        (p, q, t), (gp, gq, gt) = ([a[:, 0] for a in fs] for fs in (factors, grads))

        def o(a, b, c):
            return np.einsum("oi,oj,ok->oijk", a, b, c)

        return (o(p, q, gt) + o(gp, q, t) + o(p, gq, t)
                - lr * (o(p, gq, gt) + o(gp, q, gt) + np.einsum("oi,oj,ok->oijk", gp, t, gt))
                + lr**2 * o(gp, gq, gt))

    (p, q, t), grads = _rank1(sizes=(3, 3, 3))
    assert_update_equivalence(p, q, t, grads, 0.05)
    monkeypatch.setattr(assertions, "delta", printed)
    with pytest.raises(AssertionError, match="Eq. 2-3 do not hold"):
        assert_update_equivalence(p, q, t, grads, 0.05)
    # the same function with the corrected term passes: the assertion checks the formula, nothing else
    (p2, q2, t2), g2 = _rank1(sizes=(3, 3, 3))
    monkeypatch.setattr(assertions, "delta", lambda factors, grads, lr: gb.factor.delta(factors=factors,
                                                                                        grads=grads, lr=lr))
    assert_update_equivalence(p2, q2, t2, g2, 0.05)


def test_update_equivalence_independent_of_reconstruct():
    """The stepped filter of a rank-1 order-3 step, written out by hand, is what the assertion compares with."""
    (p, q, t), (gp, gq, gt) = _rank1(sizes=(2, 2, 2))
    lr = 0.3
    by_hand = np.array([[[[(p[o, 0, i] - lr * gp[o, 0, i]) * (q[o, 0, j] - lr * gq[o, 0, j])
                           * (t[o, 0, k] - lr * gt[o, 0, k]) for k in range(2)] for j in range(2)]
                         for i in range(2)] for o in range(2)])
    assert np.allclose(assertions._cp_full([p - lr * gp, q - lr * gq, t - lr * gt]), by_hand, rtol=1e-14)


def test_update_equivalence_inputs():
    (p, q, t), grads = _rank1()
    ref = assert_update_equivalence(p, q, t, grads, 0.1)
    frozen = [a.copy() for a in (p, q, t)]
    for a in frozen:
        a.flags.writeable = False
    assert assert_update_equivalence(*frozen, grads, 0.1) == ref
    assert assert_update_equivalence(*(np.asfortranarray(a) for a in (p, q, t)), grads, 0.1) == ref
    ints = [np.arange(6).reshape(2, 1, 3) - 2 for _ in range(3)]
    assert assert_update_equivalence(*ints, [i.copy() for i in ints], 1) == 0.0
    with pytest.raises(TypeError, match="grads"):
        assert_update_equivalence(p, q, t, grads[0], 0.1)
    with pytest.raises(TypeError, match="grads"):
        assert_update_equivalence(factors=[p, q, t], grads=grads[0], lr=0.1)
    with pytest.raises(ValueError, match="gq"):
        assert_update_equivalence(p, q, t, (grads[0], grads[0], grads[2]), 0.1)
    with pytest.raises(TypeError, match="lr"):
        assert_update_equivalence(p, q, t, grads, None)
    with pytest.raises(TypeError, match="p"):
        assert_update_equivalence(p.astype(bool), q, t, grads, 0.1)


# ----- Hessian symmetry ---------------------------------------------------------------------------------------

@settings(max_examples=5)
@given(small_cnns(max_channels=2), datasets(max_train=6))
def test_hvp_symmetric_on_small_models(model, data):
    assert assert_hvp_symmetric(model, data, n_pairs=2) <= 1e-10


def test_hvp_symmetric_float32_and_a_planted_asymmetry():
    model = gb.nn.reference_cnn("digits_gap", rank=1, seed=0, dtype=np.float32, width=0.25)
    x, y = normal_array(0, (4, 1, 8, 8)), np.arange(4)
    assert assert_hvp_symmetric(model, (x, y)) <= 1e-4
    skew = np.triu(normal_array(1, (model.n_params, model.n_params)))
    model.hvp = lambda x, y, v: skew @ v  # a product with a non-symmetric matrix
    with pytest.raises(AssertionError, match=r"not symmetric \(pair 0\)"):
        assert_hvp_symmetric(model, (x, y))


def test_hvp_symmetric_arguments():
    model = gb.nn.reference_cnn("digits_gap", rank=1, seed=0, width=0.25)
    x = normal_array(0, (3, 1, 8, 8))
    x.flags.writeable = False
    assert_hvp_symmetric(model, (np.asfortranarray(x), np.array([0, 1, 2], dtype=np.int32)), n_pairs=1)
    with pytest.raises(ValueError, match="n_pairs"):
        assert_hvp_symmetric(model, (x, [0, 1, 2]), n_pairs=0)
    with pytest.raises(TypeError, match="model"):
        assert_hvp_symmetric("model", (x, [0, 1, 2]))


# ----- bounds -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, fn, clipped", [
    ("mcallester", gb.bounds.mcallester_bound, False),
    ("langford_seeger", gb.bounds.langford_seeger_bound, True),
    ("catoni", gb.bounds.catoni_bound, False),
    ("dziugaite_roy", lambda e, kl, m, d: gb.bounds.dziugaite_roy_bound(e, kl, m, d), True),
    ("dziugaite_roy_sampled", lambda e, kl, m, d: gb.bounds.dziugaite_roy_bound(e, kl, m, d, n_samples=1000), True),
    ("occam_kl", lambda e, kl, m, d: gb.bounds.occam_bound(e, kl / math.log(2), m, d), True),
    ("occam_hoeffding", lambda e, kl, m, d: gb.bounds.occam_bound(e, kl / math.log(2), m, d, form="hoeffding"),
     False),
])
def test_the_librarys_bounds_are_valid(name, fn, clipped):
    assert assert_bound_valid(fn, clipped=clipped) == 7 * 5 * 3 * 2


def test_a_bound_above_1_fails_only_when_clipping_is_claimed():
    assert_bound_valid(gb.bounds.mcallester_bound)
    with pytest.raises(AssertionError, match="above 1"):
        assert_bound_valid(gb.bounds.mcallester_bound, clipped=True)


@pytest.mark.parametrize("fn, message", [
    (lambda e, kl, m, d: e + 1.0 / (1.0 + kl), "decreasing in KL"),
    (lambda e, kl, m, d: 1.5 - 0.5 * e + math.sqrt(kl / m), "decreasing in the empirical error"),
    (lambda e, kl, m, d: 0.9 * e + math.sqrt(kl / m), "below the empirical error"),
    (lambda e, kl, m, d: math.nan if kl > 100 else e, r"NaN \(84 cases\)"),
])
def test_planted_invalid_bounds_fail(fn, message):
    with pytest.raises(AssertionError, match=message):
        assert_bound_valid(fn)


def test_bound_grids_and_results():
    seen = []
    assert assert_bound_valid(lambda *a: seen.append(a) or a[0], emp_errors=np.array([0.5, 0.1]), kls=[3],
                              ms=[20], deltas=[0.1]) == 2
    assert seen == [(0.1, 3.0, 20, 0.1), (0.5, 3.0, 20, 0.1)]  # sorted, converted
    with pytest.raises(ValueError, match=r"emp_errors\[0\]"):
        assert_bound_valid(lambda *a: 1.0, emp_errors=[1.5])
    with pytest.raises(ValueError, match=r"deltas\[0\]"):
        assert_bound_valid(lambda *a: 1.0, deltas=[1.0])
    with pytest.raises(ValueError, match=r"ms\[0\]"):
        assert_bound_valid(lambda *a: 1.0, ms=[0])
    with pytest.raises(ValueError, match="kls"):
        assert_bound_valid(lambda *a: 1.0, kls=[])
    with pytest.raises(TypeError, match="bound_fn"):
        assert_bound_valid(lambda *a: "1.0")
    with pytest.raises(TypeError, match="bound_fn"):
        assert_bound_valid(0.5)
