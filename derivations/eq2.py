"""Eq. 2: the factored step is the plain step corrected, w'' = w' - a(Delta - dL/dw), w' = w - a dL/dw.

Checked entrywise with sympy on small explicit sizes (factor gradients from G by the chain rule, Delta the
derived Eq. 3), and in float64 with genbound.factor.eq2_step.

Run: python derivations/eq2.py
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
    p, q, t = (rng.normal(size=(3, 1, n)) for n in (4, 3, 3))
    G = rng.normal(size=(3, 4, 3, 3))
    lr = 0.1
    gp, gq, gt = factor.factor_grads(G, p, q, t)
    W = factor.reconstruct(p, q, t)
    D = factor.delta(p, q, t, gp, gq, gt, lr)
    w2 = factor.reconstruct(*factor.factor_step(p, q, t, gp, gq, gt, lr))
    via_eq2 = factor.eq2_step(W, G, D, lr)
    scale = np.linalg.norm(w2) + np.linalg.norm(W) + np.linalg.norm(lr * D) + 2 * np.linalg.norm(lr * G)
    err = float(np.linalg.norm(w2 - via_eq2) / scale)
    return symbolic.Verification(
        name="eq2_numeric", statement=f"float64: factored step equals eq2_step (norm-wise error {err:.1e})",
        holds=err < 1e-12, residual=sympy.Float(err), latex="")


def checks():
    return symbolic.run_checks("eq2") + [numeric_check()]


def test_eq2():
    results = checks()
    assert all(v.ok for v in results), symbolic.format_report(results)


def main():
    return symbolic.report(checks(), title="Eq. 2")


if __name__ == "__main__":
    sys.exit(main())
