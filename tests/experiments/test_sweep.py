"""The sweep runner: the same table from every backend, resuming, killing and resuming, failing cells,
validation."""
from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from genbound.experiments import sweep
from tests.experiments import cells

ROOT = pathlib.Path(__file__).resolve().parents[2]
GRID = {"seed": [0, 1, 2], "scale": [0.5, 2.0]}


@pytest.fixture
def marker(tmp_path, monkeypatch):
    path = tmp_path / "calls.txt"
    monkeypatch.setenv(cells.MARKER, str(path))
    return path


def _records(out):
    return {p.stem: json.loads(p.read_text()) for p in (pathlib.Path(out) / "cells").glob("*.json")}


def _litter(out):
    return sorted(p.name for p in pathlib.Path(out).rglob(".tmp-*"))


def test_local_and_dask_backends_give_the_same_table(tmp_path, marker):
    one = sweep(cells.stats, GRID, out=tmp_path / "one", workers=1, progress=False)
    assert len(one) == 6 and cells.calls(marker) == 6
    assert list(one.columns) == ["seed", "scale", "mean", "top", "argmax", "big", "status"]
    assert list(zip(one.seed, one.scale)) == [(0, 0.5), (0, 2.0), (1, 0.5), (1, 2.0), (2, 0.5), (2, 2.0)]
    assert (one.status == "ok").all()
    two = sweep(cells.stats, GRID, out=tmp_path / "two", workers=2, progress=False)
    pids = {line.split()[-1] for line in marker.read_text().splitlines()[6:]}
    assert len(pids) == 2 and str(os.getpid()) not in pids  # two worker processes did the work
    dask = sweep(cells.stats, GRID, backend="dask", out=tmp_path / "dask", workers=2, progress=False)
    assert cells.calls(marker) == 18
    pd.testing.assert_frame_equal(one, two)
    pd.testing.assert_frame_equal(one, dask)
    # records and index: one file per cell, same keys wherever the cells ran
    assert _records(tmp_path / "one").keys() == _records(tmp_path / "dask").keys()
    index = pd.read_csv(tmp_path / "dask" / "index.csv")
    assert len(index) == 6 and (index.status == "ok").all() and set(index.key) == set(_records(tmp_path / "one"))
    rec = next(iter(_records(tmp_path / "dask").values()))
    assert rec["status"] == "ok" and rec["provenance"]["genbound"] and rec["seconds"] >= 0


def test_threads_backend_gives_the_same_table_and_records_in_this_process(tmp_path, marker):
    one = sweep(cells.stats, GRID, out=tmp_path / "one", workers=1, progress=False)
    threads = sweep(cells.stats, GRID, backend="threads", out=tmp_path / "threads", workers=2, progress=False)
    assert cells.calls(marker) == 12
    assert {line.split()[-1] for line in marker.read_text().splitlines()[6:]} == {str(os.getpid())}
    pd.testing.assert_frame_equal(one, threads)
    assert _records(tmp_path / "one").keys() == _records(tmp_path / "threads").keys()
    for rec in _records(tmp_path / "threads").values():
        assert rec["status"] == "ok" and rec["pid"] == os.getpid() and 0 <= rec["cpu_seconds"]
    # failing cells are recorded there too, and a rerun computes only what is missing
    with pytest.warns(RuntimeWarning, match=r"1 of 4 cells failed"):
        table = sweep(cells.fragile, {"seed": [0, 1, 2, 3]}, backend="threads", out=tmp_path / "f", workers=3,
                      progress=False)
    assert list(table.status) == ["ok", "ok", "error", "ok"]
    with pytest.warns(RuntimeWarning):
        sweep(cells.fragile, {"seed": [0, 1, 2, 3]}, backend="threads", out=tmp_path / "f", workers=3,
              progress=False, retry_errors=False)
    assert cells.calls(marker) == 16


def test_threads_backend_sets_numba_threads_per_cell_and_restores_them(tmp_path):
    import numba
    before = numba.get_num_threads()
    table = sweep(cells.numba_threads, {"seed": [0, 1, 2, 3]}, backend="threads", out=tmp_path, workers=2,
                  threads_per_worker=1, progress=False)
    assert table.threads.tolist() == [1, 1, 1, 1]
    assert numba.get_num_threads() == before


def test_threads_backend_trains_networks_to_the_same_bits(tmp_path):
    grid = {"seed": [0, 1, 2, 3]}
    one = sweep(cells.train_steps, grid, out=tmp_path / "one", workers=1, progress=False)
    threads = sweep(cells.train_steps, grid, backend="threads", out=tmp_path / "threads", workers=2,
                    progress=False)
    pd.testing.assert_frame_equal(one, threads, check_exact=True)


def test_dask_backend_on_a_running_cluster_leaves_it_running(tmp_path):
    from dask.distributed import Client, LocalCluster

    grid = {"seed": [5, 6], "scale": [1.0]}
    expected = sweep(cells.stats, grid, out=tmp_path / "here", workers=1, progress=False)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        table = sweep(cells.stats, grid, backend="dask", scheduler=cluster.scheduler_address, out=tmp_path / "there",
                      progress=False)
        with Client(cluster) as client:
            assert client.submit(sum, [1, 2]).result() == 3  # not closed by the sweep
            assert len(client.scheduler_info()["workers"]) == 1
    pd.testing.assert_frame_equal(expected, table)


def test_several_rows_per_cell_and_non_finite_values(tmp_path):
    table = sweep(cells.curve, [{"seed": 3, "n": 4}, {"seed": 1, "n": 2}], out=tmp_path, workers=1,
                  progress=False)
    assert list(table.seed) == [3, 3, 3, 3, 1, 1] and list(table.step) == [0, 1, 2, 3, 0, 1]
    assert table.ratio.iloc[0] == float("inf") and table.ratio.iloc[4] == float("inf")
    again = sweep(cells.curve, [{"seed": 3, "n": 4}, {"seed": 1, "n": 2}], out=tmp_path, workers=1,
                  progress=False)
    pd.testing.assert_frame_equal(table, again)  # read back from the records


def test_rerun_reuses_finished_cells_and_key_extra_invalidates_them(tmp_path, marker):
    first = sweep(cells.stats, GRID, out=tmp_path, workers=1, progress=False, key_extra={"data": "abc"})
    assert cells.calls(marker) == 6
    again = sweep(cells.stats, GRID, out=tmp_path, workers=1, progress=False, key_extra={"data": "abc"})
    assert cells.calls(marker) == 6
    pd.testing.assert_frame_equal(first, again)
    # a grid that extends the first one computes only the new cells
    sweep(cells.stats, {"seed": [0, 1, 2, 3], "scale": [0.5, 2.0]}, out=tmp_path, workers=1, progress=False,
          key_extra={"data": "abc"})
    assert cells.calls(marker) == 8
    changed = sweep(cells.stats, GRID, out=tmp_path, workers=1, progress=False, key_extra={"data": "abd"})
    assert cells.calls(marker) == 14
    pd.testing.assert_frame_equal(first, changed)
    assert len(_records(tmp_path)) == 14  # the records of the old keys are kept


def test_killed_sweep_resumes_with_the_unfinished_cells_only(tmp_path, marker):
    grid = {"seed": list(range(6)), "delay": [0.4]}
    out = tmp_path / "killed"
    code = ("from genbound.experiments import sweep; from tests.experiments.cells import slow; "
            f"sweep(slow, {grid!r}, out={str(out)!r}, workers=1, progress=False)")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        while not list((out / "cells").glob("*.json")) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    finished = len(_records(out))
    assert 1 <= finished < 6
    (out / "cells" / ".tmp-0123.json.interrupted").write_text('{"key": "par')  # a write cut short
    before = cells.calls(marker)
    resumed = sweep(cells.slow, grid, out=out, workers=1, progress=False)
    assert cells.calls(marker) - before == 6 - finished
    whole = sweep(cells.slow, grid, out=tmp_path / "whole", workers=1, progress=False)
    pd.testing.assert_frame_equal(resumed, whole)
    assert _litter(out) == [] and _litter(tmp_path / "whole") == []


def test_a_failing_cell_is_recorded_and_the_others_finish(tmp_path, marker):
    grid = {"seed": [0, 1, 2, 3]}
    with pytest.warns(RuntimeWarning, match=r"1 of 4 cells failed.*cells"):
        table = sweep(cells.fragile, grid, out=tmp_path, workers=1, progress=False)
    assert list(table.status) == ["ok", "ok", "error", "ok"]
    assert table.square.iloc[[0, 1, 3]].tolist() == [0, 1, 9] and pd.isna(table.square.iloc[2])
    failed = [r for r in _records(tmp_path).values() if r["status"] == "error"]
    assert len(failed) == 1 and failed[0]["params"] == {"seed": 2}
    assert failed[0]["error"]["type"] == "builtins.ArithmeticError"
    assert failed[0]["error"]["message"] == "seed 2 is unlucky" and "fragile" in failed[0]["error"]["traceback"]
    assert pd.read_csv(tmp_path / "index.csv").error.tolist()[2] == "builtins.ArithmeticError"
    # kept when retry_errors is False, computed again otherwise; raise_on_error raises after the records
    with pytest.warns(RuntimeWarning):
        sweep(cells.fragile, grid, out=tmp_path, workers=1, progress=False, retry_errors=False)
    assert cells.calls(marker) == 4
    with pytest.raises(RuntimeError, match="1 of 4 cells failed"):
        sweep(cells.fragile, grid, out=tmp_path, workers=1, progress=False, raise_on_error=True)
    assert cells.calls(marker) == 5


def _local(seed):
    return {"seed": seed}


def _closure():
    def inner(seed):
        return {}
    return inner


@pytest.mark.parametrize("kwargs, error, match", [
    ({"backend": "spark"}, ValueError, "backend"),
    ({"grid": {}}, ValueError, "grid"),
    ({"grid": []}, ValueError, "grid"),
    ({"grid": {"seed": []}}, ValueError, r"grid\['seed'\]"),
    ({"grid": {"seed": 3}}, TypeError, r"grid\['seed'\]: expected a list"),
    ({"grid": {"seed": "012"}}, TypeError, r"grid\['seed'\]: expected a list"),
    ({"grid": {"seed": [0, object()]}}, TypeError, r"grid\['seed'\]\[1\]"),
    ({"grid": {"seed": [float("nan")]}}, ValueError, r"grid\['seed'\]\[0\]"),
    ({"grid": [{"seed": 0}, 1]}, TypeError, r"grid\[1\]"),
    ({"grid": [{"seed": 0}, {"seed": 0}]}, ValueError, "grid: cells 0 and 1"),
    ({"grid": {"status": [0]}}, ValueError, "status"),
    ({"grid": "seed"}, TypeError, "grid"),
    ({"workers": 0}, ValueError, "workers"),
    ({"workers": 1.5}, TypeError, "workers"),
    ({"threads_per_worker": 0}, ValueError, "threads_per_worker"),
    ({"key_extra": {1, 2}}, TypeError, "key_extra"),
    ({"scheduler": "tcp://127.0.0.1:8786"}, ValueError, "scheduler"),
    ({"backend": "dask", "scheduler": "tcp://127.0.0.1:8786", "workers": 2}, ValueError, "workers"),
    ({"fn": lambda seed: {}}, TypeError, "fn: .*lambda"),
    ({"fn": _closure()}, TypeError, "fn: .*module"),
    ({"fn": "stats"}, TypeError, "fn"),
    ({"out": "a file"}, ValueError, "out"),
])
def test_arguments_are_checked_before_any_work(tmp_path, kwargs, error, match):
    args = {"fn": cells.fragile, "grid": {"seed": [0]}, "out": tmp_path / "out", "progress": False, **kwargs}
    if args["out"] == "a file":
        args["out"] = tmp_path / "file"
        args["out"].write_text("")
    with pytest.raises(error, match=match):
        sweep(**args)
    assert not (tmp_path / "out").exists()


def test_module_level_functions_of_the_test_module_are_accepted(tmp_path):
    table = sweep(_local, {"seed": [4]}, out=tmp_path, workers=1, progress=False)
    assert table.to_dict("records") == [{"seed": 4, "status": "ok"}]
