r"""Expansions: Delta derived from the product of stepped factors, and Eq. 3 as printed (kept as data).

.. math::

    \Delta := \frac{1}{\alpha}\Big( \sum_r \prod_n a_{nr} - \sum_r \prod_n (a_{nr} - \alpha g_{nr}) \Big)

Everything is derived, never typed in, except the paper's Eq. 3 *as printed* (:data:`EQ3_PRINTED`), kept so
that its misprint can be located.

References
----------
Lee & Lee, "Effect of local search with real data on generalization in deep learning", Eq. 3.
"""
from __future__ import annotations

import functools
import itertools
from collections import namedtuple

import numpy as np
import sympy as sp

from genbound.factor import step_arguments
from genbound.symbolic.limits import check_order_rank
from genbound.symbolic.symbols import ALPHA, factor_symbols, symbol_table

__all__ = ["expansion", "derive_delta", "delta_elementary", "Eq3Term", "EQ3_PRINTED", "eq3_printed",
           "eq3_corrected", "terms_from_expr", "expr_from_terms", "eq3_misprints", "lambdify_delta"]


@functools.lru_cache(maxsize=None)
def expansion(order=3, rank=1):
    r"""The weight before and after one factored step, expanded.

    .. math::

        w = \sum_r \prod_n a_{nr}, \qquad
        w'' = \sum_r \prod_n (a_{nr} - \alpha\, g_{nr}) \quad \text{(expanded in } \alpha\text{)}

    Returns
    -------
    w, w2 : sympy.Expr
    """
    factors, grads = factor_symbols(order, rank)
    w = sp.Add(*[sp.Mul(*row) for row in factors])
    w2 = sp.expand(sp.Add(*[sp.Mul(*[a - ALPHA * g for a, g in zip(fr, gr)]) for fr, gr in zip(factors, grads)]))
    return w, w2


@functools.lru_cache(maxsize=None)
def derive_delta(order=3, rank=1):
    r"""Delta derived from the expansion: :math:`\Delta := (w - w'') / \alpha`, expanded.

    .. math::

        \Delta = \frac{1}{\alpha} \Big( \sum_r \prod_n a_{nr} - \sum_r \prod_n (a_{nr} - \alpha g_{nr}) \Big)

    For order 3, rank 1 this is the corrected Eq. 3 of Lee & Lee.
    """
    w, w2 = expansion(order, rank)
    return sp.expand((w - w2) / ALPHA)


@functools.lru_cache(maxsize=None)
def delta_elementary(order=3, rank=1):
    r"""Delta written as elementary-symmetric-type sums over the modes that carry a gradient.

    .. math::

        \Delta = \sum_{r} \sum_{k=1}^{d} (-\alpha)^{k-1} \sum_{|S| = k}
                 \prod_{n \in S} g_{nr} \prod_{n \notin S} a_{nr}

    Built from subsets (itertools), independently of :func:`derive_delta`; :func:`verify_order` compares
    the two.
    """
    factors, grads = factor_symbols(order, rank)
    terms = []
    for fr, gr in zip(factors, grads):
        for k in range(1, order + 1):
            e_k = sp.Add(*[sp.Mul(*[gr[n] if n in S else fr[n] for n in range(order)])
                           for S in itertools.combinations(range(order), k)])
            terms.append((-ALPHA) ** (k - 1) * e_k)
    return sp.Add(*terms)


# ----------------------------------------------------------------------------------------------------
# Eq. 3 as printed (data) and as derived
# ----------------------------------------------------------------------------------------------------

Eq3Term = namedtuple("Eq3Term", ["coefficient", "lr_power", "symbols"])
Eq3Term.__doc__ = "One printed term of Eq. 3: coefficient * alpha**lr_power * product of the named symbols."

#: Lee & Lee's Eq. 3, transcribed term by term as printed:
#: Delta = p q dL/dt + q t dL/dp + p t dL/dq
#:         - alpha (p dL/dq dL/dt + q dL/dp dL/dt + t dL/dp dL/dt) + alpha^2 dL/dp dL/dq dL/dt.
#: The sixth term is the paper's misprint (the derivation gives t dL/dp dL/dq); it is kept as printed.
EQ3_PRINTED = (
    Eq3Term(1, 0, ("p", "q", "g_t")),
    Eq3Term(1, 0, ("q", "t", "g_p")),
    Eq3Term(1, 0, ("p", "t", "g_q")),
    Eq3Term(-1, 1, ("p", "g_q", "g_t")),
    Eq3Term(-1, 1, ("q", "g_p", "g_t")),
    Eq3Term(-1, 1, ("t", "g_p", "g_t")),
    Eq3Term(1, 2, ("g_p", "g_q", "g_t")),
)


def expr_from_terms(terms, order=3, rank=1):
    r"""Sympy expression from a tuple of :class:`Eq3Term` (symbols named as in :func:`factor_symbols`).

    .. math::

        \sum_\text{terms} c \, \alpha^{k} \prod \text{symbols}
    """
    table = symbol_table(order, rank)
    out = []
    for term in terms:
        try:
            syms = [table[name] for name in term.symbols]
        except KeyError as exc:
            raise ValueError(f"unknown symbol {exc.args[0]!r} in term {term}") from None
        out.append(sp.Integer(term.coefficient) * ALPHA ** term.lr_power * sp.Mul(*syms))
    return sp.Add(*out)


def terms_from_expr(expr):
    r"""The terms of a polynomial in :math:`\alpha` and the factor symbols, as sorted :class:`Eq3Term`.

    Symbols in each term are sorted (factors before gradients) so that transcriptions compare as sets.
    """
    out = []
    for term in sp.Add.make_args(sp.expand(expr)):
        coeff, rest = term.as_coeff_Mul()
        powers = rest.as_powers_dict()
        k = int(powers.pop(ALPHA, 0))
        names = []
        for s, e in powers.items():
            if not isinstance(s, sp.Symbol) or not (isinstance(e, sp.Integer) or int(e) == e):
                raise ValueError(f"not a monomial in symbols: {term}")
            names.extend([s.name] * int(e))
        out.append(Eq3Term(int(coeff) if coeff == int(coeff) else coeff, k, sorted_names(names)))
    return tuple(sorted(out, key=lambda t: (t.lr_power, t.symbols)))


def sorted_names(names):
    """Symbol names with the factors before the gradients (the paper's order), each group sorted."""
    return tuple(sorted(names, key=lambda n: (n.startswith("g_"), n)))


def normalized(terms):
    """A set of terms with sorted symbol names, so that transcriptions compare as sets."""
    return {Eq3Term(t.coefficient, t.lr_power, sorted_names(t.symbols)) for t in terms}


def eq3_printed():
    r"""Eq. 3 exactly as printed in the paper (from :data:`EQ3_PRINTED`).

    .. math::

        \Delta_\text{printed} = p q g_t + q t g_p + p t g_q
        - \alpha (p g_q g_t + q g_p g_t + t g_p g_t) + \alpha^2 g_p g_q g_t
    """
    return expr_from_terms(EQ3_PRINTED)


def eq3_corrected():
    r"""Eq. 3 derived by expanding :math:`(p - \alpha g_p)(q - \alpha g_q)(t - \alpha g_t)`.

    .. math::

        \Delta = p q g_t + q t g_p + p t g_q
        - \alpha (p g_q g_t + q g_p g_t + t g_p g_q) + \alpha^2 g_p g_q g_t
    """
    return derive_delta(3, 1)


def eq3_misprints():
    """Terms of the printed Eq. 3 that the derivation lacks, and derived terms the paper lacks.

    Returns
    -------
    dict
        ``{"printed_only": (...), "derived_only": (...)}``, tuples of :class:`Eq3Term`.
    """
    printed = normalized(EQ3_PRINTED)
    derived = normalized(terms_from_expr(eq3_corrected()))
    key = lambda t: (t.lr_power, t.symbols)  # noqa: E731
    return {"printed_only": tuple(sorted(printed - derived, key=key)),
            "derived_only": tuple(sorted(derived - printed, key=key))}


# ----------------------------------------------------------------------------------------------------
# numeric function from the symbolic Delta
# ----------------------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def _lambdified(order, rank):
    factors, grads = factor_symbols(order, rank)
    args = [s for row in factors for s in row] + [s for row in grads for s in row] + [ALPHA]
    return sp.lambdify(args, derive_delta(order, rank), modules="numpy")


def lambdify_delta(order=3, rank=1):
    r"""A numeric Delta generated from the symbolic one (``sympy.lambdify`` with numpy).

    The returned function is called like :func:`genbound.factor.delta`: ``f(p, q, t, gp, gq, gt, lr)`` or
    ``f(factors=[f1, ..., fd], grads=[g1, ..., gd], lr=lr)`` with factor arrays (O, R, n_i) of this order
    and rank (arguments checked by :func:`genbound.factor.step_arguments`), and returns Delta of shape
    (O, n_1, ..., n_d), the derived scalar formula broadcast over the entries. ``order`` and ``rank`` are
    limited as in :func:`factor_symbols`.

    .. math::

        \Delta_{i_1 \ldots i_d} = \Delta\big(a_{1, i_1}, \ldots, a_{d, i_d}, g_{1, i_1}, \ldots, \alpha\big)
    """
    order, rank = check_order_rank(order, rank)
    raw = _lambdified(order, rank)

    def delta_from_sympy(p=None, q=None, t=None, gp=None, gq=None, gt=None, lr=None, *, factors=None,
                         grads=None):
        fs, gs, lr, _ = step_arguments(p, q, t, gp, gq, gt, lr, factors=factors, grads=grads,
                                       caller="delta_from_sympy")
        if len(fs) != order or fs[0].shape[1] != rank:
            raise ValueError(f"this function was generated for order {order} and rank {rank}; got order "
                             f"{len(fs)} and rank {fs[0].shape[1]}")
        O = fs[0].shape[0]
        sizes = [f.shape[2] for f in fs]

        def placed(arr, r, n):
            shape = [O] + [1] * order
            shape[n + 1] = sizes[n]
            return arr[:, r, :].reshape(shape)

        flat = [placed(f, r, n) for r in range(rank) for n, f in enumerate(fs)]
        flat += [placed(g, r, n) for r in range(rank) for n, g in enumerate(gs)]
        out = raw(*flat, lr)
        return np.broadcast_to(np.asarray(out, dtype=fs[0].dtype), (O, *sizes)).copy()

    delta_from_sympy.expr = derive_delta(order, rank)
    delta_from_sympy.__doc__ = f"Delta for order {order}, rank {rank}, generated from: {delta_from_sympy.expr}"
    return delta_from_sympy
