"""Shared plumbing of the landscape tools: the data an analysis runs on, and vector checks."""
from __future__ import annotations

import contextlib

import numpy as np

from genbound._checks import as_float_array, check_int


def check_model(model, name="model"):
    """Refuse anything that is not a genbound model (duck-typed on the methods the landscape tools use)."""
    for attr in ("get_flat", "set_flat", "hvp", "loss_and_grad", "n_params"):
        if not hasattr(model, attr):
            raise TypeError(f"{name}: expected a genbound.nn.Sequential, got {type(model).__name__}")
    return model


def check_vector(v, n, name="v"):
    """``v`` as a float64 vector of length ``n`` with finite values, else a ValueError naming ``name``."""
    arr = as_float_array(v, name, dtype=np.float64, finite=False)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"{name}: expected a vector of length n_params = {n}, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: expected finite values, got NaN or inf")
    return arr


def train_xy(data, name="data"):
    """The training pair of ``data``: a :class:`genbound.data.Dataset` or an ``(x, y)`` pair."""
    if hasattr(data, "x_train") and hasattr(data, "y_train"):
        return data.x_train, data.y_train
    if isinstance(data, (tuple, list)) and len(data) == 2:
        return data[0], data[1]
    raise TypeError(f"{name}: expected a genbound.data.Dataset or an (x, y) pair, got {type(data).__name__}")


@contextlib.contextmanager
def restored(model):
    """Run a block that moves the model's parameters, and put them back afterwards (also on error)."""
    saved = model.get_flat()
    try:
        yield saved
    finally:
        model.set_flat(saved)


class Objective:
    """The mean training loss of ``model`` on ``(x, y)``, evaluated in batches at the model's current weights.

    Every quantity is the size-weighted sum of per-batch quantities, so it equals the full-data value (up to
    rounding) whatever the batch size. Counts the Hessian-vector products it computes.
    """

    def __init__(self, model, x, y, batch_size=1024):
        self.model = check_model(model)
        self.x, self.y = model.check_xy(x, y)
        self.m = self.x.shape[0]
        self.batch_size = check_int(batch_size, "batch_size", 1)
        self.slices = [slice(i, min(i + self.batch_size, self.m)) for i in range(0, self.m, self.batch_size)]
        self.n = model.n_params
        self.n_hvp = 0

    def _weights(self):
        return [(sl, (sl.stop - sl.start) / self.m) for sl in self.slices]

    def loss(self):
        total = 0.0
        for sl, w in self._weights():
            total += w * self.model.loss(self.x[sl], self.y[sl])
        return float(total)

    def loss_and_grad(self):
        total, grad = 0.0, np.zeros(self.n)
        for sl, w in self._weights():
            loss, g = self.model.loss_and_grad(self.x[sl], self.y[sl], flat=True)
            total += w * loss
            grad += w * g
        return float(total), grad

    def hvp(self, v):
        out = np.zeros(self.n)
        if len(self.slices) == 1:
            out += self.model.hvp(self.x, self.y, v)
        else:
            for sl, w in self._weights():
                out += w * self.model.hvp(self.x[sl], self.y[sl], v)
        self.n_hvp += 1
        return out


def objective(model, x=None, y=None, data=None, batch_size=1024):
    """Build the :class:`Objective` from either an explicit batch ``(x, y)`` or ``data`` (whole training set)."""
    check_model(model)
    if data is not None:
        if x is not None or y is not None:
            raise ValueError("data: pass either (x, y) or data, not both")
        x, y = train_xy(data)
    elif x is None or y is None:
        missing = "x" if x is None else "y"
        raise ValueError(f"{missing}: expected a batch (x, y), or the training set as data=...")
    return Objective(model, x, y, batch_size)
