"""Experiment 2 (randomization tests) on a tiny configuration, checked against independent computations."""
import numpy as np
import pandas as pd
import pytest

import genbound as gb
from genbound.bounds import ReportConfig
from genbound.experiments.randomization import (CONDITIONS, RandomizationConfig, randomization_claims, grid_cells,
                                                randomization_cell, randomization_experiment)

REPORT = ReportConfig(pac_bayes=False, compression=False)
TINY = RandomizationConfig(ranks=(None,), width=0.5, conditions=(CONDITIONS[0], CONDITIONS[4]), max_epochs=2,
                           n_train=100, n_test=50, report=REPORT)


@pytest.fixture(scope="module")
def result():
    return randomization_experiment("digits", seeds=2, config=TINY, workers=1, progress=False)


def test_runs_match_an_independent_run(result):
    runs, curves = result.tables["runs"], result.tables["curves"]
    assert list(runs["condition"]) == ["true labels", "true labels", "labels 1.0", "labels 1.0"]
    clean = gb.data.load_digits(seed=0, scaling="fixed").subset(np.arange(100), np.arange(50))
    bad = gb.data.randomize(clean, "partial_labels", 1.0, seed=1)
    assert (bad.y_train != clean.y_train).mean() > 0.7  # labels really are random
    model = gb.nn.reference_cnn("digits", rank=None, seed=1, width=0.5)
    hist = gb.train(model, bad, epochs=2, batch_size=32, optimizer=gb.nn.Adam(lr=3e-3), seed=1, progress=False)
    row = runs[(runs["condition"] == "labels 1.0") & (runs["seed"] == 1)].iloc[0]
    assert row["final_train_error"] == pytest.approx(hist["train_error"].iloc[-1], abs=1e-12)
    assert row["final_test_error"] == pytest.approx(hist["test_error"].iloc[-1], abs=1e-12)
    assert row["final_gap"] == pytest.approx(row["final_test_error"] - row["final_train_error"])
    assert row["best_train_error"] == pytest.approx(hist["train_error"].min())
    assert row["chance"] == pytest.approx(0.9) and row["m"] == 100
    assert row["bound_eq_1_n_parameters"] == pytest.approx(row["final_train_error"] + np.sqrt(model.n_params / 100))
    cell = curves[(curves["condition"] == "labels 1.0") & (curves["seed"] == 1)]
    np.testing.assert_allclose(cell["train_error"], hist["train_error"], atol=1e-12)
    assert list(cell["step"]) == list(hist["step"])


def test_summaryrandomization_claims_figure(result):
    summary = result.tables["summary"]
    assert len(summary) == 2 and (summary["n_seeds"] == 2).all()
    statements = [c.statement for c in result.claims]
    assert any("fit random labels" in s for s in statements)
    assert any("goes to chance" in s for s in statements)
    fig = result.figures["training_curves"]
    assert [ax.get_ylabel() for ax in fig.axes][:1] == ["training error (corrupted training set)"]
    assert all(ax.get_xlabel() == "optimizer steps" for ax in fig.axes[1::2] if ax.get_xlabel())
    assert result.config["width"] == 0.5 and result.config["network"] == "digits"


def test_training_stops_at_zero_training_error():
    cells, _ = grid_cells("digits", {"n_train": [12], "max_epochs": [60]}, config=TINY)
    rows = randomization_cell(**cells[0])
    assert rows["reached_zero"].all()
    assert rows["train_error"].iloc[-1] == 0.0 and (rows["train_error"].iloc[:-1] > 0).all()
    assert rows["steps_to_fit"].iloc[0] == rows["step"].iloc[-1] < 60 * 1  # one batch of 12 per epoch
    assert rows["epochs_to_fit"].iloc[0] == rows["epoch"].iloc[-1]


def test_grid_cells_conditions():
    cells, key_extra = grid_cells("digits", {"condition": ["labels 0.5", "gaussian"]}, config=TINY)
    assert [(c["condition"], c["kind"], c["fraction"]) for c in cells] == [
        ("labels 0.5", "partial_labels", 0.5), ("gaussian", "gaussian", 1.0)]
    cells, _ = grid_cells("digits", {"kind": ["random_pixels"]}, config=TINY)
    assert cells[0]["condition"] == "random_pixels 0"  # fraction from the first condition (true labels)
    with pytest.raises(ValueError, match="condition"):
        grid_cells("digits", {"condition": ["labels 0.3"]}, config=TINY)
    with pytest.raises(ValueError, match="kind"):
        grid_cells("digits", {"kind": ["blur"]}, config=TINY)


def _runs(true_steps, random_steps, random_best, random_test, filters="full"):
    rows = []
    for seed, (ts, rs, rb, rt) in enumerate(zip(true_steps, random_steps, random_best, random_test)):
        common = dict(data="d", network="n", filters=filters, seed=seed, m=100, chance=0.9, n_params=1000,
                      tightest_bound="x", min_error_bound=1.0, bound_eq_1_n_parameters=3.0)
        rows.append(dict(common, condition="true labels", steps_to_fit=ts, step=ts, reached_zero=True,
                         best_train_error=0.0, final_train_error=0.0, final_test_error=0.1, final_gap=0.1,
                         min_bound_slack=0.5, time_ratio=1.0))
        rows.append(dict(common, condition="labels 1.0", steps_to_fit=rs, step=rs if rs == rs else 999,
                         reached_zero=rs == rs, best_train_error=rb, final_train_error=rb, final_test_error=rt,
                         final_gap=rt - rb, min_bound_slack=0.05, time_ratio=rs / ts))
    return pd.DataFrame(rows)


def test_claim_verdicts_follow_the_intervals():
    cfg = {"conditions": [c for c in CONDITIONS], "max_epochs": 10}
    fit = {c.statement.split(" (")[0]: c for c in randomization_claims(_runs([100, 110, 90], [250, 260, 240], [0, 0, 0],
                                                                [0.9, 0.91, 0.89]), cfg)}
    assert fit["Networks with full filters fit random labels"].verdict == "supported"
    assert fit["With random labels the test error of full filters goes to chance"].verdict == "supported"
    ratio = fit["Fitting random labels takes longer than true labels only by a small factor"]
    assert ratio.verdict == "supported" and "2.5" in ratio.evidence
    assert fit["The gap grows with label corruption while sqrt(N/m) stays put"].verdict == "supported"
    nofit = {c.statement.split(" (")[0]: c for c in randomization_claims(_runs([100, 110, 90], [np.nan] * 3, [0.3, 0.31, 0.29],
                                                                  [0.2, 0.21, 0.19]), cfg)}
    assert nofit["Networks with full filters fit random labels"].verdict == "not supported"
    assert nofit["With random labels the test error of full filters goes to chance"].verdict == "not supported"
    ratio = nofit["Fitting random labels takes longer than true labels only by a small factor"]
    assert ratio.verdict == "inconclusive" and "3 of 3 random-label runs hit the cap" in ratio.evidence


@pytest.mark.parametrize("kwargs, error", [
    (dict(conditions=(("x", "blur", 1.0),)), ValueError),
    (dict(conditions=(("x", "gaussian", 1.5),)), ValueError),
    (dict(conditions=(CONDITIONS[0], CONDITIONS[0])), ValueError),
    (dict(conditions=()), ValueError),
    (dict(max_epochs=0), ValueError),
    (dict(lr=0.0), ValueError),
    (dict(ranks=(None, 0)), ValueError),
    (dict(n_train=0), ValueError),
])
def test_bad_config(kwargs, error):
    with pytest.raises(error):
        RandomizationConfig(**kwargs)


def test_quick_setting_is_the_documented_one():
    q = RandomizationConfig.quick()
    assert q.max_epochs <= 30 and q.ranks == (None, 1) and not q.report.pac_bayes
    assert [c[0] for c in q.conditions] == [c[0] for c in CONDITIONS]
