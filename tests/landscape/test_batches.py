"""Tests of genbound.landscape.batches: per-batch tables and their summaries, trajectories, the common-minimum
test, SGD versus GD."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import genbound as gb
from genbound import landscape as L


DIGITS = gb.data.load_digits(seed=0)


@pytest.fixture(scope="module")
def digits():
    return DIGITS


@pytest.fixture(scope="module")
def small(digits):
    return digits.subset(np.arange(45))


def model0(seed=0):
    return gb.nn.reference_cnn("digits", rank=1, seed=seed)


def test_batch_landscape_table_and_identities(small):
    model = model0()
    w0 = model.get_flat()
    df = L.batch_landscape(model, small, batch_size=10, seed=3)
    assert np.array_equal(model.get_flat(), w0)
    batches = small.batch_indices(10, seed=3)
    assert list(df["n_b"]) == [b.size for b in batches] == [10, 10, 10, 10, 5]
    assert list(df.columns[:6]) == ["batch", "n_b", "loss", "error", "grad_norm", "cos_full"]
    for row, idx in zip(df.itertuples(), batches):
        assert row.loss == pytest.approx(model.loss(small.x_train[idx], small.y_train[idx]), rel=1e-14)
    full_loss, full_g = model.loss_and_grad(small.x_train, small.y_train, flat=True)
    weighted = np.sum(df["n_b"] * df["loss"]) / small.m
    assert abs(weighted - full_loss) <= 1e-12 * full_loss
    assert abs(df.attrs["full_loss"] - full_loss) <= 1e-12 * full_loss
    assert df.attrs["full_grad_norm"] == pytest.approx(np.linalg.norm(full_g), rel=1e-10)
    gb_ = [model.loss_and_grad(small.x_train[i], small.y_train[i], flat=True)[1] for i in batches]
    cos = [g @ full_g / (np.linalg.norm(g) * np.linalg.norm(full_g)) for g in gb_]
    assert np.allclose(df["cos_full"], cos, rtol=1e-10)
    assert df.attrs["max_loss"] == df["loss"].max()
    assert df.attrs["loss_range"] == pytest.approx(df["loss"].max() - df["loss"].min())
    assert df.attrs["loss_std"] == pytest.approx(np.std(df["loss"]))
    mean_g = np.mean(gb_, axis=0)
    assert df.attrs["coherence"] == pytest.approx(mean_g @ mean_g / np.mean([g @ g for g in gb_]), rel=1e-10)


def test_gradient_diversity_against_a_direct_loop(digits):
    small = digits.subset(np.arange(20))
    model = model0(1)
    x, y = small.x_train, small.y_train
    g = np.array([model.loss_and_grad(x[i:i + 1], y[i:i + 1], flat=True)[1] for i in range(small.m)])
    direct = np.sum(g ** 2) / np.sum(g.sum(axis=0) ** 2)
    df = L.batch_landscape(model, small, batch_size=8, seed=0)
    assert df.attrs["gradient_diversity"] == pytest.approx(direct, rel=1e-10)
    assert L.gradient_diversity(model, small) == pytest.approx(direct, rel=1e-10)
    assert direct >= 1 / small.m
    # the per-batch analogue is the per-sample one at batch size 1
    one = L.batch_landscape(model, small, batch_size=1, seed=0, per_sample=False)
    assert one.attrs["batch_gradient_diversity"] == pytest.approx(direct, rel=1e-10)
    assert np.isnan(one.attrs["gradient_diversity"])


@settings(max_examples=6)
@given(batch_size=st.integers(1, 50), seed=st.integers(0, 1000), init=st.integers(0, 1000))
def test_coherence_in_unit_interval_and_weighted_mean(batch_size, seed, init):
    data = DIGITS.subset(np.arange(30))
    model = model0(init)
    df = L.batch_landscape(model, data, batch_size=batch_size, seed=seed, per_sample=False)
    assert 0.0 <= df.attrs["coherence"] <= 1.0 + 1e-12
    full = model.loss(data.x_train, data.y_train)
    assert abs(np.sum(df["n_b"] * df["loss"]) / data.m - full) <= 1e-12 * full
    assert np.all(np.abs(df["cos_full"]) <= 1 + 1e-12)


def test_batch_hessian_columns(small):
    model = model0(2)
    df = L.batch_landscape(model, small, batch_size=23, seed=1, hessian=True, per_sample=False, eig_tol=1e-6)
    assert df["eig_converged"].all() and len(df) == 2
    idx = small.batch_indices(23, seed=1)[0]
    xb, yb = small.x_train[idx], small.y_train[idx]
    top = L.top_eigenvalues(model, xb, yb, tol=1e-7).value
    low = L.min_eigenvalue(model, xb, yb, tol=1e-7).value
    assert df.loc[0, "top_eig"] == pytest.approx(top, rel=1e-5)
    assert abs(df.loc[0, "min_eig"] - low) <= 1e-5 * top
    full_top = L.top_eigenvalues(model, data=small, tol=1e-7).value
    assert df.attrs["full_top_eig"] == pytest.approx(full_top, rel=1e-5)


def test_batch_landscape_bad_input(small):
    model = model0()
    with pytest.raises(ValueError, match="batch_size"):
        L.batch_landscape(model, small, batch_size=0)
    with pytest.raises(ValueError, match="batches: "):
        L.batch_landscape(model, small, batches=[np.arange(10)])
    with pytest.raises(TypeError, match="data: "):
        L.batch_landscape(model, small.x_train)
    with pytest.raises(TypeError, match="model: "):
        L.batch_landscape("not a model", small)
    # an (x, y) pair uses the same shuffling convention as Dataset.batch_indices
    a = L.batch_landscape(model, small, batch_size=7, seed=2, per_sample=False)
    b = L.batch_landscape(model, (small.x_train, small.y_train), batch_size=7, seed=2, per_sample=False)
    assert np.array_equal(a["loss"], b["loss"])


def test_trajectory_landscape_follows_training(small):
    model, twin = model0(4), model0(4)
    res = L.trajectory_landscape(model, small, epochs=3, batch_size=15, optimizer=gb.nn.SGD(lr=0.05), seed=7,
                                 every=2, per_sample=False)
    hist = gb.train(twin, small, epochs=3, batch_size=15, optimizer=gb.nn.SGD(lr=0.05), seed=7, progress=False)
    assert np.array_equal(model.get_flat(), twin.get_flat())  # measuring does not disturb training
    assert list(res.summary["epoch"]) == [0, 2, 3]
    assert list(res.summary["step"]) == [0, 6, 9]
    assert len(res.batches) == 3 * 3 and set(res.batches["batch"]) == {0, 1, 2}
    assert np.allclose(res.summary["full_loss"], hist.set_index("epoch").loc[[0, 2, 3], "train_loss"], rtol=1e-12)
    assert {"max_loss", "loss_std", "coherence", "batch_gradient_diversity", "test_error"} <= set(res.summary)
    with pytest.raises(ValueError, match="every"):
        L.trajectory_landscape(model, small, epochs=1, every=0)


def test_common_minimum_test_reports_values_and_verdicts(small):
    model = model0(5)
    init = model.get_flat()
    gb.train(model, small, epochs=3, batch_size=15, seed=0, progress=False)
    kw = dict(batch_size=15, seed=0, eig_tol=1e-2)
    res = L.common_minimum_test(model, small, reference=init, **kw)
    t = res.table
    assert {"grad_norm", "ref_grad_norm", "grad_ratio", "top_eig", "min_eig", "curvature_ratio", "passes"} <= set(t)
    assert np.allclose(t["grad_ratio"], t["grad_norm"] / t["ref_grad_norm"])
    assert res.relative_to == "reference" and res.verdict in ("common minimum", "full-data minimum only",
                                                              "not a minimum")
    # absolute thresholds placed between the full gradient norm and the largest batch gradient norm
    full_norm, worst = res.full["grad_norm"], t["grad_norm"].max()
    assert full_norm < worst
    mid = 0.5 * (full_norm + worst)
    absolute = L.common_minimum_test(model, small, **kw)
    assert absolute.relative_to == "absolute" and np.array_equal(absolute.table["grad_ratio"], t["grad_norm"])
    split = absolute.with_thresholds(grad_tol=mid, curvature_tol=1e6)
    assert split.verdict == "full-data minimum only" and 0 < split.fraction_passing < 1 and not split.common
    loose = absolute.with_thresholds(grad_tol=2 * worst, curvature_tol=1e6)
    assert loose.verdict == "common minimum" and loose.common
    tight = absolute.with_thresholds(grad_tol=0.5 * full_norm, curvature_tol=1e6)
    assert tight.verdict == "not a minimum"
    # the curvature criterion: the most negative batch ratio decides
    worst_curv = absolute.table["curvature_ratio"].min()
    assert worst_curv < 0
    curv = absolute.with_thresholds(grad_tol=2 * worst, curvature_tol=-0.5 * worst_curv)
    assert not curv.table["no_negative_curvature"].all() and curv.table["stationary"].all()
    assert absolute.with_thresholds(grad_tol=2 * worst, curvature_tol=-2 * min(worst_curv, res.full["curvature_ratio"])).common
    with pytest.raises(ValueError, match="reference: "):
        L.common_minimum_test(model, small, reference=init[:-1])
    with pytest.raises(ValueError, match="grad_tol"):
        L.common_minimum_test(model, small, grad_tol=0)


def test_sgd_vs_gd(small):
    model = model0(6)
    w0 = model.get_flat()
    cmp = L.sgd_vs_gd_batch_losses(model, small, batch_size=15, sgd_lr=0.05, sgd_epochs=3, gd_lr=0.05,
                                   hessian=False, per_sample=False)
    assert np.array_equal(model.get_flat(), w0) and np.array_equal(cmp.weights["init"], w0)
    assert list(cmp.summary["optimizer"]) == ["SGD", "GD"]
    assert set(cmp.table["optimizer"]) == {"SGD", "GD"} and len(cmp.table) == 2 * 3
    sgd, gd = cmp.summary.iloc[0], cmp.summary.iloc[1]
    assert sgd["steps"] == 9
    assert gd["steps"] <= 9
    if gd["steps"] < 9:
        assert gd["train_loss"] <= sgd["train_loss"]
    assert gd["full_loss"] == pytest.approx(gd["train_loss"], rel=1e-10)


def test_sgd_vs_several_gd_learning_rates(small):
    model = model0(7)
    cmp = L.sgd_vs_gd_batch_losses(model, small, batch_size=15, sgd_epochs=2, gd_lr=[0.05, 0.1], gd_max_epochs=4,
                                   hessian=False, per_sample=False, match_loss=False)
    assert list(cmp.summary["optimizer"]) == ["SGD", "GD lr=0.05", "GD lr=0.1"]
    assert list(cmp.summary["steps"]) == [6, 4, 4]
    assert set(cmp.weights) == {"init", "SGD", "GD lr=0.05", "GD lr=0.1"}
    one = gb.nn.reference_cnn("digits", rank=1, seed=7)
    gb.train(one, small, epochs=4, batch_size=15, optimizer=gb.nn.GD(lr=0.1), seed=0, progress=False)
    assert np.array_equal(one.get_flat(), cmp.weights["GD lr=0.1"])
    with pytest.raises(ValueError, match="gd_lr"):
        L.sgd_vs_gd_batch_losses(model, small, gd_lr=[0.1, -1.0])
