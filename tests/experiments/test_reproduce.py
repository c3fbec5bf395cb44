"""``reproduce`` with tiny configurations writes the report and resumes; the CLI refuses bad arguments early."""
import json

import pandas as pd
import pytest

import genbound as gb
from genbound.bounds import ReportConfig
from genbound.cli import main
from genbound.experiments.compression import CompressionConfig
from genbound.experiments.randomization import CONDITIONS, RandomizationConfig
from genbound.experiments.reproduce import EXPERIMENTS, experiment_function, reproduce

REPORT = ReportConfig(pac_bayes=False, compression=False)
CONFIGS = {
    "compression": CompressionConfig(ranks=(None, 1), widths=(0.5,), epochs=1, n_train=80, n_test=40, report=REPORT),
    "randomization": RandomizationConfig(ranks=(1,), width=0.5, conditions=(CONDITIONS[0], CONDITIONS[4]),
                                         max_epochs=1, n_train=60, n_test=30, report=REPORT),
}


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    results = reproduce(out, seeds=2, data="digits", workers=1, progress=False, configs=CONFIGS)
    return out, results


def test_report_files(report_dir):
    out, results = report_dir
    assert set(results) == {"compression_digits", "randomization_digits"}
    text = (out / "report.md").read_text()
    for res in results.values():
        assert res.title in text
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
    assert not list(out.rglob(".tmp-*"))


def test_second_run_reuses_cells(report_dir):
    out, results = report_dir
    cells = sorted((out / "cells").rglob("cells/*.json"))
    assert len(cells) == 4 + 4  # compression: 2 filters x 2 seeds; randomization: 2 conditions x 2 seeds
    stamps = [p.stat().st_mtime_ns for p in cells]
    again = reproduce(out, seeds=2, data="digits", workers=1, progress=False, configs=CONFIGS)
    assert [p.stat().st_mtime_ns for p in cells] == stamps
    pd.testing.assert_frame_equal(again["randomization_digits"].tables["runs"].drop(columns=["train_seconds",
                                                                                              "report_seconds"]),
                                  results["randomization_digits"].tables["runs"].drop(columns=["train_seconds",
                                                                                               "report_seconds"]))


def test_registry():
    assert [e[0] for e in EXPERIMENTS][:2] == ["compression", "randomization"]
    assert experiment_function("compression") is gb.experiments.compression_experiment
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
