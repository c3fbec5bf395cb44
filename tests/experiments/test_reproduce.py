"""``reproduce`` with tiny configurations writes the report and resumes; the CLI refuses bad arguments early."""
import json

import pandas as pd
import pytest

import genbound as gb
from genbound.bounds import ReportConfig
from genbound.cli import main
from genbound.experiments.batch_claims import BatchLandscapeExperimentConfig, EscapeConfig
from genbound.experiments.compression import CompressionConfig
from genbound.experiments.randomization import CONDITIONS, RandomizationConfig
from genbound.experiments.rank1_update import Rank1UpdateConfig
from genbound.experiments.reproduce import EXPERIMENTS, experiment_function, reproduce

REPORT = ReportConfig(pac_bayes=False, compression=False)
CONFIGS = {
    "compression": CompressionConfig(ranks=(None, 1), widths=(0.5,), epochs=1, n_train=80, n_test=40, report=REPORT),
    "randomization": RandomizationConfig(ranks=(1,), width=0.5, conditions=(CONDITIONS[0], CONDITIONS[4]),
                                         max_epochs=1, n_train=60, n_test=30, report=REPORT),
    "batch_landscape": BatchLandscapeExperimentConfig(ranks=(1,), epochs=1, checkpoints=2, hessian_batches=1,
                                                      eig_tol=1e-2, eig_max_iter=4, per_sample=False, batch_size=32,
                                                      n_train=64, n_test=32),
    "escape": EscapeConfig(ranks=(1,), bad_epochs=1, epochs=1, sgd_batch_sizes=(32,), gd_lrs=(0.1,), gd_max_steps=2,
                           hessian_batches=1, test_batch_size=32, eig_tol=1e-2, eig_max_iter=4, sharpness_max_iter=1,
                           n_train=64, n_test=32),
    "rank1_update": Rank1UpdateConfig(epochs=1, departure_epochs=1, sample_steps=2, project_iters=1,
                                      alphas=(1e-3, 1e-2), n_train=64, n_test=32),
}
#: Cells per experiment with 2 seeds: compression 2 filters, randomization 2 conditions, batch_landscape 1
#: filter type, escape 1 filter type x 2 starts, rank1_update 1.
CELLS = {"compression": 4, "randomization": 4, "batch_landscape": 2, "escape": 4, "rank1_update": 2}


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    results = reproduce(out, seeds=2, data="digits", workers=1, progress=False, configs=CONFIGS)
    return out, results


def test_report_files(report_dir):
    out, results = report_dir
    assert set(results) == {f"{name}_digits" for name, _, _ in EXPERIMENTS}
    text = (out / "report.md").read_text()
    for res in results.values():
        assert res.title in text
        assert res.config["setting"] == "given"  # configs passed: recorded as such, and in the report
        for claim in res.claims:
            assert claim.statement in text
        for name in res.figures:
            png = out / "figures" / f"{res.name}_digits_{name}.png"
            assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            assert f"](figures/{png.name})" in text
        for name, table in res.tables.items():
            csv = out / "tables" / f"{res.name}_digits_{name}.csv"
            assert len(pd.read_csv(csv)) == len(table)
            side = json.loads((out / "tables" / f"{csv.name}.json").read_text())
            assert side["seeds"] == [0, 1] and side["provenance"]["genbound"] == gb.__version__
            assert {"numpy", "numba", "scipy", "pandas", "commit"} <= set(side["provenance"])
            assert side["config"] == res.config and side["columns"] == [str(c) for c in table.columns]
    # the numbers in the report are the run's: the compression N and sqrt(N/m) appear as computed
    runs = results["compression_digits"].tables["runs"]
    assert f"{runs['N_params'].max():.0f}" in text
    assert text.count("setting given") == len(results)
    assert not list(out.rglob(".tmp-*"))


def test_second_run_reuses_cells(report_dir):
    out, results = report_dir
    cells = sorted((out / "cells").rglob("cells/*.json"))
    for name, count in CELLS.items():
        assert len(list((out / "cells" / f"{name}_digits").rglob("cells/*.json"))) == count, name
    assert len(cells) == sum(CELLS.values())
    stamps = [p.stat().st_mtime_ns for p in cells]
    again = reproduce(out, seeds=2, data="digits", workers=1, progress=False, configs=CONFIGS)
    assert [p.stat().st_mtime_ns for p in cells] == stamps
    pd.testing.assert_frame_equal(again["randomization_digits"].tables["runs"].drop(columns=["train_seconds",
                                                                                              "report_seconds"]),
                                  results["randomization_digits"].tables["runs"].drop(columns=["train_seconds",
                                                                                               "report_seconds"]))


def test_registry():
    assert [e[0] for e in EXPERIMENTS] == ["compression", "randomization", "batch_landscape", "escape",
                                           "rank1_update"]
    assert experiment_function("compression") is gb.experiments.compression_experiment
    assert experiment_function("escape") is gb.experiments.escape_experiment
    assert experiment_function("rank1_update") is gb.experiments.rank1_update_experiment
    with pytest.raises(ValueError, match="unknown experiment"):
        experiment_function("nope")


@pytest.mark.parametrize("kwargs, error", [
    (dict(seeds=0), ValueError),
    (dict(data="nowhere"), ValueError),
    (dict(backend="mpi"), ValueError),
    (dict(workers=0), ValueError),
    (dict(experiments=["nope"]), ValueError),
    (dict(configs={"nope": None}), ValueError),
])
def test_reproduce_refuses_bad_arguments_before_running(tmp_path, kwargs, error):
    with pytest.raises(error):
        reproduce(tmp_path / "r", progress=False, **kwargs)
    assert not (tmp_path / "r" / "report.md").exists()


def test_reproduce_refuses_an_unwritable_folder(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ValueError, match="out"):
        reproduce(blocker / "sub", progress=False, configs=CONFIGS)


# ------------------------------------------------------------------------------------------------- CLI

@pytest.mark.parametrize("argv", [
    ["reproduce", "--seeds", "0"],
    ["reproduce", "--seeds", "two"],
    ["reproduce", "--workers", "0"],
    ["reproduce", "--backend", "mpi"],
    ["reproduce", "--data", "/no/such/folder"],
    ["reproduce", "--backend", "local", "--scheduler", "tcp://127.0.0.1:8786"],
    ["reproduce", "--scheduler", "tcp://127.0.0.1:8786", "--workers", "2"],
    ["reproduce", "--unknown"],
    ["sweep", "nope"],
    ["sweep", "compression", "--grid", "rank"],
    ["sweep", "compression", "--grid", "=1,2"],
    ["sweep", "compression", "--grid", "depth=1,2"],
    ["sweep", "compression", "--grid", "rank=1", "--grid", "rank=2"],
    ["sweep", "randomization", "--grid", "condition=blur"],
    ["sweep", "escape", "--grid", "start=middle"],
    ["sweep", "batch_landscape", "--grid", "momentum=0.9"],
])
def test_cli_argument_errors_exit_2_with_usage(argv, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv + (["--out", str(tmp_path / "o")] if argv[0] == "reproduce" and "--unknown" not in argv else []))
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "usage: genbound" in err and "error:" in err
    assert not (tmp_path / "o" / "report.md").exists()


def test_cli_refuses_unwritable_output_before_running(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    for argv in (["reproduce", "--quick", "--out", str(blocker / "r")],
                 ["sweep", "compression", "--quick", "--out", str(blocker / "s")]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
        assert "cannot write" in capsys.readouterr().err


def test_cli_sweep_runs_a_grid(tmp_path, capsys):
    out = tmp_path / "sw"
    argv = ["sweep", "compression", "--quick", "--grid", "rank=full,1", "--grid", "epochs=1", "--grid", "n_train=50",
            "--grid", "n_test=30", "--grid", "width=0.5", "--workers", "1", "--quiet", "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    table = pd.read_csv(out / "table.csv")
    assert set(table["filters"]) == {"full", "rank 1"} and (table["status"] == "ok").all()
    assert "2 cells" in printed and len(list((out / "cells").glob("*.json"))) == 2
    one = table[table["filters"] == "rank 1"].iloc[0]
    model = gb.nn.reference_cnn("digits_gap", rank=1, width=0.5)
    assert one["n_params"] == model.n_params


def test_cli_sweep_escape(tmp_path, capsys):
    """``genbound sweep escape``: one cell per (start, SGD batch size), each with that one batch size; the table
    holds one row per optimizer run; the cell version is part of every stored key."""
    out = tmp_path / "esc"
    argv = ["sweep", "escape", "--quick", "--grid", "start=init,bad", "--grid", "sgd_batch_sizes=16,32",
            "--grid", "n_train=48", "--grid", "n_test=24", "--grid", "bad_epochs=1", "--grid", "epochs=1",
            "--grid", "gd_max_steps=1", "--grid", "hessian_batches=1", "--grid", "test_batch_size=24",
            "--grid", "eig_max_iter=3", "--grid", "sharpness_max_iter=1", "--workers", "1", "--quiet", "--out",
            str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    table = pd.read_csv(out / "table.csv")
    assert (table["status"] == "ok").all() and "4 cells" in printed
    sgd = table[table["optimizer"] == "SGD"]
    assert sorted(zip(sgd["start"], sgd["batch_size"])) == [("bad", 16), ("bad", 32), ("init", 16), ("init", 32)]
    assert (table[table["optimizer"] == "GD"]["steps"] <= 1).all()
    records = [json.loads(p.read_text()) for p in (out / "cells").glob("*.json")]
    assert len(records) == 4 and all(r["key_extra"]["cell_version"] == 1 for r in records)


def test_grid_cells_of_the_batch_experiments_follow_the_config():
    from genbound.experiments import batch_claims, rank1_update

    cfg = BatchLandscapeExperimentConfig(ranks=(None, 1), epochs=3, n_train=64)
    cells, key_extra = batch_claims.batch_landscape_grid_cells("digits", {"seed": [0, 1], "lr": [0.1, 0.2]},
                                                               config=cfg)
    assert [(c["seed"], c["lr"]) for c in cells] == [(0, 0.1), (0, 0.2), (1, 0.1), (1, 0.2)]
    assert all(c["rank"] is None and c["epochs"] == 3 and c["n_train"] == 64 and c["network"] == "digits"
               for c in cells)
    assert key_extra["cell_version"] == batch_claims.CELL_VERSION and len(key_extra["data_fingerprint"]) == 64
    with pytest.raises(ValueError, match="momentum"):
        batch_claims.batch_landscape_grid_cells("digits", {"momentum": [0.9]}, config=cfg)
    cells, _ = batch_claims.escape_grid_cells("digits", {"gd_lrs": [0.1, 0.3]}, quick=True)
    assert [c["gd_lrs"] for c in cells] == [[0.1], [0.3]] and cells[0]["sgd_batch_sizes"] == [32, 128]
    assert cells[0]["start"] == "init"
    cells, key_extra = rank1_update.grid_cells("digits", {"seed": [3]}, quick=True)
    assert cells[0]["seed"] == 3 and cells[0]["epochs"] == Rank1UpdateConfig.quick().epochs
    assert key_extra["cell_version"] == rank1_update.CELL_VERSION
