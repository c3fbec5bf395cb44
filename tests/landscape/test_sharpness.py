"""Tests of genbound.landscape.sharpness: sign, monotonicity in eps, first-order prediction, exact gradients of
the inner problem against finite differences, subspace variant, bad input."""
import numpy as np
import pytest

import genbound as gb
from genbound import landscape as L
from genbound.landscape.sharpness import _SharpnessProblem


@pytest.fixture(scope="module")
def setup():
    data = gb.data.load_digits(seed=0).subset(np.arange(48))
    model = gb.nn.reference_cnn("digits", rank=1, seed=0)
    gb.train(model, data, epochs=2, batch_size=16, seed=0, progress=False)
    return model, data


def test_sharpness_nonnegative_and_grows_with_eps(setup):
    model, data = setup
    w0 = model.get_flat()
    values = [L.sharpness(model, data, eps=e, maxiter=5).value for e in (1e-4, 1e-3, 1e-2)]
    assert np.array_equal(model.get_flat(), w0)
    assert values[0] >= 0 and values[0] < values[1] < values[2]
    res = L.sharpness(model, data, eps=1e-3, maxiter=5)
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
    res = L.sharpness(model, data, eps=eps, maxiter=30)
    assert res.value <= predicted * (1 + 1e-4)
    assert res.value == pytest.approx(predicted, rel=2e-3)


@pytest.mark.parametrize("subspace_dim", [None, 30])
def test_inner_gradient_matches_finite_differences(setup, subspace_dim):
    model, data = setup
    w0 = model.get_flat()
    prob = _SharpnessProblem(model, data.x_train, data.y_train, 1e-2, subspace_dim, 0, 1024)
    rng = np.random.default_rng(1)
    u0 = rng.uniform(-1, 1, prob.radius.size)  # scaled variables: z = r * u, |u_i| <= 1
    d = rng.normal(size=u0.size)
    f, grad = prob.fun_and_grad(u0)
    h = 1e-3 / np.linalg.norm(d)
    fp, _ = prob.fun_and_grad(u0 + h * d)
    fm, _ = prob.fun_and_grad(u0 - h * d)
    assert (fp - fm) / (2 * h) == pytest.approx(grad @ d, rel=1e-6)
    model.set_flat(w0 + prob.move(u0))
    loss = model.loss(data.x_train, data.y_train)
    assert f == pytest.approx(-(loss - prob.loss0) / prob.fscale, rel=1e-9)
    model.set_flat(w0)


def test_subspace_sharpness(setup):
    model, data = setup
    a = L.sharpness(model, data, eps=1e-2, subspace_dim=20, seed=3, maxiter=5)
    b = L.sharpness(model, data, eps=1e-2, subspace_dim=20, seed=3, maxiter=5)
    assert a.value == b.value >= 0 and a.subspace_dim == 20
    # the perturbation lies in the range of A
    prob = _SharpnessProblem(model, data.x_train, data.y_train, 1e-2, 20, 3, 1024)
    coef = np.linalg.lstsq(prob.a, a.perturbation, rcond=None)[0]
    assert np.allclose(prob.a @ coef, a.perturbation, atol=1e-12)


def test_sharpness_bad_input(setup):
    model, data = setup
    for eps in (0.0, -1e-3, np.nan):
        with pytest.raises(ValueError, match="eps"):
            L.sharpness(model, data, eps=eps)
    with pytest.raises(ValueError, match="subspace_dim"):
        L.sharpness(model, data, subspace_dim=model.n_params + 1)
    with pytest.raises(ValueError, match="subspace_dim"):
        L.sharpness(model, data, subspace_dim=0)
    with pytest.raises(ValueError, match="maxiter"):
        L.sharpness(model, data, maxiter=0)
