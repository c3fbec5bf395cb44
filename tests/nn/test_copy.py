"""Models survive pickle, copy.copy, copy.deepcopy and model.copy(): the copy's layers view its own parameter
vector (set_flat moves its loss), its workspaces are its own, and it computes what the original computes."""
from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

import genbound as gb

ROUND_TRIPS = {
    "pickle": lambda m: pickle.loads(pickle.dumps(m)),
    "copy.copy": copy.copy,
    "copy.deepcopy": copy.deepcopy,
    "model.copy": lambda m: m.copy(),
}


def _model(rank, dtype):
    return gb.nn.reference_cnn("digits", rank=rank, seed=3, dtype=dtype, width=0.25)


def _batch(dtype, n=6):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 1, 8, 8)).astype(dtype), np.arange(n) % 10


@pytest.mark.parametrize("how", list(ROUND_TRIPS))
@pytest.mark.parametrize("rank", [None, 1])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_round_trip_keeps_a_working_model(how, rank, dtype):
    model = _model(rank, dtype)
    x, y = _batch(dtype)
    loss, grads = model.loss_and_grad(x, y)
    clone = ROUND_TRIPS[how](model)
    # same function, same gradients, bit for bit
    loss2, grads2 = clone.loss_and_grad(x, y)
    assert loss2 == loss
    assert all(np.array_equal(grads[k], grads2[k]) for k in grads)
    assert clone.dtype == model.dtype and clone.seed == model.seed == 3
    # set_flat on the copy moves the copy's loss (its layers view its new buffer) and leaves the original alone
    v = model.get_flat()
    clone.set_flat(1.7 * v)
    assert clone.loss(x, y) != loss
    assert model.loss(x, y) == loss
    assert np.array_equal(model.get_flat(), v)
    for i, layer in enumerate(clone.layers):
        for name in layer.param_shapes():
            assert np.array_equal(layer.params[name], 1.7 * model.layers[i].params[name].astype(dtype))
            assert np.shares_memory(layer.params[name], clone.params[f"{i}.{name}"])
    # the original's set_flat does not reach the copy either
    model.set_flat(0.5 * v)
    assert np.array_equal(clone.get_flat(), (1.7 * v).astype(dtype))
    # the copy computes as a model built with those parameters does
    fresh = _model(rank, dtype)
    fresh.set_flat(clone.get_flat())
    assert clone.loss(x, y) == fresh.loss(x, y)


@pytest.mark.parametrize("how", list(ROUND_TRIPS))
def test_workspaces_are_never_shared_nor_saved(how):
    model = _model(1, np.float64)
    x, y = _batch(np.float64, n=64)
    model.loss_and_grad(x, y)  # fills the workspaces with buffers of this batch
    clone = ROUND_TRIPS[how](model)
    for a, b in zip(model.layers, clone.layers):
        assert a.workspace is not b.workspace
        assert b.workspace._arrays == {}
    # a pickle holds the parameters and the architecture, not the buffers of the last batch
    assert len(pickle.dumps(model)) < model.n_params * 8 + 6000


def test_pickled_copy_keeps_training_and_slicing():
    """The failure that motivated this: a 1-D slice of a round-tripped model must not be a flat line."""
    model = pickle.loads(pickle.dumps(_model(1, np.float64)))
    x, y = _batch(np.float64)
    v = model.get_flat()
    d = np.random.default_rng(1).normal(size=v.size)
    losses = []
    for a in (-1.0, 0.0, 1.0):
        model.set_flat(v + a * d)
        losses.append(model.loss(x, y))
    assert len(set(losses)) == 3


def test_layer_alone_survives_pickle():
    layer = gb.nn.CPConv2d(2, 3, 3, rank=2, padding=1).initialize(seed=1)
    x = np.random.default_rng(2).normal(size=(2, 2, 5, 5))
    y, _ = layer.forward(x)
    y = y.copy()
    back = pickle.loads(pickle.dumps(layer))
    assert back.workspace is not layer.workspace
    assert np.array_equal(back.forward(x)[0], y)
    assert back.config() == layer.config() == dict(in_channels=2, out_channels=3, kernel_size=3, rank=2,
                                                   stride=1, padding=1, update="factor")


def test_layer_config_rebuilds_every_layer():
    layers = [gb.nn.Conv2d(1, 2, 3, stride=2, padding=1), gb.nn.CPConv2d(2, 2, 3, rank=3, update="project"),
              gb.nn.ReLU(), gb.nn.MaxPool2d(2, stride=1), gb.nn.AvgPool2d(3), gb.nn.GlobalAvgPool(),
              gb.nn.Flatten(), gb.nn.Dense(4, 5)]
    for layer in layers:
        rebuilt = type(layer)(**layer.config())
        assert repr(rebuilt) == repr(layer)
        assert rebuilt.param_shapes() == layer.param_shapes()
        assert rebuilt.__dict__.keys() - {"workspace", "params"} == layer.__dict__.keys() - {"workspace", "params"}
        assert all(getattr(rebuilt, k) == getattr(layer, k) for k in layer.config())
