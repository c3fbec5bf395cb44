"""Throughput of many small trainings on one machine: a plain loop in one process against the sweep runner's
local backend (worker processes), its threads backend, and plain Python threads over independent models.

Each model is ``genbound.nn.reference_cnn("digits", rank=1, seed=s)`` trained on ``genbound.data.load_digits()``
for ``--epochs`` epochs (batch 64, SGD lr 0.05, batch order from ``seed=s``); the cell returns the final row of
the history and a SHA-256 and the sum of the final flat parameters. The numba cache is filled first by one
one-epoch cell in this process (no worker compiles). Modes, each timed as the wall time of the whole run
(worker start-up included):

- ``loop``: a plain loop over the seeds in this process with the default threads (numba's default, one per
  core; the reference);
- ``loop-1thread``: the same loop with one numba thread and single-threaded BLAS (threadpoolctl);
- ``sweep-local``: ``genbound.experiments.sweep(..., backend="local", workers=W, threads_per_worker=1)``
  into a fresh folder (W spawned processes, each importing genbound and loading the cached kernels);
- ``sweep-threads``: the same with ``backend="threads"`` (W threads of this process, records written as above);
- ``threads``: W Python threads in this process, each training whole models in turn (the next seed not yet
  taken) with one numba thread; the kernels release the GIL and ``run_parallel``/``serial_blas`` are
  thread-safe, so the models share nothing but the interpreter.

Every mode must give the same numbers as ``loop``, bit for bit (history row and parameter hash per seed):
the engine's results do not depend on the thread count or the process. The table gives the wall seconds,
seconds per model-epoch, the speed-up over ``loop``, the sum of the cells' own wall times (inside the
worker or thread: the wall time minus that sum over the workers is start-up and idle time; a sum above the
loop's is cores shared with the other workers or other jobs) and the load average before the mode ran.

    PYTHONPATH=. python benchmarks/sweep_throughput.py [--seeds 8] [--epochs 50] [--workers 2] \
        [--modes loop,loop-1thread,sweep-local,sweep-threads,threads] [--md FILE] [--csv FILE]
"""
from __future__ import annotations

import argparse
import hashlib
import itertools
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

MODES = ("loop", "loop-1thread", "sweep-local", "sweep-threads", "threads")


def train_cell(seed, epochs):
    """Train the rank-1 digits network with ``seed``; the last history row plus a hash and the sum of the
    final flat parameters."""
    import genbound as gb

    model = gb.nn.reference_cnn("digits", rank=1, seed=seed)
    history = gb.train(model, gb.data.load_digits(), epochs=epochs, batch_size=64,
                       optimizer=gb.nn.SGD(lr=0.05), seed=seed, progress=False)
    flat = np.ascontiguousarray(model.get_flat())
    row = history.iloc[-1].to_dict()
    row["param_sha256"] = hashlib.sha256(flat.tobytes()).hexdigest()
    row["param_sum"] = float(flat.sum())
    return row


def _plain_row(seed, row):
    """A result row as plain Python values (numpy scalars from a DataFrame, JSON values from a record), so
    that rows from every mode compare exactly."""
    out = {"seed": int(seed)}
    for k, v in row.items():
        if k in ("seed", "epochs", "status"):
            continue
        out[k] = v.item() if isinstance(v, np.generic) else v
    return out


def _timed_cell(seed, epochs):
    """``(row, seconds)`` of one cell in this process."""
    t0 = time.perf_counter()
    row = _plain_row(seed, train_cell(seed, epochs))
    return row, time.perf_counter() - t0


def run_loop(seeds, epochs, threads=None):
    """A plain loop in this process; ``threads=1``: one numba thread and single-threaded BLAS. Returns the
    rows and each cell's seconds, as every ``run_*``."""
    import numba
    from threadpoolctl import threadpool_limits

    before = numba.get_num_threads()
    numba.set_num_threads(threads or numba.config.NUMBA_NUM_THREADS)
    try:
        with threadpool_limits(limits=threads):  # None: no limit
            return tuple(map(list, zip(*(_timed_cell(s, epochs) for s in seeds))))
    finally:
        numba.set_num_threads(before)


def run_sweep(seeds, epochs, workers, backend="local"):
    """The sweep runner: ``workers`` spawned processes (``backend="local"``) or threads of this process
    (``"threads"``), one numba thread each, into a fresh folder."""
    from genbound.experiments import sweep

    with tempfile.TemporaryDirectory() as out:
        table = sweep(train_cell, {"seed": list(seeds), "epochs": [epochs]}, backend=backend, workers=workers,
                      threads_per_worker=1, out=out, progress=False, raise_on_error=True)
        seconds = pd.read_csv(Path(out) / "index.csv").seconds.tolist()  # each cell's own wall time
    return [_plain_row(r["seed"], r) for r in table.to_dict(orient="records")], seconds


def run_threads(seeds, epochs, workers):
    """``workers`` Python threads, each training whole models (one numba thread each) until none is left."""
    import numba
    from threadpoolctl import threadpool_limits

    seeds = list(seeds)
    results, seconds, errors = [None] * len(seeds), [None] * len(seeds), []
    claim = itertools.count()  # next(...) is atomic under the GIL

    def work():
        numba.set_num_threads(1)  # numba's thread count is per thread
        try:
            for i in iter(claim.__next__, None):
                if i >= len(seeds):
                    return
                results[i], seconds[i] = _timed_cell(seeds[i], epochs)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    with threadpool_limits(limits=1):
        pool = [threading.Thread(target=work, name=f"model-{k}") for k in range(workers)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
    if errors:
        raise errors[0]
    return results, seconds


def _differences(ref, got):
    """Descriptions of the values where ``got`` differs from ``ref`` (exact comparison; NaN equals NaN)."""
    diffs = []
    for a, b in zip(ref, got):
        for k in a:
            x, y = a[k], b.get(k)
            same = x == y or (isinstance(x, float) and isinstance(y, float) and np.isnan(x) and np.isnan(y))
            if not same:
                diffs.append(f"seed {a['seed']}: {k} {x!r} != {y!r}")
    if len(ref) != len(got):
        diffs.append(f"{len(got)} rows instead of {len(ref)}")
    return diffs


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=8, help="number of models (seeds 0, 1, ...)")
    ap.add_argument("--epochs", type=int, default=50)
    ap.add_argument("--workers", type=int, default=2, help="processes of sweep-local, threads of sweep-threads and threads")
    ap.add_argument("--modes", default=",".join(MODES), help=f"comma-separated subset of {', '.join(MODES)} "
                    "(loop, the reference, always runs first)")
    ap.add_argument("--md", help="write the table (and machine) as markdown to this file")
    ap.add_argument("--csv", help="write the table as CSV to this file")
    args = ap.parse_args(argv)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = set(modes) - set(MODES)
    if unknown:
        ap.error(f"--modes: unknown {sorted(unknown)}; expected a subset of {MODES}")
    modes = ["loop"] + [m for m in modes if m != "loop"]
    seeds = range(args.seeds)

    import numba

    train_cell(0, 1)  # compile (or load) the numba kernels once, into the on-disk cache and this process
    machine = _common.machine()
    print(machine)
    print(f"{args.seeds} models x {args.epochs} epochs; numba default threads {numba.config.NUMBA_NUM_THREADS}; "
          f"{args.workers} workers; load average before: {_common.load():.2f}", flush=True)
    runners = {"loop": lambda: run_loop(seeds, args.epochs),
               "loop-1thread": lambda: run_loop(seeds, args.epochs, threads=1),
               "sweep-local": lambda: run_sweep(seeds, args.epochs, args.workers),
               "sweep-threads": lambda: run_sweep(seeds, args.epochs, args.workers, backend="threads"),
               "threads": lambda: run_threads(seeds, args.epochs, args.workers)}
    rows, results = [], {}
    for mode in modes:
        load = _common.load()
        t0 = time.perf_counter()
        results[mode], cell_seconds = runners[mode]()
        wall = time.perf_counter() - t0
        rows.append({"mode": mode, "wall_s": wall, "s_per_model_epoch": wall / (args.seeds * args.epochs),
                     "cell_s_sum": sum(cell_seconds), "load_before": load})
        print(f"{mode}: {wall:.2f} s (load average before {load:.2f})", flush=True)
    table = pd.DataFrame(rows)
    table.insert(3, "speedup", table.wall_s.iloc[0] / table.wall_s)
    table["same_bits"] = [not _differences(results["loop"], results[m]) for m in table["mode"]]
    text = _common.markdown(table)
    print(text)
    test_errors = [round(r["test_error"], 4) for r in results["loop"]]
    print(f"final test_error per seed: {test_errors}")
    if args.csv:
        table.to_csv(args.csv, index=False)
    if args.md:
        with open(args.md, "w") as fh:
            fh.write(f"Machine: {machine}.\n\n{args.seeds} models x {args.epochs} epochs, {args.workers} "
                     f"workers.\n\n{text}\n")
    for mode in modes[1:]:
        diffs = _differences(results["loop"], results[mode])
        assert not diffs, f"{mode} differs from loop: " + "; ".join(diffs[:5])


if __name__ == "__main__":
    main()
