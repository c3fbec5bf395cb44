"""The data an analysis runs on: the training pair of a Dataset or an ``(x, y)`` pair, and the full-data
loss, gradient and Hessian-vector product computed chunk by chunk.

Every analysis of a trained model (``genbound.landscape``, ``genbound.bounds``) takes ``(model, data, ...)``
and reaches the data through this module, so "the training set", "a chunk" and "restoring the weights" mean
the same thing everywhere.
"""
from __future__ import annotations

import contextlib

import numpy as np

from genbound._checks import check_int, check_model


def training_pair(data, name="data"):
    """The training inputs and labels of ``data``: a :class:`genbound.data.Dataset` or an ``(x, y)`` pair.

    Returns
    -------
    x, y : the arrays as given (not yet checked against a model; see :meth:`Sequential.check_xy`)
    """
    if hasattr(data, "x_train") and hasattr(data, "y_train"):
        return data.x_train, data.y_train
    if isinstance(data, (tuple, list)) and len(data) == 2:
        return data[0], data[1]
    raise TypeError(f"{name}: expected a genbound.data.Dataset or an (x, y) pair, got {type(data).__name__}")


@contextlib.contextmanager
def restored(model):
    """Run a block that moves the model's parameters, and put them back afterwards (also on error).

    Yields the saved parameter vector.
    """
    saved = model.get_flat()
    try:
        yield saved
    finally:
        model.set_flat(saved)


class Objective:
    r"""The mean training loss of ``model`` on ``data``, evaluated chunk by chunk at the model's current weights.

    .. math::

        L(\theta) = \sum_c \frac{|c|}{m} L_c(\theta)

    over chunks :math:`c` of at most ``chunk_size`` examples, so every quantity (loss, gradient,
    Hessian-vector product) equals its full-data value up to rounding whatever the chunk size. Counts the
    Hessian-vector products it computes (``n_hvp``).

    Parameters
    ----------
    model : genbound.nn.Sequential
    data : Dataset or (x, y)
        The training set of a Dataset, or an explicit pair.
    chunk_size : int
        Memory chunk of the full-data evaluations (not an SGD batch).
    """

    def __init__(self, model, data, chunk_size=1024):
        self.model = check_model(model)
        self.x, self.y = model.check_xy(*training_pair(data))
        self.m = self.x.shape[0]
        self.chunk_size = check_int(chunk_size, "chunk_size", 1)
        self.slices = [slice(i, min(i + self.chunk_size, self.m)) for i in range(0, self.m, self.chunk_size)]
        self.n = model.n_params
        self.n_hvp = 0

    def _weighted(self):
        return [(sl, (sl.stop - sl.start) / self.m) for sl in self.slices]

    def loss(self):
        """Full-data mean loss."""
        total = 0.0
        for sl, w in self._weighted():
            total += w * self.model.loss(self.x[sl], self.y[sl])
        return float(total)

    def loss_and_grad(self):
        """Full-data mean loss and its gradient as one vector."""
        total, grad = 0.0, np.zeros(self.n)
        for sl, w in self._weighted():
            loss, g = self.model.loss_and_grad(self.x[sl], self.y[sl], flat=True)
            total += w * loss
            grad += w * g
        return float(total), grad

    def hvp(self, v):
        """Full-data Hessian-vector product :math:`H v` (exact, by the R-operator on each chunk)."""
        out = np.zeros(self.n)
        if len(self.slices) == 1:
            out += self.model.hvp(self.x, self.y, v)
        else:
            for sl, w in self._weighted():
                out += w * self.model.hvp(self.x[sl], self.y[sl], v)
        self.n_hvp += 1
        return out
