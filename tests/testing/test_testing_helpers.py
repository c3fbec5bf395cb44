"""genbound.testing: the strategies draw valid objects and the checks catch wrong derivatives."""
import numpy as np
import pytest
from hypothesis import given

import genbound as gb
from genbound.testing import activation_margin, check_hvp, check_model_grads
from genbound.testing.strategies import conv_configs, small_cnns


@given(conv_configs())
def test_conv_configs_fit_the_padded_image(cfg):
    k, p = cfg["kernel_size"], cfg["padding"]
    assert cfg["height"] + 2 * p >= k and cfg["width"] + 2 * p >= k
    layer = gb.nn.Conv2d(cfg["in_channels"], cfg["out_channels"], k, cfg["stride"], p)
    layer.output_shape((cfg["in_channels"], cfg["height"], cfg["width"]))


@given(small_cnns())
def test_small_cnns_produce_logits(model):
    x = np.random.default_rng(0).normal(size=(2, 1, 6, 6))
    assert model.forward(x).shape == (2, 4)


def test_check_model_grads_catches_a_wrong_gradient():
    model = gb.nn.reference_cnn("digits_gap", rank=1, seed=0)
    x = np.random.default_rng(0).normal(size=(2, 1, 8, 8))
    original = model.loss_and_grad

    def wrong(x, y, flat=False, **kw):
        loss, g = original(x, y, flat=flat)
        return loss, g * 1.01

    model.loss_and_grad = wrong
    with pytest.raises(AssertionError, match="gradient check failed"):
        check_model_grads(model, (x, [0, 1]), h=1e-6)


def test_check_hvp_catches_a_wrong_product():
    model = gb.nn.reference_cnn("digits_gap", rank=1, seed=0)
    x = np.random.default_rng(0).normal(size=(2, 1, 8, 8))
    model.hvp = lambda x, y, v: np.zeros_like(v)
    with pytest.raises(AssertionError, match="Hessian-vector product check failed"):
        check_hvp(model, (x, [0, 1]))


def test_activation_margin_is_zero_on_a_kink():
    model = gb.nn.Sequential([gb.nn.Flatten(), gb.nn.ReLU(), gb.nn.Dense(4, 2)], input_shape=(1, 2, 2))
    assert activation_margin(model, np.array([[[[1.0, 0.0], [2.0, -1.0]]]])) == 0.0
    assert activation_margin(model, np.array([[[[1.0, 0.5], [2.0, -1.0]]]])) == pytest.approx(0.25)
