"""Cheap deterministic cell functions for the sweep tests (module level, so worker processes import them).

Each call appends one line to the file named by the environment variable ``SWEEP_TEST_MARKER`` (when set),
so that tests can count how many cells were computed, in whichever process.
"""
from __future__ import annotations

import os
import time

import numpy as np
import pandas as pd

MARKER = "SWEEP_TEST_MARKER"


def _mark(**params):
    path = os.environ.get(MARKER)
    if path:
        with open(path, "a") as fh:
            fh.write(f"{sorted(params.items())} {os.getpid()}\n")


def calls(path):
    """Number of cells computed so far (lines in the marker file)."""
    try:
        with open(path) as fh:
            return sum(1 for _ in fh)
    except FileNotFoundError:
        return 0


def stats(seed, scale):
    """Statistics of a seeded Gaussian sample, through BLAS (one row)."""
    x = np.random.default_rng(seed).normal(scale=scale, size=(40, 40))
    _mark(seed=seed, scale=scale)
    return {"mean": x.mean(), "top": np.linalg.norm(x @ x.T, 2), "argmax": np.argmax(x), "big": bool(x.max() > 3)}


def curve(seed, n):
    """A table of ``n`` rows per cell, with a non-finite value in its first row."""
    x = np.random.default_rng(seed).random(n)
    _mark(seed=seed, n=n)
    return pd.DataFrame({"step": np.arange(n), "value": np.cumsum(x), "ratio": np.r_[np.inf, x[1:] / x[:-1]]})


def fragile(seed):
    """Fails for seed 2."""
    _mark(seed=seed)
    if seed == 2:
        raise ArithmeticError(f"seed {seed} is unlucky")
    return {"square": seed * seed}


def slow(seed, delay):
    """Sleeps ``delay`` seconds, then returns a seeded number."""
    time.sleep(delay)
    _mark(seed=seed)
    return {"value": float(np.random.default_rng(seed).random())}


def numba_threads(seed):
    """numba's thread count as the cell sees it."""
    import numba
    _mark(seed=seed)
    return {"threads": numba.get_num_threads()}


def train_steps(seed):
    """Loss and gradient norm of a small rank-1 CP network after 5 SGD steps on seeded random images."""
    from genbound.nn import reference_cnn
    model = reference_cnn("digits", rank=1, seed=seed)
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(64, 1, 8, 8)), rng.integers(0, 10, 64)
    for _ in range(5):
        loss, grad = model.loss_and_grad(x, y)
        grad = model.flatten(grad)
        model.set_flat(model.get_flat() - 0.1 * grad)
    _mark(seed=seed)
    return {"loss": float(loss), "grad_norm": float(np.linalg.norm(grad))}
