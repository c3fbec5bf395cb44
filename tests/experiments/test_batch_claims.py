"""Experiments 3 and 4 (per-batch landscapes, escape) with tiny configurations, and the common-minimum test on a
planted minimum and on points that are not minima."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import genbound as gb
from genbound.data import Dataset
from genbound.experiments import load_data
from genbound.experiments.batch_claims import (BatchLandscapeExperimentConfig, EscapeConfig,
                                               batch_landscape_experiment, batch_minimum_test, escape_experiment)
from genbound.experiments.results import VERDICTS, ExperimentResult
from genbound.landscape import BatchLandscapeConfig, batch_partition, min_eigenvalue, top_eigenvalues

TINY = dict(n_train=96, n_test=48)


@pytest.fixture(scope="module")
def planted():
    """A rank-1 digits net and a data set on which its point is a minimum of every batch: the net is trained
    briefly, the 64 examples with the largest logit margins are labelled with its own predictions, and the
    dense layer is scaled by 100 so that every softmax saturates (all batch gradients ~ 1e-30 of the
    initialization's; the Gauss-Newton part, positive semi-definite, dominates the Hessian)."""
    data = load_data("digits", 0).subset(np.arange(300))
    model = gb.nn.reference_cnn("digits", rank=1, seed=0, width=0.5)
    init = model.get_flat()
    gb.train(model, data, epochs=3, batch_size=32, progress=False)
    logits = model.forward(data.x_train)
    top2 = np.sort(logits, axis=1)[:, -2:]
    keep = np.argsort(top2[:, 0] - top2[:, 1])[:64]  # largest margins first
    labels = logits[keep].argmax(axis=1)
    ds = Dataset(data.x_train[keep], labels, data.x_test, data.y_test, classes=10)
    trained = model.copy()
    for param in model.layers[-1].params.values():
        param *= 100.0
    return model, ds, init, trained


def test_planted_minimum_passes_every_batch(planted):
    model, ds, init, trained = planted
    cfg = BatchLandscapeConfig(hessian=True, per_sample=False, eig_tol=1e-4)
    res = batch_minimum_test(model, ds, batch_size=16, seed=0, reference=init, config=cfg)
    assert res.verdict == "common minimum" and res.fraction_passing == 1.0
    assert len(res.table) == 4
    # independent checks: each batch's gradient and its Hessian's extreme eigenvalues by ARPACK
    for b, idx in enumerate(batch_partition(ds, 16, 0)):
        pair = (ds.x_train[idx], ds.y_train[idx])
        _, g = model.loss_and_grad(*pair, flat=True)
        probe = model.copy()
        probe.set_flat(init)
        _, g0 = probe.loss_and_grad(*pair, flat=True)
        ratio = np.linalg.norm(g) / np.linalg.norm(g0)
        assert ratio == pytest.approx(res.table["grad_ratio"][b], rel=1e-6)
        assert ratio < 1e-10
        top = top_eigenvalues(model, pair, method="eigsh", tol=1e-10).value
        low = min_eigenvalue(model, pair, method="eigsh", tol=1e-10).value
        assert low / top >= -0.05
        assert res.table["top_eig"][b] == pytest.approx(top, rel=1e-3)


def test_points_that_are_not_minima_fail(planted):
    model, ds, init, trained = planted
    start = model.copy()
    start.set_flat(init)
    res = batch_minimum_test(start, ds, batch_size=16, seed=0, reference=init)
    assert res.verdict == "not a minimum" and res.fraction_passing == 0.0
    assert np.allclose(res.table["grad_ratio"], 1.0)  # the reference itself: nothing has decreased
    # the trained net before its softmax was saturated: it predicts these labels, but its gradients are
    # still a sizeable fraction of the initial ones
    res = batch_minimum_test(trained, ds, batch_size=16, seed=0, reference=init)
    assert res.verdict == "not a minimum" and res.fraction_passing == 0.0
    assert (res.table["grad_ratio"] > 0.1).all()


def test_batch_sample_tests_the_first_batches(planted):
    model, ds, init, trained = planted
    res = batch_minimum_test(model, ds, batch_size=16, seed=3, n_batches=2, reference=init)
    assert len(res.table) == 2
    chosen = np.concatenate(batch_partition(ds, 16, 3)[:2])
    loss, _ = model.evaluate(ds.x_train[chosen], ds.y_train[chosen])
    assert res.full["loss"] == pytest.approx(loss, rel=1e-10)
    # n_batches at least the number of batches: the whole training set
    whole = batch_minimum_test(model, ds, batch_size=16, seed=3, n_batches=9, reference=init)
    assert len(whole.table) == 4 and whole.full["loss"] == pytest.approx(model.evaluate(*ds.train)[0], rel=1e-10)


def _check_result(res, name, figure):
    assert isinstance(res, ExperimentResult) and res.name == name
    assert {"runs", "summary"} <= set(res.tables)
    assert res.claims and all(c.verdict in VERDICTS for c in res.claims)
    json.dumps(res.config)  # plain JSON
    fig = res.figures[figure]
    for ax in fig.axes:
        assert ax.get_xlabel() and ax.get_ylabel() and ax.get_legend() is not None


def test_batch_landscape_experiment_tiny(tmp_path):
    cfg = BatchLandscapeExperimentConfig(epochs=2, checkpoints=2, hessian_batches=2, eig_tol=1e-2, eig_max_iter=6,
                                         per_sample=False, batch_size=32, **TINY)
    res = batch_landscape_experiment("digits", seeds=2, workers=1, progress=False, config=cfg, out=tmp_path)
    _check_result(res, "batch_landscape", "batch_landscape")
    runs = res.tables["runs"]
    assert len(runs) == 2 * 2 * 2  # filters x seeds x checkpoints
    assert sorted(runs["epoch"].unique()) == [0, 2]
    assert runs["fraction_passing"].between(0, 1).all() and (runs["tested_batches"] == 2).all()
    start = runs[runs["epoch"] == 0]
    assert np.allclose(start["full_grad_ratio"], 1.0) and (start["fraction_passing"] == 0).all()
    # independent: the initial test error of each seed's network, and the training loss at the end
    data = load_data("digits", 0).subset(np.arange(96), np.arange(48))
    for _, row in start.iterrows():
        rank = None if pd.isna(row["rank"]) else int(row["rank"])
        model = gb.nn.reference_cnn("digits", rank=rank, seed=int(row["seed"]))
        assert row["test_error"] == pytest.approx(model.error(data.x_test, data.y_test))
        assert row["full_loss"] == pytest.approx(model.evaluate(*data.train)[0], rel=1e-10)
    summary = res.tables["summary"]
    s = summary[(summary["filters"] == "full") & (summary["epoch"] == 2)].iloc[0]
    sel = runs[(runs["filters"] == "full") & (runs["epoch"] == 2)]
    assert s["loss_cv_mean"] == pytest.approx(sel["loss_cv"].mean())
    assert s["n_seeds"] == 2
    # a second run reads every cell back: same table
    again = batch_landscape_experiment("digits", seeds=2, workers=1, progress=False, config=cfg, out=tmp_path)
    pd.testing.assert_frame_equal(again.tables["runs"], runs)


def test_escape_experiment_tiny(tmp_path):
    cfg = EscapeConfig(ranks=(1,), bad_epochs=2, epochs=1, sgd_batch_sizes=(16, 48), gd_lrs=(0.1, 0.3),
                       gd_max_steps=3, hessian_batches=2, test_batch_size=32, eig_tol=1e-2, eig_max_iter=5,
                       sharpness_max_iter=1, **TINY)
    res = escape_experiment("digits", seeds=2, workers=1, progress=False, config=cfg, out=tmp_path)
    _check_result(res, "escape", "escape")
    runs = res.tables["runs"]
    assert len(runs) == 2 * 2 * 4  # seeds x starts x (2 SGD + 2 GD)
    assert set(runs["label"]) == {"SGD b=16", "SGD b=48", "GD lr=0.1", "GD lr=0.3"}
    gd = runs[runs["optimizer"] == "GD"]
    assert (gd["steps"] <= 3).all()
    for (seed, start), grp in runs.groupby(["seed", "start"]):
        target = grp[grp["optimizer"] == "SGD"]["train_loss"].max()
        g = grp[grp["optimizer"] == "GD"]
        assert ((g["train_loss"] <= target) == g["reached_target"].astype(bool)).all()
        # a GD run that stopped early stopped at the target
        assert (g["reached_target"].astype(bool) | (g["steps"] == 3)).all()
    init = runs[runs["start"] == "init"]
    data = load_data("digits", 0).subset(np.arange(96), np.arange(48))
    for seed in (0, 1):
        model = gb.nn.reference_cnn("digits", rank=1, seed=seed)
        assert init[init["seed"] == seed]["start_test_error"].iloc[0] == pytest.approx(
            model.error(data.x_test, data.y_test))
        noisy = gb.data.randomize(data, "partial_labels", cfg.corruption, seed=seed)
        gb.train(model, noisy, epochs=2, batch_size=32, optimizer=gb.nn.SGD(lr=0.1), seed=seed, progress=False)
        bad = runs[(runs["start"] == "bad") & (runs["seed"] == seed)]
        assert bad["start_test_error"].iloc[0] == pytest.approx(model.error(data.x_test, data.y_test))
    diff = res.tables["differences"]
    d = diff[(diff["start"] == "bad") & (diff["measure"] == "test_error")].set_index("seed")
    for seed in (0, 1):
        sel = runs[(runs["start"] == "bad") & (runs["seed"] == seed)]
        expect = (sel[sel["optimizer"] == "SGD"]["test_error"].mean() - sel[sel["optimizer"] == "GD"]["test_error"]
                  .mean())
        assert d.loc[seed, "sgd_minus_gd"] == pytest.approx(expect)


@pytest.mark.parametrize("cls, kwargs, error", [
    (BatchLandscapeExperimentConfig, {"checkpoints": 1}, ValueError),
    (BatchLandscapeExperimentConfig, {"ranks": ()}, ValueError),
    (BatchLandscapeExperimentConfig, {"ranks": (1, 1)}, ValueError),
    (BatchLandscapeExperimentConfig, {"network": "resnet"}, ValueError),
    (BatchLandscapeExperimentConfig, {"scaling": "minmax"}, ValueError),
    (BatchLandscapeExperimentConfig, {"lr": 0}, ValueError),
    (BatchLandscapeExperimentConfig, {"per_sample": 1}, TypeError),
    (EscapeConfig, {"corruption": 0.0}, ValueError),
    (EscapeConfig, {"corruption": 1.5}, ValueError),
    (EscapeConfig, {"sgd_batch_sizes": ()}, ValueError),
    (EscapeConfig, {"gd_lrs": (-0.1,)}, ValueError),
    (EscapeConfig, {"hessian_batches": 0}, ValueError),
    (EscapeConfig, {"match_loss": "yes"}, TypeError),
])
def test_config_validation(cls, kwargs, error):
    with pytest.raises(error):
        cls(**kwargs)


@pytest.mark.parametrize("fn", [batch_landscape_experiment, escape_experiment])
@pytest.mark.parametrize("kwargs, error, name", [
    ({"seeds": 0}, ValueError, "seeds"),
    ({"seeds": [1, 1]}, ValueError, "seeds"),
    ({"data": "cifar"}, ValueError, "data"),
    ({"backend": "mpi"}, ValueError, "backend"),
    ({"scheduler": "tcp://x:1"}, ValueError, "scheduler"),
    ({"config": {"epochs": 1}}, TypeError, "config"),
])
def test_experiment_argument_errors(fn, kwargs, error, name):
    with pytest.raises(error, match=name):
        fn(**{"progress": False, **kwargs})
