"""Tests of genbound.landscape.sharpness: sign, monotonicity in eps, first-order prediction in the full space and
in a random subspace (which holds only with the exact gradient of the inner problem), bad input."""
import numpy as np
import pytest

import genbound as gb
from genbound import landscape as L


@pytest.fixture(scope="module")
def setup():
    data = gb.data.load_digits(seed=0).subset(np.arange(48))
    model = gb.nn.reference_cnn("digits", rank=1, seed=0)
    gb.train(model, data, epochs=2, batch_size=16, seed=0, progress=False)
    return model, data


def test_sharpness_nonnegative_and_grows_with_eps(setup):
    model, data = setup
    w0 = model.get_flat()
    values = [L.sharpness(model, data, eps=e, max_iter=5).value for e in (1e-4, 1e-3, 1e-2)]
    assert np.array_equal(model.get_flat(), w0)
    assert values[0] >= 0 and values[0] < values[1] < values[2]
    res = L.sharpness(model, data, eps=1e-3, max_iter=5)
    assert res.loss == pytest.approx(model.loss(data.x_train, data.y_train), rel=1e-12)
    assert res.value == pytest.approx(100 * (res.max_loss - res.loss) / (1 + res.loss))
    r = 1e-3 * (np.abs(w0) + 1)
    assert np.all(np.abs(res.perturbation) <= r * (1 + 1e-12))  # stays in the box
    model.set_flat(w0 + res.perturbation)
    assert model.loss(data.x_train, data.y_train) == pytest.approx(res.max_loss, rel=1e-12)
    model.set_flat(w0)


def test_small_eps_matches_first_order_prediction(setup):
    # for a tiny box the loss is nearly linear: the maximum sits at the corner sign(g) * r and rises by
    # sum_i |g_i| r_i, up to a second-order term
    model, data = setup
    eps = 1e-6
    loss, g = model.loss_and_grad(data.x_train, data.y_train, flat=True)
    w = model.get_flat()
    predicted = 100 * np.sum(np.abs(g) * eps * (np.abs(w) + 1)) / (1 + loss)
    res = L.sharpness(model, data, eps=eps, max_iter=30)
    assert res.value <= predicted * (1 + 1e-4)
    assert res.value == pytest.approx(predicted, rel=2e-3)


def subspace(model, p, seed):
    """The documented random subspace: an n x p matrix with N(0, 1/n) entries drawn from ``seed``."""
    n = model.n_params
    return np.random.default_rng(seed).standard_normal((n, p)) / np.sqrt(n)


def test_small_eps_in_a_subspace_matches_first_order_prediction(setup):
    # in the subspace the rise is sum_i |(A^T g)_i| r_i with r = eps (|A^+ w| + 1): reached only when the
    # inner problem's gradient A^T grad L is exact
    model, data = setup
    eps, a = 1e-6, subspace(model, 30, seed=0)
    loss, g = model.loss_and_grad(data.x_train, data.y_train, flat=True)
    r = eps * (np.abs(np.linalg.lstsq(a, model.get_flat(), rcond=None)[0]) + 1)
    predicted = 100 * np.sum(np.abs(a.T @ g) * r) / (1 + loss)
    res = L.sharpness(model, data, eps=eps, subspace_dim=30, seed=0, max_iter=30)
    assert res.value <= predicted * (1 + 1e-4)
    assert res.value == pytest.approx(predicted, rel=2e-3)


def test_subspace_sharpness(setup):
    model, data = setup
    w0 = model.get_flat()
    a = L.sharpness(model, data, eps=1e-2, subspace_dim=20, seed=3, max_iter=5)
    b = L.sharpness(model, data, eps=1e-2, subspace_dim=20, seed=3, max_iter=5)
    assert a.value == b.value >= 0 and a.subspace_dim == 20
    # the perturbation lies in the range of A, and attains the reported loss
    basis = subspace(model, 20, seed=3)
    coef = np.linalg.lstsq(basis, a.perturbation, rcond=None)[0]
    assert np.allclose(basis @ coef, a.perturbation, atol=1e-12)
    model.set_flat(w0 + a.perturbation)
    assert model.loss(data.x_train, data.y_train) == pytest.approx(a.max_loss, rel=1e-12)
    model.set_flat(w0)
    assert L.sharpness(model, (data.x_train, data.y_train), eps=1e-2, subspace_dim=20, seed=3, max_iter=5,
                       chunk_size=7).value == pytest.approx(a.value, rel=1e-8)


def test_sharpness_bad_input(setup):
    model, data = setup
    for eps in (0.0, -1e-3, np.nan):
        with pytest.raises(ValueError, match="eps"):
            L.sharpness(model, data, eps=eps)
    with pytest.raises(ValueError, match="subspace_dim"):
        L.sharpness(model, data, subspace_dim=model.n_params + 1)
    with pytest.raises(ValueError, match="subspace_dim"):
        L.sharpness(model, data, subspace_dim=0)
    with pytest.raises(ValueError, match="max_iter"):
        L.sharpness(model, data, max_iter=0)
    with pytest.raises(TypeError, match="data: "):
        L.sharpness(model, data.x_train)
