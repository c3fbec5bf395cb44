"""Divergence is loud: training stops with DivergenceError (or a ``diverged`` row), the model and the checkpoint
keep the last finite state, and non-finite parameters are refused at the start."""
from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

import genbound as gb


def _data(m=64, n_test=20):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(m + n_test, 1, 8, 8))
    y = (x[:, 0].sum(axis=(1, 2)) > 0).astype(int)
    return gb.data.Dataset(x[:m], y[:m], x[m:], y[m:], classes=10)


def _model():
    return gb.nn.Sequential([gb.nn.CPConv2d(1, 3, 3, rank=1, padding=1), gb.nn.ReLU(), gb.nn.GlobalAvgPool(),
                             gb.nn.Dense(3, 10)], seed=0, input_shape=(1, 8, 8))


class PoisonedSGD(gb.nn.SGD):
    """SGD whose ``poison_at``-th step (0-based) writes an inf into one parameter after stepping."""

    def __init__(self, lr, poison_at):
        super().__init__(lr)
        self.poison_at, self.count = poison_at, 0

    def step(self, model, grads, weight_grads=None):
        super().step(model, grads, weight_grads)
        if self.count == self.poison_at:
            model.params["3.weight"][2, 1] = np.inf
        self.count += 1


class Recorder:
    """A step callback keeping the parameters seen before every step."""

    def __init__(self):
        self.flats = {}

    def __call__(self, model, step, grads, weight_grads):
        self.flats[step] = model.get_flat()


def test_a_non_finite_step_raises_and_restores_the_last_finite_parameters():
    rec = Recorder()
    model = _model()
    with pytest.raises(gb.nn.DivergenceError) as info:
        gb.train(model, _data(), epochs=5, batch_size=16, optimizer=PoisonedSGD(0.05, poison_at=9), seed=0,
                 progress=False, step_callback=rec)
    err = info.value
    # 4 batches an epoch: step 9 is the second batch of epoch 3 (0-based 2), taken from 2 + 1/4
    assert err.step == 9 and err.epoch == pytest.approx(2.25)
    assert "param '3.weight'" in err.reason
    assert np.array_equal(model.get_flat(), rec.flats[9])  # the parameters before the step that diverged
    assert np.all(np.isfinite(model.get_flat()))
    # the last finite loss is that of the diverging step's batch (epoch 2, batch 1) at those parameters
    data, order = _data(), np.random.default_rng(0)
    idx = [data.batch_indices(16, seed=order) for _ in range(3)][2][1]
    probe = _model()
    probe.set_flat(rec.flats[9])
    assert err.last_loss == probe.loss(data.x_train[idx], data.y_train[idx])
    msg = str(err)
    assert "step 9" in msg and "epoch 2.25" in msg and f"last finite loss {err.last_loss}" in msg
    back = pickle.loads(pickle.dumps(err))  # crosses process boundaries in sweeps
    assert (back.step, back.epoch, back.last_loss, back.reason) == (err.step, err.epoch, err.last_loss, err.reason)


def test_last_finite_loss_is_the_batch_loss_at_the_restored_parameters():
    model = _model()
    data = _data()
    with pytest.raises(gb.nn.DivergenceError) as info:
        gb.train(model, data, epochs=1, batch_size=16, optimizer=PoisonedSGD(0.05, poison_at=0), seed=3,
                 progress=False)
    # at step 0 the model is restored to its initialization; the batch is the first of the epoch for seed 3
    first = data.batch_indices(16, seed=3)[0]
    assert info.value.step == 0 and info.value.epoch == 0
    assert np.array_equal(model.get_flat(), _model().get_flat())
    assert info.value.last_loss == _model().loss(data.x_train[first], data.y_train[first])


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy notes the overflow; the error says it
def test_a_huge_learning_rate_diverges_loudly_and_the_model_stays_finite():
    model = _model()
    with pytest.raises(gb.nn.DivergenceError, match="training diverged at step"):
        gb.train(model, _data(), epochs=50, batch_size=16, optimizer=gb.nn.SGD(lr=1e150), seed=0, progress=False)
    assert np.all(np.isfinite(model.get_flat()))


def test_stop_records_the_divergence_in_the_history():
    model = _model()
    hist = gb.train(model, _data(), epochs=5, batch_size=16, optimizer=PoisonedSGD(0.05, poison_at=9), seed=0,
                    progress=False, on_divergence="stop")
    assert list(hist["diverged"]) == [False, False, False, True]
    last = hist.iloc[-1]
    assert last["step"] == 9 and last["epoch"] == pytest.approx(2.25)
    # the diverged row measures the restored model
    data = _data()
    loss, err = model.evaluate(data.x_train, data.y_train)
    assert last["train_loss"] == loss and last["train_error"] == err
    # the rows before it are those of an ordinary run
    ordinary = gb.train(_model(), data, epochs=2, batch_size=16, optimizer=gb.nn.SGD(0.05), seed=0, progress=False)
    pd.testing.assert_frame_equal(hist.iloc[:3], ordinary, check_exact=True, check_dtype=False)


def test_the_checkpoint_keeps_the_last_finite_epoch(tmp_path):
    ckpt = tmp_path / "run.ckpt"
    data = _data()
    with pytest.raises(gb.nn.DivergenceError):
        gb.train(_model(), data, epochs=5, batch_size=16, optimizer=PoisonedSGD(0.05, poison_at=9), seed=0,
                 progress=False, checkpoint=ckpt)
    two = _model()
    gb.train(two, data, epochs=2, batch_size=16, optimizer=gb.nn.SGD(0.05), seed=0, progress=False)
    saved = gb.nn.load(ckpt)
    assert np.array_equal(saved.get_flat(), two.get_flat())
    assert gb.nn.read_header(ckpt)["progress"] == {"epoch": 2, "step": 8}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.ckpt"]


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_parameters_are_refused_at_the_start(bad):
    model = _model()
    model.params["0.t"][1, 0, 2] = bad
    with pytest.raises(ValueError, match=r"model parameters: expected finite values, got 1 NaN or inf in "
                                         r"param '0\.t'"):
        gb.train(model, _data(), epochs=1, progress=False)


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(callback=3), TypeError, "callback: expected a callable or None, got int 3"),
    (dict(step_callback="x"), TypeError, "step_callback: expected a callable or None"),
    (dict(on_divergence="ignore"), ValueError, r"on_divergence: expected one of \('raise', 'stop'\)"),
])
def test_bad_options_are_refused_before_training(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        gb.train(_model(), _data(), epochs=1, progress=False, **kwargs)


@pytest.mark.parametrize("opt", [gb.nn.SGD(0.1), gb.nn.SGD(0.1, momentum=0.9), gb.nn.Adam()])
def test_optimizer_step_refuses_non_finite_parameters(opt):
    model = _model()
    data = _data()
    _, grads = model.loss_and_grad(data.x_train[:8], data.y_train[:8])
    model.params["3.bias"][4] = np.nan
    with pytest.raises(ValueError, match=r"param '3\.bias'"):
        opt.step(model, grads)


class OverflowingSGD(gb.nn.SGD):
    """SGD whose ``at``-th step leaves the dense layer at the largest finite float: the next forward pass
    overflows although every parameter is finite."""

    def __init__(self, lr, at):
        super().__init__(lr)
        self.at, self.count = at, 0

    def step(self, model, grads, weight_grads=None):
        super().step(model, grads, weight_grads)
        if self.count == self.at:
            model.params["3.weight"][...] = np.finfo(np.float64).max
            model.params["3.bias"][...] = np.finfo(np.float64).max
        self.count += 1


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_an_overflowing_forward_pass_is_a_divergence():
    model = _model()
    with pytest.raises(gb.nn.DivergenceError, match="forward pass overflowed") as info:
        gb.train(model, _data(), epochs=3, batch_size=16, optimizer=OverflowingSGD(0.05, at=5), seed=0,
                 progress=False)
    assert info.value.step == 6 and info.value.epoch == pytest.approx(1.5)
    assert np.all(np.isfinite(model.get_flat()))  # finite, but too large to evaluate
    with pytest.raises(gb.nn.NonFiniteLogitsError, match="logits: the forward pass overflowed"):
        model.forward(_data().x_train)
    hist = gb.train(_model(), _data(), epochs=3, batch_size=16, optimizer=OverflowingSGD(0.05, at=5), seed=0,
                    progress=False, on_divergence="stop")
    assert list(hist["diverged"]) == [False, False, True]
    assert np.isnan(hist["train_loss"].iloc[-1]) and hist["step"].iloc[-1] == 6


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(model=3), TypeError, "model: expected a genbound.nn.Sequential"),
    (dict(optimizer=gb.nn.SGD), TypeError, "optimizer: expected an optimizer"),
])
def test_bad_model_or_optimizer_class(kwargs, exc, match):
    args = dict(dict(model=_model(), optimizer=gb.nn.SGD(0.1)), **kwargs)
    with pytest.raises(exc, match=match):
        gb.train(args["model"], _data(), epochs=1, optimizer=args["optimizer"], progress=False)
