r"""The checks: each ``verify_*`` returns a :class:`Verification` (name, statement, holds, residual, LaTeX).

Sizes are limited (:mod:`genbound.symbolic.limits`) so that every check finishes; a check on sizes other
than its defaults carries them in its name (``eq2_1x2x3``, ``rank_3``, ``order_5``).

References
----------
Lee & Lee, "Effect of local search with real data on generalization in deep learning" (Eqs. 1-3).
T. G. Kolda and B. W. Bader, "Tensor decompositions and applications", SIAM Review 51(3), 2009.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import sympy as sp

from genbound.symbolic.expansions import (
    delta_elementary,
    derive_delta,
    eq3_corrected,
    eq3_misprints,
    eq3_printed,
    expansion,
    expr_from_terms,
    terms_from_expr,
)
from genbound.symbolic.limits import MAX_ENTRIES, check_at_most, check_order_rank, check_sizes
from genbound.symbolic.output import poly_latex, stepped_latex, term_latex
from genbound.symbolic.symbols import (
    ALPHA,
    explicit_factors,
    explicit_filter,
    explicit_weight,
    factor_symbols,
    symbol_table,
    to_latex,
)

__all__ = ["Verification", "verify_eq3", "verify_eq3_misprint", "verify_rank", "verify_order",
           "verify_chain_rule", "verify_eq2", "verify_first_order_departure", "verify_rank1_dimension",
           "verify_eq1_samples"]


def _sized_name(name, sizes, default):
    """``name`` for the default sizes, else ``name_IxJxK``."""
    return name if tuple(sizes) == default else f"{name}_{'x'.join(map(str, sizes))}"


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


def is_zero(residual):
    """Whether a scalar residual, or every entry of a residual matrix, expands to 0."""
    if isinstance(residual, sp.MatrixBase):
        return all(sp.expand(e) == 0 for e in residual)
    return sp.expand(residual) == 0


def residual_matrix(entries):
    """Entrywise residuals, expanded, as an immutable column matrix."""
    return sp.ImmutableMatrix([sp.expand(e) for e in entries])


def _entrywise(name, statement, entries, latex):
    """A Verification of an identity checked entry by entry: it holds when every residual entry is 0."""
    residual = residual_matrix(entries)
    return Verification(name=name, statement=statement, holds=is_zero(residual), residual=residual, latex=latex)


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
             rf"{stepped_latex([p, q, t], [gp, gq, gt])} - \left(p q t - \alpha {D}\right) = "
             rf"{to_latex(sp.factor(residual))}"]
    if printed:
        mis = eq3_misprints()
        wrong = ", ".join(term_latex(t) for t in mis["printed_only"])
        right = ", ".join(term_latex(t) for t in mis["derived_only"])
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
    table = symbol_table()
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
    R = check_order_rank(3, R, rank_name="R")[1]
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
    d = check_order_rank(d, 1, order_name="d")[0]
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
        latex=rf"{stepped_latex(factors[0], grads[0])} = {to_latex(w)} - \alpha \left({poly_latex(elem)}\right)")


def verify_chain_rule(I=2, J=2, K=2):
    r"""The chain rule for a rank-1 filter: :math:`\partial L / \partial p_i = \sum_{jk} G_{ijk} q_j t_k`.

    With :math:`L = \sum_{ijk} G_{ijk} w_{ijk}` (the loss linearized at W, G its gradient) and
    :math:`w_{ijk} = p_i q_j t_k`, sympy differentiates L and compares with the contraction, for p, q and t.

    .. math::

        \frac{\partial L}{\partial p_i} = \sum_{jk} G_{ijk} q_j t_k,\quad
        \frac{\partial L}{\partial q_j} = \sum_{ik} G_{ijk} p_i t_k,\quad
        \frac{\partial L}{\partial t_k} = \sum_{ij} G_{ijk} p_i q_j
    """
    sizes = check_sizes((I, J, K), "chain_rule")
    factors, G, contraction = explicit_filter(sizes)
    L = sp.Add(*[g * wi for g, wi in zip(G, explicit_weight(factors))])
    entries = []
    for n in range(3):
        for i in range(sizes[n]):
            entries.append(sp.diff(L, factors[n][0][i]) - contraction[n][0][i])
    return _entrywise(
        _sized_name("chain_rule", sizes, (2, 2, 2)),
        f"chain rule on {I}x{J}x{K}: dL/dp_i = sum_jk G_ijk q_j t_k (and for q, t), L = sum G_ijk p_i q_j t_k",
        entries,
        r"\frac{\partial L}{\partial p_i} = \sum_{jk} G_{ijk}\, q_j t_k" + "\n"
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
    sizes = check_sizes((I, J, K), "eq2")
    factors, G, grads = explicit_filter(sizes)
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
    return _entrywise(
        _sized_name("eq2", sizes, (2, 2, 2)),
        f"Eq. 2 on {I}x{J}x{K}: w'' = w' - a(Delta - G), w' = w - a G, w'' the factored step, "
        "gradients of p, q, t from G by the chain rule",
        entries,
        r"w''_{ijk} = w'_{ijk} - \alpha\left(\Delta_{ijk} - \frac{\partial L}{\partial w_{ijk}}\right),"
        r"\qquad w'_{ijk} = w_{ijk} - \alpha \frac{\partial L}{\partial w_{ijk}}")


def verify_first_order_departure(I=2, J=2, K=2, rank=1):
    r"""The order-:math:`\alpha` part of :math:`w'' - w'` is :math:`-\alpha (J J^\top - I) G`.

    J is the explicit sympy Jacobian of :math:`(p, q, t) \mapsto \operatorname{vec}(w)`; the factor
    gradients come from G by the chain rule, so that :math:`J^\top \operatorname{vec} G = (g_p, g_q, g_t)`.

    .. math::

        [\alpha^1]\,(w'' - w') = -(J J^\top - I)\, \operatorname{vec} G
    """
    sizes = check_sizes((I, J, K), "departure")
    rank = check_at_most(rank, "rank", MAX_ENTRIES["departure_with_rank"] // (sizes[0] * sizes[1] * sizes[2]))
    factors, G, grads = explicit_filter(sizes, rank)
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
    residual = residual_matrix(entries)
    # the chain rule is J^T vec G
    chain = sp.Matrix([g for gn in grads for row in gn for g in row])
    chain_ok = all(sp.expand(e) == 0 for e in (Jac.T * g_vec - chain))
    return Verification(
        name=_sized_name("first_order_departure", sizes, (2, 2, 2)) + ("" if rank == 1 else f"_rank{rank}"),
        statement=f"on {I}x{J}x{K}, rank {rank}: the order-a part of w'' - w' is -a (J J^T - I) G, J the Jacobian "
                  "of (p, q, t) -> w, and J^T G is the chain rule",
        holds=is_zero(residual) and chain_ok, residual=residual,
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
    sizes = check_sizes((I, J, K), "rank1_dim")
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
        name=_sized_name("rank1_dimension", sizes, (2, 3, 4)),
        statement=f"rank-1 tensors of shape {I}x{J}x{K} have dimension I+J+K-2 = {expected}: exact Jacobian rank "
                  f"{rank} at a rational point, kernel spanned by the rescalings (p,-q,0), (p,0,-t)",
        holds=bool(residual == 0 and all(e == 0 for e in kernel)), residual=residual,
        latex=rf"\operatorname{{rank}} J_{{{I}\times{J}\times{K}}} = {rank} = {I} + {J} + {K} - 2",
        details={"rank": rank, "expected": expected})


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
