"""One place that turns a user's ``seed`` into a numpy Generator, and the one way to cut an epoch into batches."""
from __future__ import annotations

import numbers

import numpy as np


def as_generator(seed=None, *, name="seed"):
    """Return a :class:`numpy.random.Generator` from an int seed or a Generator: the one place where a user's
    ``seed`` becomes randomness.

    Parameters
    ----------
    seed : int or numpy.random.Generator or None
        A non-negative integer seed, a Generator (used as is, and advanced by its user), or None (seed 0:
        results are reproducible by default).
    name : str
        Argument name used in error messages.

    Returns
    -------
    numpy.random.Generator
    """
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None:
        return np.random.default_rng(0)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"{name}: expected an int or a numpy.random.Generator, got {type(seed).__name__}")
    if seed < 0:
        raise ValueError(f"{name}: expected a non-negative int, got {seed}")
    return np.random.default_rng(int(seed))


def permutation_batches(m, batch_size, seed=None, drop_last=False):
    """One epoch's mini-batches: a random permutation of ``0 .. m-1`` cut into chunks of ``batch_size``.

    Every index lands in exactly one batch and the last batch may be smaller, unless ``drop_last`` drops
    it. The one convention behind :func:`genbound.train`, :meth:`genbound.data.Dataset.batch_indices` and
    the per-batch landscapes. A Generator passed as ``seed`` is advanced (a fresh order each call).

    Returns
    -------
    list of ndarray of int64
    """
    order = as_generator(seed).permutation(m)
    stop = m - m % batch_size if drop_last else m
    return [order[i:i + batch_size] for i in range(0, stop, batch_size)]
