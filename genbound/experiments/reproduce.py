"""``reproduce``: run every experiment of the paper over seeds and write the report (``genbound reproduce``).

The experiments are listed in one registry, :data:`EXPERIMENTS`; each is a function
``<name>_experiment(data, *, seeds, quick, out, backend, scheduler, workers, progress, config)`` returning an
:class:`~genbound.experiments.ExperimentResult`. Their cells go through :func:`genbound.experiments.sweep`
into ``<out>/cells/<experiment>_<data>/``, so running again with the same ``out`` reuses every finished cell
whose key (parameters, seed, data fingerprint, genbound version) matches.
"""
from __future__ import annotations

import importlib
import pathlib
import sys
import time

from genbound._io import check_writable_folder, remove_stale_temporaries
from genbound.experiments.cells import check_backend, data_label, data_spec, seed_list
from genbound.experiments.report import write_report

__all__ = ["EXPERIMENTS", "reproduce", "experiment_function", "warm_kernels"]

#: (name, module, function) of every experiment ``reproduce`` runs, in report order.
EXPERIMENTS = (
    ("compression", "genbound.experiments.compression", "compression_experiment"),
    ("randomization", "genbound.experiments.randomization", "randomization_experiment"),
    ("batch_landscape", "genbound.experiments.batch_claims", "batch_landscape_experiment"),
    ("escape", "genbound.experiments.batch_claims", "escape_experiment"),
    ("rank1_update", "genbound.experiments.rank1_update", "rank1_update_experiment"),
)

_WARMED = False


def experiment_function(name):
    """The experiment function registered under ``name`` in :data:`EXPERIMENTS`."""
    for key, module, fn in EXPERIMENTS:
        if key == name:
            return getattr(importlib.import_module(module), fn)
    raise ValueError(f"experiments: unknown experiment {name!r}; expected some of {[e[0] for e in EXPERIMENTS]}")


def warm_kernels(progress=True):
    """Compile (or load from numba's on-disk cache) the engine's kernels once in this process, before worker
    processes start, so that a cold cache is compiled once rather than by every worker at the same time.

    Prints a one-time "compiling kernels" message (once per process) when ``progress``. Returns the seconds
    it took (about 1 s with a warm cache; tens of seconds cold).
    """
    global _WARMED
    if _WARMED:
        return 0.0
    import numpy as np

    import genbound as gb

    if progress:
        print("genbound: compiling kernels (once; numba caches them on disk for later runs) ...", end=" ",
              file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    x = np.zeros((2, 1, 8, 8))
    y = np.zeros(2, dtype=np.int64)
    for name in ("digits", "digits_gap"):
        for rank in (None, 1):
            model = gb.nn.reference_cnn(name, rank=rank, seed=0)
            model.loss_and_grad(x, y)
    seconds = time.perf_counter() - t0
    if progress:
        print(f"done in {seconds:.1f} s", file=sys.stderr, flush=True)
    _WARMED = True
    return seconds


def _data_list(data, quick):
    if data is None:
        return ["digits"] if quick else ["digits", "mnist-subset"]
    items = [data] if isinstance(data, (str, pathlib.PurePath)) else list(data)
    if not items:
        raise ValueError("data: expected at least one data set")
    return [data_spec(d) for d in items]


def reproduce(out="report/", *, quick=False, seeds=None, data=None, backend="local", scheduler=None, workers=None,
              progress=True, experiments=None, configs=None):
    """Run the paper's experiments over seeds and write ``out/report.md``, figures and tables.

    Parameters
    ----------
    out : str or path
        Output folder (created; checked writable before anything runs). Running again with the same folder
        resumes: finished cells are reused when their key matches.
    quick : bool
        The quick setting of every experiment (digits only unless ``data`` says otherwise, full and rank-1
        filters, one width, 2 seeds, at most 30 epochs, capped randomization runs, no Hessian effective
        dimension). Without it each experiment runs the full-run setting of each data set (its config's
        ``for_data``: the class defaults on digits, ``mnist()`` on 28x28 images; docs/scaling.md), recorded in
        the report's configuration as ``"setting"``.
    seeds : int or list of int, optional
        Seeds of every experiment; default 2 with ``quick``, else 5.
    data : str, path or list of them, optional
        ``"digits"``, ``"mnist-subset"`` or a folder of MNIST IDX files; default digits with ``quick``, else
        digits and the MNIST subset.
    backend, scheduler, workers :
        Passed to :func:`genbound.experiments.sweep` (``"local"`` process pool or ``"dask"``).
    progress : bool
        Progress bars and the one-time "compiling kernels" message.
    experiments : list of str, optional
        Names from :data:`EXPERIMENTS` to run (default all).
    configs : dict of str -> config, optional
        An experiment's config dataclass by name (overrides ``quick`` and the per-data default for that
        experiment, on every data set).

    Returns
    -------
    dict of str -> ExperimentResult
        Keyed ``"<experiment>_<data>"``; ``out/report.md`` is written.
    """
    names = [e[0] for e in EXPERIMENTS] if experiments is None else list(experiments)
    functions = {name: experiment_function(name) for name in names}
    configs = dict(configs or {})
    for name in configs:
        if name not in functions:
            raise ValueError(f"configs: {name!r} is not one of the experiments run ({names})")
    seeds = seed_list(2 if quick else 5) if seeds is None else seed_list(seeds)
    datasets = _data_list(data, quick)
    check_backend(backend, scheduler, workers)
    out = check_writable_folder(out, "out")
    remove_stale_temporaries(out)
    for sub in ("tables", "figures"):
        remove_stale_temporaries(out / sub)

    if backend in ("local", "threads"):
        warm_kernels(progress)
    entries, results, t_start = [], {}, time.perf_counter()
    jobs = [(name, d) for d in datasets for name in names]
    for i, (name, d) in enumerate(jobs, 1):
        key = f"{name}_{data_label(d)}"
        if progress:
            print(f"[{i}/{len(jobs)}] {name} on {data_label(d)} ({len(seeds)} seeds)", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        result = functions[name](d, seeds=seeds, quick=quick, out=out / "cells" / key, backend=backend,
                                 scheduler=scheduler, workers=workers, progress=progress, config=configs.get(name))
        seconds = time.perf_counter() - t0
        entries.append((key, result, {"seeds": seeds, "seconds": seconds, "data": str(d)}))
        results[key] = result
    run_info = {"quick": bool(quick), "seeds": seeds, "data": [data_label(d) for d in datasets],
                "backend": backend, "workers": workers if workers is not None else "default",
                "seconds": round(time.perf_counter() - t_start, 1)}
    path = write_report(entries, out, run_info=run_info)
    if progress:
        print(f"wrote {path}", file=sys.stderr, flush=True)
    return results
