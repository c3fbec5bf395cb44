"""Eq. 1 read as a sample size: the gap bound sqrt(N/m) is at most eps exactly when m >= N/eps^2.

Also evaluates the bound for the digits network (m = 1437 training images) with full filters and with
rank-1 filters (parameter counts of the "digits_gap" reference network).

Run: python derivations/eq1_samples.py
"""
from __future__ import annotations

import math
import sys
from pathlib import Path

try:
    from genbound import symbolic
except ImportError:  # a source checkout that was not installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from genbound import symbolic

M_DIGITS = 1437
N_FULL, N_RANK1 = 5130, 1194  # digits_gap: full 3x3 filters vs rank-1 filters


def numeric_check():
    import sympy

    full, rank1 = math.sqrt(N_FULL / M_DIGITS), math.sqrt(N_RANK1 / M_DIGITS)
    ok = abs(full - 1.89) < 5e-3 and abs(rank1 - 0.91) < 5e-3
    return symbolic.Verification(
        name="eq1_digits", statement=f"digits_gap, m = {M_DIGITS}: sqrt(N/m) = {full:.2f} with full filters "
        f"(N = {N_FULL}), {rank1:.2f} with rank-1 filters (N = {N_RANK1}); samples for a bound of 0.5: "
        f"{math.ceil(N_FULL / 0.25)} and {math.ceil(N_RANK1 / 0.25)}",
        holds=ok, residual=sympy.Float(0 if ok else 1), latex="")


def checks():
    return symbolic.run_checks("eq1_samples") + [numeric_check()]


def test_eq1_samples():
    results = checks()
    assert all(v.ok for v in results), symbolic.format_report(results)


def main():
    return symbolic.report(checks(), title="Eq. 1 as a sample size")


if __name__ == "__main__":
    sys.exit(main())
