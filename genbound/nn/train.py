"""The training loop: mini-batch SGD (or full-batch GD) with a per-epoch history table."""
from __future__ import annotations

import os
import pickle

import numpy as np
import pandas as pd

from genbound._checks import check_dataset, check_int
from genbound._rng import as_generator, permutation_batches
from genbound.nn.optim import SGD

HISTORY_COLUMNS = ["epoch", "step", "train_loss", "train_error", "test_loss", "test_error", "gap"]


def _atomic_pickle(obj, path):
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "wb") as fh:
        pickle.dump(obj, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def train(model, data, epochs=30, batch_size=64, optimizer=None, seed=0, eval_every=None, progress=True,
          callback=None, checkpoint=None, chunk_size=1024, step_callback=None):
    """Train ``model`` on ``data`` and return its history, one row per epoch.

    Each epoch visits the training set once in an order drawn from ``seed``; every mini-batch takes one
    optimizer step on the mean cross-entropy of the batch. With :class:`genbound.nn.GD` every step uses the
    whole training set (``batch_size`` is ignored). Losses and errors in the history are exact values on the
    full training and test sets at the end of the epoch (not running averages).

    Parameters
    ----------
    model : Sequential
    data : Dataset
    epochs : int >= 1
    batch_size : int >= 1
    optimizer : SGD or GD, default SGD(lr=0.05)
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
        File where model, optimizer, random state and history are written atomically after every epoch; if
        it exists, training resumes from it (the result is the same as an uninterrupted run).
    chunk_size : int
        Memory chunk of the full-set evaluations (not an SGD batch; see :meth:`Sequential.evaluate`).
    step_callback : callable(model, step, grads, weight_grads) -> None, optional
        Called before every optimizer step with the batch gradients; ``weight_grads`` (layer index -> dL/dW)
        is computed when the callable has ``needs_weight_grads = True`` (else None). Its return value is
        ignored (stop through ``callback``). For instance
        :class:`genbound.experiments.DepartureRecorder` records w'' - w' of every CP layer at every step.

    Returns
    -------
    pandas.DataFrame
        Columns epoch, step, train_loss, train_error, test_loss, test_error, gap (test minus train 0-1 error).
    """
    check_dataset(data)
    epochs = check_int(epochs, "epochs", 1)
    batch_size = check_int(batch_size, "batch_size", 1)
    if eval_every is not None:
        eval_every = check_int(eval_every, "eval_every", 1)
    optimizer = SGD(lr=0.05) if optimizer is None else optimizer
    if not hasattr(optimizer, "step"):
        raise TypeError(f"optimizer: expected an optimizer such as genbound.nn.SGD, got {type(optimizer).__name__}")
    rng = as_generator(seed)
    x_train = model.check_x(data.x_train)
    y_train = np.asarray(data.y_train)
    m = x_train.shape[0]
    history, step, start_epoch = [], 0, 0
    if checkpoint is not None and os.path.exists(checkpoint):
        with open(checkpoint, "rb") as fh:
            state = pickle.load(fh)
        if state["n_params"] != model.n_params:
            raise ValueError(f"checkpoint: {checkpoint} holds a model with {state['n_params']} parameters, "
                             f"expected {model.n_params}")
        model.set_flat(state["flat"])
        optimizer.__dict__.update(state["optimizer"])
        rng.bit_generator.state = state["rng"]
        history, step, start_epoch = state["history"], state["step"], state["epoch"]

    def evaluate(epoch):
        tr_loss, tr_err = model.evaluate(x_train, y_train, chunk_size)
        te_loss, te_err = model.evaluate(data.x_test, data.y_test, chunk_size)
        row = dict(epoch=epoch, step=step, train_loss=tr_loss, train_error=tr_err, test_loss=te_loss,
                   test_error=te_err, gap=te_err - tr_err)
        history.append(row)
        return callback is not None and bool(callback(model, row))

    if not history and evaluate(0):
        return pd.DataFrame(history, columns=HISTORY_COLUMNS)
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
                if needs_g:
                    _, grads, wgrads = model.loss_and_grad(x_train[idx], y_train[idx], weight_grads=True)
                else:
                    _, grads = model.loss_and_grad(x_train[idx], y_train[idx])
                if step_callback is not None:
                    step_callback(model, step, grads, wgrads)
                optimizer.step(model, grads, weight_grads=wgrads)
                step += 1
                if bar is not None:
                    bar.update(1)
                if eval_every is not None and step % eval_every == 0 and b < len(batches) - 1:
                    if evaluate(epoch + (b + 1) / len(batches)):
                        return pd.DataFrame(history, columns=HISTORY_COLUMNS)
            stop = evaluate(epoch + 1)
            row = history[-1]
            if bar is not None:
                bar.set_postfix(train_err=f"{row['train_error']:.3f}", test_err=f"{row['test_error']:.3f}")
            if checkpoint is not None:
                _atomic_pickle(dict(flat=model.get_flat(), optimizer=dict(optimizer.__dict__),
                                    rng=rng.bit_generator.state, history=history, step=step, epoch=epoch + 1,
                                    n_params=model.n_params), checkpoint)
            if stop:
                break
    finally:
        if bar is not None:
            bar.close()
    return pd.DataFrame(history, columns=HISTORY_COLUMNS)
