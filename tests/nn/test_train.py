"""Training on real digits: accuracy floors, history table, resumable checkpoints, optimizer rules."""
import numpy as np
import pandas as pd
import pytest

import genbound as gb
from genbound.nn.train import HISTORY_COLUMNS


@pytest.fixture(scope="module")
def digits():
    return gb.data.load_digits(seed=0)


@pytest.mark.parametrize("rank,floor", [(1, 0.90), (None, 0.95)])
def test_digits_reference_cnn_reaches_accuracy(digits, rank, floor):
    model = gb.nn.reference_cnn("digits", rank=rank, seed=0)
    hist = gb.train(model, digits, epochs=30, batch_size=64, optimizer=gb.nn.SGD(lr=0.05), seed=0, progress=False)
    assert list(hist.columns) == HISTORY_COLUMNS
    assert len(hist) == 31 and hist["step"].iloc[-1] == 30 * 23
    assert 1 - hist["test_error"].iloc[-1] >= floor
    # the table is computed, not copied: recompute the last row independently
    loss, err = model.evaluate(digits.x_test, digits.y_test)
    assert hist["test_error"].iloc[-1] == err and hist["test_loss"].iloc[-1] == pytest.approx(loss, rel=1e-12)
    assert np.allclose(hist["gap"], hist["test_error"] - hist["train_error"])


def test_sgd_step_is_plain_gradient_step(digits):
    model = gb.nn.reference_cnn("digits", rank=1, seed=0)
    x, y = digits.x_train[:32], digits.y_train[:32]
    w0 = model.get_flat()
    _, g = model.loss_and_grad(x, y)
    gb.nn.SGD(lr=0.1).step(model, g)
    assert np.allclose(model.get_flat(), w0 - 0.1 * model.flatten(g), rtol=0, atol=1e-15)


def test_momentum_and_weight_decay_follow_pytorch_convention():
    opt = gb.nn.SGD(lr=0.1, momentum=0.9, weight_decay=0.01)
    w, g = np.array([1.0, -2.0]), np.array([0.5, 0.5])
    d1 = opt.direction("w", g, w)
    assert np.allclose(d1, g + 0.01 * w)
    d2 = opt.direction("w", g, w)
    assert np.allclose(d2, 0.9 * (g + 0.01 * w) + g + 0.01 * w)


def test_gd_uses_full_batch(digits):
    small = digits.subset(np.arange(100))
    model = gb.nn.reference_cnn("digits", rank=1, seed=0)
    reference = model.copy()
    gb.train(model, small, epochs=2, optimizer=gb.nn.GD(lr=0.1), progress=False)
    for _ in range(2):
        _, g = reference.loss_and_grad(small.x_train, small.y_train)
        gb.nn.SGD(lr=0.1).step(reference, g)
    assert np.array_equal(model.get_flat(), reference.get_flat())


def test_eval_every_adds_rows(digits):
    small = digits.subset(np.arange(200))
    hist = gb.train(gb.nn.reference_cnn("digits", rank=1), small, epochs=1, batch_size=50, eval_every=2,
                    progress=False)
    assert list(hist["step"]) == [0, 2, 4]
    assert hist["epoch"].iloc[1] == pytest.approx(0.5)


def test_same_seed_same_history(digits):
    small = digits.subset(np.arange(300))
    runs = [gb.train(gb.nn.reference_cnn("digits", rank=1, seed=0), small, epochs=2, seed=s, progress=False)
            for s in (3, 3, 4)]
    pd.testing.assert_frame_equal(runs[0], runs[1])
    assert not runs[0].equals(runs[2])


def test_checkpoint_resume_equals_uninterrupted_run(digits, tmp_path):
    small = digits.subset(np.arange(300))
    opt = dict(lr=0.05, momentum=0.9)
    full_model = gb.nn.reference_cnn("digits", rank=1, seed=0)
    full = gb.train(full_model, small, epochs=4, optimizer=gb.nn.SGD(**opt), seed=1, progress=False)
    ckpt = tmp_path / "run.ckpt"
    gb.train(gb.nn.reference_cnn("digits", rank=1, seed=0), small, epochs=2, optimizer=gb.nn.SGD(**opt), seed=1,
             progress=False, checkpoint=ckpt)
    # a new process would build a fresh model and optimizer: the checkpoint restores them
    resumed_model = gb.nn.reference_cnn("digits", rank=1, seed=5)
    resumed = gb.train(resumed_model, small, epochs=4, optimizer=gb.nn.SGD(**opt), seed=1, progress=False,
                       checkpoint=ckpt)
    pd.testing.assert_frame_equal(full, resumed)
    assert np.array_equal(full_model.get_flat(), resumed_model.get_flat())


@pytest.mark.parametrize("kwargs,match", [
    (dict(batch_size=0), "batch_size: expected an int >= 1, got 0"),
    (dict(batch_size=-3), "batch_size: expected an int >= 1"),
    (dict(epochs=0), "epochs: expected an int >= 1"),
    (dict(optimizer="sgd"), "optimizer: expected an optimizer"),
    (dict(chunk_size=0), "chunk_size: expected an int >= 1, got 0"),
])
def test_train_bad_arguments(digits, kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        gb.train(gb.nn.reference_cnn("digits", rank=1), digits, progress=False, **kwargs)


def test_train_rejects_non_dataset():
    with pytest.raises(TypeError, match="data: expected a genbound.data.Dataset"):
        gb.train(gb.nn.reference_cnn("digits", rank=1), (np.zeros((2, 1, 8, 8)), [0, 1]), progress=False)


def test_evaluation_chunks_do_not_change_the_history(digits):
    small = digits.subset(np.arange(200))
    runs = [gb.train(gb.nn.reference_cnn("digits", rank=1, seed=2), small, epochs=1, batch_size=50, seed=0,
                     progress=False, chunk_size=chunk) for chunk in (7, 1024)]
    pd.testing.assert_frame_equal(runs[0], runs[1], rtol=1e-12)
