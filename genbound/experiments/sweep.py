"""Running a function over a grid of parameters, cell by cell, locally or on a Dask cluster, with every
finished cell kept on disk so that an interrupted sweep resumes where it stopped.

A *cell* is one call ``fn(**params)``. Its result (one row or a table of rows) is written to
``out/cells/<key>.json`` as soon as it is known, where the key is a SHA-256 of everything that decides the
result: ``fn``'s qualified name, the parameters, the caller's ``key_extra`` and genbound's version. Cells are
independent and, for a deterministic ``fn``, give the same numbers whichever backend or number of workers runs
them.
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib
import itertools
import json
import math
import numbers
import os
import pathlib
import platform
import sys
import time
import traceback
import warnings

import numpy as np

from genbound import __version__
from genbound._checks import check_int
from genbound._io import (atomic_write_json, atomic_write_text, check_writable_folder, provenance,
                          remove_stale_temporaries, to_json)

BACKENDS = ("local", "threads", "dask")
INDEX_EVERY_S = 5.0  # rewrite out/index.csv at most this often while cells complete (and once at the end)
_JSON_KINDS = "JSON values (None, bool, int, float, str, and lists and dicts of them)"


def sweep(fn, grid, *, backend="local", scheduler=None, workers=None, out, key_extra=None, threads_per_worker=1,
          progress=True, retry_errors=True, raise_on_error=False):
    """Call ``fn(**cell)`` for every cell of ``grid``, keep each result on disk, return them as one table.

    Each cell runs once: its record ``out/cells/<key>.json`` is written atomically when it finishes, and a
    later call with the same ``out`` reuses every record whose key matches instead of computing the cell
    again. The key is

    .. math:: \\mathrm{key} = \\mathrm{SHA256}\\big(\\mathrm{json}(\\mathtt{fn}\\ \\text{module:qualname},
              \\text{params}, \\mathtt{key\\_extra}, \\text{genbound version})\\big)

    over canonical JSON (sorted keys, no spaces), so changing the function, a parameter, ``key_extra`` or
    the library version computes the cell afresh; the records of other keys stay in the folder untouched.
    A cell that raises is recorded with status ``"error"`` (exception type, message, traceback) and the
    other cells go on; a warning at the end says how many failed.

    Parameters
    ----------
    fn : callable
        A function defined at the top level of an importable module (cells run in other processes, which
        import it by name): no lambdas, closures or methods of local classes. Called as ``fn(**params)``
        with the cell's parameters as plain JSON values (tuples arrive as lists, numpy scalars as Python
        numbers). It returns a dict of scalars (one row) or a pandas DataFrame (one row per DataFrame row).
    grid : dict of str -> list, or list of dict
        A dict ``{name: [values]}`` gives the cartesian product of the value lists, in a stable order (the
        first name varies slowest, each list in its given order); a list of dicts gives the cells
        explicitly. Values must be JSON values: None, bool, int, float (finite), str, numpy scalars, and
        lists, tuples and str-keyed dicts of them.
    backend : {"local", "threads", "dask"}
        ``"local"``: a pool of ``workers`` processes started with ``spawn`` (never ``fork``: numba and BLAS
        threads do not survive it); ``workers=1`` runs the cells in this process. ``"threads"``: ``workers``
        threads of this process, each running whole cells (the engine's kernels release the GIL): for
        small models as fast as worker processes (docs/performance.md, sixth round), with no process to
        start and ``fn`` defined anywhere; for cells that share no mutable state; a cell that crashes the
        interpreter ends the sweep (finished records stay). ``"dask"``: a
        ``dask.distributed`` cluster, see ``scheduler``.
    scheduler : str or distributed.Client, optional
        Only with ``backend="dask"``. None (default): start a ``LocalCluster`` of ``workers`` processes
        with one thread each, and close it at the end. An address such as ``"tcp://10.0.0.1:8786"`` (or a
        connected ``Client``): submit the cells to that running cluster, which is left running. Results
        travel back to this process, which alone writes ``out``.
    workers : int >= 1, optional
        Number of processes (threads with ``backend="threads"``; default ``os.cpu_count()``; at most the
        number of cells). Leave it None with a ``scheduler``: the cluster decides.
    out : str or path-like
        Folder of the records (created if needed): ``cells/<key>.json`` and ``index.csv``.
    key_extra : JSON value, optional
        Anything else the results depend on that the parameters do not say, e.g. a fingerprint of the data
        or the commit of the code that ``fn`` runs. Part of every key.
    threads_per_worker : int >= 1
        numba and BLAS threads of each cell (set with ``numba.set_num_threads`` and threadpoolctl while the
        cell runs; with ``backend="threads"``, BLAS's for the whole sweep, as it is a setting of the process).
        Choose ``workers * threads_per_worker`` = the number of cores.
    progress : bool
        Show a tqdm progress bar over cells.
    retry_errors : bool
        Compute again the cells whose record says ``"error"`` (default); False keeps those records.
    raise_on_error : bool
        Raise a RuntimeError at the end, after all records are written, instead of warning, when a cell
        failed.

    Returns
    -------
    pandas.DataFrame
        One row per result row, in grid order: the parameters, the result's columns, and ``status``
        (``"ok"`` or ``"error"``; a failed cell gives one row with missing results). A cell whose DataFrame
        has no rows gives no row. Non-scalar parameter values (lists, dicts) appear as their JSON text.

    Notes
    -----
    ``out/index.csv`` lists every cell of this sweep (parameters, key, status, seconds, cpu_seconds, error
    type, record file); it is rewritten atomically while cells complete (at most every few seconds) and at
    the end. A sweep killed at any point leaves only complete records and, at worst, ``.tmp-*`` files that the next
    sweep into the same folder deletes before it starts. Do not run two sweeps into one folder at once.

    Examples
    --------
    >>> import genbound as gb                                                     # doctest: +SKIP
    >>> from mypaper.cells import train_cell  # def train_cell(seed, rank, width) -> dict
    >>> table = gb.experiments.sweep(train_cell, {"seed": [0, 1, 2], "rank": [1, 2, None],
    ...                                           "width": [0.5, 1.0]}, out="runs/capacity",
    ...                              workers=2, key_extra={"data": "digits, seed 0"})      # doctest: +SKIP
    """
    name = _fn_name(fn)
    if backend not in BACKENDS:
        raise ValueError(f"backend: expected one of {BACKENDS}, got {backend!r}")
    cells = _cells(grid)
    key_extra = _plain(key_extra, "key_extra")
    if workers is not None:
        workers = check_int(workers, "workers", minimum=1)
    threads = check_int(threads_per_worker, "threads_per_worker", minimum=1)
    if scheduler is not None and backend != "dask":
        raise ValueError(f"scheduler: only used with backend='dask', got backend={backend!r}")
    if scheduler is not None and workers is not None:
        raise ValueError("workers: the cluster at `scheduler` has its own workers; leave workers=None")
    if backend == "local" and (workers or os.cpu_count() or 1) > 1 and fn.__module__ == "__main__" \
            and not getattr(sys.modules["__main__"], "__file__", None):
        raise TypeError(f"fn: {name} is defined in an interactive session, which worker processes cannot "
                        "import; move it into a module (or use workers=1)")

    out = check_writable_folder(out, "out")
    folder = out / "cells"
    folder.mkdir(exist_ok=True)
    remove_stale_temporaries(out)
    remove_stale_temporaries(folder)

    keys = [_key(name, params, key_extra) for params in cells]
    records = [_load(folder / f"{key}.json", key, retry_errors) for key in keys]
    todo = [i for i, rec in enumerate(records) if rec is None]

    index = _Index(out, cells, keys, records)
    bar = _bar(progress, len(cells), len(cells) - len(todo))
    try:
        with contextlib.closing(_run(fn, cells, todo, backend, scheduler, workers, threads)) as results:
            for i, result in results:
                rec = {"key": keys[i], "fn": name, "params": cells[i], "key_extra": key_extra, **result}
                atomic_write_json(folder / f"{keys[i]}.json", rec)
                records[i] = json.loads(to_json(rec, sort_keys=True))  # exactly what a later run reads back
                index.done(i, records[i])
                bar.update(1)
    finally:
        bar.close()
        index.write()

    failed = sum(rec["status"] != "ok" for rec in records)
    if failed:
        msg = (f"sweep: {failed} of {len(cells)} cells failed; their records (status 'error', with the "
               f"traceback) are in {os.fspath(folder)}, listed in {os.fspath(out / 'index.csv')}")
        if raise_on_error:
            raise RuntimeError(msg)
        warnings.warn(msg, RuntimeWarning, stacklevel=2)
    return _table(cells, records)


# ---------------------------------------------------------------------------------------------- validation

def _fn_name(fn):
    """``module:qualname`` of a function that other processes can import by name, else a TypeError."""
    if not callable(fn):
        raise TypeError(f"fn: expected a function, got {type(fn).__name__}")
    module, qualname = getattr(fn, "__module__", None), getattr(fn, "__qualname__", None)
    if not module or not qualname or "<" in qualname:
        what = "a lambda" if qualname and "<lambda>" in qualname else "not a module-level function"
        raise TypeError(f"fn: {qualname or fn!r} is {what}; cells run in other processes, which import fn "
                        "by name: define it at the top level of a module")
    found = sys.modules.get(module)
    if found is None:
        with contextlib.suppress(ImportError):
            found = importlib.import_module(module)
    for part in qualname.split("."):
        found = getattr(found, part, None)
    if found is not fn:
        raise TypeError(f"fn: {module}.{qualname} cannot be imported by that name; cells run in other "
                        "processes, which import fn by name: define it at the top level of a module")
    return f"{module}:{qualname}"


def _plain(value, name):
    """``value`` as plain JSON types (tuples -> lists, numpy scalars -> Python), else an error naming it."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"{name}: expected finite numbers, got {value}")
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v, f"{name}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        for k in value:
            if not isinstance(k, str):
                raise TypeError(f"{name}: expected str keys, got {type(k).__name__} {k!r}")
        return {k: _plain(v, f"{name}[{k!r}]") for k, v in value.items()}
    raise TypeError(f"{name}: expected {_JSON_KINDS}, got {type(value).__name__}")


def _cells(grid):
    """The list of cells (dicts of plain parameters) that ``grid`` describes, in its stable order."""
    if isinstance(grid, dict):
        if not grid:
            raise ValueError("grid: expected at least one parameter, got an empty dict")
        columns = []
        for name, values in grid.items():
            _check_name(name, "grid")
            if isinstance(values, np.ndarray) and values.ndim == 1:
                values = list(values)
            if not isinstance(values, (list, tuple, range)):
                raise TypeError(f"grid[{name!r}]: expected a list of values, got {type(values).__name__}")
            if not len(values):
                raise ValueError(f"grid[{name!r}]: expected at least one value, got an empty list")
            columns.append([_plain(v, f"grid[{name!r}][{i}]") for i, v in enumerate(values)])
        cells = [dict(zip(grid, combo)) for combo in itertools.product(*columns)]
    elif isinstance(grid, (list, tuple)):
        if not grid:
            raise ValueError("grid: expected at least one cell, got an empty list")
        cells = []
        for i, cell in enumerate(grid):
            if not isinstance(cell, dict):
                raise TypeError(f"grid[{i}]: expected a dict of parameters, got {type(cell).__name__}")
            for name in cell:
                _check_name(name, f"grid[{i}]")
            cells.append(_plain(cell, f"grid[{i}]"))
    else:
        raise TypeError(f"grid: expected a dict of lists or a list of dicts, got {type(grid).__name__}")
    seen = {}
    for i, cell in enumerate(cells):
        text = to_json(cell, sort_keys=True)
        if text in seen:
            raise ValueError(f"grid: cells {seen[text]} and {i} are the same ({text})")
        seen[text] = i
    return cells


def _check_name(name, where):
    if not isinstance(name, str) or not name.isidentifier():
        raise TypeError(f"{where}: parameter names must be identifiers (fn's keyword arguments), got {name!r}")
    if name == "status":
        raise ValueError(f"{where}: 'status' is the name of the table's status column; rename the parameter")


def _key(name, params, key_extra):
    text = to_json({"fn": name, "params": params, "key_extra": key_extra, "genbound": __version__},
                   sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _load(path, key, retry_errors):
    """The finished record at ``path`` if it belongs to ``key`` (and is not an error to retry), else None."""
    try:
        rec = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None
    if not isinstance(rec, dict) or rec.get("key") != key or rec.get("status") not in ("ok", "error"):
        return None
    if rec["status"] == "error" and retry_errors:
        return None
    return rec


# ---------------------------------------------------------------------------------------------- one cell

def _run_cell(fn, params, threads=1, own_process=True):
    """Run one cell, ``fn(**params)``, with ``threads`` numba and BLAS threads, and never raise.

    What each worker executes for :func:`sweep`. Returns a dict of JSON values: ``status`` ("ok" with
    ``rows``, a list of dicts of scalars, and ``columns``, their names in ``fn``'s order; or "error" with
    ``error``: type, message, traceback), ``seconds`` (wall time of the call), ``cpu_seconds`` (CPU time
    of the worker process meanwhile: far below ``seconds`` when the cell waited for a busy CPU), ``host``,
    ``pid`` and ``provenance``. Without ``own_process`` (a thread among others running cells): BLAS's
    threads are left as they are and ``cpu_seconds`` is the CPU time of the calling thread. Non-finite
    floats in the rows are stored as ``{"float": "nan"}``, ``{"float": "inf"}`` or ``{"float": "-inf"}``
    (JSON has none).
    """
    cpu_time = time.process_time if own_process else time.thread_time
    t0, cpu0 = time.perf_counter(), cpu_time()
    try:
        with _thread_limits(threads, own_process):
            result = fn(**params)
        rows = _rows(result, params)
        columns = list(dict.fromkeys(col for row in rows for col in row))
        status = {"status": "ok", "columns": columns, "rows": rows}
    except Exception as exc:  # the record keeps it; other cells go on
        status = {"status": "error", "error": {"type": f"{type(exc).__module__}.{type(exc).__qualname__}",
                                               "message": str(exc), "traceback": traceback.format_exc()}}
    return {**status, "seconds": time.perf_counter() - t0, "cpu_seconds": cpu_time() - cpu0,
            "host": platform.node(), "pid": os.getpid(), "provenance": provenance()}


@contextlib.contextmanager
def _thread_limits(threads, blas=True):
    """numba's thread count (for this thread) and, with ``blas``, every BLAS library's (for the process) set to
    ``threads`` while the cell runs, restored afterwards."""
    import numba
    from threadpoolctl import threadpool_limits

    before = numba.get_num_threads()
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        with threadpool_limits(limits=threads if blas else None):
            yield
    finally:
        numba.set_num_threads(before)


def _rows(result, params):
    """``fn``'s result as a list of rows of JSON scalars."""
    import pandas as pd

    if isinstance(result, pd.DataFrame):
        rows = result.to_dict(orient="records")
    elif isinstance(result, dict):
        rows = [result]
    else:
        raise TypeError(f"fn returned {type(result).__name__}; expected a dict of scalars (one row) or a "
                        "pandas DataFrame")
    return [_row(row, params) for row in rows]


def _row(row, params):
    out = {}
    for col, value in row.items():
        if not isinstance(col, str):
            raise TypeError(f"fn's result: column names must be str, got {col!r}")
        if col == "status":
            raise ValueError("fn's result has a column 'status', the name of the sweep's status column")
        if isinstance(value, np.generic):
            value = value.item()
        if value is not None and not isinstance(value, (bool, int, float, str)):
            raise TypeError(f"fn's result: column {col!r} holds a {type(value).__name__}; expected a scalar "
                            "(number, str, bool or None)")
        if col in params and value != params[col]:
            raise ValueError(f"fn's result: column {col!r} = {value!r} differs from the parameter {col} = "
                             f"{params[col]!r}")
        if isinstance(value, float) and not math.isfinite(value):
            value = {"float": str(value)}
        out[col] = value
    return out


def _unrow(row, columns):
    """A stored row as table cells, in ``fn``'s column order (JSON records sort their keys)."""
    return {k: float(row[k]["float"]) if isinstance(row[k], dict) else row[k] for k in columns if k in row}


# ---------------------------------------------------------------------------------------------- backends

def _run(fn, cells, todo, backend, scheduler, workers, threads):
    """Yield ``(i, result of _run_cell)`` for each cell index in ``todo``, in order of completion."""
    if not todo:
        return
    if backend == "dask":
        yield from _run_dask(fn, cells, todo, scheduler, workers, threads)
        return
    workers = min(workers or os.cpu_count() or 1, len(todo))
    if workers == 1:
        for i in todo:
            yield i, _run_cell(fn, cells[i], threads)
        return
    if backend == "threads":
        yield from _run_threads(fn, cells, todo, workers, threads)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield from _completed(pool, fn, cells, todo, threads, own_process=True)


def _run_threads(fn, cells, todo, workers, threads):
    """The cells on ``workers`` threads of this process; BLAS limited to ``threads`` meanwhile (a process
    setting), numba's thread count set per cell (a setting of the thread that runs it)."""
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=threads), ThreadPoolExecutor(max_workers=workers) as pool:
        yield from _completed(pool, fn, cells, todo, threads, own_process=False)


def _completed(pool, fn, cells, todo, threads, own_process):
    """Submit the cells ``todo`` to the executor ``pool``; yield ``(i, record)`` as they complete, and cancel
    those not started when the caller stops early."""
    from concurrent.futures import as_completed

    futures = {pool.submit(_run_cell, fn, cells[i], threads, own_process): i for i in todo}
    try:
        for fut in as_completed(futures):
            yield futures[fut], _result(fut)
    finally:
        for fut in futures:
            fut.cancel()


def _run_dask(fn, cells, todo, scheduler, workers, threads):
    from dask.distributed import Client, LocalCluster, as_completed

    with contextlib.ExitStack() as stack:
        if scheduler is None:
            cluster = stack.enter_context(LocalCluster(n_workers=min(workers or os.cpu_count() or 1, len(todo)),
                                                       threads_per_worker=1, processes=True,
                                                       dashboard_address=None))
            client = stack.enter_context(Client(cluster))
        elif isinstance(scheduler, Client):
            client = scheduler
        else:
            client = stack.enter_context(Client(scheduler))
        futures = {client.submit(_run_cell, fn, cells[i], threads, pure=False): i for i in todo}
        try:
            for fut in as_completed(futures):
                yield futures[fut], _result(fut)
        finally:
            client.cancel([f for f in futures if not f.done()])


def _result(future):
    """A future's result; a failure outside ``fn`` (a worker that died) becomes this cell's error record."""
    try:
        return future.result()
    except Exception as exc:
        return {"status": "error", "error": {"type": f"{type(exc).__module__}.{type(exc).__qualname__}",
                                             "message": str(exc), "traceback": traceback.format_exc()},
                "seconds": None, "cpu_seconds": None, "host": None, "pid": None, "provenance": None}


# ---------------------------------------------------------------------------------------------- tables

class _Index:
    """``out/index.csv``: one line per cell of the sweep, rewritten atomically (at most every
    ``INDEX_EVERY_S`` seconds while cells complete, and by :meth:`write`)."""

    def __init__(self, out, cells, keys, records):
        self.path = pathlib.Path(out) / "index.csv"
        self.cells, self.keys, self.records = cells, keys, list(records)
        self.last = -math.inf

    def done(self, i, record):
        self.records[i] = record
        if time.monotonic() - self.last >= INDEX_EVERY_S:
            self.write()

    def write(self):
        import pandas as pd

        rows = []
        for params, key, rec in zip(self.cells, self.keys, self.records):
            rec = rec or {}
            rows.append({**_flat(params), "key": key, "status": rec.get("status", "pending"),
                         "seconds": rec.get("seconds"), "cpu_seconds": rec.get("cpu_seconds"),
                         "error": (rec.get("error") or {}).get("type"), "record": f"cells/{key}.json"})
        atomic_write_text(self.path, pd.DataFrame(rows).to_csv(index=False))
        self.last = time.monotonic()


def _flat(params):
    """Parameters as table cells: lists and dicts as their JSON text."""
    return {k: to_json(v, sort_keys=True) if isinstance(v, (list, dict)) else v for k, v in params.items()}


def _table(cells, records):
    import pandas as pd

    rows = []
    for params, rec in zip(cells, records):
        flat = _flat(params)
        if rec["status"] == "ok":
            rows += [{**flat, **_unrow(row, rec["columns"]), "status": "ok"} for row in rec["rows"]]
        else:
            rows.append({**flat, "status": rec["status"]})
    table = pd.DataFrame(rows)
    if "status" in table:
        table = table[[c for c in table.columns if c != "status"] + ["status"]]
    return table


def _bar(progress, total, done):
    if not progress:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=done, desc="sweep", unit="cell")


class _NoBar:
    def update(self, n):
        pass

    def close(self):
        pass
