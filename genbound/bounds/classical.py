"""Classical capacity bounds: the paper's Eq. 1 and VC-dimension uniform convergence.

Every function is a plain formula of a few numbers (no model needed). Each docstring states the exact
inequality implemented, what it assumes, and where it comes from.

Conventions: ``m`` is the number of i.i.d. training examples, errors are 0-1 errors in [0, 1], ``delta``
is the failure probability (the statement holds with probability at least ``1 - delta``), logarithms
are natural unless written ``log2``. Bounds are returned as computed, without clipping to [0, 1]: a
value above 1 means the bound is vacuous.
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
from scipy.special import gammaln, logsumexp

from genbound._checks import check_int, check_positive, check_probability

__all__ = [
    "sqrt_gap_bound",
    "samples_needed",
    "log_growth_bound",
    "vc_bound",
    "vc_dimension_relu",
]


# ----------------------------------------------------------------------------------------------------
# Eq. 1 of Lee & Lee
# ----------------------------------------------------------------------------------------------------

def sqrt_gap_bound(N, m):
    r"""Eq. 1 of Lee & Lee, exactly as printed: the gap is at most :math:`\sqrt{N/m}`.

    .. math::

        R[f] - \hat R_S[f] \;\le\; \sqrt{N / m}

    Parameters
    ----------
    N : float
        Effective capacity, >= 0 (the paper uses the parameter count as its estimate).
    m : int
        Number of training examples, >= 1.

    Returns
    -------
    float
        :math:`\sqrt{N/m}`.

    Notes
    -----
    The paper prints this as a heuristic order of magnitude: it carries no confidence level and no
    constants, so it is not a theorem with stated assumptions. It is implemented literally so that the
    paper's numbers can be reproduced; use :func:`vc_bound` or the PAC-Bayes bounds for statements that
    hold with a stated probability.

    References
    ----------
    Lee & Lee, "Effect of local search with real data on generalization in deep learning", Eq. 1.
    """
    N = check_positive(N, "N", allow_zero=True)
    m = check_int(m, "m", minimum=1)
    return math.sqrt(N / m)


def samples_needed(N, eps):
    r"""Smallest sample size ``m`` with :math:`\sqrt{N/m} \le \varepsilon` (Eq. 1 solved for m).

    .. math::

        m^\star = \min\{m \in \mathbb{N}_{\ge 1} : \sqrt{N/m} \le \varepsilon\}
                = \max(1, \lceil N / \varepsilon^2 \rceil)

    The ceiling is taken in exact rational arithmetic (so ``samples_needed(10, 1e-200)`` is the exact
    integer :math:`\lceil 10^{401}\rceil`, no division by an underflowed :math:`\varepsilon^2`); below
    :math:`2^{52}` it is then settled against the float formula so that it is exactly consistent with
    :func:`sqrt_gap_bound`: ``sqrt_gap_bound(N, m) <= eps`` and, if ``m > 1``,
    ``sqrt_gap_bound(N, m - 1) > eps``.

    Parameters
    ----------
    N : float
        Effective capacity, >= 0.
    eps : float
        Target gap, > 0.

    Returns
    -------
    int
    """
    N = check_positive(N, "N", allow_zero=True)
    eps = check_positive(eps, "eps")
    # exact rational arithmetic: N / eps**2 neither underflows (eps = 1e-200) nor overflows
    m = max(1, math.ceil(Fraction(N) / (Fraction(eps) ** 2)))
    if m > 2 ** 52:
        return m  # beyond the floats' integers: the exact ceiling is the answer
    # ceil(N / eps**2) can be off by one after rounding; settle it against the float formula itself.
    while m > 1 and math.sqrt(N / (m - 1)) <= eps:
        m -= 1
    while math.sqrt(N / m) > eps:
        m += 1
    return m


# ----------------------------------------------------------------------------------------------------
# Growth function and the VC bound
# ----------------------------------------------------------------------------------------------------

_GROWTH_FORMS = ("min", "sauer", "trivial", "sum")


def log_growth_bound(d, m, form="min"):
    r"""Upper bound on :math:`\ln \Pi_H(m)` for a class of VC dimension at most ``d``.

    Forms (Sauer's lemma; Mohri, Rostamizadeh & Talwalkar 2018, Thm. 3.17 and Cor. 3.18):

    - ``"trivial"``: :math:`\ln \Pi_H(m) \le m \ln 2` (always true, any ``d``).
    - ``"sauer"``: :math:`\ln \Pi_H(m) \le d \ln(e m / d)`; valid only for :math:`m \ge d`
      (a ValueError otherwise); equal to 0 for ``d = 0``.
    - ``"min"`` (default): :math:`\min(m \ln 2,\ d \ln(e m/d))` where :math:`m \ge d`, and
      :math:`m \ln 2` where :math:`m < d` (the Sauer form is used only where it is valid).
    - ``"sum"``: :math:`\ln \sum_{i=0}^{\min(d, m)} \binom{m}{i}`, Sauer's lemma before relaxation (the
      tightest; needs an integer ``d``).

    Parameters
    ----------
    d : float
        Upper bound on the VC dimension, >= 0. A non-integer ``d`` is allowed in the closed forms:
        :math:`d \ln(em/d)` increases with ``d`` on :math:`d \le m`, so an upper bound on the VC
        dimension still gives an upper bound on the growth function.
    m : int
        Sample size, >= 1.
    form : {"min", "sauer", "trivial", "sum"}

    Returns
    -------
    float
    """
    d = check_positive(d, "d", allow_zero=True)
    m = check_int(m, "m", minimum=1)
    if form not in _GROWTH_FORMS:
        raise ValueError(f"form: expected one of {_GROWTH_FORMS}, got {form!r}")
    trivial = m * math.log(2.0)
    if form == "trivial":
        return trivial
    if form == "sum":
        if d != math.floor(d):
            raise ValueError(f"d: expected an integer VC dimension for form='sum', got {d}")
        top = int(min(d, m))
        i = np.arange(top + 1, dtype=np.float64)
        log_binom = gammaln(m + 1.0) - gammaln(i + 1.0) - gammaln(m - i + 1.0)
        return float(min(logsumexp(log_binom), trivial))
    if form == "sauer" and m < d:
        raise ValueError(f"m: Sauer's form d*ln(e*m/d) needs m >= d = {d:g}, got m = {m}")
    if m < d:  # form == "min": only the trivial bound is valid here
        return trivial
    sauer = 0.0 if d == 0 else d * (1.0 + math.log(m) - math.log(d))  # d ln(e m / d), no overflow
    return sauer if form == "sauer" else min(trivial, sauer)


def vc_bound(d, m, delta, train_error=None, form="min"):
    r"""Uniform-convergence bound through the growth function (binary classification, 0-1 loss).

    With probability at least :math:`1 - \delta` over an i.i.d. sample of size ``m``, for every
    :math:`h \in H` (a class of binary classifiers):

    .. math::

        R(h) \;\le\; \hat R_S(h) + \sqrt{\frac{2 \ln \Pi_H(m)}{m}} + \sqrt{\frac{\ln(1/\delta)}{2m}}

    where :math:`\ln \Pi_H(m)` is replaced by the upper bound :func:`log_growth_bound` ``(d, m, form)``
    (by default :math:`\min(m\ln 2, d\ln(em/d))`, the Sauer form only where :math:`m \ge d`).

    Parameters
    ----------
    d : float
        VC dimension of the class (or an upper bound on it), >= 0. A parameter count used here is a
        heuristic stand-in, not a VC dimension; see :func:`vc_dimension_relu`.
    m : int
        Number of training examples, >= 1.
    delta : float
        Failure probability in (0, 1).
    train_error : float or None
        Empirical 0-1 error in [0, 1]. If None, only the gap term is returned.
    form : {"min", "sauer", "trivial", "sum"}
        How :math:`\ln \Pi_H(m)` is bounded; see :func:`log_growth_bound`.

    Returns
    -------
    float
        ``train_error + gap`` (or the gap alone), unclipped; values above 1 are vacuous.

    Notes
    -----
    Assumes binary labels (the growth function counts dichotomies). For a k-class network the class of
    its binary decisions "correct / wrong" is not covered without further argument.

    References
    ----------
    M. Mohri, A. Rostamizadeh, A. Talwalkar, *Foundations of Machine Learning*, 2nd ed., MIT Press
    2018: Corollary 3.9 (growth-function generalization bound) and, with Sauer's lemma, Corollary 3.19
    (the VC-dimension form :math:`\sqrt{2d\ln(em/d)/m} + \sqrt{\ln(1/\delta)/(2m)}`).
    """
    d = check_positive(d, "d", allow_zero=True)
    m = check_int(m, "m", minimum=1)
    delta = check_probability(delta, "delta")
    log_pi = log_growth_bound(d, m, form=form)
    gap = math.sqrt(2.0 * log_pi / m) + math.sqrt(math.log(1.0 / delta) / (2.0 * m))
    if train_error is None:
        return gap
    train_error = check_probability(train_error, "train_error", open_interval=False)
    return train_error + gap


# ----------------------------------------------------------------------------------------------------
# VC dimension of ReLU networks
# ----------------------------------------------------------------------------------------------------

def _bhlm_value(L, W, L_bar, R, p):
    inner = 2.0 * math.e * p * R
    return L + L_bar * W * math.log2(4.0 * math.e * p * R * math.log2(inner))


def vc_dimension_relu(W, L, *, layer_params=None, layer_units=None, pieces=2, method="bhlm"):
    r"""Upper bound on the VC dimension of a piecewise-linear (e.g. ReLU) feedforward network.

    ``method="bhlm"`` (default): Bartlett, Harvey, Liaw & Mehrabian (2019), Theorem 7, for activations
    that are piecewise polynomial of degree :math:`\le 1` (piecewise linear) with :math:`p + 1` pieces
    (ReLU: 2 pieces, :math:`p = 1`) and an identity output unit:

    .. math::

        \mathrm{VCdim} \;\le\; L + \bar L\, W \log_2\!\bigl(4 e p R \log_2(2 e p R)\bigr),
        \qquad \bar L = \frac{1}{W}\sum_{i=1}^{L} W_i,\qquad R = \sum_{i=1}^{L} i\, k_i,

    where, for degree-1 activations, :math:`W_i` is the number of parameters (weights and biases) at
    the inputs of the units of layers :math:`1..i` (cumulative) and :math:`k_i` the number of units in
    layer :math:`i` (the output layer counts as layer :math:`L`). In the theorem's general form
    :math:`R = \sum_i k_i (1 + (i-1) d^{i-1})` with ``d`` the degree; :math:`d = 1` gives the above.

    - With ``layer_params`` and ``layer_units`` (one entry per layer, ``sum(layer_params) == W``), the
      statement is evaluated exactly.
    - With only ``W`` and ``L``, the worst case over architectures is used: :math:`\bar L \le L` and
      :math:`R \le L U \le L W` (every unit has at least one parameter), i.e.
      :math:`L + L W \log_2(4epLW\log_2(2epLW))` -- the :math:`O(W L \log W)` bound.

    ``method="params"`` returns ``W`` itself. This is *not* a VC bound; it is the parameter count used
    as a capacity proxy (as in Lee & Lee's Eq. 1), labelled as such so that tables can show both.

    Parameters
    ----------
    W : int
        Number of parameters (weights and biases), >= 1.
    L : int
        Number of layers of computation units including the output layer, >= 1.
    layer_params, layer_units : sequence of int, optional
        Parameters at the inputs of, and number of units in, each layer 1..L.
    pieces : int
        Number of linear pieces of the activation (``p + 1``), >= 2. ReLU: 2.
    method : {"bhlm", "params"}

    Returns
    -------
    float

    Notes
    -----
    The theorem is for fully connected (or general feedforward) networks whose units apply the
    activation to an affine function of the previous units. Weight sharing (convolutions) and
    max-pooling units are outside its statement; applying it to a CNN is an approximation.
    The constants were transcribed from the published statement of Theorem 7 (JMLR 20(63), 2019), and
    should be re-checked against the paper before being quoted.

    References
    ----------
    P. L. Bartlett, N. Harvey, C. Liaw, A. Mehrabian, "Nearly-tight VC-dimension and pseudodimension
    bounds for piecewise linear neural networks", JMLR 20(63):1-17, 2019, Theorem 7.
    """
    W = check_int(W, "W", minimum=1)
    L = check_int(L, "L", minimum=1)
    if method not in ("bhlm", "params"):
        raise ValueError(f"method: expected 'bhlm' or 'params', got {method!r}")
    pieces = check_int(pieces, "pieces", minimum=2)
    if method == "params":
        return float(W)
    p = pieces - 1
    if (layer_params is None) != (layer_units is None):
        raise ValueError("layer_params, layer_units: expected both or neither, got only one of them")
    if layer_params is None:
        return _bhlm_value(L, W, float(L), float(L) * W, p)
    lp = [check_int(v, "layer_params", minimum=0) for v in layer_params]
    lu = [check_int(v, "layer_units", minimum=1) for v in layer_units]
    if len(lp) != L or len(lu) != L:
        raise ValueError(f"layer_params, layer_units: expected {L} entries each (one per layer), "
                         f"got {len(lp)} and {len(lu)}")
    if sum(lp) != W:
        raise ValueError(f"layer_params: expected entries summing to W = {W}, got {sum(lp)}")
    cumulative = np.cumsum(lp, dtype=np.float64)
    L_bar = float(cumulative.sum()) / W
    R = float(sum((i + 1) * k for i, k in enumerate(lu)))
    return _bhlm_value(L, W, L_bar, R, p)
