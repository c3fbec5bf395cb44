"""Rank-1 filters of shape I x J x K form a manifold of dimension I + J + K - 2.

Exactly (sympy: rank of the Jacobian at a rational point, kernel = the two rescalings) for small sizes,
numerically (numpy SVD, NumPy's matrix-rank tolerance) for the sizes of the reference networks, plus the
dimension of rank-R filters near a generic point.

Run: python derivations/rank1_dimension.py
"""
from __future__ import annotations

import sys
from pathlib import Path

try:
    from genbound import symbolic
except ImportError:  # a source checkout that was not installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from genbound import symbolic
from genbound import factor

NUMERIC_SIZES = ((1, 3, 3), (16, 3, 3), (32, 3, 3), (64, 3, 3), (8, 5, 7))


def numeric_check(sizes):
    import sympy

    dim, tol, s = factor.cp_manifold_dimension(*sizes, rank=1, seed=0)
    expected = sum(sizes) - 2
    gap = s[dim - 1] / max(tol, 1e-300)
    return symbolic.Verification(
        name=f"rank1_dimension_{'x'.join(map(str, sizes))}",
        statement=f"numeric rank of the Jacobian for {sizes}: {dim} (expected {expected}; smallest kept singular "
                  f"value {gap:.1e} x tol, tol {tol:.1e})",
        holds=dim == expected, residual=sympy.Integer(dim - expected), latex="")


def rank_r_table():
    rows = []
    for sizes, R in (((16, 3, 3), 2), ((16, 3, 3), 3), ((32, 3, 3), 2), ((3, 3, 3), 4)):
        dim = factor.cp_manifold_dimension(*sizes, rank=R, seed=0).dim
        naive = min(R * (sum(sizes) - 2), sizes[0] * sizes[1] * sizes[2])
        rows.append(f"  C x kh x kw = {sizes}, rank {R}: dimension {dim} (R(C+kh+kw-2) capped at C kh kw: {naive})")
    return rows


def checks():
    return symbolic.run_checks("rank1_dimension") + [numeric_check(s) for s in NUMERIC_SIZES]


def test_rank1_dimension():
    results = checks()
    assert all(v.ok for v in results), symbolic.format_report(results)


def main():
    results = checks()
    print(symbolic.format_report(results, title="Dimension of the rank-1 manifold"))
    print("Rank-R filters near a generic point (3x3x3 rank 4 is a known defective case):")
    print("\n".join(rank_r_table()))
    return symbolic.exit_code(results)


if __name__ == "__main__":
    sys.exit(main())
