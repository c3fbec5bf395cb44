"""Tests of genbound.landscape.slices: filter normalization, zero bias directions, slices, interpolation,
restored weights, plots."""
import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import genbound as gb  # noqa: E402
from genbound import landscape as L  # noqa: E402
from genbound.nn import Conv2d, CPConv2d, Dense, Flatten, MaxPool2d, ReLU, Sequential  # noqa: E402


def mixed_net(seed=0):
    """Conv2d, CPConv2d rank 2 and Dense, with non-zero biases."""
    model = Sequential([Conv2d(1, 3, 3, padding=1), ReLU(), MaxPool2d(2), CPConv2d(3, 4, 3, rank=2, padding=1),
                        ReLU(), MaxPool2d(2), Flatten(), Dense(16, 3)], seed=seed, input_shape=(1, 8, 8))
    rng = np.random.default_rng(seed)
    for key, value in model.params.items():
        if key.endswith("bias"):
            value[...] = rng.normal(size=value.shape)
    return model


@pytest.fixture(scope="module")
def small():
    return gb.data.load_digits(seed=0).subset(np.arange(40), np.arange(20))


def test_filter_normalization_property():
    model = mixed_net()
    d = model.unflatten(L.random_direction(model, seed=1))
    w = model.params
    for key in ("0.weight", "7.weight"):  # Conv2d: per output filter; Dense: per output row
        dn = np.linalg.norm(d[key].reshape(d[key].shape[0], -1), axis=1)
        wn = np.linalg.norm(w[key].reshape(w[key].shape[0], -1), axis=1)
        assert np.allclose(dn, wn, rtol=1e-12)
    for f in ("p", "q", "t"):  # CPConv2d: per factor row [o, r]
        key = f"3.{f}"
        assert np.allclose(np.linalg.norm(d[key], axis=2), np.linalg.norm(w[key], axis=2), rtol=1e-12)
    for key in ("0.bias", "3.bias", "7.bias"):
        assert np.linalg.norm(w[key]) > 0
        assert np.all(d[key] == 0)  # biases get no direction by default


def test_include_bias_and_other_normalizations():
    model = mixed_net(2)
    plain = model.unflatten(L.random_direction(model, seed=3))
    withb = model.unflatten(L.random_direction(model, seed=3, include_bias=True))
    for key in model.params:
        if key.endswith("bias"):
            assert np.linalg.norm(withb[key]) == pytest.approx(np.linalg.norm(model.params[key]), rel=1e-12)
            assert np.all(withb[key] != 0)
        else:
            assert np.array_equal(plain[key], withb[key])  # same seed, same weight directions
    layer = model.unflatten(L.random_direction(model, seed=3, normalization="layer"))
    for key in model.params:
        if not key.endswith("bias"):
            assert np.linalg.norm(layer[key]) == pytest.approx(np.linalg.norm(model.params[key]), rel=1e-12)
    raw = L.random_direction(model, seed=3, normalization=None)
    assert raw.shape == (model.n_params,)
    assert not np.array_equal(raw, L.random_direction(model, seed=4, normalization=None))
    with pytest.raises(ValueError, match="normalization"):
        L.random_direction(model, normalization="unit")


def test_zero_filters_get_zero_direction():
    model = mixed_net(3)
    model.params["0.weight"][1] = 0.0
    d = model.unflatten(L.random_direction(model, seed=0))
    assert np.all(d["0.weight"][1] == 0) and np.all(np.isfinite(d["0.weight"]))


def test_slice_1d(small):
    model = gb.nn.reference_cnn("digits", rank=1, seed=0)
    w0 = model.get_flat()
    alphas = np.linspace(-0.5, 0.5, 5)
    df = L.slice_1d(model, small, alphas=alphas, per_batch=True, batch_size=16, seed=2)
    assert np.array_equal(model.get_flat(), w0)
    assert list(df["alpha"]) == list(alphas)
    assert df.loc[2, "loss"] == pytest.approx(model.loss(small.x_train, small.y_train), rel=1e-12)
    cols = [c for c in df.columns if c.startswith("loss_batch_")]
    sizes = np.array(df.attrs["batch_sizes"])
    assert len(cols) == 3 and list(sizes) == [16, 16, 8]
    assert np.allclose(df[cols].to_numpy() @ sizes / sizes.sum(), df["loss"], rtol=1e-12)
    d = L.random_direction(model, seed=2)
    model.set_flat(w0 + 0.5 * d)
    assert df.loc[4, "loss"] == pytest.approx(model.loss(small.x_train, small.y_train), rel=1e-12)
    model.set_flat(w0)
    with pytest.raises(ValueError, match="direction: "):
        L.slice_1d(model, small, direction=np.ones(3))
    with pytest.raises(ValueError, match="direction: "):
        L.slice_1d(model, small, direction=np.full(model.n_params, np.nan))
    with pytest.raises(ValueError, match="batch_size"):
        L.slice_1d(model, small, batch_size=0)
    with pytest.raises(ValueError, match="alphas: "):
        L.slice_1d(model, small, alphas=[])


def test_slice_2d_and_plot(small):
    model = gb.nn.reference_cnn("digits", rank=1, seed=1)
    w0 = model.get_flat()
    d1, d2 = L.random_direction(model, seed=5), L.random_direction(model, seed=6)
    a, b = np.linspace(-1, 1, 4), np.linspace(-0.5, 0.5, 3)
    df = L.slice_2d(model, small, d1, d2, a, b, per_batch=True, batch_size=20)
    assert np.array_equal(model.get_flat(), w0)
    assert len(df) == 12 and list(df.columns[:4]) == ["alpha", "beta", "loss", "error"]
    row = df.iloc[7]
    model.set_flat(w0 + row["alpha"] * d1 + row["beta"] * d2)
    assert row["loss"] == pytest.approx(model.loss(small.x_train, small.y_train), rel=1e-12)
    model.set_flat(w0)
    ax = L.plot_slice_2d(df, per_batch=True)
    assert ax.get_xlabel().startswith("alpha")
    ax1 = L.plot_slice_1d(L.slice_1d(model, small, alphas=a, per_batch=True, batch_size=20), per_batch=True)
    assert len(ax1.lines) == 3
    import matplotlib.pyplot as plt

    plt.close("all")
    with pytest.raises(ValueError, match="d2: "):
        L.slice_2d(model, small, d1, d2[:-1])
    with pytest.raises(ValueError, match="df: "):
        L.plot_slice_2d(df.drop(columns="beta"))
    with pytest.raises(ValueError, match="df: "):
        L.plot_slice_2d(L.slice_2d(model, small, d1, d2, a, b), per_batch=True)


def test_interpolate(small):
    model = gb.nn.reference_cnn("digits", rank=1, seed=2)
    ta = model.get_flat()
    tb = ta + 0.1 * L.random_direction(model, seed=0)
    df = L.interpolate(model, small, ta, tb, alphas=[0.0, 0.5, 1.0])
    assert np.array_equal(model.get_flat(), ta)
    assert {"alpha", "loss", "error", "test_loss", "test_error"} <= set(df.columns)
    assert df.loc[0, "loss"] == pytest.approx(model.loss(small.x_train, small.y_train), rel=1e-12)
    assert df.loc[0, "test_loss"] == pytest.approx(model.loss(small.x_test, small.y_test), rel=1e-12)
    model.set_flat(tb)
    assert df.loc[2, "loss"] == pytest.approx(model.loss(small.x_train, small.y_train), rel=1e-12)
    model.set_flat(ta)
    with pytest.raises(ValueError, match="theta_b: "):
        L.interpolate(model, small, ta, tb[:5])
    with pytest.raises(TypeError, match="data: "):
        L.interpolate(model, ta, ta, tb)
    # an (x, y) pair has no test set
    pair = L.interpolate(model, (small.x_train, small.y_train), ta, tb, alphas=[0.0, 0.5, 1.0], chunk_size=7)
    assert "test_loss" not in pair and np.allclose(pair["loss"], df["loss"], rtol=1e-12)


def test_weights_restored_on_error(small, monkeypatch):
    model = gb.nn.reference_cnn("digits", rank=1, seed=3)
    w0 = model.get_flat()
    calls = {"n": 0}
    real = model.forward_with_caches

    def flaky(*args):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("boom")
        return real(*args)

    monkeypatch.setattr(model, "forward_with_caches", flaky)
    with pytest.raises(RuntimeError, match="boom"):
        L.slice_1d(model, small, alphas=[0.3, 0.6, 0.9])
    assert np.array_equal(model.get_flat(), w0)
