"""Eq. 3 for an order-d CP tensor: Delta through elementary-symmetric-type sums.

prod_n (a_n - a g_n) = prod_n a_n - a*Delta with
Delta = sum_{k=1..d} (-a)^(k-1) sum over k-subsets S of modes of prod_{n in S} g_n prod_{n not in S} a_n,
checked symbolically for the orders registered in genbound.symbolic (d = 1..6) and numerically
(genbound.factor.delta) for d = 2..5.

Run: python derivations/eq3_order_d.py
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


def numeric_check(order, seed=0):
    """The exact identity prod(f - lr g) = W - lr*Delta in float64, norm-wise, including tiny lr."""
    import sympy

    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 4, size=order)
    fs = [rng.normal(size=(2, 2, n)) for n in sizes]
    gs = [rng.normal(size=(2, 2, n)) for n in sizes]
    worst = 0.0
    for lr in (1e-12, 1e-4, 0.3, 2.0):
        W = factor.reconstruct(factors=fs)
        D = factor.delta(factors=fs, grads=gs, lr=lr)
        W2 = factor.reconstruct(factors=factor.factor_step(factors=fs, grads=gs, lr=lr))
        scale = np.linalg.norm(W2) + np.linalg.norm(W) + np.linalg.norm(lr * D)
        worst = max(worst, float(np.linalg.norm(W2 - (W - lr * D)) / scale))
    return symbolic.Verification(
        name=f"order_{order}_numeric",
        statement=f"float64 identity prod(f - lr g) = W - lr*Delta for order {order}, rank 2 "
                  f"(worst norm-wise error {worst:.1e})",
        holds=worst < 1e-12, residual=sympy.Float(worst), latex="")


def checks():
    return symbolic.run_checks("eq3_order_d") + [numeric_check(d) for d in (2, 3, 4, 5)]


def test_eq3_order_d():
    results = checks()
    assert all(v.ok for v in results), symbolic.format_report(results)


def main():
    results = checks()
    print(symbolic.format_report(results, title="Eq. 3 for order-d CP tensors"))
    print()
    print("Delta for order 4:", symbolic.delta_elementary(4, 1))
    return symbolic.exit_code(results)


if __name__ == "__main__":
    sys.exit(main())
