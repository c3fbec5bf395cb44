"""test_my_layers.py: a user's own test file, built on genbound.testing.

It checks two layers written for a project (their backward, tangent and second-order rules), a network that
uses them, a learning-rate sweep over the factored update of Eq. 2-3, and a bound of the project's own.
"""
import math

import numpy as np
import pytest
from hypothesis import assume, given, settings

import genbound as gb
from genbound.testing import (activation_margin, assert_bound_valid, assert_hvp_symmetric,
                              assert_update_equivalence, check_grads, check_layer_tangents)
from genbound.testing.strategies import bound_arguments, cp_steps, datasets, normal_array, small_cnns


class LeakyReLU(gb.nn.Layer):
    """y = max(x, slope * x), with the four rules of a genbound layer."""

    def __init__(self, slope=0.1):
        super().__init__()
        self.slope = slope

    def forward(self, x):
        scale = np.where(x > 0, 1.0, self.slope).astype(x.dtype)
        return x * scale, {"scale": scale}

    def backward(self, dy, cache, need_dx=True):
        return dy * cache["scale"], {}

    def jvp(self, rx, tparams, cache):
        return (None if rx is None else rx * cache["scale"]), {}

    def backward_jvp(self, dy, rdy, cache, tcache, tparams, need_dx=True):
        return rdy * cache["scale"], {}


class ChannelScale(gb.nn.Layer):
    """y[n, c] = gain[c] * x[n, c]: one trainable gain per channel."""

    def __init__(self, channels):
        super().__init__()
        self.channels = channels

    def __repr__(self):
        return f"ChannelScale({self.channels})"

    def param_shapes(self):
        return {"gain": (self.channels,)}

    def init_params(self, seed, dtype):
        return {"gain": (1.0 + 0.1 * normal_array(seed, (self.channels,))).astype(dtype)}

    def forward(self, x):
        return x * self.gain[None, :, None, None], {"x": x}

    def backward(self, dy, cache, need_dx=True):
        grads = {"gain": np.sum(dy * cache["x"], axis=(0, 2, 3))}
        return (dy * self.gain[None, :, None, None] if need_dx else None), grads

    def jvp(self, rx, tparams, cache):
        ry = cache["x"] * tparams["gain"][None, :, None, None]
        if rx is not None:
            ry = ry + rx * self.gain[None, :, None, None]
        return ry, {"rx": rx}

    def backward_jvp(self, dy, rdy, cache, tcache, tparams, need_dx=True):
        rx = tcache["rx"] if tcache["rx"] is not None else np.zeros_like(cache["x"])
        rgrads = {"gain": np.sum(rdy * cache["x"] + dy * rx, axis=(0, 2, 3))}
        rdx = rdy * self.gain[None, :, None, None] + dy * tparams["gain"][None, :, None, None]
        return (rdx if need_dx else None), rgrads


def my_network(seed=0, dtype=np.float64):
    layers = [gb.nn.CPConv2d(1, 4, 3, rank=1, padding=1), ChannelScale(4), LeakyReLU(), gb.nn.GlobalAvgPool(),
              gb.nn.Dense(4, 4)]
    return gb.nn.Sequential(layers, seed=seed, dtype=dtype, input_shape=(1, 6, 6))


def my_bound(emp_error, kl, m, delta):
    """McAllester's bound, clipped to [0, 1]."""
    return min(1.0, emp_error + math.sqrt((kl + math.log(2 * math.sqrt(m) / delta)) / (2 * m)))


# --- the layers' rules: backward ("rev"), tangent ("fwd") and second order, in float64 and float32 ---------

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("make", [LeakyReLU, lambda: ChannelScale(3)])
def test_layer_rules(make, dtype):
    layer = make()
    if layer.param_shapes():
        layer.initialize(seed=0, dtype=dtype)
    x = normal_array(1, (2, 3, 4, 4), dtype=dtype)
    check_grads(layer, x, modes=("rev", "fwd"), order=2)
    check_layer_tangents(layer, x)


# --- the network: gradients, R-operator and Hessian-vector products; a symmetric Hessian ------------------

@settings(max_examples=5, deadline=None)
@given(datasets(max_train=8, corrupted=None))
def test_network_derivatives(data):
    model = my_network()
    check_grads(model, data, order=2)
    assert_hvp_symmetric(model, data)


@settings(max_examples=5, deadline=None)
@given(small_cnns(filters="cp", dtype=np.float32))
def test_float32_networks_follow_the_float64_rule(model):
    x = normal_array(0, (3, 1, 6, 6))
    assume(activation_margin(model, x) > 1e-4)  # finite differences need a point off ReLU kinks and max-pool ties
    check_grads(model, (x, [0, 1, 2]), modes=("rev",))


# --- Eq. 2-3: a factored SGD step moves the filter by -lr * delta, at every rank, order and lr -------------

@given(cp_steps(max_lr=0.5))
def test_factored_step(step):
    factors, grads, lr = step
    assert_update_equivalence(factors=factors, grads=grads, lr=lr)


# --- my bound: a valid bound, and never below the kl form it relaxes -----------------------------------

def test_my_bound_is_a_bound():
    assert_bound_valid(my_bound, clipped=True)


@given(bound_arguments(min_m=8))
def test_my_bound_relaxes_the_kl_form(args):
    kl_form = gb.bounds.langford_seeger_bound(args.emp_error, args.kl, args.m, args.delta)
    assert my_bound(args.emp_error, args.kl, args.m, args.delta) >= kl_form - 1e-12
