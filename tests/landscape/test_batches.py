"""Tests of genbound.landscape.batches: per-batch tables and their summaries, the partition, the configuration,
the common-minimum test."""
import dataclasses

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
    assert all(np.array_equal(a, b) for a, b in zip(L.batch_partition(small, 10, seed=3), batches))
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
    one = L.batch_landscape(model, small, batch_size=1, seed=0, config=L.BatchLandscapeConfig(per_sample=False))
    assert one.attrs["batch_gradient_diversity"] == pytest.approx(direct, rel=1e-10)
    assert np.isnan(one.attrs["gradient_diversity"])


@settings(max_examples=6)
@given(batch_size=st.integers(1, 50), seed=st.integers(0, 1000), init=st.integers(0, 1000))
def test_coherence_in_unit_interval_and_weighted_mean(batch_size, seed, init):
    data = DIGITS.subset(np.arange(30))
    model = model0(init)
    df = L.batch_landscape(model, data, batch_size=batch_size, seed=seed,
                           config=L.BatchLandscapeConfig(per_sample=False))
    assert 0.0 <= df.attrs["coherence"] <= 1.0 + 1e-12
    full = model.loss(data.x_train, data.y_train)
    assert abs(np.sum(df["n_b"] * df["loss"]) / data.m - full) <= 1e-12 * full
    assert np.all(np.abs(df["cos_full"]) <= 1 + 1e-12)


def test_batch_hessian_columns(small):
    model = model0(2)
    config = L.BatchLandscapeConfig(hessian=True, per_sample=False, eig_tol=1e-6)
    df = L.batch_landscape(model, small, batch_size=23, seed=1, config=config)
    assert df["eig_converged"].all() and len(df) == 2
    idx = small.batch_indices(23, seed=1)[0]
    xb, yb = small.x_train[idx], small.y_train[idx]
    top = L.top_eigenvalues(model, (xb, yb), tol=1e-7).value
    low = L.min_eigenvalue(model, (xb, yb), tol=1e-7).value
    assert df.loc[0, "top_eig"] == pytest.approx(top, rel=1e-5)
    assert abs(df.loc[0, "min_eig"] - low) <= 1e-5 * top
    full_top = L.top_eigenvalues(model, small, tol=1e-7).value
    assert df.attrs["full_top_eig"] == pytest.approx(full_top, rel=1e-5)
    # the Lanczos start vectors follow the seed unless eig_seed is given
    again = L.batch_landscape(model, small, batch_size=23, seed=1, config=config)
    assert np.array_equal(again["eig_steps"], df["eig_steps"]) and np.array_equal(again["top_eig"], df["top_eig"])
    pinned = L.BatchLandscapeConfig(hessian=True, per_sample=False, eig_tol=1e-6, eig_seed=1)
    assert np.array_equal(L.batch_landscape(model, small, 23, 1, pinned)["top_eig"], df["top_eig"])


def test_batch_landscape_config():
    config = L.BatchLandscapeConfig(hessian=True)
    assert config.measures_full_hessian and not L.BatchLandscapeConfig().measures_full_hessian
    assert not L.BatchLandscapeConfig(hessian=True, full_hessian=False).measures_full_hessian
    assert dataclasses.asdict(config) == {"hessian": True, "full_hessian": None, "per_sample": True,
                                          "eig_tol": 1e-3, "eig_max_iter": 150, "eig_seed": None}
    assert config == L.BatchLandscapeConfig(hessian=True) and "eig_max_iter=150" in repr(config)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.hessian = False
    with pytest.raises(ValueError, match="eig_tol"):
        L.BatchLandscapeConfig(eig_tol=0.0)
    with pytest.raises(ValueError, match="eig_max_iter"):
        L.BatchLandscapeConfig(eig_max_iter=0)
    with pytest.raises(TypeError, match="hessian"):
        L.BatchLandscapeConfig(hessian="yes")
    with pytest.raises(ValueError, match="eig_seed"):
        L.BatchLandscapeConfig(eig_seed=-1)


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
    with pytest.raises(TypeError, match="config: "):
        L.batch_landscape(model, small, config={"hessian": True})
    # an (x, y) pair uses the same shuffling convention as Dataset.batch_indices
    config = L.BatchLandscapeConfig(per_sample=False)
    a = L.batch_landscape(model, small, batch_size=7, seed=2, config=config)
    b = L.batch_landscape(model, (small.x_train, small.y_train), batch_size=7, seed=2, config=config)
    assert np.array_equal(a["loss"], b["loss"])


def test_common_minimum_test_reports_values_and_verdicts(small):
    model = model0(5)
    init = model.get_flat()
    gb.train(model, small, epochs=3, batch_size=15, seed=0, progress=False)
    kw = dict(batch_size=15, seed=0, config=L.BatchLandscapeConfig(hessian=True, per_sample=False, eig_tol=1e-2))
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
    with pytest.raises(ValueError, match="config: "):
        L.common_minimum_test(model, small, config=L.BatchLandscapeConfig(hessian=False))
