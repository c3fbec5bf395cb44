"""Output of the checks: LaTeX in the paper's notation, a table, a Markdown or LaTeX file, a text report."""
from __future__ import annotations

from pathlib import Path

import sympy as sp

from genbound.symbolic.expansions import Eq3Term, sorted_names, terms_from_expr
from genbound.symbolic.symbols import to_latex

__all__ = ["poly_latex", "derivation_table", "write_latex", "format_report", "exit_code", "report"]


def term_latex(term, sign=True):
    """LaTeX of one term with the factors written before the gradients, as in the paper."""
    parts = []
    if term.lr_power:
        parts.append(r"\alpha" if term.lr_power == 1 else rf"\alpha^{{{term.lr_power}}}")
    parts += [to_latex(sp.Symbol(n, real=True)) for n in sorted_names(term.symbols)]
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
            inner = " + ".join(term_latex(Eq3Term(abs(t.coefficient), 0, t.symbols)) for t in group)
            alpha = r"\alpha" if k == 1 else rf"\alpha^{{{k}}}"
            piece = rf"{alpha} \left({inner}\right)"
            out.append(("- " if signs == {-1} else "+ ") + piece)
        else:
            for t in group:
                s = term_latex(t)
                out.append(s if s.startswith("- ") else "+ " + s)
    text = " ".join(out)
    return text[2:] if text.startswith("+ ") else text


def stepped_latex(factors, grads):
    r"""LaTeX of :math:`\prod_n (a_n - \alpha g_n)` for lists of factor and gradient symbols."""
    return "".join(rf"\left({to_latex(a)} - \alpha {to_latex(g)}\right)" for a, g in zip(factors, grads))


def derivation_table(verifications=None):
    """The verifications as a table (what ``genbound derive`` prints).

    Returns
    -------
    pandas.DataFrame
        Columns ``name``, ``statement``, ``holds``, ``expected``, ``ok`` (holds == expected).
    """
    import pandas as pd

    if verifications is None:
        from genbound.symbolic.registry import all_verifications

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
        from genbound.symbolic.registry import all_verifications

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


def report(verifications, title=None):
    """Print :func:`format_report` and return :func:`exit_code` (the ``main`` of a derivation script)."""
    print(format_report(verifications, title=title))
    return exit_code(verifications)
