"""The two ways to train CP layers: factor-space SGD (Eq. 2-3) and full-weight SGD with projection."""
import numpy as np
import pytest

import genbound as gb
from genbound.testing import relative_error


@pytest.fixture(scope="module")
def batch():
    data = gb.data.load_digits(seed=0)
    return data.x_train[:64], data.y_train[:64]


@pytest.mark.parametrize("rank", [1, 2])
@pytest.mark.parametrize("momentum,weight_decay", [(0.0, 0.0), (0.9, 1e-3)])
def test_factor_sgd_moves_filters_by_eq3(batch, rank, momentum, weight_decay):
    """One optimizer step on p, q, t moves W to W - lr * Delta with Delta from genbound.factor.delta, where the
    step direction (gradient, momentum, weight decay) takes the place of the gradients."""
    x, y = batch
    model = gb.nn.reference_cnn("digits", rank=rank, seed=0)
    opt = gb.nn.SGD(lr=0.1, momentum=momentum, weight_decay=weight_decay)
    for _ in range(2):  # the second step has a non-trivial momentum buffer
        layer = model.layers[3]
        p, q, t = layer.p.copy(), layer.q.copy(), layer.t.copy()
        w_before = layer.full_weight()
        _, grads = model.loss_and_grad(x, y)
        bufs = {k: (None if v is None else v.copy()) for k, v in
                ((k, opt._buffers.get(f"3.{k}")) for k in "pqt")}
        dirs = [gb.nn.sgd_direction(grads[f"3.{k}"], f, bufs[k], momentum, weight_decay)[0]
                for k, f in zip("pqt", (p, q, t))]
        opt.step(model, grads)
        d = gb.factor.delta(p, q, t, *dirs, lr=0.1)
        w_after = layer.full_weight()
        expected = w_before - 0.1 * d
        scale = np.linalg.norm(w_before) + 0.1 * np.linalg.norm(d)
        assert np.linalg.norm(w_after - expected) <= 1e-12 * scale


def test_project_update_gives_rank_r_fit_of_the_full_step(batch):
    x, y = batch
    model = gb.nn.reference_cnn("digits", rank=1, seed=0)
    layer = model.layers[3]
    w = layer.full_weight()
    _, grads, G = model.loss_and_grad(x, y, weight_grads=True)
    target = w - 0.05 * G[3]
    gb.nn.SGD(lr=0.05, cp_update="project", project_iters=50).step(model, grads, weight_grads=G)
    fit = layer.full_weight()
    best = gb.factor.decompose(target, rank=1, seed=0)
    err_fit = np.linalg.norm(fit - target) / np.linalg.norm(target)
    assert err_fit <= best.error + 1e-9
    # the plain factor step lands elsewhere: the two modes are different algorithms
    other = gb.nn.reference_cnn("digits", rank=1, seed=0)
    gb.nn.SGD(lr=0.05).step(other, other.loss_and_grad(x, y)[1])
    assert relative_error(other.layers[3].full_weight(), fit) > 1e-8


def test_project_mode_per_layer_and_training(batch):
    data = gb.data.load_digits(seed=0).subset(np.arange(256))
    model = gb.nn.reference_cnn("digits", rank=1, seed=0)
    model.layers[0].update = "project"
    opt = gb.nn.SGD(lr=0.05)
    assert opt.projected_layers(model) == [0]
    hist = gb.train(model, data, epochs=3, batch_size=64, optimizer=opt, progress=False)
    assert hist["train_loss"].iloc[-1] < hist["train_loss"].iloc[0]


def test_project_mode_requires_weight_grads(batch):
    x, y = batch
    model = gb.nn.reference_cnn("digits", rank=1, seed=0)
    _, grads = model.loss_and_grad(x, y)
    with pytest.raises(ValueError, match="weight_grads: expected dL/dW"):
        gb.nn.SGD(lr=0.1, cp_update="project").step(model, grads)


def test_bad_update_names():
    with pytest.raises(ValueError, match="update: expected one of"):
        gb.nn.CPConv2d(1, 2, 3, update="full")
    with pytest.raises(ValueError, match="cp_update: expected one of"):
        gb.nn.SGD(lr=0.1, cp_update="projection")


def test_to_full_gives_equivalent_unconstrained_layer(batch):
    x, _ = batch
    layer = gb.nn.reference_cnn("digits", rank=2, seed=0).layers[0]
    full = layer.to_full()
    assert isinstance(full, gb.nn.Conv2d)
    assert relative_error(full.forward(x)[0], layer.forward(x)[0]) <= 1e-12


def test_departure_recorder_matches_the_actual_weight_moves():
    data = gb.data.load_digits(seed=0).subset(np.arange(128))
    model = gb.nn.reference_cnn("digits", rank=1, seed=0)
    start = model.copy()
    rec = gb.experiments.DepartureRecorder(lr=0.1)
    gb.train(model, data, epochs=1, batch_size=64, optimizer=gb.nn.SGD(lr=0.1), seed=0, progress=False,
             step_callback=rec)
    table = rec.table()
    assert list(table["step"]) == [0, 0, 1, 1] and list(table["layer"]) == [0, 3, 0, 3]
    # replay the first step by hand: w'' from the factor step, w' = w - lr G from the plain step
    idx = np.random.default_rng(0).permutation(128)[:64]
    x, y = data.x_train[idx], data.y_train[idx]
    _, grads, G = start.loss_and_grad(x, y, weight_grads=True)
    w = start.layers[3].full_weight()
    gb.nn.SGD(lr=0.1).step(start, grads)
    moved = start.layers[3].full_weight() - (w - 0.1 * G[3])
    row = table[(table["step"] == 0) & (table["layer"] == 3)].iloc[0]
    assert row["total"] == pytest.approx(np.linalg.norm(moved), rel=1e-10)
    assert row["remainder"] <= 1e-12 * row["total"]
    assert row["order_1"] > row["order_2"] > row["order_3"] > 0
