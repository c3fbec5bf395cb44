r"""CP (rank-R) filter algebra: reconstruction, the chain rule, the factored update (Eqs. 2-3), CP fitting.

A 3-D convolution filter of shape (C, kh, kw) is kept in CP form,

.. math::

    W_{ijk} = \sum_{r=1}^{R} p_{ri}\, q_{rj}\, t_{rk},

with factor arrays that always carry an output axis and a rank axis: ``p`` (O, R, C), ``q`` (O, R, kh),
``t`` (O, R, kw); rank 1 is ``R = 1``. Every function that takes ``p, q, t`` also takes a list of ``d``
factor arrays ``[f1, ..., fd]`` of shapes (O, R, n_i) for an order-``d`` CP tensor.

Training the factors by gradient descent with learning rate :math:`\alpha` moves the weight to

.. math::

    W'' = (p - \alpha g_p) \otimes (q - \alpha g_q) \otimes (t - \alpha g_t) = W - \alpha \Delta,

    \Delta = \sum_{\emptyset \ne S \subseteq \{1..d\}} (-\alpha)^{|S|-1}
              \bigotimes_n \begin{cases} g_n & n \in S \\ f_n & n \notin S \end{cases}

(Lee & Lee, Eqs. 2-3, with the misprint of Eq. 3 corrected; see ``genbound.symbolic``).

References
----------
Lee & Lee, "Effect of local search with real data on generalization in deep learning".
T. G. Kolda and B. W. Bader, "Tensor decompositions and applications", SIAM Review 51(3), 2009.
L. De Lathauwer, B. De Moor and J. Vandewalle, "On the best rank-1 and rank-(R1, R2, ..., RN)
approximation of higher-order tensors", SIAM J. Matrix Anal. Appl. 21(4), 2000.
V. de Silva and L.-H. Lim, "Tensor rank and the ill-posedness of the best low-rank approximation
problem", SIAM J. Matrix Anal. Appl. 30(3), 2008.
"""
from __future__ import annotations

import numbers
import string
import warnings
from collections import namedtuple
from dataclasses import dataclass, field

import numpy as np

from genbound._checks import as_float_array, check_int, check_positive
from genbound._rng import as_generator

__all__ = [
    "reconstruct",
    "factor_grads",
    "delta",
    "factor_step",
    "weight_step",
    "eq2_step",
    "departure",
    "departure_table",
    "Departure",
    "cp_jacobian",
    "cp_manifold_dimension",
    "rank1_manifold_dimension",
    "ManifoldDimension",
    "decompose",
    "project_rank",
    "CPResult",
    "DegeneracyWarning",
]

_ORDER3_NAMES = ("p", "q", "t")
_ORDER3_GRAD_NAMES = ("gp", "gq", "gt")


# ----------------------------------------------------------------------------------------------------
# validation helpers
# ----------------------------------------------------------------------------------------------------

def _common_dtype(arrays):
    """float32 when every input is float32, else float64."""
    kinds = [np.asarray(a).dtype for a in arrays]
    if kinds and all(k == np.float32 for k in kinds):
        return np.float32
    return np.float64


def _check_lr(lr, name="lr"):
    if lr is None:
        raise TypeError(f"{name}: a learning rate is required")
    if isinstance(lr, bool) or not isinstance(lr, numbers.Real):
        raise TypeError(f"{name}: expected a real number, got {type(lr).__name__} {lr!r}")
    lr = float(lr)
    if not np.isfinite(lr):
        raise ValueError(f"{name}: expected a finite number, got {lr}")
    return lr


def _names(order, grads=False, listed=False):
    if order == 3 and not listed:
        return _ORDER3_GRAD_NAMES if grads else _ORDER3_NAMES
    base = "grads" if grads else "factors"
    return tuple(f"{base}[{i}]" for i in range(order))


def _check_factors(factors, names, dtype=None, what="factors"):
    """Validate a sequence of CP factor arrays of shapes (O, R, n_i) sharing O and R."""
    factors = list(factors)
    if len(factors) < 1:
        raise ValueError(f"{what}: expected at least one factor array, got none")
    if dtype is None:
        dtype = _common_dtype(factors)
    out = []
    for f, name in zip(factors, names):
        arr = np.asarray(f)
        if arr.ndim != 3:
            raise ValueError(f"{name}: expected a 3-d factor array (O, R, n), got shape {arr.shape}")
        out.append(as_float_array(arr, name, dtype=dtype))
    o_r = {(a.shape[0], a.shape[1]) for a in out}
    if len(o_r) != 1:
        shapes = ", ".join(f"{n} {a.shape}" for n, a in zip(names, out))
        raise ValueError(
            f"{what}: factor arrays must share the output and rank axes (O, R); got {shapes}"
        )
    if out[0].shape[1] < 1:
        raise ValueError(f"{what}: the rank axis must have length >= 1, got shape {out[0].shape}")
    return out


def _check_grads(grads, factors, fnames, gnames, dtype):
    if len(grads) != len(factors):
        raise ValueError(
            f"got {len(factors)} factor arrays but {len(grads)} gradient arrays: the lists must have the "
            "same order (one gradient per factor)"
        )
    out = []
    for g, f, gname, fname in zip(grads, factors, gnames, fnames):
        arr = np.asarray(g)
        if arr.shape != f.shape:
            raise ValueError(f"{gname}: expected shape {f.shape} to match {fname}, got {arr.shape}")
        out.append(as_float_array(arr, gname, dtype=dtype))
    return out


def _is_seq(x):
    return isinstance(x, (list, tuple))


def _parse_factor_grad_call(args, lr, fname):
    """Parse ``(p, q, t, gp, gq, gt, lr)`` or ``(factors, grads, lr)``."""
    args = list(args)
    if len(args) in (2, 3) and _is_seq(args[0]) and _is_seq(args[1]):
        if len(args) == 3:
            if lr is not None:
                raise TypeError(f"{fname}: lr given both positionally and by keyword")
            lr = args[2]
        factors, grads = list(args[0]), list(args[1])
        fnames = _names(len(factors), listed=True)
        gnames = _names(len(grads), grads=True, listed=True)
    elif len(args) in (6, 7):
        if len(args) == 7:
            if lr is not None:
                raise TypeError(f"{fname}: lr given both positionally and by keyword")
            lr = args[6]
        factors, grads = args[:3], args[3:6]
        fnames, gnames = _ORDER3_NAMES, _ORDER3_GRAD_NAMES
    else:
        raise TypeError(
            f"{fname}: call as {fname}(p, q, t, gp, gq, gt, lr) or {fname}([f1, ..., fd], [g1, ..., gd], lr); "
            f"got {len(args)} positional arguments"
        )
    lr = _check_lr(lr)
    dtype = _common_dtype(list(factors) + list(grads))
    if len(grads) != len(factors):
        raise ValueError(
            f"{fname}: got {len(factors)} factor arrays but {len(grads)} gradient arrays: the lists must "
            "have the same order (one gradient per factor)"
        )
    factors = _check_factors(factors, fnames, dtype=dtype)
    grads = _check_grads(grads, factors, fnames, gnames, dtype)
    return factors, grads, lr, fnames


def _parse_factors(args, fname):
    if len(args) == 1 and _is_seq(args[0]):
        factors = list(args[0])
        names = _names(len(factors), listed=True)
    elif len(args) >= 1:
        factors = list(args)
        names = _names(len(factors)) if len(factors) == 3 else tuple(f"f{i + 1}" for i in range(len(factors)))
    else:
        raise TypeError(f"{fname}: call as {fname}(p, q, t) or {fname}([f1, ..., fd])")
    return _check_factors(factors, names), names


# ----------------------------------------------------------------------------------------------------
# outer products
# ----------------------------------------------------------------------------------------------------

def _outer(a, f):
    """Outer product along trailing axes, batched over (O, R): (O, R, *s) x (O, R, n) -> (O, R, *s, n)."""
    o, r = f.shape[:2]
    return (a.reshape(o, r, -1, 1) * f[:, :, None, :]).reshape(a.shape + (f.shape[2],))


def _outer_all(factors):
    cur = factors[0]
    for f in factors[1:]:
        cur = _outer(cur, f)
    return cur


# ----------------------------------------------------------------------------------------------------
# reconstruction and the chain rule
# ----------------------------------------------------------------------------------------------------

def reconstruct(*factors):
    r"""Full filters from CP factors, any rank and order.

    Call as ``reconstruct(p, q, t)`` or ``reconstruct([f1, ..., fd])``.

    .. math::

        W[o] = \sum_{r=1}^{R} f_1[o, r] \otimes \cdots \otimes f_d[o, r]

    Parameters
    ----------
    p, q, t : ndarray
        Factor arrays of shapes (O, R, C), (O, R, kh), (O, R, kw); or one list of d arrays (O, R, n_i).

    Returns
    -------
    ndarray
        Shape (O, n_1, ..., n_d); float32 when every factor is float32, else float64.

    References
    ----------
    Kolda & Bader 2009, Sec. 3 (the CP model).
    """
    fs, _ = _parse_factors(factors, "reconstruct")
    return _outer_all(fs).sum(axis=1)


def _einsum_grad_spec(order, mode):
    letters = string.ascii_lowercase.replace("o", "").replace("r", "")
    if order > len(letters):
        raise ValueError(f"order {order} is too large (at most {len(letters)})")
    idx = letters[:order]
    inputs = ["o" + idx] + ["or" + idx[m] for m in range(order) if m != mode]
    return ",".join(inputs) + "->or" + idx[mode]


def factor_grads(G, *factors):
    r"""Gradients of the CP factors from the weight-space gradient (the chain rule).

    Call as ``factor_grads(G, p, q, t)`` or ``factor_grads(G, [f1, ..., fd])``.

    .. math::

        \frac{\partial L}{\partial p_{ri}} = \sum_{jk} G_{ijk}\, q_{rj}\, t_{rk},\qquad
        G = \frac{\partial L}{\partial W},

    and likewise for every other mode (contract ``G`` with all the other factors).

    Parameters
    ----------
    G : ndarray
        Weight-space gradient, shape (O, n_1, ..., n_d).
    p, q, t : ndarray
        Factor arrays (O, R, n_i), or one list of them.

    Returns
    -------
    tuple of ndarray
        ``(gp, gq, gt)`` (a list for the list form), each the shape of its factor.

    References
    ----------
    Lee & Lee (the chain rule behind Eq. 3); Kolda & Bader 2009, Sec. 3.4 (MTTKRP).
    """
    listed = len(factors) == 1 and _is_seq(factors[0])
    fs, names = _parse_factors(factors, "factor_grads")
    G_arr = np.asarray(G)
    expected = (fs[0].shape[0],) + tuple(f.shape[2] for f in fs)
    if G_arr.shape != expected:
        shapes = ", ".join(f"{n} {f.shape}" for n, f in zip(names, fs))
        raise ValueError(f"G: expected shape {expected} to match the factors ({shapes}), got {G_arr.shape}")
    dtype = _common_dtype(fs + [G_arr])
    G_arr = as_float_array(G_arr, "G", dtype=dtype)
    fs = [f.astype(dtype, copy=False) for f in fs]
    d = len(fs)
    grads = []
    for mode in range(d):
        others = [fs[m] for m in range(d) if m != mode]
        if not others:  # order 1: W = sum_r f_r, so every rank term gets G itself
            grads.append(np.ascontiguousarray(np.broadcast_to(G_arr[:, None, :], fs[0].shape)))
            continue
        grads.append(np.einsum(_einsum_grad_spec(d, mode), G_arr, *others, optimize=True))
    return grads if listed else tuple(grads)


# ----------------------------------------------------------------------------------------------------
# Eqs. 2-3: the factored update
# ----------------------------------------------------------------------------------------------------

def _delta_terms(factors, grads, lr):
    """Return (A, B): A = f_1 x ... x f_d and B with prod(f - lr g) = A - lr B, per (O, R)."""
    A = factors[0]
    B = grads[0]
    for f, g in zip(factors[1:], grads[1:]):
        stepped = f - lr * g
        # (A - lr B) x (f - lr g) = A x f - lr (A x g + B x (f - lr g))
        B = _outer(A, g) + _outer(B, stepped)
        A = _outer(A, f)
    return A, B


def delta(*args, lr=None):
    r"""The exact weight move of a factored gradient step, Eq. 3 corrected: ``W'' = W - lr * Delta``.

    Call as ``delta(p, q, t, gp, gq, gt, lr)`` or ``delta([f1, ..., fd], [g1, ..., gd], lr)``.

    .. math::

        \Delta = \sum_{\emptyset \ne S \subseteq \{1, \dots, d\}} (-\alpha)^{|S|-1}
        \bigotimes_{n=1}^{d} \begin{cases} g_n & n \in S \\ f_n & n \notin S \end{cases}

    summed over the R rank-one terms. For d = 3 this is
    :math:`\Delta = p q g_t + q t g_p + p t g_q - \alpha (p g_q g_t + q g_p g_t + t g_p g_q)
    + \alpha^2 g_p g_q g_t` (the paper prints :math:`t g_p g_t` for the last bracketed term).

    The sum is evaluated by the recursion :math:`A_{m+1} = A_m \otimes f`,
    :math:`B_{m+1} = A_m \otimes g + B_m \otimes (f - \alpha g)`, which never divides by
    :math:`\alpha`, so it stays accurate as :math:`\alpha \to 0` (and ``lr = 0`` gives the first-order
    term). Any step direction may stand in for the gradients (momentum, weight decay: see
    :func:`genbound.nn.sgd_direction`); the identity is algebraic.

    Parameters
    ----------
    p, q, t : ndarray
        Factor arrays (O, R, n_i).
    gp, gq, gt : ndarray
        Their gradients (or step directions), same shapes.
    lr : float
        Learning rate, any finite real.

    Returns
    -------
    ndarray
        Delta, shape (O, n_1, ..., n_d).

    References
    ----------
    Lee & Lee, Eqs. 2-3.
    """
    factors, grads, lr, _ = _parse_factor_grad_call(args, lr, "delta")
    _, B = _delta_terms(factors, grads, lr)
    return B.sum(axis=1)


def factor_step(*args, lr=None):
    r"""One gradient step on the factors: ``(p - lr gp, q - lr gq, t - lr gt)``.

    Call as ``factor_step(p, q, t, gp, gq, gt, lr)`` (returns a tuple) or
    ``factor_step([f1, ..., fd], [g1, ..., gd], lr)`` (returns a list).

    .. math::

        (p'', q'', t'') = (p - \alpha g_p,\ q - \alpha g_q,\ t - \alpha g_t)

    References
    ----------
    Lee & Lee, Eq. 2.
    """
    listed = len(args) in (2, 3)
    factors, grads, lr, _ = _parse_factor_grad_call(args, lr, "factor_step")
    out = [f - lr * g for f, g in zip(factors, grads)]
    return out if listed else tuple(out)


def _check_weight_pair(W, G, names=("W", "G")):
    W_arr, G_arr = np.asarray(W), np.asarray(G)
    if W_arr.shape != G_arr.shape:
        raise ValueError(f"{names[1]}: expected shape {W_arr.shape} to match {names[0]}, got {G_arr.shape}")
    dtype = _common_dtype([W_arr, G_arr])
    return as_float_array(W_arr, names[0], dtype=dtype), as_float_array(G_arr, names[1], dtype=dtype)


def weight_step(W, G, lr):
    r"""Plain gradient step on the full weight: ``w' = W - lr * G``.

    .. math::

        w'_{ijk} = w_{ijk} - \alpha \frac{\partial L}{\partial w_{ijk}}

    References
    ----------
    Lee & Lee, Eq. 2 (the definition of :math:`w'`).
    """
    lr = _check_lr(lr)
    W, G = _check_weight_pair(W, G)
    return W - lr * G


def eq2_step(W, G, Delta, lr):
    r"""The factored step written as a correction of the plain step (Eq. 2).

    .. math::

        w'' = w' - \alpha (\Delta - G), \qquad w' = W - \alpha G,

    which equals ``W - lr * Delta``: the factored step is the plain step plus the departure
    :math:`-\alpha(\Delta - G)` (see :func:`departure`).

    References
    ----------
    Lee & Lee, Eq. 2.
    """
    lr = _check_lr(lr)
    W, G = _check_weight_pair(W, G)
    _, D = _check_weight_pair(W, Delta, names=("W", "Delta"))
    w1 = W - lr * G
    return w1 - lr * (D - G)


# ----------------------------------------------------------------------------------------------------
# departure of the factored step from the plain step
# ----------------------------------------------------------------------------------------------------

_ORDER_NAMES = ("first", "second", "third")


@dataclass(frozen=True)
class Departure:
    """``w'' - w'`` (factored step minus plain step) split by order in the learning rate.

    Attributes
    ----------
    terms : tuple of ndarray
        ``terms[k-1]`` is the order-``lr**k`` part, k = 1..d; ``terms[0] = -lr (J J^T - I) G``.
    total : ndarray
        ``w'' - w'`` computed directly from the two steps.
    lr : float
    grad_norm : float
        Frobenius norm of G.
    """

    terms: tuple
    total: np.ndarray
    lr: float
    grad_norm: float

    @property
    def order(self):
        """Order d of the CP tensor (number of parts)."""
        return len(self.terms)

    def _term(self, k):
        return self.terms[k - 1] if k <= len(self.terms) else np.zeros_like(self.total)

    @property
    def first(self):
        r"""Order lr: :math:`-\alpha (J J^T - I) G`."""
        return self._term(1)

    @property
    def second(self):
        r"""Order lr^2: :math:`\alpha^2 (p g_q g_t + g_p q g_t + g_p g_q t)` (for d = 3)."""
        return self._term(2)

    @property
    def third(self):
        r"""Order lr^3: :math:`-\alpha^3 g_p g_q g_t` (for d = 3)."""
        return self._term(3)

    @property
    def remainder(self):
        """``total - sum(terms)``: rounding only (the split is exact in exact arithmetic)."""
        return self.total - sum(self.terms)

    def as_dict(self):
        """The parts by name (``first``, ``second``, ``third``, ``order_4``, ...) and ``total``."""
        out = {_ORDER_NAMES[k] if k < 3 else f"order_{k + 1}": term for k, term in enumerate(self.terms)}
        out["total"] = self.total
        return out

    def norms(self):
        """Frobenius norms: ``order_1 .. order_d``, ``total``, ``remainder``, plus ``lr``, ``grad_norm``."""
        out = {"lr": self.lr, "grad_norm": self.grad_norm}
        for k, term in enumerate(self.terms, start=1):
            out[f"order_{k}"] = float(np.linalg.norm(term))
        out["total"] = float(np.linalg.norm(self.total))
        out["remainder"] = float(np.linalg.norm(self.remainder))
        return out


def departure(*args, lr=None):
    r"""Departure of the factored step from the plain step, ``w'' - w'``, split by order in lr.

    Call as ``departure(p, q, t, G, lr)`` or ``departure([f1, ..., fd], G, lr)``; the factor gradients
    come from ``G`` by the chain rule (:func:`factor_grads`).

    .. math::

        w'' - w' = -\alpha (\Delta - G)
        = \underbrace{-\alpha (J J^\top - I) G}_{\text{first}}
        + \underbrace{\alpha^2 (p \otimes g_q \otimes g_t + g_p \otimes q \otimes g_t
          + g_p \otimes g_q \otimes t)}_{\text{second}}
        \underbrace{- \alpha^3\, g_p \otimes g_q \otimes g_t}_{\text{third}}

    with J the Jacobian of the map factors -> weights, so that
    :math:`J J^\top G = g_p \otimes q \otimes t + p \otimes g_q \otimes t + p \otimes q \otimes g_t`
    (summed over the rank). For order d the order-k term is
    :math:`(-\alpha)^k e_k` with :math:`e_k` the sum over k-subsets of modes carrying gradients.

    Returns
    -------
    Departure
        ``.first``, ``.second``, ``.third`` (``.terms`` for any order), ``.total`` (computed directly as
        ``reconstruct(factor_step(...)) - weight_step(W, G, lr)``), ``.norms()``.

    References
    ----------
    Lee & Lee, Eqs. 2-3.
    """
    args = list(args)
    if len(args) in (2, 3) and _is_seq(args[0]):
        if len(args) == 3:
            if lr is not None:
                raise TypeError("departure: lr given both positionally and by keyword")
            lr = args[2]
        factors, G = list(args[0]), args[1]
        factor_arg = [factors]
    elif len(args) in (4, 5):
        if len(args) == 5:
            if lr is not None:
                raise TypeError("departure: lr given both positionally and by keyword")
            lr = args[4]
        factors, G = args[:3], args[3]
        factor_arg = factors
    else:
        raise TypeError("departure: call as departure(p, q, t, G, lr) or departure([f1, ..., fd], G, lr)")
    lr = _check_lr(lr)
    grads = factor_grads(G, *factor_arg)
    fs, _ = _parse_factors(factor_arg, "departure")
    grads = list(grads)
    G_arr = as_float_array(G, "G", dtype=fs[0].dtype)
    d = len(fs)
    # elementary sums e_k (k modes carry gradients), per (O, R): e_k <- e_k x f + e_{k-1} x g
    e = [fs[0], grads[0]]
    for f, g in zip(fs[1:], grads[1:]):
        new = [_outer(e[0], f)]
        for k in range(1, len(e)):
            new.append(_outer(e[k], f) + _outer(e[k - 1], g))
        new.append(_outer(e[-1], g))
        e = new
    sums = [ek.sum(axis=1) for ek in e]  # sums[0] = W, sums[k] = e_k
    terms = [(-lr) ** k * sums[k] for k in range(1, d + 1)]
    terms[0] = terms[0] + lr * G_arr
    W = sums[0]
    w2 = _outer_all([f - lr * g for f, g in zip(fs, grads)]).sum(axis=1)
    w1 = W - lr * G_arr
    return Departure(terms=tuple(terms), total=w2 - w1, lr=lr, grad_norm=float(np.linalg.norm(G_arr)))


def departure_table(departures, steps=None):
    """Table of the norms of each order of the departure, one row per step.

    Parameters
    ----------
    departures : Departure or iterable of Departure
        For instance one per training step.
    steps : sequence of int, optional
        Row labels (default 0, 1, ...).

    Returns
    -------
    pandas.DataFrame
        Columns ``step``, ``lr``, ``grad_norm``, ``order_1`` .. ``order_d`` (Frobenius norms of each order's
        part), ``total`` (norm of ``w'' - w'``), ``remainder`` (norm of total minus the sum of the parts:
        rounding only), ``ratio_2_1`` (order-2 norm over order-1 norm; NaN when the latter is 0).
    """
    import pandas as pd

    if isinstance(departures, Departure):
        departures = [departures]
    departures = list(departures)
    for i, dep in enumerate(departures):
        if not isinstance(dep, Departure):
            raise TypeError(f"departures[{i}]: expected a Departure, got {type(dep).__name__}")
    if steps is None:
        steps = range(len(departures))
    steps = list(steps)
    if len(steps) != len(departures):
        raise ValueError(f"steps: expected {len(departures)} labels, got {len(steps)}")
    rows = []
    for step, dep in zip(steps, departures):
        row = {"step": step, **dep.norms()}
        first = row.get("order_1", 0.0)
        second = row.get("order_2", 0.0)
        row["ratio_2_1"] = second / first if first > 0 else float("nan")
        rows.append(row)
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------------
# Jacobian of the CP map and the dimension of the CP manifold
# ----------------------------------------------------------------------------------------------------

def cp_jacobian(*factors):
    r"""Dense Jacobian of the CP map (factors of ONE filter) -> vec(W).

    Call as ``cp_jacobian(p, q, t)`` with ``p`` (R, C), ``q`` (R, kh), ``t`` (R, kw), or
    ``cp_jacobian([f1, ..., fd])`` with arrays (R, n_i).

    .. math::

        \frac{\partial W_{ijk}}{\partial p_{ri'}} = \delta_{ii'}\, q_{rj}\, t_{rk}, \quad
        \frac{\partial W_{ijk}}{\partial q_{rj'}} = p_{ri}\, \delta_{jj'}\, t_{rk}, \quad
        \frac{\partial W_{ijk}}{\partial t_{rk'}} = p_{ri}\, q_{rj}\, \delta_{kk'}

    Returns
    -------
    ndarray
        Shape (C*kh*kw, R*(C+kh+kw)). Rows follow ``W.ravel()`` (C order); columns follow
        ``concatenate([p.ravel(), q.ravel(), t.ravel()])``. ``J.T @ G.ravel()`` is the chain rule.

    References
    ----------
    Kolda & Bader 2009, Sec. 3 (CP model); Lee & Lee (rank-1 filters).
    """
    if len(factors) == 1 and _is_seq(factors[0]):
        raw = list(factors[0])
        names = _names(len(raw), listed=True)
    else:
        raw = list(factors)
        names = _names(len(raw)) if len(raw) == 3 else tuple(f"f{i + 1}" for i in range(len(raw)))
    if not raw:
        raise TypeError("cp_jacobian: call as cp_jacobian(p, q, t) or cp_jacobian([f1, ..., fd])")
    arrs = []
    for f, name in zip(raw, names):
        a = np.asarray(f)
        if a.ndim != 2:
            raise ValueError(f"{name}: expected a 2-d factor array (R, n) for one filter, got shape {a.shape}")
        arrs.append(a)
    fs = _check_factors([a[None] for a in arrs], names)
    return _jacobian_batched(fs)[0]


def _jacobian_batched(fs):
    """CP Jacobians of a batch of filters: factors (O, R, n_i) -> (O, prod n_i, R * sum n_i)."""
    O, R = fs[0].shape[:2]
    sizes = [f.shape[2] for f in fs]
    n_rows = int(np.prod(sizes))
    blocks = []
    for mode, size in enumerate(sizes):
        # batch axis (O * size): the perturbed entry i' of this mode; that mode's factor becomes e_i'
        eye = np.broadcast_to(np.eye(size, dtype=fs[0].dtype)[None, :, None, :], (O, size, R, size))
        parts = [
            eye.reshape(O * size, R, size) if m == mode
            else np.broadcast_to(f[:, None], (O, size, R, f.shape[2])).reshape(O * size, R, f.shape[2])
            for m, f in enumerate(fs)
        ]
        full = _outer_all(parts).reshape(O, size, R, n_rows)
        blocks.append(full.transpose(0, 3, 2, 1).reshape(O, n_rows, R * size))
    return np.concatenate(blocks, axis=2)


ManifoldDimension = namedtuple("ManifoldDimension", ["dim", "tol", "singular_values"])
ManifoldDimension.__doc__ = """Numerical rank of the CP Jacobian: ``(dim, tol, singular_values)``."""


def cp_manifold_dimension(C, kh, kw, rank=1, seed=0, tol=None, rng=None):
    r"""Dimension of the set of rank-R filters near a generic point: the rank of the CP Jacobian.

    Draws generic factors (standard normal, from ``seed``/``rng``), builds :func:`cp_jacobian` and counts
    singular values above ``tol``. For rank 1 the answer is :math:`C + k_h + k_w - 2` (each rank-1 term has
    two scaling redundancies); for rank R it is generically
    :math:`\min(R (C + k_h + k_w - 2), C k_h k_w)`, except for a few defective shapes.

    .. math::

        \dim = \#\{ i : \sigma_i(J) > \text{tol} \}, \qquad
        \text{tol} = \sigma_{\max}(J) \cdot \max(\text{shape}(J)) \cdot \varepsilon_{\text{float64}}
        \text{ by default (NumPy's matrix\_rank rule)}.

    Returns
    -------
    ManifoldDimension
        Named tuple ``(dim, tol, singular_values)``.

    References
    ----------
    Kolda & Bader 2009, Sec. 3.1-3.2 (CP rank, uniqueness).
    """
    C = check_int(C, "C", minimum=1)
    kh = check_int(kh, "kh", minimum=1)
    kw = check_int(kw, "kw", minimum=1)
    rank = check_int(rank, "rank", minimum=1)
    gen = as_generator(seed, rng)
    p = gen.standard_normal((rank, C))
    q = gen.standard_normal((rank, kh))
    t = gen.standard_normal((rank, kw))
    J = cp_jacobian(p, q, t)
    s = np.linalg.svd(J, compute_uv=False)
    if tol is None:
        tol = float(s[0] * max(J.shape) * np.finfo(np.float64).eps) if s.size else 0.0
    else:
        tol = check_positive(tol, "tol", allow_zero=True)
    return ManifoldDimension(int(np.sum(s > tol)), tol, s)


def rank1_manifold_dimension(I, J, K, seed=0, tol=None):
    r"""Numerical dimension of the rank-1 manifold in R^{I x J x K} (expected ``I + J + K - 2``).

    Shorthand for ``cp_manifold_dimension(I, J, K, rank=1, seed=seed, tol=tol)``.

    .. math::

        \operatorname{rank} \frac{\partial (p \otimes q \otimes t)}{\partial (p, q, t)} = I + J + K - 2
    """
    return cp_manifold_dimension(I, J, K, rank=1, seed=seed, tol=tol)


# ----------------------------------------------------------------------------------------------------
# CP fitting: HOSVD start, ALS / HOPM, restarts, degeneracy
# ----------------------------------------------------------------------------------------------------

class DegeneracyWarning(UserWarning):
    """A rank-R CP fit whose components grow and cancel: a best rank-R approximation may not exist."""


@dataclass
class CPResult:
    """Result of :func:`decompose`.

    Attributes
    ----------
    p, q, t : ndarray
        Factors (O, R, C), (O, R, kh), (O, R, kw) (O = 1 for a single 3-D filter), each rank-one term
        balanced so that its three factors have equal norms.
    error : float
        Relative Frobenius error of the whole layer, ``||W - W_hat|| / ||W||`` (0 when W is 0).
    errors : ndarray
        Relative Frobenius error per filter, shape (O,).
    converged : ndarray of bool
        Per filter: the change of the relative error fell below ``tol`` (or the error itself did) before
        the iteration limits.
    n_iter : ndarray of int
        Per filter: ALS sweeps plus Levenberg-Marquardt steps of the start that was kept.
    degeneracy : ndarray
        Per filter: ``sum_r ||p_r|| ||q_r|| ||t_r|| / ||W_hat||`` (1 for a single term; large values mean
        components that cancel each other).
    degenerate : ndarray of bool
        ``degeneracy > degeneracy_threshold`` on a fit that had not converged (a degenerate fit keeps
        creeping down; an exact fit whose terms cancel is not flagged).
    restart_errors : ndarray
        Shape (n_starts, O): final relative error of every start (row 0 the initial start, then the random
        restarts in order).
    restart_seeds : tuple of int
        Seeds of the random restarts: ``decompose(W, rank, init="random", seed=s, n_restarts=0)`` reruns one.
    best_start : ndarray of int
        Per filter: index of the start that was kept.
    """

    p: np.ndarray
    q: np.ndarray
    t: np.ndarray
    error: float
    errors: np.ndarray
    converged: np.ndarray
    n_iter: np.ndarray
    degeneracy: np.ndarray
    degenerate: np.ndarray
    restart_errors: np.ndarray
    restart_seeds: tuple = field(default_factory=tuple)
    best_start: np.ndarray = None

    @property
    def rank(self):
        """R, the number of rank-one terms per filter."""
        return self.p.shape[1]

    @property
    def factors(self):
        """``(p, q, t)``."""
        return (self.p, self.q, self.t)

    def reconstruct(self):
        """Reconstructed filters, shape (O, C, kh, kw)."""
        return reconstruct(self.p, self.q, self.t)


def _as_filters(W, name="W"):
    arr = np.asarray(W)
    if arr.ndim == 3:
        arr = arr[None]
    elif arr.ndim != 4:
        raise ValueError(f"{name}: expected filters (O, C, kh, kw) or one filter (C, kh, kw), got shape {arr.shape}")
    out_dtype = np.float32 if arr.dtype == np.float32 else np.float64
    return as_float_array(arr, name, dtype=np.float64), out_dtype


def _fro(X):
    """Frobenius norm of each filter (axis 0 kept)."""
    return np.linalg.norm(X.reshape(X.shape[0], -1), axis=1)


def _rel_errors(X, factors, normX):
    diff = X - _outer_all(factors).sum(axis=1)
    num = _fro(diff)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(normX > 0, num / np.where(normX > 0, normX, 1.0), 0.0)


def _mttkrp(X, factors, mode):
    """sum over the other two modes of X times their factors: (O, n1, n2, n3) -> (O, R, n_mode)."""
    O = X.shape[0]
    a, b = (factors[m] for m in range(3) if m != mode)
    kr = (a[:, :, :, None] * b[:, :, None, :]).reshape(O, a.shape[1], -1)  # Khatri-Rao, (O, R, n_a n_b)
    unf = np.moveaxis(X, mode + 1, 1).reshape(O, X.shape[mode + 1], -1)  # mode unfolding
    return kr @ unf.transpose(0, 2, 1)


def _als_update(X, fs, mode):
    """Least-squares update of one factor with the others fixed (batched over filters)."""
    M = _mttkrp(X, fs, mode)  # (O, R, n)
    V = None
    for m in range(3):
        if m != mode:
            gram = fs[m] @ fs[m].transpose(0, 2, 1)
            V = gram if V is None else V * gram
    R = V.shape[1]
    ridge = np.finfo(np.float64).eps * np.maximum(np.einsum("orr->o", V), np.finfo(np.float64).tiny)
    return np.linalg.solve(V + ridge[:, None, None] * np.eye(R), M)


def _hopm_update(X, fs, mode):
    """Higher-order power method update: contract, normalize (rank 1)."""
    v = _mttkrp(X, fs, mode)
    nrm = np.linalg.norm(v, axis=2, keepdims=True)
    return np.where(nrm > 0, v / np.where(nrm > 0, nrm, 1.0), v)


def _balance(fs):
    """Rescale every rank-one term so that its factors have equal norms (product unchanged)."""
    norms = [np.linalg.norm(f, axis=2, keepdims=True) for f in fs]
    prod = norms[0] * norms[1] * norms[2]
    target = np.cbrt(prod)
    out = []
    for f, n in zip(fs, norms):
        out.append(np.where(n > 0, f * (target / np.where(n > 0, n, 1.0)), 0.0))
    return out


# Near an exact fit (relative error below _POLISH_BELOW), ALS hands a filter over to Levenberg-Marquardt as
# soon as it slows down: its error changes by less than _ALS_TOL_BEFORE_POLISH, or by less than the fraction
# _ALS_SLOW_BEFORE_POLISH of the error itself (a swamp). Farther from an exact fit ALS runs to ``tol``.
_POLISH_BELOW = 0.05
_ALS_TOL_BEFORE_POLISH = 1e-9
_ALS_SLOW_BEFORE_POLISH = 1e-2


def _fit(X, normX, fs, rank, max_iter, tol, hopm, n_polish=0):
    """Run ALS (or HOPM for rank 1) from ``fs``, freezing filters as they converge; then polish."""
    O = X.shape[0]
    fs = [f.copy() for f in fs]
    if hopm:
        # unit factors q, t with the scale carried by p (the product is unchanged)
        for m in (1, 2):
            nrm = np.linalg.norm(fs[m], axis=2, keepdims=True)
            safe = np.where(nrm > 0, nrm, 1.0)
            fs[m] = fs[m] / safe
            fs[0] = fs[0] * safe
    zero = normX == 0
    for f in fs:
        f[zero] = 0.0  # the best fit of a zero filter
    err = _rel_errors(X, fs, normX)
    polish = n_polish > 0 and not hopm
    n_iter = np.zeros(O, dtype=np.int64)
    converged = zero.copy()
    active = np.flatnonzero(~converged)
    for it in range(1, max_iter + 1):
        if active.size == 0:
            break
        Xa = X[active]
        sub = [f[active] for f in fs]
        if hopm:
            for mode in (1, 2):
                sub[mode] = _hopm_update(Xa, sub, mode)
            sub[0] = _mttkrp(Xa, sub, 0)  # optimal first factor for unit q, t: lambda times a unit vector
        else:
            for mode in range(3):
                sub[mode] = _als_update(Xa, sub, mode)
            sub = _balance(sub)
        for f, s in zip(fs, sub):
            f[active] = s
        new_err = _rel_errors(Xa, sub, normX[active])
        n_iter[active] = it
        change = np.abs(err[active] - new_err)
        done = (change <= tol) | (new_err <= tol)
        handover = polish & ~done & (new_err <= _POLISH_BELOW) & (
            (change <= _ALS_TOL_BEFORE_POLISH) | (change <= _ALS_SLOW_BEFORE_POLISH * new_err))
        err[active] = new_err
        converged[active[done]] = True
        active = active[~(done | handover)]
    fs = _balance(fs)
    if polish:
        idx = np.flatnonzero(~converged & (err <= _POLISH_BELOW))
        if idx.size:
            sub, sub_err, sub_conv, steps = _lm_polish(X[idx], normX[idx], [f[idx] for f in fs], err[idx],
                                                       n_polish, tol)
            for f, s in zip(fs, sub):
                f[idx] = s
            err[idx] = sub_err
            converged[idx] = sub_conv
            n_iter[idx] += steps
    return fs, err, converged, n_iter


def _lm_polish(X, normX, fs, err, n_steps, tol):
    """Levenberg-Marquardt steps on all factors at once (batched over filters).

    ALS converges linearly and can crawl through swamps; a damped Gauss-Newton step on the full parameter
    vector converges quadratically near an exact fit. A step is kept only if it lowers the error; the
    damping follows the gain ratio (Nielsen's rule, as in Madsen, Nielsen & Tingleff's LM notes).
    """
    O = X.shape[0]
    R = fs[0].shape[1]
    sizes = [f.shape[2] for f in fs]
    splits = np.cumsum([R * s for s in sizes])[:-1]

    def unpack(x):
        return [part.reshape(x.shape[0], R, s) for part, s in zip(np.split(x, splits, axis=1), sizes)]

    x = np.concatenate([f.reshape(O, -1) for f in fs], axis=1)
    err = err.copy()
    steps = np.zeros(O, dtype=np.int64)
    converged = (normX == 0) | (err <= tol)
    mu = np.full(O, np.nan)
    nu = np.full(O, 2.0)
    scale = np.ones(O)
    active = np.flatnonzero(~converged)
    n_par = x.shape[1]
    eye = np.eye(n_par)
    for _ in range(n_steps):
        if active.size == 0:
            break
        xa = x[active]
        fa = unpack(xa)
        Xa = X[active].reshape(active.size, -1)
        r = Xa - _outer_all(fa).sum(axis=1).reshape(active.size, -1)
        J = _jacobian_batched(fa)
        Jt = np.ascontiguousarray(J.transpose(0, 2, 1))
        JtJ = Jt @ J
        g = (Jt @ r[..., None])[..., 0]
        m = mu[active]
        fresh = np.isnan(m)
        if np.any(fresh):
            scale[active[fresh]] = np.maximum(np.einsum("opp->o", JtJ[fresh]) / n_par, np.finfo(float).tiny)
            m[fresh] = 1e-3 * scale[active[fresh]]
        m = np.maximum(m, 1e-14 * scale[active])
        step = np.linalg.solve(JtJ + m[:, None, None] * eye, g[..., None])[..., 0]
        trial = xa + step
        new_err = _rel_errors(X[active], unpack(trial), normX[active])
        steps[active] += 1
        # gain ratio: actual over predicted decrease of ||r||^2 / 2
        nx = normX[active]
        actual = 0.5 * (err[active] ** 2 - np.where(np.isfinite(new_err), new_err, np.inf) ** 2) * nx**2
        predicted = 0.5 * np.einsum("op,op->o", step, m[:, None] * step + g)
        with np.errstate(divide="ignore", invalid="ignore"):
            rho = np.where(predicted > 0, actual / predicted, -1.0)
        good = np.isfinite(new_err) & (new_err < err[active]) & (rho > 0)
        gain = err[active] - np.where(good, new_err, err[active])
        x[active[good]] = trial[good]
        err[active[good]] = new_err[good]
        nu_a = nu[active]
        mu[active] = np.where(good, m * np.maximum(1 / 3, 1 - (2 * np.clip(rho, 0, 1) - 1) ** 3), m * nu_a)
        nu[active] = np.where(good, 2.0, 2.0 * nu_a)
        # a tiny gain only means convergence when the step was not held back by heavy damping
        finished = good & ((new_err <= tol) | ((gain <= tol) & (m <= scale[active])))
        stuck = ~good & (mu[active] > 1e10 * scale[active])
        converged[active[finished]] = True
        active = active[~(finished | stuck)]
    return _balance(unpack(x)), err, converged, steps


def _hosvd_start(X, rank, gen):
    O = X.shape[0]
    fs = []
    for mode in range(3):
        unf = np.moveaxis(X, mode + 1, 1).reshape(O, X.shape[mode + 1], -1)
        U = np.linalg.svd(unf, full_matrices=False)[0]  # (O, n, min(n, rest))
        k = min(rank, U.shape[2])
        f = np.empty((O, rank, X.shape[mode + 1]))
        f[:, :k] = U[:, :, :k].transpose(0, 2, 1)
        if rank > k:
            f[:, k:] = gen.standard_normal((O, rank - k, X.shape[mode + 1]))
        fs.append(f)
    return fs


def _random_start(X, rank, gen):
    O = X.shape[0]
    return [gen.standard_normal((O, rank, X.shape[m + 1])) for m in range(3)]


def _degeneracy(fs):
    comp = np.prod([np.linalg.norm(f, axis=2) for f in fs], axis=0).sum(axis=1)  # (O,)
    rec = _outer_all(fs).sum(axis=1)
    rn = _fro(rec)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(rn > 0, comp / np.where(rn > 0, rn, 1.0), np.where(comp > 0, np.inf, 1.0))


def _check_init_factors(init, X, rank, names=("p0", "q0", "t0")):
    if not (_is_seq(init) and len(init) == 3):
        raise TypeError(f"init: expected 'hosvd', 'random' or a tuple (p0, q0, t0), got {type(init).__name__}")
    fs = _check_factors(init, names, dtype=np.float64)
    O = X.shape[0]
    expected = [(O, rank, X.shape[m + 1]) for m in range(3)]
    for f, e, n in zip(fs, expected, names):
        if f.shape != e:
            raise ValueError(f"{n}: expected shape {e} to match W {X.shape} and rank {rank}, got {f.shape}")
    return fs


def decompose(W, rank, seed=0, rng=None, n_restarts=2, tol=1e-12, max_iter=500, init="hosvd",
              n_polish=200, degeneracy_threshold=5.0, warn=True):
    r"""Rank-R CP approximation of every output filter, by ALS (HOPM for rank 1) with restarts.

    Each filter :math:`W[o] \in \mathbb{R}^{C \times k_h \times k_w}` is approximated by

    .. math::

        \min_{p, q, t} \Big\| W[o] - \sum_{r=1}^{R} p_r \otimes q_r \otimes t_r \Big\|_F

    by alternating least squares, :math:`P \leftarrow W_{(1)} (T \odot Q) (T^\top T * Q^\top Q)^{-1}`
    and cyclically, started from the HOSVD (leading left singular vectors of each mode unfolding, random
    columns where R exceeds a mode size) and from ``n_restarts`` random starts; the best start is kept per
    filter. For rank 1 the iteration is the higher-order power method (HOPM). Iterations stop when the
    relative error changes by at most ``tol`` (or is at most ``tol``), or after ``max_iter`` sweeps. For
    R >= 2, a filter whose relative error is below 0.05 leaves ALS as soon as ALS slows down (error change
    below 1e-9, or below 1e-2 of the error: a swamp) and up to ``n_polish`` Levenberg-Marquardt steps on all
    its factors finish the fit (quadratic convergence near an exact fit). Every start runs the same way, so
    the result is never worse, filter by filter, than any of its starts run alone.

    For R >= 2 a best rank-R approximation need not exist: the iteration then drives components to diverge
    with opposite signs while the error creeps down. This is detected by the ratio
    ``sum_r ||p_r|| ||q_r|| ||t_r|| / ||W_hat||`` exceeding ``degeneracy_threshold`` on a fit that has not
    converged, and reported with a :class:`DegeneracyWarning`.

    Parameters
    ----------
    W : ndarray
        Filters (O, C, kh, kw), or one filter (C, kh, kw) (treated as O = 1).
    rank : int
        R >= 1.
    seed : int or numpy.random.Generator, optional
        Seeds the random restarts (and the random HOSVD columns when R exceeds a mode size).
    rng : numpy.random.Generator, optional
        Takes precedence over ``seed``.
    n_restarts : int
        Number of random starts besides the initial one (>= 0).
    tol : float
        Convergence threshold on the change of the relative error.
    max_iter : int
        Maximum ALS (HOPM) sweeps per start.
    init : {'hosvd', 'random'} or tuple of ndarray
        The initial start: HOSVD, random (drawn from ``seed``), or given factors ``(p0, q0, t0)``.
    n_polish : int
        Maximum Levenberg-Marquardt steps per start after ALS (rank >= 2; 0 for plain ALS).
    degeneracy_threshold : float
        See above.
    warn : bool
        Emit the DegeneracyWarning.

    Returns
    -------
    CPResult
        Factors ``.p, .q, .t``, ``.error`` (overall relative error), ``.errors`` (per filter),
        ``.converged``, ``.n_iter``, ``.degeneracy``, ``.restart_errors``, ``.restart_seeds``.
        Float32 filters give float32 factors (the fit runs in float64).

    Raises
    ------
    ValueError
        ``rank < 1``, wrong shapes, non-finite values. TypeError for non-numeric input.

    References
    ----------
    Kolda & Bader 2009 (CP-ALS, HOSVD start); De Lathauwer, De Moor & Vandewalle 2000 (HOPM);
    de Silva & Lim 2008 (degeneracy).
    """
    X, out_dtype = _as_filters(W)
    rank = check_int(rank, "rank", minimum=1)
    n_restarts = check_int(n_restarts, "n_restarts", minimum=0)
    max_iter = check_int(max_iter, "max_iter", minimum=0)
    n_polish = check_int(n_polish, "n_polish", minimum=0)
    tol = check_positive(tol, "tol", allow_zero=True)
    degeneracy_threshold = check_positive(degeneracy_threshold, "degeneracy_threshold")
    gen = as_generator(seed, rng)
    normX = _fro(X)
    hopm = rank == 1

    if isinstance(init, str):
        if init == "hosvd":
            start0 = _hosvd_start(X, rank, gen)
        elif init == "random":
            start0 = _random_start(X, rank, gen)
        else:
            raise ValueError(f"init: expected 'hosvd', 'random' or a tuple (p0, q0, t0), got {init!r}")
    else:
        start0 = _check_init_factors(init, X, rank)
    restart_seeds = tuple(int(s) for s in gen.integers(0, 2**63 - 1, size=n_restarts))
    starts = [start0] + [_random_start(X, rank, np.random.default_rng(s)) for s in restart_seeds]

    best = None
    all_err = []
    for si, start in enumerate(starts):
        fs, err, conv, nit = _fit(X, normX, start, rank, max_iter, tol, hopm, n_polish)
        all_err.append(err)
        if best is None:
            best = {"fs": fs, "err": err.copy(), "conv": conv.copy(), "nit": nit.copy(),
                    "start": np.zeros(X.shape[0], dtype=np.int64)}
            continue
        better = err < best["err"]
        for bf, f in zip(best["fs"], fs):
            bf[better] = f[better]
        best["err"][better] = err[better]
        best["conv"][better] = conv[better]
        best["nit"][better] = nit[better]
        best["start"][better] = si

    fs = best["fs"]
    rec = _outer_all(fs).sum(axis=1)
    total_norm = float(np.linalg.norm(X))
    overall = float(np.linalg.norm(X - rec) / total_norm) if total_norm > 0 else 0.0
    degeneracy = _degeneracy(fs)
    # a degenerate fit is still creeping down when it stops; an exact fit with cancelling terms is not flagged
    degenerate = (degeneracy > degeneracy_threshold) & ~best["conv"]
    if warn and np.any(degenerate):
        idx = np.flatnonzero(degenerate)
        shown = ", ".join(str(i) for i in idx[:10]) + (", ..." if idx.size > 10 else "")
        warnings.warn(
            f"decompose: the rank-{rank} CP fit of filter(s) [{shown}] looks degenerate: the rank-one "
            f"components have norms summing to {degeneracy[idx].max():.3g} times the norm of their sum, so they "
            f"cancel each other; a best rank-{rank} approximation may not exist (de Silva & Lim 2008). "
            "Use a lower rank, fewer iterations, or regularize the factors.",
            DegeneracyWarning,
            stacklevel=2,
        )
    p, q, t = (f.astype(out_dtype, copy=False) for f in fs)
    return CPResult(
        p=p, q=q, t=t, error=overall, errors=best["err"], converged=best["conv"], n_iter=best["nit"],
        degeneracy=degeneracy, degenerate=degenerate, restart_errors=np.array(all_err),
        restart_seeds=restart_seeds, best_start=best["start"],
    )


def project_rank(W, p0, q0, t0, n_iter=10, tol=0.0, balance=True):
    r"""Project filters back to rank R by ALS warm-started from the given factors.

    Used to train CP layers by a full-weight step followed by projection: a few ALS sweeps from the
    current factors move them to (a local) best rank-R fit of ``W``, continuously in ``W``.

    .. math::

        (p, q, t) \approx \arg\min \Big\| W[o] - \sum_r p_r \otimes q_r \otimes t_r \Big\|_F
        \quad \text{(local, from } (p_0, q_0, t_0)\text{)}

    Parameters
    ----------
    W : ndarray
        Filters (O, C, kh, kw) (or one filter (C, kh, kw) with factors of O = 1).
    p0, q0, t0 : ndarray
        Warm start, shapes (O, R, C), (O, R, kh), (O, R, kw).
    n_iter : int
        ALS sweeps (>= 0; 0 returns the start, balanced).
    tol : float
        Stop a filter early when its relative error changes by at most ``tol``.
    balance : bool
        Rescale each rank-one term so that its factors have equal norms.

    Returns
    -------
    tuple of ndarray
        ``(p, q, t)``, in the dtype of the inputs (float32 only if all are float32).

    References
    ----------
    Kolda & Bader 2009 (CP-ALS).
    """
    X, _ = _as_filters(W)
    n_iter = check_int(n_iter, "n_iter", minimum=0)
    tol = check_positive(tol, "tol", allow_zero=True)
    out_dtype = _common_dtype([W, p0, q0, t0])
    start = _check_factors([p0, q0, t0], _ORDER3_NAMES, dtype=np.float64)
    O, R = start[0].shape[:2]
    expected = [(X.shape[0], R, X.shape[m + 1]) for m in range(3)]
    for f, e, n in zip(start, expected, _ORDER3_NAMES):
        if f.shape != e:
            raise ValueError(f"{n}: expected shape {e} to match W {X.shape}, got {f.shape}")
    normX = _fro(X)
    fs, _, _, _ = _fit(X, normX, start, R, n_iter, tol, hopm=False)
    if balance:
        fs = _balance(fs)
    return tuple(f.astype(out_dtype, copy=False) for f in fs)
