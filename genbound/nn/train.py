"""The training loop: mini-batch SGD (or full-batch GD) with a per-epoch history table, checkpoints that
refuse what they cannot trust, and a loud stop when training diverges."""
from __future__ import annotations

import os
import pathlib

import numpy as np
import pandas as pd

from genbound._checks import check_dataset, check_int, check_model
from genbound._io import check_writable_folder, remove_stale_temporaries
from genbound._rng import as_generator, permutation_batches
from genbound.nn.io import array_digest, first_difference, read_checkpoint, write_checkpoint
from genbound.nn.model import NonFiniteLogitsError
from genbound.nn.optim import SGD

HISTORY_COLUMNS = ["epoch", "step", "train_loss", "train_error", "test_loss", "test_error", "gap", "diverged"]
ON_DIVERGENCE = ("raise", "stop")


class DivergenceError(FloatingPointError):
    """Training diverged: the loss or a parameter became NaN or inf.

    The model keeps the last finite parameters (those before the step that diverged) and a checkpoint, if
    any, the last finite epoch.

    Attributes
    ----------
    step : int
        Optimizer steps completed with finite results (the model's state is the one after this many steps).
    epoch : float
        Where in training that state lies (fractional within an epoch).
    last_loss : float or None
        The last finite mini-batch loss of this call: when a step made the parameters non-finite, the loss of
        that step's batch at the restored parameters. Before the first batch of the call, the last training
        loss of the history (None if there is none).
    reason : str
        What became non-finite.
    """

    def __init__(self, step, epoch, last_loss, reason):
        self.step, self.epoch, self.last_loss, self.reason = step, epoch, last_loss, reason
        super().__init__(f"training diverged at step {step} (epoch {epoch:.6g}): {reason}; last finite loss "
                         f"{last_loss}; the model keeps the last finite parameters")

    def __reduce__(self):  # picklable across worker processes
        return type(self), (self.step, self.epoch, self.last_loss, self.reason)


def _seed_record(seed):
    """What ``seed`` is, as plain data for the run fingerprint (a Generator by its state before any draw)."""
    if isinstance(seed, np.random.Generator):
        return {"bit_generator": type(seed.bit_generator).__name__, "state": seed.bit_generator.state}
    return None if seed is None else int(seed)


def run_fingerprint(model, data, batch_size, optimizer, seed, eval_every):
    """What a checkpointed run depends on: the data (shapes, dtypes and SHA-256 of its four arrays), the
    model's architecture, dtype and input shape, the batch size, the optimizer's class and settings, the seed
    and ``eval_every``. A checkpoint resumes only a run with the same fingerprint (``epochs`` may grow)."""
    opt_state = optimizer.state_dict()
    return {
        "data": {field: array_digest(getattr(data, field)) for field in ("x_train", "y_train", "x_test", "y_test")},
        "model": {"architecture": model.architecture(), "dtype": np.dtype(model.dtype).name,
                  "input_shape": None if model.input_shape is None else list(model.input_shape)},
        "batch_size": batch_size,
        "optimizer": {"class": type(optimizer).__name__, "settings": opt_state.get("settings")},
        "seed": _seed_record(seed),
        "eval_every": eval_every,
    }


def _resume(path, model, optimizer, rng, fingerprint, epochs):
    """Restore model, optimizer and random state from the checkpoint ``path`` after checking that it belongs
    to this run; return (history, step, epochs done)."""
    state = read_checkpoint(path)
    header = state["header"]
    diff = first_difference(header["fingerprint"], fingerprint)
    if diff is not None:
        raise ValueError(f"checkpoint: {os.fspath(path)} was written by another run: {diff[0]} is {diff[1]!r} "
                         f"there and {diff[2]!r} in this call (use the same settings, or another checkpoint path)")
    done = header["progress"]["epoch"]
    if epochs < done:
        raise ValueError(f"epochs: the checkpoint {os.fspath(path)} has already trained {done} epochs, this call "
                         f"asks for {epochs} (ask for at least {done})")
    history = header["history"]
    if not all(isinstance(row, dict) and set(row) == set(HISTORY_COLUMNS) for row in history):
        raise ValueError(f"checkpoint: {os.fspath(path)}: history: expected rows with the keys {HISTORY_COLUMNS}")
    model.load_state_dict(state["model"].state_dict())
    optimizer.load_state_dict(state["optimizer"])
    try:
        rng.bit_generator.state = header["rng"]
    except (TypeError, ValueError, KeyError) as exc:
        raise ValueError(f"checkpoint: {os.fspath(path)}: rng: cannot restore the random state ({exc})") from exc
    return history, header["progress"]["step"], done


def train(model, data, epochs=30, batch_size=64, optimizer=None, seed=0, eval_every=None, progress=True,
          callback=None, checkpoint=None, chunk_size=1024, step_callback=None, on_divergence="raise"):
    """Train ``model`` on ``data`` and return its history, one row per epoch.

    Each epoch visits the training set once in an order drawn from ``seed``; every mini-batch takes one
    optimizer step on the mean cross-entropy of the batch. With :class:`genbound.nn.GD` every step uses the
    whole training set (``batch_size`` is ignored). Losses and errors in the history are exact values on the
    full training and test sets at the end of the epoch (not running averages).

    Nothing fails silently. Parameters that are NaN or inf at the start are refused (ValueError naming the
    parameter). When a batch loss, a full-set loss or a parameter becomes NaN or inf, or a forward pass
    overflows (:class:`genbound.nn.NonFiniteLogitsError`), training stops: the model is put back to its last
    finite parameters (those before the step that diverged; the optimizer's buffers are not put back) and a
    :class:`DivergenceError` says at which step and epoch, with the last finite loss; the checkpoint keeps
    the last finite epoch. With ``on_divergence="stop"`` the divergence is a result instead: the history
    ends with a row for the restored model whose ``diverged`` is True (NaN losses where it overflows).

    Parameters
    ----------
    model : Sequential
    data : Dataset
    epochs : int >= 1
    batch_size : int >= 1
    optimizer : optimizer such as SGD, GD or Adam, default SGD(lr=0.05)
        With ``checkpoint``, it must have ``state_dict()`` / ``load_state_dict()`` (genbound's do).
    seed : int or numpy.random.Generator
        Seed of the batch order.
    eval_every : int, optional
        Also evaluate every ``eval_every`` steps (rows with fractional epochs).
    progress : bool
        Show a tqdm progress bar.
    callback : callable(model, row) -> bool or None, optional
        Called after each evaluation with the history row (a dict). Returning a true value stops training there
        (the returned history ends with that row; a checkpoint, if any, holds the state at that row when the
        row ends an epoch). This is the one way to stop training early, e.g. once a target loss is reached.
    checkpoint : str or path, optional
        File where the model, optimizer state, random state, history and the run's fingerprint are written
        after every epoch, atomically, in the safe format of :func:`genbound.nn.save` (no pickle; see
        :mod:`genbound.nn.io`). If it exists, training resumes from it and the result is bit for bit that of
        an uninterrupted run. Before the first epoch the folder is checked to be writable and temporary files
        left by a killed run are removed. A checkpoint written by another run (other data, model
        architecture, batch size, optimizer class or settings, seed or ``eval_every``), one that has already
        trained more than ``epochs`` epochs, and a damaged or edited file are refused with a ValueError naming
        what differs.
    chunk_size : int
        Memory chunk of the full-set evaluations (not an SGD batch; see :meth:`Sequential.evaluate`).
    step_callback : callable(model, step, grads, weight_grads) -> None, optional
        Called before every optimizer step with the batch gradients; ``weight_grads`` (layer index -> dL/dW)
        is computed when the callable has ``needs_weight_grads = True`` (else None). Its return value is
        ignored (stop through ``callback``). For instance
        :class:`genbound.experiments.DepartureRecorder` records w'' - w' of every CP layer at every step.
    on_divergence : {"raise", "stop"}
        What a divergence does: raise :class:`DivergenceError`, or end the history with a ``diverged`` row
        (for sweeps that record divergence as a result).

    Returns
    -------
    pandas.DataFrame
        Columns epoch, step, train_loss, train_error, test_loss, test_error, gap (test minus train 0-1 error),
        diverged (True only on the last row of a run stopped by ``on_divergence="stop"``).
    """
    check_model(model)
    check_dataset(data)
    epochs = check_int(epochs, "epochs", 1)
    batch_size = check_int(batch_size, "batch_size", 1)
    if eval_every is not None:
        eval_every = check_int(eval_every, "eval_every", 1)
    for name, fn in (("callback", callback), ("step_callback", step_callback)):
        if fn is not None and not callable(fn):
            raise TypeError(f"{name}: expected a callable or None, got {type(fn).__name__} {fn!r}")
    if on_divergence not in ON_DIVERGENCE:
        raise ValueError(f"on_divergence: expected one of {ON_DIVERGENCE}, got {on_divergence!r}")
    optimizer = SGD(lr=0.05) if optimizer is None else optimizer
    if isinstance(optimizer, type) or not hasattr(optimizer, "step"):
        raise TypeError(f"optimizer: expected an optimizer such as genbound.nn.SGD, got {type(optimizer).__name__}")
    seed_given = seed
    rng = as_generator(seed)
    x_train = model.check_x(data.x_train)
    y_train = np.asarray(data.y_train)
    model.check_finite()
    m = x_train.shape[0]
    history, step, start_epoch = [], 0, 0
    fingerprint = path = None
    if checkpoint is not None:
        if not isinstance(checkpoint, (str, os.PathLike)):
            raise TypeError(f"checkpoint: expected a file path, got {type(checkpoint).__name__}")
        if not (hasattr(optimizer, "state_dict") and hasattr(optimizer, "load_state_dict")):
            raise TypeError(f"optimizer: a checkpointed run needs state_dict() and load_state_dict(), which "
                            f"{type(optimizer).__name__} lacks")
        path = pathlib.Path(checkpoint)
        if path.is_dir():
            raise ValueError(f"checkpoint: expected a file path, got the folder {os.fspath(path)!r}")
        check_writable_folder(path.parent, "checkpoint")
        remove_stale_temporaries(path.parent, path.name)
        fingerprint = run_fingerprint(model, data, batch_size, optimizer, seed_given, eval_every)
        if path.exists():
            history, step, start_epoch = _resume(path, model, optimizer, rng, fingerprint, epochs)
    last_loss = history[-1]["train_loss"] if history else None

    def frame():
        return pd.DataFrame(history, columns=HISTORY_COLUMNS)

    has_test = len(data.y_test) > 0

    def evaluate(epoch, diverged=False):
        try:
            tr_loss, tr_err = model.evaluate(x_train, y_train, chunk_size)
            te_loss = te_err = float("nan")  # a Dataset may hold no test images: then no test figures
            if has_test:
                te_loss, te_err = model.evaluate(data.x_test, data.y_test, chunk_size)
        except NonFiniteLogitsError as exc:
            if not diverged:
                return diverge(epoch, f"the full-set evaluation overflowed ({exc})")
            tr_loss = tr_err = te_loss = te_err = float("nan")  # the restored model overflows too
        row = dict(epoch=epoch, step=step, train_loss=tr_loss, train_error=tr_err, test_loss=te_loss,
                   test_error=te_err, gap=te_err - tr_err, diverged=diverged)
        if not diverged and not (np.isfinite(tr_loss) and (np.isfinite(te_loss) or not has_test)):
            return diverge(epoch, f"the full-set loss is {tr_loss} (train), {te_loss} (test)")
        history.append(row)
        return callback is not None and bool(callback(model, row))

    def diverge(epoch, reason):
        if on_divergence == "raise":
            raise DivergenceError(step, epoch, last_loss, reason)
        evaluate(epoch, diverged=True)
        return True

    if not history and evaluate(0):
        return frame()
    full = getattr(optimizer, "full_batch", False)
    needs_g = bool(getattr(optimizer, "projected_layers", lambda _: [])(model))
    needs_g = needs_g or bool(getattr(step_callback, "needs_weight_grads", False))
    steps_per_epoch = 1 if full else -(-m // batch_size)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=(epochs - start_epoch) * steps_per_epoch, desc="train", leave=False)
    try:
        for epoch in range(start_epoch, epochs):
            batches = [np.arange(m)] if full else permutation_batches(m, batch_size, rng)
            for b, idx in enumerate(batches):
                wgrads = None
                try:
                    if needs_g:
                        loss, grads, wgrads = model.loss_and_grad(x_train[idx], y_train[idx], weight_grads=True)
                    else:
                        loss, grads = model.loss_and_grad(x_train[idx], y_train[idx])
                except NonFiniteLogitsError as exc:
                    diverge(epoch + b / len(batches), f"the batch's forward pass overflowed ({exc})")
                    return frame()
                if not np.isfinite(loss):
                    diverge(epoch + b / len(batches), f"the batch loss is {loss}")
                    return frame()
                last_loss = float(loss)
                if step_callback is not None:
                    step_callback(model, step, grads, wgrads)
                before = model.get_flat()
                optimizer.step(model, grads, weight_grads=wgrads)
                try:
                    model.check_finite()
                except ValueError as exc:
                    model.set_flat(before)
                    diverge(epoch + b / len(batches), f"a step made the parameters non-finite ({exc})")
                    return frame()
                step += 1
                if bar is not None:
                    bar.update(1)
                if eval_every is not None and step % eval_every == 0 and b < len(batches) - 1:
                    if evaluate(epoch + (b + 1) / len(batches)):
                        return frame()
            stop = evaluate(epoch + 1)
            row = history[-1]
            if row["diverged"]:
                return frame()
            if bar is not None:
                bar.set_postfix(train_err=f"{row['train_error']:.3f}", test_err=f"{row['test_error']:.3f}")
            if path is not None:
                write_checkpoint(path, model, optimizer.state_dict(), rng.bit_generator.state, history,
                                 {"epoch": epoch + 1, "step": step}, epochs, fingerprint)
            if stop:
                break
    finally:
        if bar is not None:
            bar.close()
    return frame()
