"""Sequential runs a CP convolution, its ReLU and a 2x2 max pool as one unit, and a ReLU with the pool after
it as one unit (genbound.nn.layers.fused_plan): the fused units compute what the per-layer rules compute, for
the loss, the gradient and the Hessian-vector product."""
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import genbound as gb
from genbound.nn import AvgPool2d, Conv2d, CPConv2d, Dense, Flatten, GlobalAvgPool, MaxPool2d, ReLU, Sequential
from genbound.nn.layers import fused_plan
from genbound.nn.loss import softmax_cross_entropy, softmax_cross_entropy_jvp
from genbound.testing import check_layer_grads, check_layer_tangents
from genbound.testing.strategies import conv_configs, normal_array, small_cnns


def per_layer(model, x, y, v):
    """Loss, gradient and HVP by the per-layer rules, one layer at a time (no fusion)."""
    tparams_all = model.unflatten(v)
    acts, rx, caches, tcaches, tps = model.check_x(x), None, [], [], []
    for i, layer in enumerate(model.layers):
        tp = {name: tparams_all[f"{i}.{name}"] for name in layer.param_shapes()}
        new, cache = layer.forward(acts)
        rx, tcache = layer.jvp(rx, tp, cache)
        acts = new
        caches.append(cache), tcaches.append(tcache), tps.append(tp)
    loss, dy, probs = softmax_cross_entropy(acts, y)
    rdy = softmax_cross_entropy_jvp(probs, rx)
    grads, hv = {}, {}
    for i in range(len(model.layers) - 1, -1, -1):
        layer = model.layers[i]
        new_dy, g = layer.backward(dy, caches[i], need_dx=i > 0)
        rdy, rg = layer.backward_jvp(dy, rdy, caches[i], tcaches[i], tps[i], need_dx=i > 0)
        dy = new_dy
        grads.update({f"{i}.{k}": a for k, a in g.items()})
        hv.update({f"{i}.{k}": a for k, a in rg.items()})
    return loss, model.flatten(grads), model.flatten(hv)


@settings(max_examples=25, deadline=None)
@given(model=small_cnns(), seed=st.integers(0, 2**16), dtype=st.sampled_from([np.float64, np.float32]))
def test_fused_model_equals_the_per_layer_rules(model, seed, dtype):
    if dtype is np.float32:
        model = Sequential(model.layers, seed=model.seed or 0, dtype=np.float32, input_shape=model.input_shape)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(5, *model.input_shape))
    y = rng.integers(0, model.classes, 5)
    v = rng.normal(size=model.n_params)
    loss, grad = model.loss_and_grad(x, y, flat=True)
    hv = model.hvp(x, y, v)
    ref_loss, ref_grad, ref_hv = per_layer(model, x, y, v)
    tol = 1e-12 if dtype is np.float64 else 1e-5
    assert abs(loss - ref_loss) <= tol * max(1.0, abs(ref_loss))
    for got, ref in ((grad, ref_grad), (hv, ref_hv)):
        assert np.max(np.abs(got - ref)) <= tol * max(1.0, np.max(np.abs(ref)))


def test_plan_fuses_a_relu_with_the_pool_after_it_only():
    layers = [Conv2d(1, 2, 3, padding=1), ReLU(), MaxPool2d(2), ReLU(), AvgPool2d(2), Conv2d(2, 2, 1), ReLU(),
              GlobalAvgPool(), ReLU(), Dense(2, 3)]
    plan = [(indices, type(unit).__name__) for indices, unit in fused_plan(layers)]
    assert plan == [((0,), "Conv2d"), ((1, 2), "_ReLUMaxPool"), ((3,), "ReLU"), ((4,), "AvgPool2d"),
                    ((5,), "Conv2d"), ((6, 7), "_ReLUGlobalAvgPool"), ((8,), "ReLU"), ((9,), "Dense")]
    model = Sequential(layers, seed=0, input_shape=(1, 8, 8))
    x = normal_array(0, (3, 1, 8, 8))
    logits, caches = model.forward_with_caches(x)
    assert caches[1] is None and caches[6] is None and caches[3] is not None
    np.testing.assert_allclose(logits, per_layer_logits(model, x), rtol=1e-13, atol=1e-15)


def test_plan_fuses_a_cp_convolution_with_a_2x2_max_pool_after_it():
    class Own(CPConv2d):  # a subclass may have rules of its own: never fused
        pass

    layers = [CPConv2d(1, 2, 3, padding=1), ReLU(), MaxPool2d(2), CPConv2d(2, 2, 3, padding=1), MaxPool2d(2),
              CPConv2d(2, 2, 1), ReLU(), MaxPool2d(2, stride=1), Own(2, 2, 1), ReLU(), MaxPool2d(2), Flatten(),
              Dense(8, 3)]
    plan = [(indices, type(unit).__name__) for indices, unit in fused_plan(layers)]
    assert plan == [((0, 1, 2), "_CPConvMaxPool"), ((3, 4), "_CPConvMaxPool"), ((5,), "CPConv2d"),
                    ((6, 7), "_ReLUMaxPool"), ((8,), "Own"), ((9, 10), "_ReLUMaxPool"), ((11,), "Flatten"),
                    ((12,), "Dense")]
    assert [unit.relu for _, unit in fused_plan(layers)[:2]] == [True, False]
    model = Sequential(layers, seed=0, input_shape=(1, 20, 20))  # 20 -> 10 -> 5 (an odd plane) -> 4 -> 2
    x = normal_array(0, (3, 1, 20, 20))
    logits, caches = model.forward_with_caches(x)
    assert caches[0] is None and caches[1] is None and "idx" in caches[2] and caches[3] is None
    assert np.array_equal(logits, per_layer_logits(model, x))


def per_layer_logits(model, x):
    for layer in model.layers:
        x = layer.forward(x)[0]
    return x


@pytest.mark.parametrize("relu_first", [True, False])
def test_fused_units_pass_the_layer_checks(relu_first):
    """The fused units on their own, against central differences of their forward and backward."""
    for pool in (MaxPool2d(2), GlobalAvgPool()):
        unit = fused_plan([ReLU(), pool])[0][1] if relu_first else pool
        x = normal_array(3, (2, 3, 4, 4))
        check_layer_grads(unit, x, seed=1)
        check_layer_tangents(unit, x, seed=2)


def test_windows_without_a_positive_value_pass_nothing():
    unit = fused_plan([ReLU(), MaxPool2d(2)])[0][1]
    x = -np.abs(normal_array(4, (1, 1, 4, 4)))
    x[0, 0, 0, 1] = 2.0  # one positive window
    y, cache = unit.forward(x)
    assert np.array_equal(y, [[[[2.0, 0.0], [0.0, 0.0]]]])
    dx, _ = unit.backward(np.ones_like(y), cache)
    expected = np.zeros_like(x)
    expected[0, 0, 0, 1] = 1.0
    assert np.array_equal(dx, expected)
    x[0, 0, 2:, 2:] = 0.0  # a window whose maximum is 0: ReLU's derivative there is 0
    y, cache = unit.forward(x)
    assert unit.backward(np.ones_like(y), cache)[0][0, 0, 2:, 2:].sum() == 0


def test_reference_nets_fuse_every_relu():
    for name in gb.nn.REFERENCE_NETWORKS:
        for rank in (None, 1):
            plan = fused_plan(gb.nn.reference_cnn(name, rank=rank).layers)
            assert not any(type(unit) is ReLU for _, unit in plan), (name, rank)
            pooled_convs = 2 if name in ("digits", "mnist") else 1
            assert sum(len(indices) == 3 for indices, _ in plan) == (pooled_convs if rank else 0), (name, rank)


# --------------------------------------------------------------------------------------------------------
# CP convolution + ReLU + max pool: the unit's rules against the three layers' rules, bit for bit
# --------------------------------------------------------------------------------------------------------

def _cp_relu_pool(cfg, relu, dtype):
    conv = CPConv2d(cfg["in_channels"], cfg["out_channels"], cfg["kernel_size"], rank=cfg["rank"],
                    stride=cfg["stride"], padding=cfg["padding"]).initialize(cfg["seed"], dtype)
    for value in conv.params.values():  # nonzero biases: some windows positive, some not
        value += normal_array(cfg["seed"] + 2, value.shape, 0.3, dtype)
    layers = [conv, ReLU(), MaxPool2d(2)] if relu else [conv, MaxPool2d(2)]
    plan = fused_plan(layers)
    assert len(plan) == 1
    return layers, plan[0][1]


def _chain(layers, x, rx, tparams, dy, rdy, need_dx):
    """Output, tangent, input gradient, parameter gradients and their tangents by the layers' own rules."""
    caches, tcaches, y, ry = [], [], x, rx
    for k, layer in enumerate(layers):
        tp = tparams if k == 0 else {}
        y, cache = layer.forward(y)
        ry, tcache = layer.jvp(ry, tp, cache)
        caches.append(cache), tcaches.append(tcache)
    out = {"y": y.copy(), "ry": ry.copy()}
    for k in range(len(layers) - 1, -1, -1):
        tp = tparams if k == 0 else {}
        want_dx = need_dx or k > 0
        rdy, rgrads = layers[k].backward_jvp(dy, rdy, caches[k], tcaches[k], tp, need_dx=want_dx)
        dy, grads = layers[k].backward(dy, caches[k], need_dx=want_dx)
    out.update(dx=dy, rdx=rdy, grads=grads, rgrads=rgrads)
    return out


def _same(a, b):
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    return np.array_equal(a, b)


@settings(max_examples=60, deadline=None)
@given(cfg=conv_configs(max_size=11, max_batch=40), relu=st.booleans(),
       dtype=st.sampled_from([np.float64, np.float32]), need_dx=st.booleans(), input_tangent=st.booleans())
def test_cp_conv_relu_pool_unit_equals_the_layers_rules(cfg, relu, dtype, need_dx, input_tangent):
    """Every rule of the fused unit, and its one-pass forms, give the bits of the layers' rules in turn, over
    odd and even planes (the pool drops an odd last row and column), both kernel forms (3 taps, stride 1,
    padding 1, which stacks images, and the general one), several image groups and batch chunks."""
    h = (cfg["height"] + 2 * cfg["padding"] - cfg["kernel_size"]) // cfg["stride"] + 1
    w = (cfg["width"] + 2 * cfg["padding"] - cfg["kernel_size"]) // cfg["stride"] + 1
    assume(h >= 2 and w >= 2)
    layers, unit = _cp_relu_pool(cfg, relu, dtype)
    rng = np.random.default_rng(cfg["seed"])
    x = rng.normal(size=(cfg["batch"], cfg["in_channels"], cfg["height"], cfg["width"])).astype(dtype)
    rx = rng.normal(size=x.shape).astype(dtype) if input_tangent else None
    tparams = {k: rng.normal(size=v.shape).astype(dtype) for k, v in unit.params.items()}
    out_shape = (cfg["batch"], cfg["out_channels"], h // 2, w // 2)
    assert unit.output_shape(x.shape[1:]) == out_shape[1:]
    dy, rdy = rng.normal(size=out_shape).astype(dtype), rng.normal(size=out_shape).astype(dtype)
    ref = _chain(layers, x, rx, tparams, dy, rdy, need_dx)

    y, cache = unit.forward(x)
    assert y.shape == out_shape and _same(y, ref["y"])
    ry, tcache = unit.jvp(rx, tparams, cache)
    assert _same(ry, ref["ry"])
    dx, grads = unit.backward(dy, cache, need_dx=need_dx)
    assert _same(dx, ref["dx"] if need_dx else None) and _same(grads, ref["grads"])
    rdx, rgrads = unit.backward_jvp(dy, rdy, cache, tcache, tparams, need_dx=need_dx)
    assert _same(rdx, ref["rdx"] if need_dx else None) and _same(rgrads, ref["rgrads"])

    y, cache, ry, tcache = unit.forward_with_jvp(x, rx, tparams)
    assert _same(y, ref["y"]) and _same(ry, ref["ry"])
    dx, rdx, rgrads = unit.backward_with_jvp(dy, rdy, cache, tcache, tparams, need_dx=need_dx)
    assert _same(dx, ref["dx"] if need_dx else None) and _same(rdx, ref["rdx"] if need_dx else None)
    assert _same(rgrads, ref["rgrads"])


@pytest.mark.parametrize("relu", [True, False])
def test_cp_conv_relu_pool_unit_passes_the_layer_checks(relu):
    """The fused unit on its own, against central differences of its forward and backward."""
    cfg = dict(in_channels=2, out_channels=3, kernel_size=3, rank=2, stride=1, padding=1, seed=5)
    _, unit = _cp_relu_pool(cfg, relu, np.float64)
    x = normal_array(3, (2, 2, 6, 7))
    check_layer_grads(unit, x, seed=1)
    check_layer_tangents(unit, x, seed=2)


def test_cp_conv_relu_pool_unit_refuses_what_the_layers_refuse():
    cfg = dict(in_channels=2, out_channels=3, kernel_size=3, rank=1, stride=1, padding=0, seed=0)
    _, unit = _cp_relu_pool(cfg, True, np.float64)
    with pytest.raises(ValueError, match="kernel_size.*MaxPool2d"):  # a 1x1 output has no 2x2 window
        unit.forward(np.ones((1, 2, 3, 3)))
    with pytest.raises(ValueError, match="input channels"):
        unit.forward(np.ones((1, 3, 6, 6)))
    y, cache = unit.forward(np.ones((2, 2, 6, 6)))
    with pytest.raises(ValueError, match="dy: expected shape"):
        unit.backward(np.ones((2, 3, 4, 4)), cache)  # the convolution's shape, not the pooled one


def test_weight_grads_of_a_fused_unit_are_the_convolutions():
    """Sequential.weight_grads through a fused unit: G of the convolution for the gradient that reaches it."""
    model = gb.nn.reference_cnn("digits", rank=2, seed=3)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(20, 1, 8, 8)), rng.integers(0, 10, 20)
    got = model.weight_grads(x, y)
    acts, caches = x, []
    for layer in model.layers:
        acts, cache = layer.forward(acts)
        caches.append(cache)
    _, dy, _ = softmax_cross_entropy(acts, y)
    expected = {}
    for i in range(len(model.layers) - 1, -1, -1):
        if isinstance(model.layers[i], CPConv2d):
            expected[i] = model.layers[i].weight_grad(dy, caches[i])
        dy = model.layers[i].backward(dy, caches[i], need_dx=i > 0)[0]
    assert got.keys() == expected.keys() == {0, 3}
    for i in got:
        np.testing.assert_allclose(got[i], expected[i], rtol=1e-12, atol=1e-15)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**16), relu=st.booleans(), size=st.sampled_from([(4, 4), (5, 7), (8, 8), (9, 6)]),
       batch=st.integers(1, 40))
def test_cp_conv_pool_unit_breaks_ties_as_max_pool_does(seed, relu, size, batch):
    """Ties decide the argmax: a 1x1 CP convolution with unit factors passes small integers through, so most
    windows hold equal maxima; the unit picks the first in row order, as MaxPool2d does (values, gradients
    and tangents equal)."""
    conv = CPConv2d(1, 1, 1).bind({"p": np.ones((1, 1, 1)), "q": np.ones((1, 1, 1)), "t": np.ones((1, 1, 1)),
                                   "bias": np.zeros(1)})
    layers = [conv, ReLU(), MaxPool2d(2)] if relu else [conv, MaxPool2d(2)]
    unit = fused_plan(layers)[0][1]
    rng = np.random.default_rng(seed)
    x = rng.integers(-1, 2, size=(batch, 1, *size)).astype(np.float64)
    rx = rng.integers(-3, 4, size=x.shape).astype(np.float64)
    tparams = {k: np.zeros_like(v) for k, v in conv.params.items()}
    y, cache = unit.forward(x)
    dy = rng.integers(1, 5, size=y.shape).astype(np.float64)
    ref = _chain(layers, x, rx, tparams, dy, dy, need_dx=True)
    assert _same(y, ref["y"]) and _same(unit.jvp(rx, tparams, cache)[0], ref["ry"])
    assert _same(unit.backward(dy, cache)[0], ref["dx"])
