"""Softmax cross-entropy, its gradient and its tangent, computed stably."""
from __future__ import annotations

import numpy as np

from genbound._checks import as_array, check_real_dtype


def _check_logits(logits, finite=True):
    """``logits`` as a real 2-d float array (n, K); non-finite values refused by a ValueError when ``finite``."""
    arr = check_real_dtype(as_array(logits, "logits"), "logits")
    if arr.ndim != 2:
        raise ValueError(f"logits: expected a 2-d array (n, classes), got shape {arr.shape}")
    if arr.dtype.kind != "f":
        arr = arr.astype(np.float64)
    if finite and not np.all(np.isfinite(arr)):
        raise ValueError("logits: expected finite values, got NaN or inf: the forward pass overflowed (inputs x "
                         "too large for the model's dtype, or model parameters too large or not finite)")
    return arr


def log_softmax(logits):
    """Row-wise log-softmax by the log-sum-exp trick (finite for logits as large as 1e300)."""
    return _log_softmax(_check_logits(logits, finite=False))


def _log_softmax(logits):
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def softmax_cross_entropy(logits, y):
    """Mean cross-entropy of softmax(logits) against integer labels, and its gradient.

    .. math:: L = -\\frac{1}{n} \\sum_i \\log \\mathrm{softmax}(z_i)_{y_i}, \\qquad
              \\frac{\\partial L}{\\partial z_i} = \\frac{\\mathrm{softmax}(z_i) - e_{y_i}}{n}

    Parameters
    ----------
    logits : ndarray (n, K)
    y : ndarray (n,) of int in [0, K)

    Raises
    ------
    ValueError
        Logits with NaN or inf (a forward pass that overflowed: a NaN loss is never returned), logits not
        2-d, labels of the wrong shape or outside [0, K).

    Returns
    -------
    loss : float
    dlogits : ndarray (n, K)
    probs : ndarray (n, K), the softmax probabilities (used by the tangent rule)
    """
    logits = _check_logits(logits)
    n, classes = logits.shape
    y = check_real_dtype(as_array(y, "y"), "y")
    if y.dtype.kind not in "iu" or y.shape != (n,):
        raise ValueError(f"y: expected {n} integer labels (one per row of logits), got dtype {y.dtype}, shape "
                         f"{y.shape}")
    if n and (y.min() < 0 or y.max() >= classes):
        raise ValueError(f"y: expected labels in [0, {classes}), got values in [{y.min()}, {y.max()}]")
    return cross_entropy_checked(logits, y)


def cross_entropy_checked(logits, y):
    """:func:`softmax_cross_entropy` for inputs its caller has already checked: finite float logits (n, K),
    integer labels (n,) in [0, K) (a model's training step validates its batch once, not again here)."""
    n = logits.shape[0]
    logp = _log_softmax(logits)
    rows = np.arange(n)
    loss = -logp[rows, y].sum() / n
    probs = np.exp(logp)
    dlogits = probs.copy()
    dlogits[rows, y] -= 1.0
    dlogits /= n
    return float(loss), dlogits, probs


def softmax_cross_entropy_jvp(probs, rlogits):
    """Tangent of the gradient ``dL/dz`` along ``rlogits``: (diag(s) - s s^T) rz / n row by row."""
    n = probs.shape[0]
    rlogits = check_real_dtype(as_array(rlogits, "rlogits"), "rlogits")
    if rlogits.shape != probs.shape:
        raise ValueError(f"rlogits: expected shape {probs.shape} (that of the logits), got {rlogits.shape}")
    sr = probs * rlogits
    return (sr - probs * sr.sum(axis=1, keepdims=True)) / n
