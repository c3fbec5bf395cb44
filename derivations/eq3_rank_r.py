"""Eq. 3 for a rank-R filter: Delta is the sum of the rank-1 Deltas of the R terms.

sum_r (p_r - a gp_r)(q_r - a gq_r)(t_r - a gt_r) = sum_r p_r q_r t_r - a*Delta_R, checked symbolically
for the ranks registered in genbound.symbolic (R = 1..4), and the numeric update (genbound.factor.delta)
against the lambdified symbolic Delta.

Run: python derivations/eq3_rank_r.py
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

try:
    from genbound import symbolic
except ImportError:  # a source checkout that was not installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from genbound import symbolic
from genbound import factor


def numeric_check(rank, seed=0):
    """factor.delta against the Delta generated from sympy, on random (2, R, 3/2/4) factors."""
    import sympy

    rng = np.random.default_rng(seed)
    fs = [rng.normal(size=(2, rank, n)) for n in (3, 2, 4)]
    gs = [rng.normal(size=(2, rank, n)) for n in (3, 2, 4)]
    got = factor.delta(factors=fs, grads=gs, lr=0.05)
    want = symbolic.lambdify_delta(3, rank)(factors=fs, grads=gs, lr=0.05)
    err = float(np.linalg.norm(got - want) / np.linalg.norm(want))
    return symbolic.Verification(
        name=f"rank_{rank}_numeric", statement=f"factor.delta equals the lambdified symbolic Delta, rank {rank} "
        f"(relative difference {err:.1e})", holds=err < 1e-12, residual=sympy.Float(err), latex="")


def checks():
    return symbolic.run_checks("eq3_rank_r") + [numeric_check(R) for R in (1, 2, 3, 4)]


def test_eq3_rank_r():
    results = checks()
    assert all(v.ok for v in results), symbolic.format_report(results)


def main():
    results = checks()
    print(symbolic.format_report(results, title="Eq. 3, rank-R filters"))
    print()
    print("Delta for rank 2:", symbolic.derive_delta(3, 2))
    return symbolic.exit_code(results)


if __name__ == "__main__":
    sys.exit(main())
