"""Speed-up of a sweep on a 2-worker Dask LocalCluster over a 1-worker one, for cells that train a network.

Each cell trains ``genbound.nn.reference_cnn("digits", rank=1, seed=s)`` on ``genbound.data.load_digits()``
for 5 epochs (batch 64, SGD lr 0.05) and returns the final row of the training history. The same cells run
on a LocalCluster of 1 worker, then of 2 workers (1 thread each), each time into a fresh output folder; the
time is the whole ``sweep`` call (cluster start and stop included) and, separately, the sum of the cells'
own wall and CPU seconds from the records (on a busy machine the wall time of a cell exceeds its CPU
time). Also timed: 1 worker with 2 threads (numba + BLAS), the alternative use of the cores. The numba
cache is filled first by one cell in this process, so no worker compiles.

    python benchmarks/sweep_speedup.py [--cells 4] [--epochs 5] [--reps 1]

(from a checkout without an installed genbound: ``PYTHONPATH=. python benchmarks/sweep_speedup.py``).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402


def train_cell(seed, epochs):
    """Train the rank-1 digits network with ``seed`` and return the last row of its history."""
    import genbound as gb

    model = gb.nn.reference_cnn("digits", rank=1, seed=seed)
    history = gb.train(model, gb.data.load_digits(), epochs=epochs, batch_size=64,
                       optimizer=gb.nn.SGD(lr=0.05), seed=seed, progress=False)
    return history.iloc[-1].to_dict()


def timed_sweep(grid, workers, threads):
    from genbound.experiments import sweep

    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        table = sweep(train_cell, grid, backend="dask", workers=workers, threads_per_worker=threads, out=out,
                      progress=False)
        wall = time.perf_counter() - t0
        index = pd.read_csv(Path(out) / "index.csv")
    return wall, index.seconds.sum(), index.cpu_seconds.sum(), table


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cells", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--reps", type=int, default=1, help="repetitions of each configuration (median reported)")
    args = ap.parse_args(argv)
    grid = {"seed": list(range(args.cells)), "epochs": [args.epochs]}
    train_cell(0, 1)  # compile (or load) the numba kernels once, into the on-disk cache
    print(_common.machine())
    print(f"load average before: {_common.load():.2f}")
    rows, tables = [], []
    for rep in range(args.reps):
        for workers, threads in ((1, 1), (2, 1), (1, 2)):
            wall, cells, cpu, table = timed_sweep(grid, workers, threads)
            tables.append(table)
            rows.append({"workers": workers, "threads": threads, "rep": rep, "wall_s": wall, "cell_s_sum": cells,
                         "cell_cpu_s_sum": cpu, "load": _common.load()})
            print({k: round(v, 2) if isinstance(v, float) else v for k, v in rows[-1].items()}, flush=True)
    for table in tables[1:]:
        pd.testing.assert_frame_equal(tables[0], table)  # same numbers whatever the workers and threads
    res = pd.DataFrame(rows).groupby(["workers", "threads"], sort=False).median().drop(columns="rep").reset_index()
    base = res.wall_s.iloc[0]
    res["speedup"] = base / res.wall_s
    print(_common.markdown(res))
    print(f"final test_error per seed: {tables[0].test_error.round(4).tolist()}")


if __name__ == "__main__":
    main()
