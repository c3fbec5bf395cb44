"""Whole networks: gradients and Hessian-vector products against finite differences, precision, bad input."""
import numpy as np
import pytest
from hypothesis import assume, given, settings

import genbound as gb
from genbound.nn import CPConv2d, Conv2d, Dense, Flatten, ReLU, Sequential, softmax_cross_entropy
from genbound.testing import activation_margin, check_hvp, check_model_grads, relative_error
from genbound.testing.strategies import normal_array, small_cnns


def _batch(model, n, seed):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n,) + model.input_shape), rng.integers(0, model.classes, n)


def _safe_batch(model, n, seed, margin=2e-5):
    """A batch whose ReLU inputs and max-pool gaps are all at least ``margin`` (relative) from a kink, so
    that steps of 1e-6 cannot change the activation pattern."""
    for s in range(seed, seed + 500):
        x, y = _batch(model, n, s)
        if activation_margin(model, x) > margin:
            return x, y
    raise AssertionError("no kink-free batch among 500 draws")


@pytest.mark.parametrize("rank", [None, 1, 3])
@pytest.mark.parametrize("name", ["digits", "digits_gap"])
def test_reference_network_gradients_all_coordinates(name, rank):
    model = gb.nn.reference_cnn(name, rank=rank, seed=1)
    x, y = _safe_batch(model, 2, 0)
    assert check_model_grads(model, (x, y), h=1e-6) <= 1e-6


@pytest.mark.parametrize("rank", [None, 1])
def test_mnist_network_directional_derivatives(rank):
    """mnist has 10^5 parameters: compare g.v with central differences along random directions."""
    model = gb.nn.reference_cnn("mnist", rank=rank, seed=0)
    x, y = _safe_batch(model, 1, 0, margin=1e-6)
    _, g = model.loss_and_grad(x, y, flat=True)
    w0 = model.get_flat()
    rng = np.random.default_rng(0)
    exact, numeric = [], []
    for _ in range(4):
        v = rng.normal(size=w0.size)
        v /= np.linalg.norm(v)
        model.set_flat(w0 + 1e-7 * v)
        lp = model.loss(x, y)
        model.set_flat(w0 - 1e-7 * v)
        lm = model.loss(x, y)
        model.set_flat(w0)
        exact.append(g @ v)
        numeric.append((lp - lm) / 2e-7)
    assert relative_error(exact, numeric) <= 1e-6


@settings(max_examples=15)
@given(small_cnns())
def test_small_cnn_gradients_and_hvp(model):
    x, y = _batch(model, 3, 7)
    assume(activation_margin(model, x) > 1e-4)
    assert check_model_grads(model, (x, y)) <= 1e-6
    assert check_hvp(model, (x, y), seed=3) <= 1e-6


@pytest.mark.parametrize("rank", [None, 1])
def test_hvp_is_symmetric(rank):
    model = gb.nn.reference_cnn("digits", rank=rank, seed=0)
    x, y = _batch(model, 8, 0)
    rng = np.random.default_rng(1)
    u, v = rng.normal(size=(2, model.n_params))
    assert abs(u @ model.hvp(x, y, v) - v @ model.hvp(x, y, u)) <= 1e-10 * abs(u @ model.hvp(x, y, v))


@pytest.mark.parametrize("name,rank", [("digits", None), ("digits", 1), ("mnist", 1)])
def test_float32_agrees_with_float64(name, rank):
    m64 = gb.nn.reference_cnn(name, rank=rank, seed=0)
    m32 = gb.nn.reference_cnn(name, rank=rank, seed=0, dtype=np.float32)
    m32.set_flat(m64.get_flat().astype(np.float32))
    x, y = _batch(m64, 16, 0)
    l64, g64 = m64.loss_and_grad(x, y, flat=True)
    l32, g32 = m32.loss_and_grad(x.astype(np.float32), y, flat=True)
    assert g32.dtype == np.float32 and m32.forward(x).dtype == np.float32
    assert abs(l32 - l64) <= 1e-5 * abs(l64)
    assert relative_error(g32, g64) <= 2e-5


def test_float32_input_converted_for_float64_model():
    model = gb.nn.reference_cnn("digits", rank=1, seed=0)
    x, y = _batch(model, 4, 0)
    assert np.array_equal(model.forward(x.astype(np.float32)), model.forward(x.astype(np.float32).astype(float)))


def test_cross_entropy_stable_for_huge_logits():
    logits = np.array([[1e4, 0.0, -1e4], [0.0, 1e4, 1e4]])
    loss, grad, probs = softmax_cross_entropy(logits, np.array([0, 2]))
    assert np.isfinite(loss) and np.all(np.isfinite(grad))
    assert loss == pytest.approx(np.log(2) / 2)
    # independent computation with exact arithmetic on the shifted logits
    assert np.allclose(probs[1], [0.0, 0.5, 0.5])


def test_cross_entropy_matches_direct_formula():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(5, 4))
    y = rng.integers(0, 4, 5)
    direct = -np.mean(np.log(np.exp(z[np.arange(5), y]) / np.exp(z).sum(axis=1)))
    assert softmax_cross_entropy(z, y)[0] == pytest.approx(direct, rel=1e-14)


def test_parameter_counts_and_names():
    assert gb.nn.reference_cnn("digits_gap").n_params == 5130
    assert gb.nn.reference_cnn("digits_gap", rank=1).n_params == 1194
    model = gb.nn.reference_cnn("digits", rank=1)
    assert list(model.params)[:4] == ["0.p", "0.q", "0.t", "0.bias"]
    assert model.params["0.p"].shape == (16, 1, 1) and model.params["3.p"].shape == (32, 1, 16)
    assert model.params["7.weight"].shape == (10, 128)


def test_flat_roundtrip_and_views():
    model = gb.nn.reference_cnn("digits", rank=1, seed=0)
    v = np.arange(model.n_params, dtype=float)
    model.set_flat(v)
    assert np.array_equal(model.get_flat(), v)
    assert model.params["0.p"].ravel()[0] == 0.0 and model.layers[0].p is model.params["0.p"]
    clone = model.copy()
    clone.params["0.p"][...] = -1
    assert model.params["0.p"].ravel()[0] == 0.0


def test_same_seed_same_model_and_different_seed_different():
    a, b, c = (gb.nn.reference_cnn("digits", rank=1, seed=s).get_flat() for s in (0, 0, 1))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_cp_initialization_matches_he_variance():
    layer = CPConv2d(64, 64, 3, rank=2).initialize(0)
    w = layer.full_weight()
    assert np.var(w) == pytest.approx(2.0 / (64 * 9), rel=0.1)


def test_weight_grads_of_cp_network_give_factor_gradients():
    model = gb.nn.reference_cnn("digits", rank=2, seed=0)
    x, y = _batch(model, 5, 0)
    _, grads = model.loss_and_grad(x, y)
    G = model.weight_grads(x, y)
    assert sorted(G) == [0, 3]
    q, t = model.params["3.q"], model.params["3.t"]
    assert relative_error(grads["3.p"], np.einsum("oijk,orj,ork->ori", G[3], q, t)) <= 1e-12


# ----- bad input ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def model():
    return gb.nn.reference_cnn("digits", rank=1, seed=0)


def test_wrong_input_shape(model):
    with pytest.raises(ValueError, match=r"x: expected shape \(n, 1, 8, 8\), got \(2, 1, 7, 8\)"):
        model.forward(np.zeros((2, 1, 7, 8)))
    with pytest.raises(ValueError, match="x: expected shape"):
        model.forward(np.zeros((1, 8, 8)))


def test_wrong_channel_count():
    layer = Conv2d(3, 4, 3)
    with pytest.raises(ValueError, match="x: expected 3 input channels .* got 1"):
        Sequential([layer, Flatten(), Dense(4, 2)], input_shape=(1, 3, 3))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_input(model, bad):
    x = np.zeros((2, 1, 8, 8))
    x[1, 0, 3, 3] = bad
    with pytest.raises(ValueError, match="x: expected finite values"):
        model.loss_and_grad(x, [0, 1])


@pytest.mark.parametrize("labels", [[0, 10], [-1, 0]])
def test_labels_out_of_range(model, labels):
    with pytest.raises(ValueError, match=r"y: expected labels in \[0, 10\)"):
        model.loss_and_grad(np.zeros((2, 1, 8, 8)), labels)


def test_label_count_mismatch(model):
    with pytest.raises(ValueError, match=r"y: expected shape \(2,\)"):
        model.loss(np.zeros((2, 1, 8, 8)), [0, 1, 2])


@pytest.mark.parametrize("dtype", [np.float16, np.complex128, object, np.bool_])
def test_bad_input_dtypes(model, dtype):
    with pytest.raises(TypeError, match="x: expected"):
        model.forward(np.zeros((2, 1, 8, 8), dtype=dtype))


def test_string_input(model):
    with pytest.raises(TypeError, match="x: expected a numeric"):
        model.forward(np.array([["a"]]))


def test_float16_model_dtype_refused():
    with pytest.raises(TypeError, match="dtype: expected float32 or float64"):
        gb.nn.reference_cnn("digits", dtype=np.float16)


@pytest.mark.parametrize("rank", [0, -1])
def test_rank_below_one(rank):
    with pytest.raises(ValueError, match=f"rank: expected an int >= 1, got {rank}"):
        CPConv2d(1, 2, 3, rank=rank)


def test_rank_not_int():
    with pytest.raises(TypeError, match="rank: expected an int"):
        CPConv2d(1, 2, 3, rank=1.5)


def test_kernel_larger_than_padded_image():
    with pytest.raises(ValueError, match=r"kernel_size: expected at most the padded image size 6 .* got 7"):
        Sequential([Conv2d(1, 2, 7, padding=1), Flatten(), Dense(2, 2)], input_shape=(1, 4, 4))
    layer = CPConv2d(1, 2, 5).initialize(0)
    with pytest.raises(ValueError, match="kernel_size: expected at most the padded image size 4"):
        layer.forward(np.zeros((1, 1, 4, 4)))


@pytest.mark.parametrize("lr", [0, -0.1, np.nan])
def test_lr_must_be_positive(lr):
    with pytest.raises(ValueError, match="lr: expected"):
        gb.nn.SGD(lr=lr)


def test_set_flat_wrong_length(model):
    with pytest.raises(ValueError, match=f"v: expected a vector of length {model.n_params}"):
        model.set_flat(np.zeros(3))


def test_hvp_wrong_length(model):
    with pytest.raises(ValueError, match="v: expected a vector of length"):
        model.hvp(np.zeros((1, 1, 8, 8)), [0], np.zeros(5))


def test_unknown_reference_name():
    with pytest.raises(ValueError, match="name: expected one of"):
        gb.nn.reference_cnn("cifar")


def test_dense_input_mismatch():
    with pytest.raises(ValueError, match=r"x: expected inputs of shape \(5,\) for Dense\(5, 2\), got \(4,\)"):
        Sequential([Flatten(), Dense(5, 2)], input_shape=(1, 2, 2))
