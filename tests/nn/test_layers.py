"""Layer rules against central finite differences: backward, tangent forward, tangent backward."""
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from genbound.nn import AvgPool2d, Conv2d, CPConv2d, Dense, Flatten, GlobalAvgPool, MaxPool2d, ReLU
from genbound.testing import check_grads, check_layer_grads, check_layer_tangents, numerical_gradient, relative_error
from genbound.testing.strategies import conv_configs, normal_array, seeds


def _input(cfg):
    return normal_array(cfg["seed"] + 1, (cfg["batch"], cfg["in_channels"], cfg["height"], cfg["width"]))


def _conv(cfg, cp):
    args = (cfg["in_channels"], cfg["out_channels"], cfg["kernel_size"])
    kw = dict(stride=cfg["stride"], padding=cfg["padding"])
    layer = CPConv2d(*args, rank=cfg["rank"], **kw) if cp else Conv2d(*args, **kw)
    layer.initialize(cfg["seed"])
    for value in layer.params.values():  # nonzero biases too
        value += normal_array(cfg["seed"] + 2, value.shape, 0.1)
    return layer


@given(conv_configs())
def test_conv2d_gradients(cfg):
    check_layer_grads(_conv(cfg, cp=False), _input(cfg), seed=cfg["seed"])


@given(conv_configs())
def test_cpconv2d_gradients(cfg):
    check_layer_grads(_conv(cfg, cp=True), _input(cfg), seed=cfg["seed"])


@given(conv_configs())
def test_cpconv2d_equals_conv2d_with_reconstructed_weight(cfg):
    layer, x = _conv(cfg, cp=True), _input(cfg)
    y_cp = layer.forward(x)[0]
    y_full = layer.to_full().forward(x)[0]
    assert relative_error(y_cp, y_full) <= 1e-12


@given(conv_configs())
def test_cp_chain_rule_from_weight_gradient(cfg):
    """dL/dp[o,r,i] = sum_jk G[o,i,j,k] q[o,r,j] t[o,r,k], and likewise for q and t."""
    layer, x = _conv(cfg, cp=True), _input(cfg)
    y, cache = layer.forward(x)
    dy = normal_array(cfg["seed"] + 3, y.shape)
    _, grads = layer.backward(dy, cache)
    g = layer.weight_grad(dy, cache)
    p, q, t = layer.p, layer.q, layer.t
    assert relative_error(grads["p"], np.einsum("oijk,orj,ork->ori", g, q, t)) <= 1e-12
    assert relative_error(grads["q"], np.einsum("oijk,ori,ork->orj", g, p, t)) <= 1e-12
    assert relative_error(grads["t"], np.einsum("oijk,ori,orj->ork", g, p, q)) <= 1e-12
    # G itself is the gradient of the equivalent full convolution
    full = layer.to_full()
    _, full_grads = full.backward(dy, full.forward(x)[1])
    assert relative_error(g, full_grads["weight"]) <= 1e-12


@given(seeds(), st.integers(1, 5), st.integers(1, 6))
def test_dense_gradients(seed, n_in, n_out):
    layer = Dense(n_in, n_out).initialize(seed)
    layer.bias[...] = normal_array(seed, (n_out,))
    check_layer_grads(layer, normal_array(seed + 1, (3, n_in)), seed=seed)


@given(seeds())
def test_relu_gradients(seed):
    x = normal_array(seed, (2, 3, 4, 4))
    assume(np.min(np.abs(x)) > 1e-3)
    check_layer_grads(ReLU(), x, seed=seed)


@given(seeds(), st.integers(1, 3), st.integers(1, 3))
def test_maxpool_gradients(seed, k, stride):
    x = normal_array(seed, (2, 2, 6, 7))
    # distinct values per window: no ties within the finite-difference step
    assume(np.min(np.diff(np.sort(x.ravel()))) > 1e-4)
    check_layer_grads(MaxPool2d(k, stride), x, seed=seed)


@given(seeds(), st.integers(1, 3), st.integers(1, 3))
def test_avgpool_gradients(seed, k, stride):
    check_layer_grads(AvgPool2d(k, stride), normal_array(seed, (2, 2, 6, 5)), seed=seed)


@given(seeds())
def test_global_avg_pool_and_flatten_gradients(seed):
    x = normal_array(seed, (2, 3, 4, 5))
    check_layer_grads(GlobalAvgPool(), x, seed=seed)
    check_layer_grads(Flatten(), x, seed=seed)


def test_flatten_is_c_order():
    x = np.arange(2 * 3 * 4 * 5, dtype=float).reshape(2, 3, 4, 5)
    assert np.array_equal(Flatten().forward(x)[0], x.reshape(2, 60))


def test_maxpool_known_values():
    x = np.array([[[[1.0, 2.0, 0.0, 0.0], [3.0, -1.0, 5.0, 4.0]]]])
    y, cache = MaxPool2d(2).forward(x)
    assert np.array_equal(y, [[[[3.0, 5.0]]]])
    dx, _ = MaxPool2d(2).backward(np.ones_like(y), cache)
    assert np.array_equal(dx, [[[[0, 0, 0, 0], [1, 0, 1, 0]]]])


def _maxpool_reference(x, k, stride, relu):
    """Max pooling by plain loops: the maximum of each window and the position of its first maximum in row
    order (with ``relu``: max(maximum, 0), and no position where the maximum is not positive)."""
    n, c, h, w = x.shape
    ho, wo = (h - k) // stride + 1, (w - k) // stride + 1
    y = np.empty((n, c, ho, wo), x.dtype)
    at = {}
    for i in range(n):
        for ch in range(c):
            for a in range(ho):
                for b in range(wo):
                    window = x[i, ch, a * stride:a * stride + k, b * stride:b * stride + k]
                    j, l = np.unravel_index(np.argmax(window), window.shape)  # argmax: the first maximum
                    best = window[j, l]
                    y[i, ch, a, b] = max(best, 0) if relu else best
                    if best > 0 or not relu:
                        at[i, ch, a, b] = (a * stride + j, b * stride + l)
    return y, at


@settings(max_examples=60)
@given(seeds(), st.integers(1, 3), st.integers(1, 3), st.integers(1, 3), st.integers(1, 3),
       st.integers(0, 7), st.integers(0, 7), st.booleans(), st.sampled_from([np.float64, np.float32]))
def test_maxpool_equals_loops_with_ties(seed, n, c, k, stride, dh, dw, relu, dtype):
    """Values, first-maximum positions and gradients of max pooling (and of ReLU fused with it) against plain
    loops, on small integers: many ties, zeros and negative windows."""
    from genbound.nn.layers import fused_plan

    x = np.random.default_rng(seed).integers(-2, 3, size=(n, c, k + dh, k + dw)).astype(dtype)
    pool = MaxPool2d(k, stride)
    unit = fused_plan([ReLU(), pool])[0][1] if relu else pool
    y, cache = unit.forward(x)
    ref_y, at = _maxpool_reference(x, k, stride, relu)
    assert np.array_equal(y, ref_y)
    dy = np.random.default_rng(seed + 1).normal(size=y.shape).astype(dtype)
    ref_dx = np.zeros_like(x)
    for (i, ch, a, b), (hi, wi) in at.items():
        ref_dx[i, ch, hi, wi] += dy[i, ch, a, b]
    dx = unit.backward(dy, cache)[0]
    assert np.allclose(dx, ref_dx, rtol=1e-6, atol=0) and np.array_equal(dx != 0, ref_dx != 0)
    if stride >= k:  # no window shares a position: each entry is one dy, exactly
        assert np.array_equal(dx, ref_dx)
    rx = np.random.default_rng(seed + 2).normal(size=x.shape).astype(dtype)
    ref_ry = np.zeros_like(y)
    for (i, ch, a, b), (hi, wi) in at.items():
        ref_ry[i, ch, a, b] = rx[i, ch, hi, wi]
    assert np.array_equal(unit.jvp(rx, {}, cache)[0], ref_ry)  # the tangent reads the same positions


# ----- tangent rules (R-operator) against finite differences of the primal rules -------------------------
# check_layer_tangents draws tangents for the input, every parameter and the incoming gradient at once and
# compares jvp (ry) and backward_jvp (rdx, every rgrads) with central differences of forward and backward.

TANGENT_RTOL = 1e-7


def _tangents(layer, x, seed):
    errors = check_layer_tangents(layer, x, seed, rtol=TANGENT_RTOL)
    assert set(errors) == {"ry", "rdx", *(f"rgrads[{k}]" for k in layer.param_shapes())}
    assert max(errors.values()) <= TANGENT_RTOL  # no rounding allowance: the plain norm-wise relative error


@given(conv_configs())
def test_conv_tangent_rules(cfg):
    _tangents(_conv(cfg, cp=False), _input(cfg), cfg["seed"])


@given(conv_configs())
def test_cpconv_tangent_rules(cfg):
    _tangents(_conv(cfg, cp=True), _input(cfg), cfg["seed"])


@given(conv_configs(), st.sampled_from([np.float64, np.float32]), st.booleans())
def test_cp_backward_with_jvp_is_backward_and_backward_jvp(cfg, dtype, need_dx):
    """One kernel pass (dx and the tangent pass together) gives the bits of the two rules called apart."""
    layer = _conv(cfg, cp=True)
    layer.bind({k: v.astype(dtype) for k, v in layer.params.items()})
    x = _input(cfg).astype(dtype)
    y, cache = layer.forward(x)
    rng = np.random.default_rng(cfg["seed"])
    tparams = {k: rng.normal(size=v.shape).astype(dtype) for k, v in layer.params.items()}
    _, tcache = layer.jvp(rng.normal(size=x.shape).astype(dtype), tparams, cache)
    dy, rdy = rng.normal(size=y.shape).astype(dtype), rng.normal(size=y.shape).astype(dtype)
    dx, rdx, rgrads = layer.backward_with_jvp(dy, rdy, cache, tcache, tparams, need_dx=need_dx)
    ref_dx = layer.backward(dy, cache, need_dx=True)[0].copy() if need_dx else None
    ref_rdx, ref_rgrads = layer.backward_jvp(dy, rdy, cache, tcache, tparams, need_dx=need_dx)
    if need_dx:
        assert np.array_equal(dx, ref_dx) and np.array_equal(rdx, ref_rdx)
    else:
        assert dx is None and rdx is None and ref_rdx is None
    assert all(np.array_equal(rgrads[k], ref_rgrads[k]) for k in ref_rgrads)


@given(conv_configs(), st.sampled_from([np.float64, np.float32]), st.booleans())
def test_cp_forward_with_jvp_is_forward_and_jvp(cfg, dtype, input_tangent):
    """One kernel pass (the output and its tangent together) gives the bits of the two rules called apart."""
    layer = _conv(cfg, cp=True)
    layer.bind({k: v.astype(dtype) for k, v in layer.params.items()})
    x = _input(cfg).astype(dtype)
    rng = np.random.default_rng(cfg["seed"])
    tparams = {k: rng.normal(size=v.shape).astype(dtype) for k, v in layer.params.items()}
    rx = rng.normal(size=x.shape).astype(dtype) if input_tangent else None
    y, cache, ry, tcache = layer.forward_with_jvp(x, rx, tparams)
    y, ry = y.copy(), ry.copy()
    ref_y, ref_cache = layer.forward(x)
    ref_ry = layer.jvp(rx, tparams, ref_cache)[0]
    assert np.array_equal(y, ref_y) and np.array_equal(ry, ref_ry)
    assert cache.keys() == ref_cache.keys() and np.array_equal(cache["x"], ref_cache["x"])
    assert (tcache["rx"] is None) == (rx is None)


def test_backward_with_jvp_keeps_a_subclass_rules():
    """A subclass's own backward_jvp is what a Hessian-vector product uses, not the fused pass."""
    class Halved(CPConv2d):
        def backward_jvp(self, dy, rdy, cache, tcache, tparams, need_dx=True):
            rdx, rgrads = super().backward_jvp(dy, rdy, cache, tcache, tparams, need_dx)
            return rdx / 2, rgrads

    layer = Halved(2, 3, 3, rank=1, padding=1).initialize(0)
    x = normal_array(1, (2, 2, 5, 5))
    y, cache = layer.forward(x)
    tparams = {k: normal_array(2, v.shape) for k, v in layer.params.items()}
    _, tcache = layer.jvp(normal_array(3, x.shape), tparams, cache)
    dy, rdy = normal_array(4, y.shape), normal_array(5, y.shape)
    rdx = layer.backward_with_jvp(dy, rdy, cache, tcache, tparams)[1]
    assert np.array_equal(rdx, CPConv2d.backward_jvp(layer, dy, rdy, cache, tcache, tparams)[0] / 2)


def test_forward_with_jvp_keeps_a_subclass_rules():
    class Doubled(CPConv2d):
        def jvp(self, rx, tparams, cache):
            ry, tcache = super().jvp(rx, tparams, cache)
            return 2 * ry, tcache

    layer = Doubled(2, 3, 3, rank=1, padding=1).initialize(0)
    x = normal_array(1, (2, 2, 5, 5))
    tparams = {k: normal_array(2, v.shape) for k, v in layer.params.items()}
    y, cache, ry, _ = layer.forward_with_jvp(x, None, tparams)
    assert np.array_equal(ry, 2 * CPConv2d.jvp(layer, None, tparams, cache)[0])


@settings(max_examples=10)
@given(seeds())
def test_other_layers_tangent_rules(seed):
    _tangents(Dense(4, 3).initialize(seed), normal_array(seed, (2, 4)), seed)
    x = normal_array(seed, (2, 2, 4, 4))
    assume(np.min(np.abs(x)) > 1e-3 and np.min(np.diff(np.sort(x.ravel()))) > 1e-4)
    for layer in (ReLU(), MaxPool2d(2), AvgPool2d(2), GlobalAvgPool(), Flatten()):
        _tangents(layer, x, seed)


# ----- every layer, full and CP, both dtypes: check_grads along random directions, to second order --------

def _every_layer():
    yield "Conv2d", Conv2d(2, 3, 3, stride=1, padding=1), (2, 2, 5, 5)
    yield "Conv2d-strided", Conv2d(2, 2, 2, stride=2, padding=0), (2, 2, 5, 4)
    yield "CPConv2d-rank1", CPConv2d(2, 3, 3, rank=1, padding=1), (2, 2, 5, 5)
    yield "CPConv2d-rank2-strided", CPConv2d(3, 2, 3, rank=2, stride=2, padding=1), (2, 3, 5, 6)
    yield "Dense", Dense(5, 3), (3, 5)
    yield "ReLU", ReLU(), (2, 2, 4, 4)
    yield "MaxPool2d", MaxPool2d(2), (2, 2, 4, 4)
    yield "MaxPool2d-overlapping", MaxPool2d(3, stride=2), (2, 2, 5, 5)
    yield "AvgPool2d", AvgPool2d(2, stride=1), (2, 2, 4, 4)
    yield "GlobalAvgPool", GlobalAvgPool(), (2, 3, 4, 5)
    yield "Flatten", Flatten(), (2, 3, 4, 5)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("name, layer, shape", list(_every_layer()), ids=[c[0] for c in _every_layer()])
def test_check_grads_every_layer(name, layer, shape, dtype):
    if layer.param_shapes():
        layer.initialize(7, dtype=dtype)
        for value in layer.params.values():  # nonzero biases too
            value += normal_array(8, value.shape, 0.1, dtype)
    x = normal_array(9, shape, dtype=dtype)  # generic: no ReLU kink or max-pool tie within the step
    errors = check_grads(layer, x, modes=("rev", "fwd"), order=2, seed=1)
    assert {k[1] for k in errors} == {"x", *layer.param_shapes()}
    if dtype == np.float32:
        assert any(k[-1] == "float64" for k in errors)  # held to the float64 rule


def test_numerical_gradient_of_known_function():
    x = np.array([1.0, -2.0, 0.5])
    g = numerical_gradient(lambda: float(np.sum(x**3)), x)
    assert relative_error(g, 3 * x**2) <= 1e-9


def test_check_layer_grads_detects_a_wrong_backward():
    class Broken(Dense):
        def backward(self, dy, cache, need_dx=True):
            dx, grads = super().backward(dy, cache, need_dx)
            grads["weight"] = grads["weight"] * 1.001
            return dx, grads

    with pytest.raises(AssertionError, match="weight"):
        check_layer_grads(Broken(3, 2).initialize(0), normal_array(0, (2, 3)))
