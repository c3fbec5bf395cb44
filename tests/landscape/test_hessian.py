"""Tests of genbound.landscape.hessian: exact HVPs against finite differences on every layer type, symmetry,
dense Hessians, Lanczos/eigsh against eigh, Hutchinson trace, SLQ density, effective dimension, bad input."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genbound import landscape as L
from genbound.nn import AvgPool2d, Conv2d, CPConv2d, Dense, Flatten, GlobalAvgPool, MaxPool2d, ReLU, Sequential


def net(template, channels=1, rank=1, seed=0):
    """Small nets that together cover every layer type (and strides, paddings, CP ranks 1 and 2)."""
    c = channels
    if template == 0:  # Conv2d, ReLU, MaxPool2d, CPConv2d, AvgPool2d, Flatten, Dense
        layers = [Conv2d(c, 3, 3, padding=1), ReLU(), MaxPool2d(2), CPConv2d(3, 4, 3, rank=rank, padding=1), ReLU(),
                  AvgPool2d(2), Flatten(), Dense(4 * 2 * 2, 5), ReLU(), Dense(5, 3)]
    elif template == 1:  # CPConv2d first, unpadded Conv2d, GlobalAvgPool
        layers = [CPConv2d(c, 3, 3, rank=rank, padding=1), ReLU(), Conv2d(3, 4, 3), ReLU(), GlobalAvgPool(),
                  Dense(4, 3)]
    else:  # strided CP convolution, overlapping max pool, dense head straight from the features
        layers = [CPConv2d(c, 3, 3, rank=rank, stride=2, padding=1), ReLU(), MaxPool2d(2, stride=1), Flatten(),
                  Dense(3 * 3 * 3, 3)]
    return Sequential(layers, seed=seed, input_shape=(c, 8, 8))


def batch(model, n, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, *model.input_shape))
    y = rng.integers(0, model.classes, n)
    return x, y


def pattern(model, x):
    """ReLU masks and max-pool argmaxes of a forward pass."""
    out, acts = [], model.check_x(x)
    for layer in model.layers:
        acts, cache = layer.forward(acts)
        if isinstance(layer, ReLU):
            out.append(cache["y"] > 0)
        elif isinstance(layer, MaxPool2d):
            out.append(cache["idx"].copy())
    return out


def fd_hvp(model, x, y, v, h=1e-5):
    """Central differences of exact gradients, or None if the activation pattern changes within w +- h v."""
    w0 = model.get_flat()
    ref = pattern(model, x)
    try:
        model.set_flat(w0 + h * v)
        gp = model.loss_and_grad(x, y, flat=True)[1]
        same = all(np.array_equal(a, b) for a, b in zip(pattern(model, x), ref))
        model.set_flat(w0 - h * v)
        gm = model.loss_and_grad(x, y, flat=True)[1]
        same = same and all(np.array_equal(a, b) for a, b in zip(pattern(model, x), ref))
    finally:
        model.set_flat(w0)
    return (gp - gm) / (2 * h) if same else None


def rel(a, b):
    return np.linalg.norm(a - b) / max(np.linalg.norm(a), np.linalg.norm(b))


def check_hvp_against_fd(model, n, seed):
    for attempt in range(10):  # redraw inputs and direction when w +- h v crosses a kink
        x, y = batch(model, n, seed=[seed, attempt])
        v = np.random.default_rng([seed, attempt]).normal(size=model.n_params)
        fd = fd_hvp(model, x, y, v)
        if fd is not None:
            break
    else:
        raise AssertionError("activation pattern changed for every input and direction drawn")
    hv = L.hvp(model, (x, y), v)
    assert rel(hv, fd) <= 1e-6
    # symmetry <u, H v> = <v, H u>
    u = np.random.default_rng([seed, 99]).normal(size=model.n_params)
    hu = L.hvp(model, (x, y), u)
    assert abs(u @ hv - v @ hu) <= 1e-10 * np.linalg.norm(u) * np.linalg.norm(hv)


@pytest.mark.parametrize("template,rank", [(0, 1), (0, 2), (1, 1), (1, 2), (2, 1), (2, 2)])
def test_hvp_matches_finite_differences_on_every_layer(template, rank):
    model = net(template, channels=2, rank=rank, seed=template + 10 * rank)
    check_hvp_against_fd(model, 5, seed=template)


@settings(max_examples=12)
@given(template=st.integers(0, 2), channels=st.integers(1, 3), rank=st.integers(1, 2), n=st.integers(1, 6),
       seed=st.integers(0, 2**31 - 1))
def test_hvp_matches_finite_differences_property(template, channels, rank, n, seed):
    model = net(template, channels, rank, seed)
    check_hvp_against_fd(model, n, seed)


def test_hvp_on_reference_digits_net():
    import genbound as gb

    model = gb.nn.reference_cnn("digits", rank=1, seed=3)
    check_hvp_against_fd(model, 8, seed=3)


def test_hvp_with_data_is_the_full_data_product():
    model = net(0, rank=2, seed=1)
    x, y = batch(model, 23, seed=2)
    v = np.random.default_rng(0).normal(size=model.n_params)
    full = model.hvp(x, y, v)
    for bs in (1, 5, 23, 100):
        assert rel(L.hvp(model, (x, y), v, chunk_size=bs), full) <= 1e-12


def test_hvp_bad_input():
    model = net(1)
    x, y = batch(model, 3, 0)
    with pytest.raises(ValueError, match="v: .*length"):
        L.hvp(model, (x, y), np.ones(model.n_params + 1))
    with pytest.raises(ValueError, match="v: .*finite"):
        L.hvp(model, (x, y), np.full(model.n_params, np.nan))
    with pytest.raises(TypeError, match="v: "):
        L.hvp(model, (x, y), None)
    with pytest.raises(TypeError, match="y: "):
        L.hvp(model, (x, None), np.ones(model.n_params))
    with pytest.raises(TypeError, match="data: "):
        L.hvp(model, x, np.ones(model.n_params))
    with pytest.raises(ValueError, match="chunk_size"):
        L.hvp(model, (x, y), np.ones(model.n_params), chunk_size=0)


# --------------------------------------------------------------------------------------------------------
# dense Hessian and eigenvalues
# --------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small():
    model = net(1, rank=2, seed=1)  # 172 parameters
    x, y = batch(model, 16, seed=0)
    h = L.hessian(model, (x, y))
    return model, x, y, h, np.linalg.eigh(0.5 * (h + h.T))[0]


def test_dense_hessian(small):
    model, x, y, h, _ = small
    assert h.shape == (model.n_params, model.n_params)
    assert np.abs(h - h.T).max() <= 1e-12 * np.abs(h).max()
    v = np.random.default_rng(5).normal(size=model.n_params)
    assert rel(h @ v, model.hvp(x, y, v)) <= 1e-12
    with pytest.raises(ValueError, match="max_params"):
        L.hessian(model, (x, y), max_params=10)
    tiny = Sequential([Flatten(), Dense(4, 3)], input_shape=(1, 2, 2))
    xt, yt = batch(tiny, 5, 0)
    hs = L.hessian(tiny, (xt, yt), max_params=10, force=True, symmetrize=True)
    assert hs.shape == (15, 15) and np.array_equal(hs, hs.T)


@pytest.mark.parametrize("method", ["lanczos", "eigsh"])
def test_extreme_eigenvalues_match_eigh(small, method):
    model, x, y, h, ev = small
    scale = abs(ev[-1])
    top = L.top_eigenvalues(model, (x, y), k=3, method=method)
    assert np.all(np.diff(top.values) <= 0)
    assert np.max(np.abs(top.values - ev[::-1][:3])) <= 1e-8 * scale
    for i in range(3):  # eigenvectors: unit, H u = lambda u
        u = top.vectors[:, i]
        assert abs(np.linalg.norm(u) - 1) <= 1e-10
        assert np.linalg.norm(h @ u - top.values[i] * u) <= 1e-6 * scale
    low = L.min_eigenvalue(model, (x, y), method=method)
    assert ev[0] < 0
    assert abs(low.value - ev[0]) <= 1e-8 * scale
    values, vectors = top  # unpacks as a pair
    assert values.shape == (3,) and vectors.shape == (model.n_params, 3)
    assert top.n_hvp > 0 and top.seconds >= 0 and np.all(top.converged)


def test_eigenvalues_deterministic_and_full_data(small):
    model, x, y, _, ev = small
    a = L.top_eigenvalues(model, (x, y), seed=4)
    b = L.top_eigenvalues(model, (x, y), seed=4)
    assert np.array_equal(a.values, b.values) and np.array_equal(a.vectors, b.vectors)
    c = L.top_eigenvalues(model, (x, y), chunk_size=5)
    assert abs(c.value - ev[-1]) <= 1e-8 * abs(ev[-1])


def test_eigenvalue_bad_input(small):
    model, x, y, _, _ = small
    with pytest.raises(ValueError, match="k: "):
        L.top_eigenvalues(model, (x, y), k=model.n_params + 1)
    with pytest.raises(ValueError, match="k: "):
        L.top_eigenvalues(model, (x, y), k=0)
    with pytest.raises(ValueError, match="method: "):
        L.top_eigenvalues(model, (x, y), method="power")
    with pytest.raises(ValueError, match="tol: "):
        L.min_eigenvalue(model, (x, y), tol=0)


def test_lanczos_finds_repeated_eigenvalues():
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(12, 12)))
    lam = np.array([5.0, 5.0, 5.0, 3.0, 1.0, 1.0, 0.0, 0.0, 0.0, -1.0, -2.0, -2.0])
    a = q @ np.diag(lam) @ q.T
    run = L.lanczos(lambda v: a @ v, rng.normal(size=12), 12, seed=rng)
    theta, _ = run.ritz()
    assert np.allclose(np.sort(theta), np.sort(lam), atol=1e-10)
    assert np.allclose(run.basis @ run.basis.T, np.eye(12), atol=1e-12)


# --------------------------------------------------------------------------------------------------------
# trace, density, effective dimension
# --------------------------------------------------------------------------------------------------------


def test_hutchinson_trace(small):
    model, x, y, h, _ = small
    tr = L.hessian_trace(model, (x, y), n_probes=80, seed=1)
    assert tr.stderr > 0 and tr.samples.shape == (80,) and tr.n_hvp == 80
    assert abs(tr.estimate - np.trace(h)) <= 4 * tr.stderr
    # exact variance of the Rademacher estimator: 2 (||H||_F^2 - sum H_ii^2) / P
    sd = np.sqrt(2 * (np.sum(h ** 2) - np.sum(np.diag(h) ** 2)) / 80)
    assert 0.6 * sd <= tr.stderr <= 1.4 * sd
    assert L.hessian_trace(model, (x, y), n_probes=3, seed=1).estimate == L.hessian_trace(model, (x, y), n_probes=3,
                                                                                         seed=1).estimate
    g = L.hessian_trace(model, (x, y), n_probes=40, seed=2, probes="gaussian")
    assert abs(g.estimate - np.trace(h)) <= 4 * g.stderr
    with pytest.raises(ValueError, match="n_probes"):
        L.hessian_trace(model, (x, y), n_probes=1)


def test_spectral_density(small):
    model, x, y, h, ev = small
    sd = L.spectral_density(model, (x, y), n_probes=5, lanczos_steps=20, seed=3)
    d = sd.density
    assert list(d.columns) == ["eigenvalue", "density"]
    assert abs(np.trapezoid(d["density"], d["eigenvalue"]) - 1) <= 1e-3
    mean = np.trapezoid(d["density"] * d["eigenvalue"], d["eigenvalue"])
    assert abs(mean - sd.trace / model.n_params) <= 1e-3 * np.abs(ev).max()
    assert abs(sd.trace - np.trace(h)) <= 4 * sd.trace_stderr
    assert np.allclose(sd.weights.sum(axis=1), 1.0, atol=1e-12)
    assert sd.n_hvp == 5 * 20
    # the probes are Hutchinson's with the same seed: first moments n sum_j tau_j theta_j = z^T H z
    tr = L.hessian_trace(model, (x, y), n_probes=5, seed=3)
    assert np.allclose(model.n_params * np.sum(sd.weights * sd.nodes, axis=1), tr.samples,
                       rtol=1e-10, atol=1e-10 * np.abs(ev).max() * model.n_params)
    # Gauss quadrature is exact for polynomials of degree < 2 m: moments of a unit start vector
    v = np.random.default_rng(3).normal(size=model.n_params)
    v /= np.linalg.norm(v)
    theta, s = L.lanczos(lambda u: h @ u, v, 20, restart=False).ritz()
    w = s[0] ** 2
    hv = v.copy()
    for k in range(1, 8):
        hv = h @ hv
        assert abs(np.sum(w * theta ** k) - v @ hv) <= 1e-8 * np.abs(ev).max() ** k
    # with as many steps as parameters, the nodes are the eigenvalues (a small MLP)
    mlp = Sequential([Flatten(), Dense(4, 5), ReLU(), Dense(5, 3)], seed=1, input_shape=(1, 2, 2))
    xm, ym = batch(mlp, 6, 1)
    evm = np.linalg.eigh(L.hessian(mlp, (xm, ym), symmetrize=True))[0]
    full = L.spectral_density(mlp, (xm, ym), n_probes=1, lanczos_steps=mlp.n_params, seed=0)
    nodes = full.nodes[0][full.weights[0] > 1e-14]
    assert np.all(np.min(np.abs(nodes[:, None] - evm[None, :]), axis=1) <= 1e-8 * np.abs(evm).max())


def test_effective_dimension(small):
    assert L.effective_dimension([-1.0, 0.0, 1.0, 3.0], 1.0) == pytest.approx(0.5 + 0.75)
    assert L.effective_dimension(np.array([[2.0, 2.0]]), 2.0) == pytest.approx(1.0)
    model, x, y, _, ev = small
    exact = L.effective_dimension(ev, 0.05)
    assert 0 < exact <= np.sum(ev >= 0)
    top = L.top_eigenvalues(model, (x, y), k=5, tol=1e-4)
    assert L.effective_dimension(top, 0.05) <= exact
    sd = L.spectral_density(model, (x, y), n_probes=4, lanczos_steps=20, seed=0)
    assert sd.effective_dimension(0.05) == pytest.approx(exact, rel=0.5)
    with pytest.raises(ValueError, match="z: "):
        L.effective_dimension(ev, 0.0)
    with pytest.raises(ValueError, match="eigenvalues: "):
        L.effective_dimension([1.0, np.nan], 1.0)
