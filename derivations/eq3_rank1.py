"""Eq. 3 for a rank-1 filter: the derived update holds, the update as printed in the paper does not.

Expanding (p - a dL/dp)(q - a dL/dq)(t - a dL/dt) = pqt - a*Delta gives Delta. The paper prints the
last bracketed term as t dL/dp dL/dt; the identity then misses by a^2 t dL/dp (dL/dq - dL/dt).

Run: python derivations/eq3_rank1.py
"""
from __future__ import annotations

import sys
from pathlib import Path

try:
    from genbound import symbolic
except ImportError:  # a source checkout that was not installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from genbound import symbolic


def checks():
    return symbolic.run_checks("eq3_rank1")


def test_eq3_rank1():
    results = checks()
    assert all(v.ok for v in results), symbolic.format_report(results)


def main():
    results = checks()
    print(symbolic.format_report(results, title="Eq. 3, rank-1 filter"))
    print()
    print("Derived:  Delta =", symbolic.eq3_corrected())
    print("Printed:  Delta =", symbolic.eq3_printed())
    mis = symbolic.eq3_misprints()
    print("Printed term", [symbolic.expr_from_terms([t]) for t in mis["printed_only"]],
          "should be", [symbolic.expr_from_terms([t]) for t in mis["derived_only"]])
    import sympy

    print("Residual of the printed identity in w'':", sympy.factor(results[1].residual))
    return symbolic.exit_code(results)


if __name__ == "__main__":
    sys.exit(main())
