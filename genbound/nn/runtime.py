"""How the layers run their kernels: batch chunks, helper threads, single-threaded BLAS, reused buffers.

- The batch is cut into a fixed number of chunks (:func:`batch_chunks`), whatever the thread count; each
  chunk owns its outputs and its gradient accumulators, summed in chunk order by the layers, so results are
  the same bits for any number of threads.
- :func:`run_parallel` runs a kernel over chunk ranges on numba's thread count of Python threads (the
  kernels release the GIL), with BLAS single-threaded (:func:`serial_blas`) so that the kernels' BLAS calls
  do not oversubscribe the cores.
- :class:`Workspace` keeps a layer's large outputs across calls, so that a training step does not map and
  fault in its activations afresh every time.
"""
from __future__ import annotations

import contextlib
import itertools
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

#: The batch is cut into at most this many chunks, of at least CHUNK_IMAGES images each, whatever the
#: thread count; each chunk keeps its own gradient accumulators, summed in chunk order, so results do not
#: depend on the number of threads.
BATCH_CHUNKS = 16
CHUNK_IMAGES = 16

#: Images are processed in groups of about this many pixels per plane (one image per group for large
#: planes), so that BLAS products and 1-D passes run on long enough rows to amortize their set-up.
GROUP_PIXELS = 512

#: A kernel call with less work than this (multiply-adds, or values moved) runs on the calling thread
#: alone: handing work to another thread would cost more than it saves. Waking a helper thread that waits
#: between calls costs tens of microseconds (more in a virtual machine, whose idle cores halt). Measured on
#: the 2-core development machine against 1e6 (blocks of 5 steps, each after a PyTorch block, orders
#: alternated, two runs): digits rank-1 steps at batch 64 8-12 % faster, the other digits steps within
#: +-5 %, MNIST steps the same within a few per cent.
PARALLEL_MIN_WORK = 4_000_000

#: Workspaces keep arrays of at least this many bytes; smaller ones come cheaply from malloc's heap.
REUSE_MIN_BYTES = 1 << 20


def batch_chunks(n):
    """Number of chunks a batch of ``n`` images is cut into: ``min(BATCH_CHUNKS, n // CHUNK_IMAGES)``, at
    least 1."""
    return max(1, min(BATCH_CHUNKS, n // CHUNK_IMAGES))


def image_group(plane):
    """Number of images processed together when each plane has ``plane`` pixels (at least 1)."""
    return max(1, GROUP_PIXELS // plane)


# --------------------------------------------------------------------------------------------------------
# Single-threaded BLAS
# --------------------------------------------------------------------------------------------------------

_BLAS = {"libs": None, "depth": 0, "saved": ()}
_BLAS_LOCK = threading.Lock()
_THIS_THREAD = threading.local()  # .depth: how many serial_blas blocks this thread is inside


@contextlib.contextmanager
def serial_blas():
    """Run the block with every BLAS library single-threaded (restoring the thread counts afterwards).

    The kernels run in parallel threads and call BLAS inside; a multi-threaded BLAS would oversubscribe the
    cores. Around a whole training step it also keeps BLAS worker threads, woken by the small products of
    other layers, from spinning against the kernels' threads (every computation of
    :class:`genbound.nn.Sequential` runs under it). Re-entrant and thread-safe: the thread counts come back
    when the last block, in any thread, ends. The controller is built once (it scans the loaded libraries),
    afterwards only thread counts are switched.
    """
    state = _BLAS
    with _BLAS_LOCK:
        if state["libs"] is None:
            import scipy.linalg.cython_blas  # noqa: F401  (the BLAS that numba's np.dot calls)
            from threadpoolctl import ThreadpoolController

            state["libs"] = [_thread_switch(lib) for lib in ThreadpoolController().lib_controllers
                             if lib.user_api == "blas"]
        if state["depth"] == 0:
            state["saved"] = [get() for get, _ in state["libs"]]
            for (_, put), count in zip(state["libs"], state["saved"]):
                if count != 1:
                    put(1)
        state["depth"] += 1
    _THIS_THREAD.depth = getattr(_THIS_THREAD, "depth", 0) + 1
    try:
        yield
    finally:
        _THIS_THREAD.depth -= 1
        with _BLAS_LOCK:
            state["depth"] -= 1
            if state["depth"] == 0:
                for (_, put), count in zip(state["libs"], state["saved"]):
                    if count != 1:
                        put(count)


def _thread_switch(lib):
    """(get, set) of a BLAS library's thread count: OpenBLAS's C functions called directly (a training step
    switches them a dozen times), threadpoolctl's methods for other libraries."""
    try:
        get = lib._get_symbol("openblas_get_num_threads")
        put = lib._get_symbol("openblas_set_num_threads")
        if get is not None and put is not None and get() >= 1:
            return get, put
    except (AttributeError, TypeError, OSError):
        pass
    return lib.get_num_threads, lib.set_num_threads


# --------------------------------------------------------------------------------------------------------
# Helper threads
# --------------------------------------------------------------------------------------------------------

_POOL = {"executor": None, "workers": 0}


def _executor(workers):
    """The shared pool of helper threads (at least ``workers`` of them), created on first use."""
    if _POOL["workers"] < workers:
        if _POOL["executor"] is not None:
            _POOL["executor"].shutdown(wait=False)
        _POOL["executor"] = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="genbound-kernel")
        _POOL["workers"] = workers
    return _POOL["executor"]


def run_parallel(call, total, work):
    """Run ``call(lo, hi)`` over [0, total) cut into contiguous pieces, on several threads.

    The threads are numba's count (``numba.set_num_threads``), or one when ``work`` is below
    ``PARALLEL_MIN_WORK``. The calling thread works too; every thread takes the next free piece until none
    is left, and a helper that has not started by then is cancelled rather than waited for, so a busy
    machine costs no more than running alone. Kernels release the GIL and own the outputs of their range, so
    which thread runs which piece never changes a result.
    """
    threads = min(numba.get_num_threads(), total) if work >= PARALLEL_MIN_WORK else 1
    if getattr(_THIS_THREAD, "depth", 0):  # already inside a serial_blas block (every Sequential method is)
        _run(call, total, threads)
    else:
        with serial_blas():
            _run(call, total, threads)


def _run(call, total, threads):
    """:func:`run_parallel`'s work, BLAS already single-threaded."""
    if threads <= 1:
        call(0, total)
        return
    pieces = min(total, 2 * threads)
    bounds = [i * total // pieces for i in range(pieces + 1)]
    claim = itertools.count()  # next(...) is atomic under the GIL

    def work_off():
        for i in iter(claim.__next__, None):
            if i >= pieces:
                return
            call(bounds[i], bounds[i + 1])

    helpers = [_executor(threads - 1).submit(work_off) for _ in range(threads - 1)]
    try:
        work_off()
    finally:
        for helper in helpers:
            if not helper.cancel():
                helper.result()


# --------------------------------------------------------------------------------------------------------
# Reused buffers
# --------------------------------------------------------------------------------------------------------

def _references(arrays, role):
    """References to ``arrays[role]``: the dict's, this frame's, getrefcount's argument, and any holder's."""
    kept = arrays[role]
    return sys.getrefcount(kept)


#: What :func:`_references` counts for an array nothing else holds, measured rather than assumed (interpreter
#: versions count borrowed references differently).
_UNHELD = _references({"probe": np.empty(0)}, "probe")


class Workspace:
    """Large arrays a layer reuses from one call to the next, one per role (``"y"``, ``"dx"``, ...).

    ``empty(role, shape, dtype)`` hands back the array of the previous call with that role when its shape
    and dtype match and nothing else holds it any more (no caller, cache or view: checked by reference
    count), else a fresh one, which replaces the kept array unless that one is merely still in use. So a
    training step writes its activations and gradients into memory it already owns instead of mapping and
    faulting in tens of megabytes afresh, and an array a caller keeps is never overwritten.

    The memory cost is one array per role and layer, of the last batch shape, freed with the layer.
    """

    def __init__(self):
        self._arrays = {}
        self._lock = threading.Lock()

    def empty(self, role, shape, dtype):
        """An uninitialized array of ``shape`` and ``dtype`` for ``role`` (the caller overwrites it all)."""
        shape, dtype = tuple(shape), np.dtype(dtype)
        with self._lock:  # two threads running the same model never get the same array
            if role in self._arrays and self._arrays[role].shape == shape and self._arrays[role].dtype == dtype:
                if _references(self._arrays, role) <= _UNHELD:
                    free = self._arrays[role]  # held by this frame until returned, so counted as in use
                    return free
                return np.empty(shape, dtype)
            fresh = np.empty(shape, dtype)
            if fresh.nbytes >= REUSE_MIN_BYTES:
                self._arrays[role] = fresh
            else:
                self._arrays.pop(role, None)
            return fresh
