"""The factored step departs from the plain step, to first order, by -a (J J^T - I) G.

w'' - w' = -a(Delta - G); its order-a part is -a (J J^T - I) vec G with J the Jacobian of
(p, q, t) -> p x q x t (checked with an explicit sympy Jacobian). The order-a^2 and a^3 parts, and the
split in float64 (genbound.factor.departure), are checked too.

Run: python derivations/first_order_departure.py
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


def numeric_check(seed=0):
    import sympy

    rng = np.random.default_rng(seed)
    p, q, t = (rng.normal(size=(2, 2, n)) for n in (3, 3, 3))
    G = rng.normal(size=(2, 3, 3, 3))
    lr = 0.05
    dep = factor.departure(p, q, t, G, lr)
    worst = 0.0
    for o in range(2):
        J = factor.cp_jacobian(p[o], q[o], t[o])
        first = -lr * (J @ (J.T @ G[o].ravel()) - G[o].ravel())
        worst = max(worst, float(np.linalg.norm(first - dep.first[o].ravel()) / np.linalg.norm(first)))
    split = float(np.linalg.norm(dep.remainder) / (np.linalg.norm(factor.reconstruct(p, q, t)) + np.linalg.norm(G)))
    norms = factor.departure_table(dep)[["order_1", "order_2", "order_3"]].round(4).values.tolist()[0]
    return symbolic.Verification(
        name="departure_numeric",
        statement=f"float64 departure: first order equals -lr (J J^T - I) G (rel. {worst:.1e}), orders sum to "
                  f"w'' - w' (rel. {split:.1e}); norms by order {norms}",
        holds=worst < 1e-12 and split < 1e-12, residual=sympy.Float(max(worst, split)), latex="")


def checks():
    return symbolic.run_checks("first_order_departure") + [numeric_check()]


def test_first_order_departure():
    results = checks()
    assert all(v.ok for v in results), symbolic.format_report(results)


def main():
    return symbolic.report(checks(), title="Departure of the factored step from the plain step")


if __name__ == "__main__":
    sys.exit(main())
