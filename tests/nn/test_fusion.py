"""Sequential runs a ReLU and the pool after it as one unit (genbound.nn.layers.fused_plan): the fused units
compute what the per-layer rules compute, for the loss, the gradient and the Hessian-vector product."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import genbound as gb
from genbound.nn import AvgPool2d, Conv2d, Dense, Flatten, GlobalAvgPool, MaxPool2d, ReLU, Sequential
from genbound.nn.layers import fused_plan
from genbound.nn.loss import softmax_cross_entropy, softmax_cross_entropy_jvp
from genbound.testing import check_layer_grads, check_layer_tangents
from genbound.testing.strategies import normal_array, small_cnns


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
        plan = fused_plan(gb.nn.reference_cnn(name, rank=1).layers)
        assert not any(type(unit) is ReLU for _, unit in plan), name
        assert sum(len(indices) == 2 for indices, _ in plan) == 2, name
