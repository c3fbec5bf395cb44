r"""Symbols in the paper's notation: factors, their gradients, the learning rate, explicit small filters.

For order 3 the factors are named as in the paper, ``p, q, t`` (``p_1, q_1, t_1, p_2, ...`` for rank
R > 1); for other orders ``a1, ..., ad``. The gradient of ``x`` is the symbol ``g_x``, printed in LaTeX as
:math:`\partial L / \partial x`.
"""
from __future__ import annotations

import itertools
import math

import sympy as sp

from genbound.symbolic.limits import MAX_ENTRIES, MAX_RANK, check_at_most, check_order_rank

__all__ = ["ALPHA", "grad_symbol", "factor_symbols", "to_latex", "explicit_factors", "explicit_weight"]

#: The learning rate :math:`\alpha`.
ALPHA = sp.Symbol("alpha", real=True)

_LATEX_NAMES: dict = {}


def symbol(name, latex=None):
    """A real sympy symbol, with its LaTeX name registered for :func:`to_latex`."""
    s = sp.Symbol(name, real=True)
    if latex is not None:
        _LATEX_NAMES[s] = latex
    return s


def _base_latex(name):
    if "_" in name:
        head, tail = name.split("_", 1)
        return f"{head}_{{{tail}}}"
    return name


def grad_symbol(name):
    r"""The symbol ``g_<name>`` standing for :math:`\partial L / \partial \mathrm{name}` (LaTeX as such).

    .. math::

        g_p \equiv \frac{\partial L}{\partial p}
    """
    return symbol(f"g_{name}", rf"\frac{{\partial L}}{{\partial {_base_latex(name)}}}")


def factor_symbols(order=3, rank=1):
    r"""Scalar symbols for one entry of an order-``d``, rank-``R`` CP tensor and their gradients.

    .. math::

        w = \sum_{r=1}^{R} \prod_{n=1}^{d} a_{n r}

    Parameters
    ----------
    order : int
        1 <= d <= :data:`~genbound.symbolic.limits.MAX_ORDER`.
    rank : int
        1 <= R <= :data:`~genbound.symbolic.limits.MAX_RANK`, with R * 2**d <= ``MAX_TERMS``.

    Returns
    -------
    factors, grads : list of list of sympy.Symbol
        Indexed ``[r][n]``.
    """
    order, rank = check_order_rank(order, rank)
    base = ("p", "q", "t") if order == 3 else tuple(f"a{n + 1}" for n in range(order))
    names = [list(base)] if rank == 1 else [[f"{b}_{r + 1}" for b in base] for r in range(rank)]
    factors = [[symbol(n, _base_latex(n)) for n in row] for row in names]
    grads = [[grad_symbol(n) for n in row] for row in names]
    return factors, grads


def symbol_table(order=3, rank=1):
    """Factor and gradient symbols of :func:`factor_symbols` by name."""
    factors, grads = factor_symbols(order, rank)
    return {s.name: s for row in factors + grads for s in row}


def to_latex(expr):
    r"""LaTeX of a sympy expression with the paper's notation (:math:`\partial L/\partial p` for ``g_p``)."""
    return sp.latex(expr, symbol_names=_LATEX_NAMES)


# ----------------------------------------------------------------------------------------------------
# small explicit index sizes
# ----------------------------------------------------------------------------------------------------

def explicit_factors(sizes=(2, 2, 2), rank=1, names=("p", "q", "t")):
    r"""Entry-wise symbols for small explicit factor vectors: ``p_1 .. p_I`` etc. (``p_{r,i}`` for rank > 1).

    Sizes are limited like the explicit checks' (at most ``MAX_ENTRIES["rank1_dim"]`` entries in all, rank at
    most ``MAX_RANK``).

    Returns
    -------
    list of list of list of sympy.Symbol
        Indexed ``[n][r][i]`` (mode, rank term, entry).
    """
    sizes = tuple(sizes)
    rank = check_at_most(rank, "rank", MAX_RANK)
    for size in sizes:
        check_at_most(size, "sizes", MAX_ENTRIES["rank1_dim"])
    if math.prod(sizes) * rank > MAX_ENTRIES["rank1_dim"]:
        raise ValueError(f"sizes: expected prod(sizes) * rank <= {MAX_ENTRIES['rank1_dim']} symbols in all, got "
                         f"{tuple(sizes)} with rank {rank}")
    if len(names) < len(sizes):
        names = tuple(f"a{n + 1}" for n in range(len(sizes)))
    out = []
    for name, size in zip(names, sizes):
        rows = []
        for r in range(rank):
            row = []
            for i in range(size):
                sub = f"{i + 1}" if rank == 1 else f"{r + 1}{i + 1}"
                row.append(symbol(f"{name}_{sub}", f"{name}_{{{sub}}}"))
            rows.append(row)
        out.append(rows)
    return out


def explicit_weight(factors):
    r"""The explicit CP tensor :math:`W_{ij\ldots} = \sum_r \prod_n f_{n r i_n}` as a flat list (C order).

    Parameters
    ----------
    factors : list
        ``[n][r][i]`` entries (sympy expressions), as from :func:`explicit_factors`.

    Returns
    -------
    list of sympy.Expr
        Length ``prod(sizes)``, entries in C order.
    """
    sizes = [len(f[0]) for f in factors]
    rank = len(factors[0])
    out = []
    for idx in itertools.product(*[range(s) for s in sizes]):
        out.append(sp.Add(*[sp.Mul(*[factors[n][r][i] for n, i in enumerate(idx)]) for r in range(rank)]))
    return out


def weight_symbols(sizes, name="G"):
    """Symbols ``G_ijk`` for every entry of an explicit filter, flat in C order."""
    return [symbol(f"{name}_{''.join(str(i + 1) for i in idx)}", f"{name}_{{{''.join(str(i + 1) for i in idx)}}}")
            for idx in itertools.product(*[range(s) for s in sizes])]


def chain_rule_grads(G, factors, sizes):
    """g_{n r i} = sum over the other indices of G times the other factors (the chain rule, by hand)."""
    grads = []
    rank = len(factors[0])
    for n in range(len(sizes)):
        rows = []
        for r in range(rank):
            row = []
            for i in range(sizes[n]):
                total = []
                for flat, idx in enumerate(itertools.product(*[range(s) for s in sizes])):
                    if idx[n] != i:
                        continue
                    total.append(G[flat] * sp.Mul(*[factors[m][r][idx[m]] for m in range(len(sizes)) if m != n]))
                row.append(sp.Add(*total))
            rows.append(row)
        grads.append(rows)
    return grads


def explicit_filter(sizes, rank=1):
    """Explicit factors of an I x J x K filter, the gradient entries ``G`` and the factor gradients from G.

    Returns
    -------
    factors, G, grads
        ``[n][r][i]`` factor symbols, the flat list of ``G_ijk``, and ``[n][r][i]`` chain-rule gradients.
    """
    factors = explicit_factors(sizes, rank)
    G = weight_symbols(sizes)
    return factors, G, chain_rule_grads(G, factors, sizes)
