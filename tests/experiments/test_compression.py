"""Experiment 1 (compression and the bound) on a tiny configuration, checked against independent computations."""
import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import kendalltau

import genbound as gb
from genbound.bounds import ReportConfig
from genbound.experiments.compression import (CompressionConfig, compression_cell, compression_experiment,
                                              grid_cells, kendall_table, seed_list)

TINY = CompressionConfig(ranks=(None, 1), widths=(0.5,), epochs=1, n_train=120, n_test=60,
                         report=ReportConfig(pac_bayes=False, compression=False))


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    out = tmp_path_factory.mktemp("compression")
    return compression_experiment("digits", seeds=2, config=TINY, workers=1, progress=False, out=out), out


def test_tables_match_an_independent_run(result):
    res, _ = result
    runs = res.tables["runs"]
    assert len(runs) == 4 and set(runs["filters"]) == {"full", "rank 1"} and set(runs["seed"]) == {0, 1}
    data = gb.data.load_digits(seed=0, scaling="fixed").subset(np.arange(120), np.arange(60))
    for rank, label in ((None, "full"), (1, "rank 1")):
        model = gb.nn.reference_cnn("digits_gap", rank=rank, seed=1, width=0.5)
        gb.train(model, data, epochs=1, batch_size=64, optimizer=gb.nn.SGD(lr=0.1, momentum=0.9), seed=1,
                 progress=False)
        row = runs[(runs["filters"] == label) & (runs["seed"] == 1)].iloc[0]
        assert row["n_params"] == model.n_params == row["N_params"]
        assert row["m"] == 120
        assert row["train_error"] == pytest.approx(model.error(data.x_train, data.y_train), abs=1e-12)
        assert row["test_error"] == pytest.approx(model.error(data.x_test, data.y_test), abs=1e-12)
        assert row["gap"] == pytest.approx(row["test_error"] - row["train_error"], abs=1e-12)
        assert row["eq1_params"] == pytest.approx(math.sqrt(model.n_params / 120))
        assert row["bound_eq_1_n_parameters"] == pytest.approx(row["eq1_params"])
    # rank-1 manifold dimension is below its parameter count; full filters reach an open set
    full, r1 = runs[runs["filters"] == "full"].iloc[0], runs[runs["filters"] == "rank 1"].iloc[0]
    assert full["N_manifold"] == full["N_params"] and r1["N_manifold"] < r1["N_params"]
    assert runs["N_hessian"].isna().all()  # not asked for


def test_summary_is_over_seeds(result):
    res, _ = result
    runs, summary = res.tables["runs"], res.tables["summary"]
    assert len(summary) == 2 and (summary["n_seeds"] == 2).all()
    for label, grp in runs.groupby("filters"):
        row = summary[summary["filters"] == label].iloc[0]
        x = grp["gap"].to_numpy()
        half = 12.706204736174707 * x.std(ddof=1) / math.sqrt(2)  # t_{1, 0.975}
        assert row["gap_mean"] == pytest.approx(x.mean())
        assert row["gap_lo"] == pytest.approx(x.mean() - half) and row["gap_hi"] == pytest.approx(x.mean() + half)


def test_claims_and_figure(result):
    res, _ = result
    claims = {c.statement: c for c in res.claims}
    lower = claims["Rank-1 filters lower N and the Eq. 1 bound sqrt(N/m) (width 0.5)"]
    assert lower.verdict == "supported"  # N is 1418 vs 474: a deterministic difference
    assert "1418" in lower.evidence and "474" in lower.evidence
    vac = claims["sqrt(N/m) is vacuous (> 1) for full filters (width 0.5)"]
    assert vac.verdict == "supported"  # sqrt(1418 / 120) = 3.4
    assert claims["sqrt(N/m) is non-vacuous (< 1) for rank-1 filters (width 0.5)"].verdict == "not supported"
    assert all(c.verdict in ("supported", "not supported", "inconclusive") for c in res.claims)
    fig = res.figures["gap_vs_capacity"]
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["N = parameter count", "N = manifold dimension"]  # no Hessian panel without its N
    assert all(ax.get_xlabel() and ax.get_ylabel() for ax in fig.axes)
    assert res.config["ranks"] == [None, 1] and res.config["seeds"] == [0, 1]


def test_second_run_reuses_every_cell(result):
    res, out = result
    files = sorted((out / "cells").glob("*.json"))
    assert len(files) == 4
    stamps = [f.stat().st_mtime_ns for f in files]
    again = compression_experiment("digits", seeds=2, config=TINY, workers=1, progress=False, out=out)
    assert [f.stat().st_mtime_ns for f in files] == stamps
    pd.testing.assert_frame_equal(again.tables["runs"].drop(columns=["train_seconds", "report_seconds"]),
                                  res.tables["runs"].drop(columns=["train_seconds", "report_seconds"]))


def test_kendall_table_against_scipy():
    rng = np.random.default_rng(3)
    runs = pd.DataFrame({"data": "d", "network": "n", "filters": np.repeat(["a", "b", "c", "d"], 3),
                         "width": 1.0, "seed": np.tile([0, 1, 2], 4), "gap": rng.random(12)})
    runs["up"] = runs["gap"] * 2 + 1          # same order: tau = 1
    runs["down"] = -runs["gap"]               # reversed: tau = -1
    runs["noise"] = rng.random(12)
    runs["flat"] = 5.0                        # constant: undefined
    table = kendall_table(runs, ["up", "down", "noise", "flat", "missing"]).set_index("measure")
    assert table.loc["up", "tau"] == pytest.approx(1.0) and table.loc["down", "tau"] == pytest.approx(-1.0)
    assert table.loc["up", "tau_mean"] == pytest.approx(1.0)
    expected = kendalltau(runs["noise"], runs["gap"])
    assert table.loc["noise", "tau"] == pytest.approx(expected.statistic)
    assert table.loc["noise", "p_value"] == pytest.approx(expected.pvalue)
    per_seed = [kendalltau(g["noise"], g["gap"]).statistic for _, g in runs.groupby("seed")]
    assert table.loc["noise", "tau_mean"] == pytest.approx(np.mean(per_seed))
    assert np.isnan(table.loc["flat", "tau"]) and "missing" not in table.index
    assert (table["n_networks"] == 4).all()


def test_cell_rows_are_the_report():
    cells, key_extra = grid_cells("digits", {"rank": [1]}, config=TINY)
    cell = compression_cell(**cells[0])
    assert list(cell["bound"]) == ["Eq. 1, N = parameters", "Eq. 1, N = manifold dimension", "VC, d = parameters",
                                   "VC, d = BHLM bound"]
    assert cell["delta"].isna().sum() == 2 and (cell["delta"].dropna() == 0.025).all()
    assert cell["n_params"].nunique() == 1 and len(key_extra["data_fingerprint"]) == 64


@pytest.mark.parametrize("call, error", [
    (lambda: CompressionConfig(ranks=(0,)), ValueError),
    (lambda: CompressionConfig(ranks=()), ValueError),
    (lambda: CompressionConfig(widths=(-1.0,)), ValueError),
    (lambda: CompressionConfig(epochs=0), ValueError),
    (lambda: CompressionConfig(report={"pac_bayes": False}), TypeError),
    (lambda: compression_experiment("digits", config="quick"), TypeError),
    (lambda: compression_experiment("nowhere", config=TINY), ValueError),
    (lambda: compression_experiment("digits", seeds=0, config=TINY), ValueError),
    (lambda: compression_experiment("digits", seeds=[1, 1], config=TINY), ValueError),
    (lambda: compression_experiment("digits", backend="mpi", config=TINY), ValueError),
    (lambda: compression_experiment("digits", scheduler="tcp://x:1", config=TINY), ValueError),
    (lambda: grid_cells("digits", {"depth": [1]}, config=TINY), ValueError),
    (lambda: grid_cells("digits", {"rank": []}, config=TINY), ValueError),
])
def test_bad_arguments(call, error):
    with pytest.raises(error):
        call()


def test_seed_list():
    assert seed_list(3) == [0, 1, 2] and seed_list([4, 7]) == [4, 7]
    with pytest.raises(TypeError):
        seed_list("3")


def test_quick_setting_is_the_documented_one():
    q = CompressionConfig.quick()
    assert q.ranks == (None, 1) and len(q.widths) == 1 and q.epochs <= 30 and not q.report.hessian
    assert CompressionConfig().report.hessian and CompressionConfig().ranks == (None, 1, 2, 4)
