r"""Symbolic derivations behind the paper's equations, checked with sympy.

Everything here is derived by the library, never typed in: the factored update :math:`\Delta` comes from
expanding :math:`\prod_n (a_n - \alpha g_n)`; the chain rule from differentiating
:math:`L = \langle G, W \rangle`; the first-order departure from an explicit Jacobian. The one thing typed in is
the paper's Eq. 3 *as printed*, kept as data (:data:`EQ3_PRINTED`) so that its misprint can be located.

Each ``verify_*`` function returns a :class:`Verification` (name, statement, holds, residual, LaTeX).
:func:`all_verifications` runs them all; :func:`derivation_table` puts them in a DataFrame and
:func:`write_latex` writes their LaTeX. The scripts in ``derivations/`` call these.

This module imports sympy at import time; ``import genbound`` does not import it.

References
----------
Lee & Lee, "Effect of local search with real data on generalization in deep learning" (Eqs. 1-3).
T. G. Kolda and B. W. Bader, "Tensor decompositions and applications", SIAM Review 51(3), 2009.
"""
from __future__ import annotations

import functools
import itertools
from collections import namedtuple
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import sympy as sp

__all__ = [
    "ALPHA",
    "EQ3_PRINTED",
    "Eq3Term",
    "Verification",
    "factor_symbols",
    "grad_symbol",
    "expansion",
    "derive_delta",
    "delta_elementary",
    "eq3_printed",
    "eq3_corrected",
    "terms_from_expr",
    "expr_from_terms",
    "eq3_misprints",
    "explicit_factors",
    "explicit_weight",
    "to_latex",
    "poly_latex",
    "verify_eq3",
    "verify_eq3_misprint",
    "verify_rank",
    "verify_order",
    "verify_chain_rule",
    "verify_eq2",
    "verify_first_order_departure",
    "verify_rank1_dimension",
    "rank1_manifold_dimension",
    "verify_eq1_samples",
    "lambdify_delta",
    "all_verifications",
    "derivation_table",
    "write_latex",
    "format_report",
    "exit_code",
]

#: The learning rate :math:`\alpha`.
ALPHA = sp.Symbol("alpha", real=True)

_LATEX_NAMES: dict = {}


# ----------------------------------------------------------------------------------------------------
# symbols
# ----------------------------------------------------------------------------------------------------

def _sym(name, latex=None):
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
    return _sym(f"g_{name}", rf"\frac{{\partial L}}{{\partial {_base_latex(name)}}}")


def _factor_names(order, rank):
    if order < 1:
        raise ValueError(f"order: expected an int >= 1, got {order}")
    if rank < 1:
        raise ValueError(f"rank: expected an int >= 1, got {rank}")
    base = ("p", "q", "t") if order == 3 else tuple(f"a{n + 1}" for n in range(order))
    if rank == 1:
        return [list(base)]
    return [[f"{b}_{r + 1}" for b in base] for r in range(rank)]


def factor_symbols(order=3, rank=1):
    r"""Scalar symbols for one entry of an order-``d``, rank-``R`` CP tensor and their gradients.

    For order 3 the factors are named as in the paper, ``p, q, t`` (``p_1, q_1, t_1, p_2, ...`` for rank
    R > 1); for other orders ``a1, ..., ad``. Gradients are ``g_p`` etc., printed as
    :math:`\partial L / \partial p`.

    .. math::

        w = \sum_{r=1}^{R} \prod_{n=1}^{d} a_{n r}

    Returns
    -------
    factors, grads : list of list of sympy.Symbol
        Indexed ``[r][n]``.
    """
    names = _factor_names(order, rank)
    factors = [[_sym(n, _base_latex(n)) for n in row] for row in names]
    grads = [[grad_symbol(n) for n in row] for row in names]
    return factors, grads


def to_latex(expr):
    r"""LaTeX of a sympy expression with the paper's notation (:math:`\partial L/\partial p` for ``g_p``)."""
    return sp.latex(expr, symbol_names=_LATEX_NAMES)


# ----------------------------------------------------------------------------------------------------
# the expansion and Delta
# ----------------------------------------------------------------------------------------------------

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


def _symbol_table(order=3, rank=1):
    factors, grads = factor_symbols(order, rank)
    return {s.name: s for row in factors + grads for s in row}


def expr_from_terms(terms, order=3, rank=1):
    r"""Sympy expression from a tuple of :class:`Eq3Term` (symbols named as in :func:`factor_symbols`).

    .. math::

        \sum_\text{terms} c \, \alpha^{k} \prod \text{symbols}
    """
    table = _symbol_table(order, rank)
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
        out.append(Eq3Term(int(coeff) if coeff == int(coeff) else coeff, k, _sorted_names(names)))
    return tuple(sorted(out, key=lambda t: (t.lr_power, t.symbols)))


def _sorted_names(names):
    return tuple(sorted(names, key=lambda n: (n.startswith("g_"), n)))


def _normalized(terms):
    return {Eq3Term(t.coefficient, t.lr_power, _sorted_names(t.symbols)) for t in terms}


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
    printed = _normalized(EQ3_PRINTED)
    derived = _normalized(terms_from_expr(eq3_corrected()))
    key = lambda t: (t.lr_power, t.symbols)  # noqa: E731
    return {"printed_only": tuple(sorted(printed - derived, key=key)),
            "derived_only": tuple(sorted(derived - printed, key=key))}


def _term_latex(term, sign=True):
    """LaTeX of one term with the factors written before the gradients, as in the paper."""
    parts = []
    if term.lr_power:
        parts.append(r"\alpha" if term.lr_power == 1 else rf"\alpha^{{{term.lr_power}}}")
    parts += [to_latex(sp.Symbol(n, real=True)) for n in _sorted_names(term.symbols)]
    coeff = term.coefficient
    mag = abs(coeff)
    body = " ".join(([to_latex(sp.Integer(mag))] if mag != 1 else []) + parts) or "1"
    if not sign:
        return body
    return ("- " if coeff < 0 else "") + body


def poly_latex(expr):
    r"""LaTeX of a polynomial in the factor symbols and :math:`\alpha`, grouped by powers of :math:`\alpha`.

    .. math::

        \Delta = p q \frac{\partial L}{\partial t} + \dots - \alpha \left( \dots \right) + \alpha^2 \dots
    """
    terms = terms_from_expr(expr)
    groups = {}
    for t in terms:
        groups.setdefault(t.lr_power, []).append(t)
    out = []
    for k in sorted(groups):
        group = groups[k]
        signs = {1 if t.coefficient > 0 else -1 for t in group}
        if k > 0 and len(group) > 1 and len(signs) == 1:
            inner = " + ".join(_term_latex(Eq3Term(abs(t.coefficient), 0, t.symbols)) for t in group)
            alpha = r"\alpha" if k == 1 else rf"\alpha^{{{k}}}"
            piece = rf"{alpha} \left({inner}\right)"
            out.append(("- " if signs == {-1} else "+ ") + piece)
        else:
            for t in group:
                s = _term_latex(t)
                out.append(s if s.startswith("- ") else "+ " + s)
    text = " ".join(out)
    return text[2:] if text.startswith("+ ") else text


def _stepped_latex(factors, grads):
    return "".join(rf"\left({to_latex(a)} - \alpha {to_latex(g)}\right)" for a, g in zip(factors, grads))


# ----------------------------------------------------------------------------------------------------
# small explicit index sizes
# ----------------------------------------------------------------------------------------------------

def explicit_factors(sizes=(2, 2, 2), rank=1, names=("p", "q", "t")):
    r"""Entry-wise symbols for small explicit factor vectors: ``p_1 .. p_I`` etc. (``p_{r,i}`` for rank > 1).

    Returns
    -------
    list of list of list of sympy.Symbol
        Indexed ``[n][r][i]`` (mode, rank term, entry).
    """
    if len(names) < len(sizes):
        names = tuple(f"a{n + 1}" for n in range(len(sizes)))
    out = []
    for name, size in zip(names, sizes):
        rows = []
        for r in range(rank):
            row = []
            for i in range(size):
                sub = f"{i + 1}" if rank == 1 else f"{r + 1}{i + 1}"
                row.append(_sym(f"{name}_{sub}", f"{name}_{{{sub}}}"))
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


def _weight_symbols(sizes, name="G"):
    return [_sym(f"{name}_{''.join(str(i + 1) for i in idx)}",
                 f"{name}_{{{''.join(str(i + 1) for i in idx)}}}")
            for idx in itertools.product(*[range(s) for s in sizes])]


def _chain_rule_grads(G, factors, sizes):
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


# ----------------------------------------------------------------------------------------------------
# verification results
# ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Verification:
    """The outcome of one symbolic check.

    Attributes
    ----------
    name : str
        Short identifier (``"eq3"``, ``"eq3_printed"``, ``"order_4"``...).
    statement : str
        What was checked, in words.
    holds : bool
        Whether the identity holds (the residual is zero).
    residual : sympy.Basic
        A scalar expression, or an ``ImmutableMatrix`` of entrywise residuals; zero when ``holds``.
    latex : str
        LaTeX of the identity (one or more display lines separated by newlines).
    expected : bool
        What the check is expected to give (False only for Eq. 3 as printed).
    """

    name: str
    statement: str
    holds: bool
    residual: sp.Basic
    latex: str
    expected: bool = True
    details: dict = field(default_factory=dict, compare=False)

    @property
    def ok(self):
        """``holds == expected``."""
        return self.holds == self.expected

    def __str__(self):
        flag = "ok" if self.ok else "FAILED"
        return f"[{flag}] {self.name}: {'holds' if self.holds else 'does not hold'} -- {self.statement}"


def _is_zero(residual):
    if isinstance(residual, sp.MatrixBase):
        return all(sp.expand(e) == 0 for e in residual)
    return sp.expand(residual) == 0


def _matrix(entries):
    return sp.ImmutableMatrix([sp.expand(e) for e in entries])


def verify_eq3(printed=False):
    r"""Check Eq. 3: :math:`(p - \alpha g_p)(q - \alpha g_q)(t - \alpha g_t) = pqt - \alpha \Delta`.

    .. math::

        \text{residual} = \operatorname{expand}\big(
            (p - \alpha g_p)(q - \alpha g_q)(t - \alpha g_t) - (p q t - \alpha \Delta) \big)

    With ``printed=False``, :math:`\Delta` is derived (:func:`eq3_corrected`) and the residual is 0. With
    ``printed=True``, :math:`\Delta` is the paper's printed Eq. 3 (:data:`EQ3_PRINTED`) and the residual is
    :math:`\alpha^2 t\, g_p (g_q - g_t)`: the printed term :math:`t g_p g_t` should read :math:`t g_p g_q`.

    References
    ----------
    Lee & Lee, Eq. 3.
    """
    w, w2 = expansion(3, 1)
    candidate = eq3_printed() if printed else eq3_corrected()
    residual = sp.expand(w2 - (w - ALPHA * candidate))
    holds = residual == 0
    factors, grads = factor_symbols(3, 1)
    (p, q, t), (gp, gq, gt) = factors[0], grads[0]
    D = r"\Delta_{\text{printed}}" if printed else r"\Delta"
    lines = [rf"{D} = {poly_latex(candidate)}",
             rf"{_stepped_latex([p, q, t], [gp, gq, gt])} - \left(p q t - \alpha {D}\right) = "
             rf"{to_latex(sp.factor(residual))}"]
    if printed:
        mis = eq3_misprints()
        wrong = ", ".join(_term_latex(t) for t in mis["printed_only"])
        right = ", ".join(_term_latex(t) for t in mis["derived_only"])
        statement = ("Eq. 3 as printed: (p - a gp)(q - a gq)(t - a gt) = pqt - a*Delta fails, "
                     f"off by {sp.factor(residual)}; the printed term "
                     f"{', '.join(str(expr_from_terms([t])) for t in mis['printed_only'])} should be "
                     f"{', '.join(str(expr_from_terms([t])) for t in mis['derived_only'])}")
        lines.append(rf"\text{{printed }} {wrong} \;\to\; \text{{derived }} {right}")
        details = {"printed_only": mis["printed_only"], "derived_only": mis["derived_only"]}
        name = "eq3_printed"
    else:
        statement = ("Eq. 3 corrected (derived): (p - a gp)(q - a gq)(t - a gt) = pqt - a*Delta, "
                     "Delta = pq gt + qt gp + pt gq - a(p gq gt + q gp gt + t gp gq) + a^2 gp gq gt")
        details = {"terms": terms_from_expr(candidate)}
        name = "eq3"
    return Verification(name=name, statement=statement, holds=bool(holds), residual=residual,
                        latex="\n".join(lines), expected=not printed, details=details)


def verify_eq3_misprint():
    r"""Check that the printed Eq. 3 misses by exactly :math:`\alpha^2 t\, g_p (g_q - g_t)` in :math:`w''`.

    .. math::

        (p - \alpha g_p)(q - \alpha g_q)(t - \alpha g_t) - (pqt - \alpha \Delta_\text{printed})
        = \alpha^2\, t\, g_p\, (g_q - g_t)

    References
    ----------
    Lee & Lee, Eq. 3.
    """
    printed = verify_eq3(printed=True)
    table = _symbol_table()
    expected = ALPHA**2 * table["t"] * table["g_p"] * (table["g_q"] - table["g_t"])
    residual = sp.expand(printed.residual - expected)
    lines = [rf"w'' - \left(w - \alpha \Delta_\text{{printed}}\right) = {to_latex(expected)}"]
    mis = eq3_misprints()
    single = len(mis["printed_only"]) == 1 and len(mis["derived_only"]) == 1
    return Verification(
        name="eq3_misprint",
        statement="the printed Eq. 3 is off by alpha^2 t gp (gq - gt) in w'' and differs from the derivation "
                  "in exactly one term (t gp gt printed for t gp gq)",
        holds=bool(residual == 0 and single), residual=residual, latex="\n".join(lines), details=mis)


def verify_rank(R=2):
    r"""Rank R: the derived :math:`\Delta_R` is the sum of the rank-one :math:`\Delta` over the R terms.

    .. math::

        \sum_{r=1}^{R} (p_r - \alpha g_{p_r})(q_r - \alpha g_{q_r})(t_r - \alpha g_{t_r})
        = \sum_r p_r q_r t_r - \alpha \Delta_R, \qquad
        \Delta_R = \sum_{r=1}^{R} \Delta(p_r, q_r, t_r, g_{p_r}, g_{q_r}, g_{t_r})
    """
    R = _check_small_int(R, "R")
    delta_R = derive_delta(3, R)
    factors, grads = factor_symbols(3, R)
    base_f, base_g = factor_symbols(3, 1)
    delta_1 = derive_delta(3, 1)
    per_term = sp.Add(*[delta_1.subs(dict(zip(base_f[0] + base_g[0], fr + gr)), simultaneous=True)
                        for fr, gr in zip(factors, grads)])
    residual = sp.expand(delta_R - per_term)
    w, w2 = expansion(3, R)
    identity = sp.expand(w2 - (w - ALPHA * delta_R))
    return Verification(
        name=f"rank_{R}",
        statement=f"rank {R}: sum_r (p_r - a gp_r)(q_r - a gq_r)(t_r - a gt_r) = w - a*Delta_R with Delta_R the "
                  "sum of the rank-1 Delta over the terms",
        holds=bool(residual == 0 and identity == 0), residual=residual,
        latex=rf"\Delta_{{{R}}} = {poly_latex(delta_R)}")


def verify_order(d=4):
    r"""Order d: :math:`\prod_n (a_n - \alpha g_n) = \prod_n a_n - \alpha \Delta` with the subset-sum Delta.

    .. math::

        \Delta = \sum_{k=1}^{d} (-\alpha)^{k-1} \sum_{|S|=k} \prod_{n \in S} g_n \prod_{n \notin S} a_n

    The residual is that of the identity with :func:`delta_elementary`; the check also requires it to equal
    the Delta derived from the expansion.
    """
    d = _check_small_int(d, "d")
    elem = delta_elementary(d, 1)
    derived = derive_delta(d, 1)
    w, w2 = expansion(d, 1)
    residual = sp.expand(w2 - (w - ALPHA * elem))
    same = sp.expand(derived - elem) == 0
    factors, grads = factor_symbols(d, 1)
    return Verification(
        name=f"order_{d}",
        statement=f"order {d}: prod_n (a_n - a g_n) = prod_n a_n - a*Delta, Delta = sum_k (-a)^(k-1) "
                  "sum over k-subsets S of prod_S g prod_(not S) a",
        holds=bool(residual == 0 and same), residual=residual,
        latex=rf"{_stepped_latex(factors[0], grads[0])} = {to_latex(w)} - \alpha \left({poly_latex(elem)}\right)")


def verify_chain_rule(I=2, J=2, K=2):
    r"""The chain rule for a rank-1 filter: :math:`\partial L / \partial p_i = \sum_{jk} G_{ijk} q_j t_k`.

    With :math:`L = \sum_{ijk} G_{ijk} w_{ijk}` (the loss linearized at W, G its gradient) and
    :math:`w_{ijk} = p_i q_j t_k`, sympy differentiates L and compares with the contraction, for p, q and t.

    .. math::

        \frac{\partial L}{\partial p_i} = \sum_{jk} G_{ijk} q_j t_k,\quad
        \frac{\partial L}{\partial q_j} = \sum_{ik} G_{ijk} p_i t_k,\quad
        \frac{\partial L}{\partial t_k} = \sum_{ij} G_{ijk} p_i q_j
    """
    sizes = tuple(_check_small_int(v, n) for v, n in zip((I, J, K), "IJK"))
    factors = explicit_factors(sizes)
    G = _weight_symbols(sizes)
    w = explicit_weight(factors)
    L = sp.Add(*[g * wi for g, wi in zip(G, w)])
    contraction = _chain_rule_grads(G, factors, sizes)
    entries = []
    for n in range(3):
        for i in range(sizes[n]):
            entries.append(sp.diff(L, factors[n][0][i]) - contraction[n][0][i])
    residual = _matrix(entries)
    return Verification(
        name="chain_rule",
        statement=f"chain rule on {I}x{J}x{K}: dL/dp_i = sum_jk G_ijk q_j t_k (and for q, t), "
                  "L = sum G_ijk p_i q_j t_k",
        holds=_is_zero(residual), residual=residual,
        latex=r"\frac{\partial L}{\partial p_i} = \sum_{jk} G_{ijk}\, q_j t_k" + "\n"
              + r"\frac{\partial L}{\partial p_1} = " + to_latex(contraction[0][0][0]))


def verify_eq2(I=2, J=2, K=2):
    r"""Eq. 2 entrywise: :math:`w''_{ijk} = w'_{ijk} - \alpha(\Delta_{ijk} - G_{ijk})`, :math:`w' = w - \alpha G`.

    Here :math:`w''_{ijk} = (p_i - \alpha g_{p_i})(q_j - \alpha g_{q_j})(t_k - \alpha g_{t_k})` with the
    factor gradients from G by the chain rule, and :math:`\Delta_{ijk}` is the derived (corrected) Eq. 3
    evaluated entrywise.

    .. math::

        w''_{ijk} = w'_{ijk} - \alpha \left(\Delta_{ijk} - \frac{\partial L}{\partial w_{ijk}}\right)

    References
    ----------
    Lee & Lee, Eqs. 2-3.
    """
    sizes = tuple(_check_small_int(v, n) for v, n in zip((I, J, K), "IJK"))
    factors = explicit_factors(sizes)
    G = _weight_symbols(sizes)
    grads = _chain_rule_grads(G, factors, sizes)
    base_f, base_g = factor_symbols(3, 1)
    delta = derive_delta(3, 1)
    entries = []
    for flat, (i, j, k) in enumerate(itertools.product(*[range(s) for s in sizes])):
        vals = [factors[0][0][i], factors[1][0][j], factors[2][0][k]]
        gvals = [grads[0][0][i], grads[1][0][j], grads[2][0][k]]
        w_ijk = sp.Mul(*vals)
        w2 = sp.Mul(*[a - ALPHA * g for a, g in zip(vals, gvals)])
        w1 = w_ijk - ALPHA * G[flat]
        d_ijk = delta.subs(dict(zip(base_f[0] + base_g[0], vals + gvals)), simultaneous=True)
        entries.append(w2 - (w1 - ALPHA * (d_ijk - G[flat])))
    residual = _matrix(entries)
    return Verification(
        name="eq2",
        statement=f"Eq. 2 on {I}x{J}x{K}: w'' = w' - a(Delta - G), w' = w - a G, w'' the factored step, "
                  "gradients of p, q, t from G by the chain rule",
        holds=_is_zero(residual), residual=residual,
        latex=r"w''_{ijk} = w'_{ijk} - \alpha\left(\Delta_{ijk} - \frac{\partial L}{\partial w_{ijk}}\right),"
              r"\qquad w'_{ijk} = w_{ijk} - \alpha \frac{\partial L}{\partial w_{ijk}}")


def verify_first_order_departure(I=2, J=2, K=2, rank=1):
    r"""The order-:math:`\alpha` part of :math:`w'' - w'` is :math:`-\alpha (J J^\top - I) G`.

    J is the explicit sympy Jacobian of :math:`(p, q, t) \mapsto \operatorname{vec}(w)`; the factor
    gradients come from G by the chain rule, so that :math:`J^\top \operatorname{vec} G = (g_p, g_q, g_t)`.

    .. math::

        [\alpha^1]\,(w'' - w') = -(J J^\top - I)\, \operatorname{vec} G
    """
    sizes = tuple(_check_small_int(v, n) for v, n in zip((I, J, K), "IJK"))
    rank = _check_small_int(rank, "rank")
    factors = explicit_factors(sizes, rank)
    G = _weight_symbols(sizes)
    grads = _chain_rule_grads(G, factors, sizes)
    w = explicit_weight(factors)
    stepped = [[[a - ALPHA * g for a, g in zip(fr, gr)] for fr, gr in zip(fn, gn)] for fn, gn in zip(factors, grads)]
    w2 = explicit_weight(stepped)
    params = [s for fn in factors for row in fn for s in row]
    Jac = sp.Matrix(w).jacobian(params)
    g_vec = sp.Matrix(G)
    first = -(Jac * (Jac.T * g_vec) - g_vec)
    entries = []
    for n, (wi, w2i) in enumerate(zip(w, w2)):
        departure = sp.expand(w2i - (wi - ALPHA * G[n]))
        entries.append(departure.coeff(ALPHA, 1) - first[n])
    residual = _matrix(entries)
    # the chain rule is J^T vec G
    chain = sp.Matrix([g for gn in grads for row in gn for g in row])
    chain_ok = all(sp.expand(e) == 0 for e in (Jac.T * g_vec - chain))
    return Verification(
        name="first_order_departure",
        statement=f"on {I}x{J}x{K}, rank {rank}: the order-a part of w'' - w' is -a (J J^T - I) G, J the Jacobian "
                  "of (p, q, t) -> w, and J^T G is the chain rule",
        holds=_is_zero(residual) and chain_ok, residual=residual,
        latex=r"w'' - w' = -\alpha\,(J J^\top - I)\,\operatorname{vec} G + O(\alpha^2), \qquad "
              r"J = \frac{\partial \operatorname{vec} w}{\partial (p, q, t)}")


def _generic_rationals(n, offset):
    """Distinct non-zero rationals (a deterministic 'generic' point)."""
    return [sp.Rational(2 * (k + offset) + 1, 3 * (k + offset) + 7) * (-1) ** (k + offset) for k in range(n)]


def verify_rank1_dimension(I=2, J=3, K=4):
    r"""The rank-1 tensors of shape I x J x K form a manifold of dimension :math:`I + J + K - 2`.

    The Jacobian of :math:`(p, q, t) \mapsto p \otimes q \otimes t` is computed symbolically; its exact rank
    at a rational point with non-zero factors is :math:`I + J + K - 2`, and its kernel holds the two
    rescalings :math:`(p, -q, 0)` and :math:`(p, 0, -t)` identically in the symbols.

    .. math::

        \operatorname{rank} \frac{\partial\, \operatorname{vec}(p \otimes q \otimes t)}{\partial (p, q, t)}
        = I + J + K - 2
    """
    sizes = tuple(_check_small_int(v, n) for v, n in zip((I, J, K), "IJK"))
    factors = explicit_factors(sizes)
    w = explicit_weight(factors)
    p, q, t = (f[0] for f in factors)
    params = p + q + t
    Jac = sp.Matrix(w).jacobian(params)
    zeros = lambda n: [0] * n  # noqa: E731
    v1 = sp.Matrix(p + [-x for x in q] + zeros(K))
    v2 = sp.Matrix(p + zeros(J) + [-x for x in t])
    kernel = [sp.expand(e) for e in list(Jac * v1) + list(Jac * v2)]
    point = dict(zip(params, _generic_rationals(len(params), 0)))
    rank = Jac.subs(point).rank()
    expected = I + J + K - 2
    residual = sp.Integer(rank - expected)
    return Verification(
        name="rank1_dimension",
        statement=f"rank-1 tensors of shape {I}x{J}x{K} have dimension I+J+K-2 = {expected}: exact Jacobian rank "
                  f"{rank} at a rational point, kernel spanned by the rescalings (p,-q,0), (p,0,-t)",
        holds=bool(residual == 0 and all(e == 0 for e in kernel)), residual=residual,
        latex=rf"\operatorname{{rank}} J_{{{I}\times{J}\times{K}}} = {rank} = {I} + {J} + {K} - 2",
        details={"rank": rank, "expected": expected})


def rank1_manifold_dimension(I, J, K, seed=0, tol=None):
    r"""Numerical dimension of the rank-1 manifold (numpy SVD), for sizes too large for exact arithmetic.

    See :func:`genbound.factor.rank1_manifold_dimension` (the tolerance is NumPy's matrix-rank rule
    :math:`\sigma_{\max} \max(\text{shape}) \varepsilon` unless given).

    Returns
    -------
    genbound.factor.ManifoldDimension
        ``(dim, tol, singular_values)``.
    """
    from genbound.factor import rank1_manifold_dimension as numeric

    return numeric(I, J, K, seed=seed, tol=tol)


def verify_eq1_samples():
    r"""Eq. 1 read as a sample size: :math:`\sqrt{N/m} \le \epsilon \iff m \ge N / \epsilon^2`.

    For positive N, m, :math:`\epsilon`: the bound :math:`\sqrt{N/m}` is strictly decreasing in m (its
    derivative is negative) and equals :math:`\epsilon` exactly at :math:`m^* = N/\epsilon^2` (the only root),
    hence the equivalence.

    .. math::

        \sqrt{\frac{N}{m}} \le \epsilon \iff m \ge \frac{N}{\epsilon^2}

    References
    ----------
    Lee & Lee, Eq. 1.
    """
    N, m, eps = sp.symbols("N m epsilon", positive=True)
    bound = sp.sqrt(N / m)
    roots = sp.solve(sp.Eq(bound, eps), m)
    m_star = N / eps**2
    residual = sp.simplify(bound.subs(m, m_star) - eps)
    decreasing = sp.diff(bound, m).is_negative
    # a numeric spot check through sympy's inequality solver
    example = sp.solve_univariate_inequality(sp.sqrt(sp.Integer(1194) / m) <= sp.Rational(1, 2), m,
                                             relational=False)
    example_ok = example == sp.Interval(4776, sp.oo)
    holds = bool(residual == 0 and decreasing and len(roots) == 1 and sp.simplify(roots[0] - m_star) == 0
                 and example_ok)
    return Verification(
        name="eq1_samples",
        statement="Eq. 1: sqrt(N/m) <= eps iff m >= N/eps^2 (N, m, eps > 0; the bound decreases in m and equals "
                  "eps only at m = N/eps^2)",
        holds=holds, residual=residual,
        latex=r"\sqrt{\frac{N}{m}} \le \epsilon \iff m \ge \frac{N}{\epsilon^{2}}",
        details={"roots": roots, "example_N1194_eps_half": example})


def _check_small_int(value, name, minimum=1):
    from genbound._checks import check_int

    return check_int(value, name, minimum=minimum)


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
    ``f([f1, ..., fd], [g1, ..., gd], lr)`` with factor arrays (O, R, n_i) of this order and rank, and
    returns Delta of shape (O, n_1, ..., n_d), the derived scalar formula broadcast over the entries.

    .. math::

        \Delta_{i_1 \ldots i_d} = \Delta\big(a_{1, i_1}, \ldots, a_{d, i_d}, g_{1, i_1}, \ldots, \alpha\big)
    """
    from genbound import factor as _factor

    order = _check_small_int(order, "order")
    rank = _check_small_int(rank, "rank")
    raw = _lambdified(order, rank)

    def delta_from_sympy(*args, lr=None):
        fs, gs, lr, _ = _factor._parse_factor_grad_call(args, lr, "delta_from_sympy")
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


# ----------------------------------------------------------------------------------------------------
# all results: list, table, LaTeX, report
# ----------------------------------------------------------------------------------------------------

def all_verifications():
    """Run every derivation check.

    Returns
    -------
    list of Verification
        Eq. 1, Eq. 2, Eq. 3 (derived; as printed, expected to fail; the misprint located), ranks 2-3,
        orders 2, 4, 5, the chain rule, the first-order departure, the rank-1 dimension.
    """
    return [
        verify_eq1_samples(),
        verify_eq2(),
        verify_eq3(printed=False),
        verify_eq3(printed=True),
        verify_eq3_misprint(),
        verify_rank(2),
        verify_rank(3),
        verify_order(2),
        verify_order(4),
        verify_order(5),
        verify_chain_rule(),
        verify_first_order_departure(),
        verify_rank1_dimension(),
    ]


def derivation_table(verifications=None):
    """The verifications as a table (what ``genbound derive`` prints).

    Returns
    -------
    pandas.DataFrame
        Columns ``name``, ``statement``, ``holds``, ``expected``, ``ok`` (holds == expected).
    """
    import pandas as pd

    if verifications is None:
        verifications = all_verifications()
    return pd.DataFrame([{"name": v.name, "statement": v.statement, "holds": v.holds, "expected": v.expected,
                          "ok": v.ok} for v in verifications])


def write_latex(path, verifications=None):
    """Write each verified identity's LaTeX to ``path`` (Markdown for ``.md``, else a LaTeX fragment).

    Returns
    -------
    pathlib.Path
    """
    if verifications is None:
        verifications = all_verifications()
    path = Path(path)
    markdown = path.suffix.lower() in (".md", ".markdown")
    out = []
    if markdown:
        out.append("# Derivations checked by genbound.symbolic\n")
    for v in verifications:
        status = "holds" if v.holds else "does not hold"
        if markdown:
            out.append(f"## {v.name} ({status})\n\n{v.statement}\n")
            out.extend(f"$$\n{line}\n$$\n" for line in v.latex.splitlines())
        else:
            out.append(f"% {v.name}: {status}\n\\paragraph{{{v.name.replace('_', ' ')}}} {_tex_escape(v.statement)}")
            out.extend(f"\\[\n{line}\n\\]" for line in v.latex.splitlines())
        out.append("")
    path.write_text("\n".join(out), encoding="utf-8")
    return path


def _tex_escape(text):
    for a, b in (("\\", r"\textbackslash{}"), ("_", r"\_"), ("^", r"\^{}"), ("&", r"\&"), ("%", r"\%"),
                 ("#", r"\#")):
        text = text.replace(a, b)
    return text


def format_report(verifications, title=None):
    """A short human-readable report: one line per check, then the residuals of the failures."""
    lines = [title, "=" * len(title)] if title else []
    for v in verifications:
        lines.append(str(v))
        if not v.holds:
            res = v.residual
            shown = sp.factor(res) if not isinstance(res, sp.MatrixBase) else res
            lines.append(f"    residual: {shown}")
    bad = [v.name for v in verifications if not v.ok]
    lines.append(f"{len(verifications) - len(bad)}/{len(verifications)} checks as expected"
                 + (f"; FAILED: {', '.join(bad)}" if bad else ""))
    return "\n".join(lines)


def exit_code(verifications):
    """0 when every check gives its expected outcome, else 1 (for the derivation scripts)."""
    return 0 if all(v.ok for v in verifications) else 1
