"""The chain rule for CP factors: dL/dp_i = sum_jk G_ijk q_j t_k (and for q, t).

Symbolically: L = sum G_ijk p_i q_j t_k differentiated by sympy on small explicit sizes. Numerically:
genbound.factor.factor_grads against central differences of L(W) = <G, W>.

Run: python derivations/chain_rule.py
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
    fs = [rng.normal(size=(2, 2, n)) for n in (4, 3, 3)]
    G = rng.normal(size=(2, 4, 3, 3))
    grads = factor.factor_grads(G, factors=fs)
    h, worst = 1e-4, 0.0
    for n in range(3):
        v = rng.normal(size=fs[n].shape)
        plus = [f + h * v if m == n else f for m, f in enumerate(fs)]
        minus = [f - h * v if m == n else f for m, f in enumerate(fs)]
        fd = (np.sum(G * factor.reconstruct(factors=plus)) - np.sum(G * factor.reconstruct(factors=minus))) / (2 * h)
        worst = max(worst, abs(fd - np.sum(grads[n] * v)) / abs(fd))
    return symbolic.Verification(
        name="chain_rule_numeric", statement=f"factor_grads against central differences of <G, W> "
        f"(worst relative difference {worst:.1e})", holds=worst < 1e-8, residual=sympy.Float(worst), latex="")


def checks():
    return symbolic.run_checks("chain_rule") + [numeric_check()]


def test_chain_rule():
    results = checks()
    assert all(v.ok for v in results), symbolic.format_report(results)


def main():
    return symbolic.report(checks(), title="Chain rule for CP factors")


if __name__ == "__main__":
    sys.exit(main())
