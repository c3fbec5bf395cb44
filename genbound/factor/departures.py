r"""The departure of the factored step from the plain step, ``w'' - w'``, split by order in the learning rate.

.. math::

    w'' - w' = -\alpha (\Delta - G) = \sum_{k=1}^{d} (-\alpha)^k e_k + \alpha G,

with :math:`e_k` the sum of the rank-one tensors in which k of the d modes carry gradients; the first-order
part is :math:`-\alpha (J J^\top - I) G` with J the Jacobian of the CP map.

References
----------
Lee & Lee, "Effect of local search with real data on generalization in deep learning", Eqs. 2-3.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from genbound._checks import as_float_array
from genbound.factor.algebra import chain_rule, outer, outer_all
from genbound.factor.arguments import check_lr, factor_arguments

__all__ = ["Departure", "departure", "departure_table"]


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


def departure(p=None, q=None, t=None, G=None, lr=None, *, factors=None):
    r"""Departure of the factored step from the plain step, ``w'' - w'``, split by order in lr.

    Call as ``departure(p, q, t, G, lr)`` or ``departure(factors=[f1, ..., fd], G=G, lr=lr)``; the factor
    gradients come from ``G`` by the chain rule (:func:`genbound.factor.factor_grads`).

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

    Parameters
    ----------
    p, q, t : ndarray
        Factor arrays (O, R, n_i).
    G : ndarray
        Weight-space gradient (O, n_1, ..., n_d).
    lr : float
        Learning rate, any finite real.
    factors : list of ndarray
        The order-d form.

    Returns
    -------
    Departure
        ``.first``, ``.second``, ``.third`` (``.terms`` for any order), ``.total`` (computed directly as
        ``reconstruct(factor_step(...)) - weight_step(W, G, lr)``), ``.norms()``.

    References
    ----------
    Lee & Lee, Eqs. 2-3.
    """
    fs, names, _ = factor_arguments("departure", p, q, t, factors)
    if G is None:
        raise TypeError("departure: missing G; call as departure(p, q, t, G, lr) for order 3 or "
                        "departure(factors=[f1, ..., fd], G=G, lr=lr) for any order")
    lr = check_lr(lr)
    grads = chain_rule(G, fs, names)
    G_arr = as_float_array(G, "G", dtype=fs[0].dtype)
    d = len(fs)
    # elementary sums e_k (k modes carry gradients), per (O, R): e_k <- e_k x f + e_{k-1} x g
    e = [fs[0], grads[0]]
    for f, g in zip(fs[1:], grads[1:]):
        new = [outer(e[0], f)]
        for k in range(1, len(e)):
            new.append(outer(e[k], f) + outer(e[k - 1], g))
        new.append(outer(e[-1], g))
        e = new
    sums = [ek.sum(axis=1) for ek in e]  # sums[0] = W, sums[k] = e_k
    terms = [(-lr) ** k * sums[k] for k in range(1, d + 1)]
    terms[0] = terms[0] + lr * G_arr
    W = sums[0]
    w2 = outer_all([f - lr * g for f, g in zip(fs, grads)]).sum(axis=1)
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
