"""genbound.nn.runtime: workspaces reuse free buffers only, chunking is fixed by the batch size."""
import numpy as np
import pytest

import genbound as gb
from genbound.nn.runtime import BATCH_CHUNKS, REUSE_MIN_BYTES, Workspace, batch_chunks, image_group
from genbound.testing import check_model_grads

BIG = (REUSE_MIN_BYTES // 8,)


def test_workspace_reuses_a_free_buffer():
    ws = Workspace()
    a = ws.empty("y", BIG, np.float64)
    address = a.__array_interface__["data"][0]
    del a
    assert ws.empty("y", BIG, np.float64).__array_interface__["data"][0] == address


def test_workspace_never_hands_out_a_buffer_in_use():
    ws = Workspace()
    a = ws.empty("y", BIG, np.float64)
    view = a[:10]
    del a
    b = ws.empty("y", BIG, np.float64)
    assert not np.shares_memory(view, b)
    assert not np.shares_memory(b, ws.empty("y", BIG, np.float64))


def test_workspace_keys_by_role_shape_and_dtype():
    ws = Workspace()
    a = ws.empty("y", BIG, np.float64)
    for role, shape, dtype in [("dx", BIG, np.float64), ("y", (BIG[0] + 1,), np.float64), ("y", BIG, np.float32)]:
        b = ws.empty(role, shape, dtype)
        assert b.shape == shape and b.dtype == dtype and not np.shares_memory(a, b)
    small = ws.empty("tiny", (3,), np.float64)
    assert ws.empty("tiny", (3,), np.float64) is not small


@pytest.mark.parametrize("layer, shape", [
    (gb.nn.Conv2d(2, 3, 3, padding=1), (20, 2, 32, 32)),
    (gb.nn.CPConv2d(2, 3, 3, rank=1, padding=1), (20, 2, 32, 32)),
    (gb.nn.ReLU(), (20, 2, 64, 64)),
    (gb.nn.MaxPool2d(2), (20, 2, 64, 64)),
])
def test_outputs_a_caller_keeps_are_not_overwritten(layer, shape):
    layer.initialize(seed=0)
    rng = np.random.default_rng(0)
    x1, x2 = rng.normal(size=shape), rng.normal(size=shape)
    y1, cache1 = layer.forward(x1)
    kept, dy = y1.copy(), rng.normal(size=y1.shape)
    dx1 = layer.backward(dy, cache1)[0].copy()
    y2, cache2 = layer.forward(x2)
    layer.backward(dy, cache2)
    assert np.array_equal(y1, kept) and not np.shares_memory(y1, y2)
    assert np.array_equal(layer.backward(dy, cache1)[0], dx1)
    del y1, y2, cache1, cache2
    y3 = layer.forward(x1)[0]
    assert np.array_equal(y3, kept)


def test_a_layer_used_twice_in_a_model():
    relu = gb.nn.ReLU()
    model = gb.nn.Sequential([gb.nn.Conv2d(1, 2, 3, padding=1), relu, gb.nn.Conv2d(2, 2, 3, padding=1), relu,
                              gb.nn.Flatten(), gb.nn.Dense(2 * 6 * 6, 3)], seed=0, input_shape=(1, 6, 6))
    x = np.random.default_rng(1).normal(size=(4, 1, 6, 6))
    check_model_grads(model, (x, [0, 1, 2, 0]))


def test_chunks_and_groups():
    assert [batch_chunks(n) for n in (1, 16, 31, 32, 10_000)] == [1, 1, 1, 2, BATCH_CHUNKS]
    assert image_group(16) == 32 and image_group(784) == 1


@pytest.mark.parametrize("rank", [None, 1])
def test_training_steps_reuse_the_layers_memory(rank):
    model = gb.nn.reference_cnn("mnist", rank=rank, seed=0)
    x = np.random.default_rng(0).normal(size=(64, 1, 28, 28))
    y = np.arange(64) % 10

    def kept():
        return {(i, role): id(a) for i, layer in enumerate(model.layers) for role, a in layer.workspace._arrays.items()}

    model.loss_and_grad(x, y)
    first = kept()
    model.loss_and_grad(x, y)
    assert kept() == first
    if rank is None:
        # conv outputs and input gradients, pooled outputs, argmaxes and pool gradients, the dense layer's
        # input gradient (each ReLU runs fused with its pool and keeps nothing of its own)
        assert len(first) >= 9 and {i for i, _ in first} == {0, 2, 3, 5, 7}
    else:
        # each CP convolution runs fused with its ReLU and pool: its pooled output and argmaxes (those of at
        # least 1 MiB), its input gradient; the pools keep nothing
        assert {(0, "y"), (0, "idx"), (3, "y"), (3, "dx")} <= first.keys()
        assert {i for i, _ in first} == {0, 3, 7}
    assert (7, "dx") in first


def test_threads_running_one_model_get_their_own_buffers():
    from concurrent.futures import ThreadPoolExecutor

    model = gb.nn.reference_cnn("mnist", rank=1, seed=0)
    rng = np.random.default_rng(0)
    batches = [(rng.normal(size=(32, 1, 28, 28)), rng.integers(0, 10, 32)) for _ in range(4)]
    expected = [model.loss_and_grad(x, y, flat=True)[1] for x, y in batches]
    with ThreadPoolExecutor(4) as pool:
        for _ in range(3):
            got = list(pool.map(lambda b: model.loss_and_grad(*b, flat=True)[1], batches))
            assert all(np.array_equal(a, b) for a, b in zip(got, expected))
