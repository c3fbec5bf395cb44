"""Softmax cross-entropy, its gradient and its tangent, computed stably."""
from __future__ import annotations

import numpy as np


def log_softmax(logits):
    """Row-wise log-softmax by the log-sum-exp trick (finite for logits as large as 1e300)."""
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

    Returns
    -------
    loss : float
    dlogits : ndarray (n, K)
    probs : ndarray (n, K), the softmax probabilities (used by the tangent rule)
    """
    n = logits.shape[0]
    logp = log_softmax(logits)
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
    sr = probs * rlogits
    return (sr - probs * sr.sum(axis=1, keepdims=True)) / n
