"""PAC-Bayes bounds: binary kl and its inverses, McAllester/Maurer, Langford-Seeger, Catoni, and the
Dziugaite & Roy (2017) bound with its prior-variance union and Monte-Carlo correction.

Conventions: ``emp_risk`` is the empirical 0-1 error of the Gibbs (stochastic) classifier Q on the
``m`` training examples, ``kl`` is KL(Q || P) in nats with a prior P chosen before seeing the data,
``delta`` is the failure probability. Every bound holds with probability at least ``1 - delta`` over the
sample, simultaneously for all posteriors Q, for losses in [0, 1]. Results are returned unclipped:
a value of 1 or more is vacuous.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from genbound._checks import as_array, check_int, check_positive, check_probability

__all__ = [
    "kl_bernoulli",
    "kl_inverse",
    "kl_inverse_lower",
    "kl_diag_gaussians",
    "mcallester_bound",
    "langford_seeger_bound",
    "CATONI_GRID",
    "CatoniBound",
    "catoni_bound",
    "sample_convergence_bound",
    "dziugaite_roy_complexity",
    "dziugaite_roy_bound",
]



# ----------------------------------------------------------------------------------------------------
# validation of array arguments
# ----------------------------------------------------------------------------------------------------

def _as_array(x, name, lo, hi, allow_inf=False):
    """Float64 array of ``x`` with values in [lo, hi] (``hi`` may be inf when ``allow_inf``)."""
    arr = as_array(x, name)
    if arr.dtype.kind == "b" or arr.dtype.kind not in "fiu":
        raise TypeError(f"{name}: expected real numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if np.isnan(arr).any():
        raise ValueError(f"{name}: expected numbers in [{lo}, {hi}], got NaN")
    if not allow_inf and np.isinf(arr).any():
        raise ValueError(f"{name}: expected finite numbers in [{lo}, {hi}], got inf")
    bad = (arr < lo) | (arr > hi)
    if bad.any():
        raise ValueError(f"{name}: expected numbers in [{lo}, {hi}], got {arr[bad].flat[0]!r}")
    return arr


def _probability_and(q, other, name, hi):
    """``q`` checked in [0, 1] and ``other`` in [0, hi], broadcast together, and whether both were scalars."""
    q = _as_array(q, "q", 0, 1)
    other = _as_array(other, name, 0, hi, allow_inf=math.isinf(hi))
    scalar = q.ndim == 0 and other.ndim == 0
    try:
        q, other = np.broadcast_arrays(q, other)
    except ValueError:
        raise ValueError(f"{name}: expected a shape that broadcasts with q's {q.shape}, got {other.shape}") from None
    return q, other, scalar


def _result(arr, scalar):
    return float(arr) if scalar else arr


def _g_series(x):
    """(1+x) ln(1+x) - x for |x| <= 0.1, by its series sum_{k>=2} (-1)^k x^k / (k(k-1)) (20 terms)."""
    acc = np.zeros_like(x)
    for k in range(21, 1, -1):
        acc = acc * x + (1.0 if k % 2 == 0 else -1.0) / (k * (k - 1))
    return acc * x * x


def _kl_half(u, v, d):
    r""":math:`u\ln(u/v) - d = v\,g(d/v)` with :math:`d = u - v` given separately (computed where it is exact)
    and :math:`g(x) = (1+x)\ln(1+x) - x \ge 0`; ``v`` for ``u = 0``, ``inf`` for ``v = 0 < u``.

    Near ``u = v`` (``|d| <= 0.1 v``) the series of g keeps full relative precision; elsewhere
    :math:`\ln(u/v)` is far from 0 (taken as ``log(u) - log(v)`` where ``u/v`` leaves the normal range)
    and the difference loses at most a factor 20."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
        x = d / v
        near = np.abs(d) <= 0.1 * v
        ratio = u / v
        normal = np.isfinite(ratio) & (ratio >= np.finfo(np.float64).tiny)
        log_ratio = np.where(normal, np.log(np.where(normal, ratio, 1.0)), np.log(u) - np.log(v))
        out = np.where(near, v * _g_series(np.where(near, x, 0.0)), u * log_ratio - d)
        out = np.where(u == 0, v, out)
        out = np.where((v == 0) & (u > 0), np.inf, out)
    return np.maximum(out, 0.0)


def _kl_unchecked(q, p):
    r"""Binary kl(q || p) on arrays already in [0, 1], with full relative precision everywhere.

    :math:`\mathrm{kl}(q\|p) = p\,g(a) + (1-p)\,g(b)` with :math:`g(x) = (1+x)\ln(1+x) - x`,
    :math:`a = (q-p)/p`, :math:`b = (p-q)/(1-p)`: the linear parts cancel exactly
    (:math:`pa + (1-p)b = 0`), so the kl is a sum of two non-negative terms and nothing cancels near
    :math:`p = q`, where the textbook form loses its digits. ``q - p`` is formed once, from the inputs
    (exact when they are within a factor 2), never from ``1 - q`` and ``1 - p``."""
    q = np.asarray(q, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    d = q - p
    out = _kl_half(q, p, d) + _kl_half(1.0 - q, 1.0 - p, -d)
    return np.where(d == 0, 0.0, out)


# ----------------------------------------------------------------------------------------------------
# binary kl and its inverses
# ----------------------------------------------------------------------------------------------------

def kl_bernoulli(q, p):
    r"""Binary relative entropy :math:`\mathrm{kl}(q \,\|\, p)` in nats.

    .. math::

        \mathrm{kl}(q\,\|\,p) = q \ln\frac{q}{p} + (1-q)\ln\frac{1-q}{1-p}

    with the conventions :math:`0 \ln 0 = 0` and :math:`x \ln(x/0) = +\infty` for :math:`x > 0`, so
    ``kl(q, 0) = inf`` for ``q > 0``, ``kl(q, 1) = inf`` for ``q < 1``, ``kl(q, q) = 0``.

    Evaluated as :math:`p\,g\bigl(\tfrac{q-p}{p}\bigr) + (1-p)\,g\bigl(\tfrac{p-q}{1-p}\bigr)`,
    :math:`g(x) = (1+x)\ln(1+x) - x \ge 0` (the linear parts of the two terms cancel exactly), with the
    series of g where its argument is below 0.1 in magnitude: a sum of two non-negative terms, so the
    relative error stays below 1e-13 also for ``p`` next to ``q``, where the textbook form cancels
    (checked against mpmath at 60 digits, including subnormal and near-1 inputs).

    Parameters
    ----------
    q, p : float or array_like
        Probabilities in [0, 1]; broadcast together.

    Returns
    -------
    float or numpy.ndarray
        A float when both inputs are scalars.
    """
    q, p, scalar = _probability_and(q, p, "p", 1.0)
    return _result(_kl_unchecked(q, p), scalar)


#: Relative and absolute margins of the kl inverses: they return a p whose kl, as computed (relative error
#: below 1e-13, absolute error below 1e-322, tested against mpmath), is at least ``c (1 + 1e-12) + 1e-320``,
#: so the exact kl(q || p) is at least c and p lies on the valid side of the root.
_KL_REL_MARGIN = 1e-12
_KL_ABS_MARGIN = 1e-320


def _guarded(c):
    return c * (1.0 + _KL_REL_MARGIN) + _KL_ABS_MARGIN


def _bits(x):
    return np.asarray(x, dtype=np.float64).view(np.int64)


def _floats(b):
    return np.asarray(b, dtype=np.int64).view(np.float64)


def _bisect_bits(q, good, bad, target):
    """Bisection on the bit patterns of non-negative floats (ordered like the floats) between ``good``, where
    kl(q || .) >= target holds, and ``bad``, where it does not, until they are adjacent floats; returns good."""
    g, b = _bits(good).copy(), _bits(bad).copy()
    for _ in range(66):  # 2^63 patterns: 64 halvings make them adjacent
        gap = np.abs(g - b) > 1
        if not gap.any():
            break
        mid = (g + b) // 2
        ok = _kl_unchecked(q, _floats(mid)) >= target
        g = np.where(gap & ok, mid, g)
        b = np.where(gap & ~ok, mid, b)
    return _floats(g)


def _kl_inverse_upper(q, c):
    """Vectorized sup{p in [q, 1] : kl(q||p) <= c}, rounded up, for validated, broadcast arrays."""
    q = np.array(q, dtype=np.float64)
    c = np.array(c, dtype=np.float64)
    out = np.ones_like(q)  # q = 1 or c = inf: 1
    zero_c = c == 0
    out[zero_c] = q[zero_c]
    todo = ~zero_c & (q < 1) & np.isfinite(c)
    if todo.any():
        qq = q[todo]
        # kl(q || .) grows on [q, 1] from 0 to inf: 1 satisfies kl >= target, q does not
        out[todo] = _bisect_bits(qq, np.ones_like(qq), qq, _guarded(c[todo]))
    return out


def kl_inverse(q, c):
    r"""Upper inverse of the binary kl: :math:`\mathrm{kl}^{-1}(q, c) = \sup\{p \in [q, 1] :
    \mathrm{kl}(q\,\|\,p) \le c\}`, rounded up (never below the exact value).

    ``c = 0`` gives ``q``; ``q = 1`` or ``c = inf`` gives 1. Otherwise the result is the smallest float
    ``p`` in ``[q, 1]`` whose kl, as computed by :func:`kl_bernoulli` (relative error below 1e-13), is at
    least :math:`c\,(1 + 10^{-12}) + 10^{-320}`, found by bisection on the bit patterns of the floats
    (64 halvings at most). So the exact :math:`\mathrm{kl}(q\|p) \ge c`: the result is never below the
    root, whatever the inputs (``q = 0``, ``q`` next to 1, subnormal ``q`` or ``c``, products ``q c``
    that underflow), and above it by a relative 1e-12 at most, or by one float where the root is
    within one float of ``q`` (a budget too small to move ``q`` still moves it up by one float). For
    ``q < 1`` the exact value is below 1 but may round to 1.0 when ``c`` is large.

    Parameters
    ----------
    q : float or array_like
        Empirical error(s) in [0, 1].
    c : float or array_like
        Budget(s) >= 0 (``inf`` allowed); broadcast with ``q``.

    Returns
    -------
    float or numpy.ndarray
        A float when both inputs are scalars.
    """
    q, c, scalar = _probability_and(q, c, "c", np.inf)
    return _result(_kl_inverse_upper(q, c), scalar)


def kl_inverse_lower(q, c):
    r"""Lower inverse of the binary kl: :math:`\inf\{p \in [0, q] : \mathrm{kl}(q\,\|\,p) \le c\}`,
    rounded down (never above the exact value).

    ``c = 0`` gives ``q``; ``q = 0`` or ``c = inf`` gives 0. Otherwise the largest float ``p`` in
    ``[0, q]`` whose computed kl is at least :math:`c\,(1 + 10^{-12}) + 10^{-320}` (bisection on the bit
    patterns, as in :func:`kl_inverse`), so the exact :math:`\mathrm{kl}(q\|p) \ge c` and ``p`` is at or
    below the exact lower inverse. It is computed directly, not as ``1 - kl_inverse(1 - q, c)``, which
    rounds ``1 - q`` and can land above the true value.

    Parameters
    ----------
    q : float or array_like
        Value(s) in [0, 1].
    c : float or array_like
        Budget(s) >= 0 (``inf`` allowed).

    Returns
    -------
    float or numpy.ndarray
    """
    q, c, scalar = _probability_and(q, c, "c", np.inf)
    q = np.array(q, dtype=np.float64)
    c = np.array(c, dtype=np.float64)
    out = np.zeros_like(q)  # q = 0 or c = inf: 0
    zero_c = c == 0
    out[zero_c] = q[zero_c]
    todo = ~zero_c & (q > 0) & np.isfinite(c)
    if todo.any():
        qq = q[todo]
        # kl(q || .) falls on [0, q] from inf to 0: 0 satisfies kl >= target, q does not
        out[todo] = _bisect_bits(qq, np.zeros_like(qq), qq, _guarded(c[todo]))
    return _result(out, scalar)


# ----------------------------------------------------------------------------------------------------
# KL between diagonal Gaussians
# ----------------------------------------------------------------------------------------------------

def _expm1_minus(t):
    """exp(t) - 1 - t, accurate also for small |t| (series below 1e-2)."""
    t = np.asarray(t, dtype=np.float64)
    small = np.abs(t) < 1e-2
    series = t * t * (0.5 + t * (1 / 6 + t * (1 / 24 + t * (1 / 120 + t * (1 / 720 + t / 5040)))))
    return np.where(small, series, np.expm1(t) - t)


def kl_diag_gaussians(mu_q, sigma_q, mu_p, sigma_p):
    r"""KL divergence between diagonal Gaussians, in nats.

    .. math::

        \mathrm{KL}\bigl(\mathcal N(\mu_q, \mathrm{diag}\,\sigma_q^2) \,\big\|\,
        \mathcal N(\mu_p, \mathrm{diag}\,\sigma_p^2)\bigr)
        = \sum_i \Bigl[\frac{(\mu_{q,i} - \mu_{p,i})^2}{2\sigma_{p,i}^2}
          + \tfrac12\bigl(r_i - 1 - \ln r_i\bigr)\Bigr], \qquad r_i = \sigma_{q,i}^2/\sigma_{p,i}^2.

    The variance term is evaluated as :math:`\tfrac12(e^{t} - 1 - t)` with
    :math:`t = 2(\ln\sigma_q - \ln\sigma_p)`, which keeps full precision when :math:`\sigma_q \approx
    \sigma_p` and never overflows before the result does.

    Parameters
    ----------
    mu_q, sigma_q : array_like
        Posterior mean and standard deviations (> 0). Standard deviations, not variances.
    mu_p, sigma_p : array_like
        Prior mean and standard deviations (> 0); a scalar ``sigma_p`` is the isotropic prior
        :math:`\mathcal N(\mu_p, \sigma_p^2 I)` (Dziugaite & Roy's :math:`\lambda` is
        :math:`\sigma_p^2`).
        All four are broadcast together; the sum runs over the broadcast shape.

    Returns
    -------
    float
    """
    mu_q = _as_array(mu_q, "mu_q", -np.inf, np.inf)
    mu_p = _as_array(mu_p, "mu_p", -np.inf, np.inf)
    sigma_q = _as_array(sigma_q, "sigma_q", 0, np.inf)
    sigma_p = _as_array(sigma_p, "sigma_p", 0, np.inf)
    for name, s in (("sigma_q", sigma_q), ("sigma_p", sigma_p)):
        if (s <= 0).any():
            raise ValueError(f"{name}: expected standard deviations > 0, got {s[s <= 0].flat[0]!r}")
    for name, arr in (("sigma_q", sigma_q), ("mu_p", mu_p), ("sigma_p", sigma_p)):
        try:
            fits = np.broadcast_shapes(arr.shape, mu_q.shape) == mu_q.shape
        except ValueError:
            fits = False
        if not fits:  # a (3,) against a (3, 1) would silently sum a 3 x 3 table
            raise ValueError(f"{name}: expected a scalar or a shape that broadcasts to mu_q's {mu_q.shape}, "
                             f"got {arr.shape}")
    mu_q, sigma_q, mu_p, sigma_p = np.broadcast_arrays(mu_q, sigma_q, mu_p, sigma_p)
    t = 2.0 * (np.log(sigma_q) - np.log(sigma_p))
    mean_term = 0.5 * ((mu_q - mu_p) / sigma_p) ** 2
    return float(np.sum(mean_term) + 0.5 * np.sum(_expm1_minus(t)))


# ----------------------------------------------------------------------------------------------------
# PAC-Bayes bounds
# ----------------------------------------------------------------------------------------------------

def _check_common(emp_risk, kl, m, delta, emp_name="emp_risk", m_min=1):
    emp_risk = check_probability(emp_risk, emp_name, open_interval=False)
    kl = check_positive(kl, "kl", allow_zero=True)
    m = check_int(m, "m", minimum=m_min)
    delta = check_probability(delta, "delta")
    return emp_risk, kl, m, delta


def _maurer_complexity(kl, m, delta):
    return (kl + math.log(2.0 * math.sqrt(m) / delta)) / m


def mcallester_bound(emp_risk, kl, m, delta):
    r"""McAllester's PAC-Bayes bound in Maurer's form.

    For a loss in [0, 1], :math:`m \ge 8`, any prior P fixed before the sample: with probability at
    least :math:`1-\delta`, for all posteriors Q,

    .. math::

        R(Q) \;\le\; \hat R_S(Q) + \sqrt{\frac{\mathrm{KL}(Q\|P) + \ln(2\sqrt m/\delta)}{2m}}

    (Maurer's bound :math:`\mathrm{kl}(\hat R\|R) \le (\mathrm{KL} + \ln(2\sqrt m/\delta))/m` relaxed by
    Pinsker's inequality :math:`\mathrm{kl}(q\|p) \ge 2(p-q)^2`).

    Parameters
    ----------
    emp_risk : float
        Empirical Gibbs risk in [0, 1].
    kl : float
        KL(Q || P) in nats, >= 0.
    m : int
        Number of training examples, >= 8 (Maurer's condition).
    delta : float
        Failure probability in (0, 1).

    Returns
    -------
    float
        Unclipped; values >= 1 are vacuous.

    References
    ----------
    D. McAllester, "PAC-Bayesian model averaging", COLT 1999; A. Maurer, "A note on the PAC Bayesian
    theorem", arXiv:cs/0411099, 2004 (Theorem 5).
    """
    emp_risk, kl, m, delta = _check_common(emp_risk, kl, m, delta, m_min=8)
    return emp_risk + math.sqrt(_maurer_complexity(kl, m, delta) / 2.0)


def langford_seeger_bound(emp_risk, kl, m, delta):
    r"""Langford-Seeger (PAC-Bayes-kl) bound with Maurer's constant.

    For a loss in [0, 1] (0-1 error), :math:`m \ge 8`, any prior P fixed before the sample: with
    probability at least :math:`1-\delta`, for all posteriors Q,

    .. math::

        \mathrm{kl}\bigl(\hat R_S(Q) \,\|\, R(Q)\bigr) \le
        \frac{\mathrm{KL}(Q\|P) + \ln(2\sqrt m/\delta)}{m}
        \quad\Longrightarrow\quad
        R(Q) \le \mathrm{kl}^{-1}\Bigl(\hat R_S(Q),\ \frac{\mathrm{KL} + \ln(2\sqrt m/\delta)}{m}\Bigr).

    Parameters
    ----------
    emp_risk, kl, m, delta
        As in :func:`mcallester_bound` (``m >= 8``).

    Returns
    -------
    float
        In [emp_risk, 1].

    References
    ----------
    J. Langford, M. Seeger, "Bounds for averaging classifiers", CMU-CS-01-102, 2001; M. Seeger,
    "PAC-Bayesian generalisation error bounds for Gaussian process classification", JMLR 2002;
    constant :math:`2\sqrt m` from A. Maurer, arXiv:cs/0411099, 2004.
    """
    emp_risk, kl, m, delta = _check_common(emp_risk, kl, m, delta, m_min=8)
    return kl_inverse(emp_risk, _maurer_complexity(kl, m, delta))


#: Default grid of Catoni's constant C: C_k = 10**(k/10), k = -20, ..., 20 (41 values, 0.01 to 100).
CATONI_GRID = tuple(float(10.0 ** (k / 10.0)) for k in range(-20, 21))


class CatoniBound(NamedTuple):
    """Result of :func:`catoni_bound`: the smallest bound over the grid and the C attaining it."""

    bound: float
    C: float


def catoni_bound(emp_risk, kl, m, delta, grid=None):
    r"""Catoni's PAC-Bayes bound, optimized over a finite grid of C with a union bound.

    For a fixed :math:`C > 0`, a loss in [0, 1] and a prior P fixed before the sample, with probability
    at least :math:`1-\delta`, for all posteriors Q (Catoni 2007, Theorem 1.2.6, with
    :math:`C = \lambda/m`):

    .. math::

        R(Q) \;\le\; \frac{1 - \exp\!\bigl(-C \hat R_S(Q) - (\mathrm{KL}(Q\|P) + \ln(1/\delta))/m\bigr)}
                         {1 - e^{-C}}.

    The grid :math:`G` (data-independent) is paid for by a union bound: each C is used at confidence
    :math:`\delta/|G|`, i.e. :math:`\ln(1/\delta)` becomes :math:`\ln(|G|/\delta)`, and the minimum over
    G holds with probability at least :math:`1 - \delta`.

    Parameters
    ----------
    emp_risk, kl : float
        As in :func:`mcallester_bound`.
    m : int
        Number of training examples, >= 1.
    delta : float
        Total failure probability in (0, 1).
    grid : sequence of float, optional
        Values of C (> 0, finite), chosen before seeing the data. Default :data:`CATONI_GRID`
        (41 values :math:`10^{k/10}`, :math:`k = -20..20`). A one-element grid gives the fixed-C bound.

    Returns
    -------
    CatoniBound
        ``(bound, C)``: the minimum over the grid (unclipped) and the C attaining it (the first one
        on ties).

    References
    ----------
    O. Catoni, *PAC-Bayesian supervised classification: the thermodynamics of statistical learning*,
    IMS Lecture Notes Monograph Series 56, 2007, Theorem 1.2.6.
    """
    emp_risk, kl, m, delta = _check_common(emp_risk, kl, m, delta)
    grid = CATONI_GRID if grid is None else grid
    C = np.atleast_1d(_as_array(grid, "grid", 0, np.inf))
    if C.ndim != 1 or C.size == 0:
        raise ValueError(f"grid: expected a non-empty 1-d sequence of C > 0, got shape {C.shape}")
    if (C <= 0).any():
        raise ValueError(f"grid: expected values C > 0, got {C[C <= 0][0]!r}")
    penalty = (kl + math.log(C.size / delta)) / m
    values = -np.expm1(-C * emp_risk - penalty) / -np.expm1(-C)
    i = int(np.argmin(values))
    return CatoniBound(float(values[i]), float(C[i]))


# ----------------------------------------------------------------------------------------------------
# Dziugaite & Roy (2017)
# ----------------------------------------------------------------------------------------------------

def sample_convergence_bound(emp_error, n_samples, delta):
    r"""Upper confidence bound on a Gibbs error estimated from ``n_samples`` Monte-Carlo weight draws.

    If :math:`\hat e_n` is the average training error of :math:`n` = ``n_samples`` networks drawn i.i.d.
    from Q, then with probability at least :math:`1-\delta` over the draws (Langford & Caruana, NIPS 2001,
    the sample convergence bound used by Dziugaite & Roy 2017 with :math:`\delta' = 0.01`)

    .. math::

        \mathrm{kl}(\hat e_n \,\|\, \hat e(Q)) \le \frac{\ln(2/\delta)}{n}
        \quad\Longrightarrow\quad
        \hat e(Q) \le \mathrm{kl}^{-1}\bigl(\hat e_n,\ \ln(2/\delta)/n\bigr).

    Parameters
    ----------
    emp_error : float
        Monte-Carlo estimate in [0, 1].
    n_samples : int
        Number of Monte-Carlo draws, >= 1.
    delta : float
        Failure probability in (0, 1).

    Returns
    -------
    float
    """
    emp_error = check_probability(emp_error, "emp_error", open_interval=False)
    n_samples = check_int(n_samples, "n_samples", minimum=1)
    delta = check_probability(delta, "delta")
    return kl_inverse(emp_error, math.log(2.0 / delta) / n_samples)


def _prior_log_term(prior_grid_j, prior_lambda, b, c):
    """2 ln(b ln(c/lambda)) and the matching j; None when no prior grid is used."""
    if prior_grid_j is not None and prior_lambda is not None:
        raise ValueError("prior_grid_j, prior_lambda: expected at most one of them, got both")
    if prior_grid_j is not None:
        j = check_int(prior_grid_j, "prior_grid_j", minimum=1)
        return 2.0 * math.log(j)  # lambda = c exp(-j/b)  =>  b ln(c/lambda) = j exactly
    if prior_lambda is not None:
        lam = check_positive(prior_lambda, "prior_lambda")
        j = b * math.log(c / lam)
        j_int = round(j)
        if j_int < 1 or abs(j - j_int) > 1e-6 * max(1.0, abs(j)):
            raise ValueError(
                "prior_lambda: expected a grid point c*exp(-j/b) with integer j >= 1 "
                f"(b = {b:g}, c = {c:g}), got lambda = {lam!r} (j = {j:.6g})")
        return 2.0 * math.log(b * math.log(c / lam))
    return None


def dziugaite_roy_complexity(kl, m, delta=0.025, prior_grid_j=None, b=100, c=0.1, *, prior_lambda=None):
    r"""The complexity term B of Dziugaite & Roy's (2017) final bound.

    With the prior :math:`\mathcal N(w_0, \lambda I)` and :math:`\lambda = c\,e^{-j/b}`, :math:`j \in
    \{1, 2, \dots\}` (a union bound over j with weights :math:`6/(\pi^2 j^2)`):

    .. math::

        B = \frac{\mathrm{KL}(Q\|P) + 2\ln\bigl(b \ln(c/\lambda)\bigr) + \ln\frac{\pi^2 m}{6\delta}}{m-1},

    where :math:`2\ln(b\ln(c/\lambda)) = 2 \ln j`. Without a prior grid (``prior_grid_j`` and
    ``prior_lambda`` both None: a single prior fixed in advance) the union is not needed and
    :math:`B = (\mathrm{KL} + \ln(m/\delta))/(m-1)`, the PAC-Bayes-kl bound in the form D&R use.

    Parameters
    ----------
    kl : float
        KL(Q || P) in nats, >= 0.
    m : int
        Number of training examples, >= 2.
    delta : float
        Failure probability in (0, 1); D&R use 0.025.
    prior_grid_j : int, optional
        Grid index j >= 1 of the prior variance.
    b, c : float
        Grid constants (D&R: b = 100, c = 0.1).
    prior_lambda : float, optional
        The prior variance itself instead of j; it must be a grid point :math:`c e^{-j/b}` with integer
        :math:`j \ge 1` (up to 1e-6 relative), and the term is computed from it as printed.

    Returns
    -------
    float
    """
    kl = check_positive(kl, "kl", allow_zero=True)
    m = check_int(m, "m", minimum=2)
    delta = check_probability(delta, "delta")
    b = check_positive(b, "b")
    c = check_positive(c, "c")
    log_j = _prior_log_term(prior_grid_j, prior_lambda, b, c)
    if log_j is None:
        return (kl + math.log(m / delta)) / (m - 1)
    return (kl + log_j + math.log(math.pi ** 2 * m / (6.0 * delta))) / (m - 1)


def dziugaite_roy_bound(emp_gibbs_error, kl, m, delta=0.025, prior_grid_j=None, b=100, c=0.1,
                        n_samples=None, delta_prime=0.01, *, prior_lambda=None):
    r"""Dziugaite & Roy's (2017) final PAC-Bayes bound on the error of a stochastic network.

    .. math::

        e(Q) \;\le\; \mathrm{kl}^{-1}\bigl(\bar e,\ B\bigr), \qquad
        \bar e = \mathrm{kl}^{-1}\bigl(\hat e_{n},\ \ln(2/\delta')/n\bigr),

    with B from :func:`dziugaite_roy_complexity` and :math:`\hat e_n` the training error averaged over
    ``n_samples`` networks sampled from Q (:func:`sample_convergence_bound`). It holds with probability at
    least :math:`1 - \delta - \delta'` (over the sample and the Monte-Carlo draws). With
    ``n_samples=None`` the empirical Gibbs error is taken as exact: :math:`\bar e = \hat e`, probability
    :math:`1 - \delta`.

    Parameters
    ----------
    emp_gibbs_error : float
        Training error of the stochastic network (Monte-Carlo estimate if ``n_samples`` is given), in
        [0, 1].
    kl : float
        KL(Q || P) in nats, >= 0 (e.g. from :func:`kl_diag_gaussians`).
    m : int
        Number of training examples, >= 2.
    delta : float
        Failure probability of the PAC-Bayes part, in (0, 1); D&R: 0.025.
    prior_grid_j, b, c, prior_lambda
        Prior variance grid, see :func:`dziugaite_roy_complexity` (D&R: b = 100, c = 0.1).
    n_samples : int, optional
        Number of Monte-Carlo weight samples behind ``emp_gibbs_error`` (D&R: 150,000).
    delta_prime : float
        Failure probability of the Monte-Carlo part, in (0, 1), with ``delta + delta_prime < 1`` (else a
        ValueError: the statement would be empty); D&R: 0.01.

    Returns
    -------
    float

    References
    ----------
    G. K. Dziugaite, D. M. Roy, "Computing nonvacuous generalization bounds for deep (stochastic)
    neural networks with many more parameters than training data", UAI 2017 (arXiv:1703.11008).
    """
    emp_gibbs_error = check_probability(emp_gibbs_error, "emp_gibbs_error", open_interval=False)
    B = dziugaite_roy_complexity(kl, m, delta, prior_grid_j, b, c, prior_lambda=prior_lambda)
    delta_prime = check_probability(delta_prime, "delta_prime")
    if n_samples is not None and delta + delta_prime >= 1:
        raise ValueError(f"delta_prime: expected delta + delta_prime < 1 (the bound holds with probability "
                         f"1 - delta - delta_prime), got delta = {delta!r}, delta_prime = {delta_prime!r}")
    if n_samples is None:
        upper = emp_gibbs_error
    else:
        n_samples = check_int(n_samples, "n_samples", minimum=1)
        upper = sample_convergence_bound(emp_gibbs_error, n_samples, delta_prime)
    return kl_inverse(upper, B)
