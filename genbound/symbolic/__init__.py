r"""Symbolic derivations behind the paper's equations, checked with sympy.

Everything here is derived by the library, never typed in: the factored update :math:`\Delta` comes from
expanding :math:`\prod_n (a_n - \alpha g_n)`; the chain rule from differentiating
:math:`L = \langle G, W \rangle`; the first-order departure from an explicit Jacobian. The one thing typed in is
the paper's Eq. 3 *as printed*, kept as data (:data:`EQ3_PRINTED`) so that its misprint can be located.

Modules: :mod:`~genbound.symbolic.symbols` (the paper's notation), :mod:`~genbound.symbolic.expansions`
(Delta, Eq. 3 as printed, a numeric Delta generated from the symbolic one),
:mod:`~genbound.symbolic.verifications` (the ``verify_*`` checks, each returning a :class:`Verification`),
:mod:`~genbound.symbolic.registry` (the one list of checks run by ``genbound derive``,
:func:`all_verifications` and the scripts in ``derivations/``), :mod:`~genbound.symbolic.output` (table,
LaTeX, report) and :mod:`~genbound.symbolic.limits` (the largest sizes each check accepts).

This package imports sympy at import time; ``import genbound`` does not import it.

References
----------
Lee & Lee, "Effect of local search with real data on generalization in deep learning" (Eqs. 1-3).
T. G. Kolda and B. W. Bader, "Tensor decompositions and applications", SIAM Review 51(3), 2009.
"""
from __future__ import annotations

from genbound.symbolic.expansions import (EQ3_PRINTED, Eq3Term, delta_elementary, derive_delta, eq3_corrected,
                                          eq3_misprints, eq3_printed, expansion, expr_from_terms, lambdify_delta,
                                          terms_from_expr)
from genbound.symbolic.limits import MAX_ENTRIES, MAX_ORDER, MAX_RANK, MAX_TERMS
from genbound.symbolic.output import derivation_table, exit_code, format_report, poly_latex, report, write_latex
from genbound.symbolic.registry import REGISTRY, Check, all_verifications, registered, run_checks
from genbound.symbolic.symbols import ALPHA, explicit_factors, explicit_weight, factor_symbols, grad_symbol, to_latex
from genbound.symbolic.verifications import (Verification, verify_chain_rule, verify_eq1_samples, verify_eq2,
                                             verify_eq3, verify_eq3_misprint, verify_first_order_departure,
                                             verify_order, verify_rank, verify_rank1_dimension)

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
    "verify_eq1_samples",
    "lambdify_delta",
    "Check",
    "REGISTRY",
    "registered",
    "run_checks",
    "all_verifications",
    "derivation_table",
    "write_latex",
    "format_report",
    "report",
    "exit_code",
    "MAX_ORDER",
    "MAX_RANK",
    "MAX_TERMS",
    "MAX_ENTRIES",
]
