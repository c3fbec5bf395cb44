"""The mnist_gap reference network: its parameters sit in the conv filters, and its gradients are exact."""
from __future__ import annotations

import numpy as np

import genbound as gb


def test_mnist_gap_parameter_counts_by_layer():
    full = gb.nn.reference_cnn("mnist_gap")
    assert full.n_params == (9 * 32 + 32) + (32 * 9 * 64 + 64) + (64 * 10 + 10) == 19466
    cp = gb.nn.reference_cnn("mnist_gap", rank=1)
    assert cp.n_params == 32 * (1 + 3 + 3) + 32 + 64 * (32 + 3 + 3) + 64 + 650 == 3402
    assert cp.forward(np.zeros((2, 1, 28, 28))).shape == (2, 10)


def test_mnist_gap_gradient_along_a_direction_matches_central_differences():
    model = gb.nn.reference_cnn("mnist_gap", rank=1, seed=3, width=0.25)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(3, 1, 28, 28)), np.array([1, 4, 7])
    _, g = model.loss_and_grad(x, y, flat=True)
    v = rng.normal(size=model.n_params)
    v /= np.linalg.norm(v)
    w, h = model.get_flat(), 1e-5
    model.set_flat(w + h * v)
    up = model.loss(x, y)
    model.set_flat(w - h * v)
    down = model.loss(x, y)
    model.set_flat(w)
    fd = (up - down) / (2 * h)
    assert abs(fd - g @ v) <= 1e-6 * max(1.0, abs(g @ v))
