"""Numba kernels: plain functions over arrays, no validation, no Python objects.

The layer classes in :mod:`genbound.nn` validate inputs, allocate outputs and call these. The batch is cut
into a fixed number of chunks (never the thread count); each kernel call covers a range of chunks, and the
layers run calls on disjoint ranges in parallel threads (the kernels release the GIL), with BLAS
single-threaded inside. Every chunk owns its outputs and its gradient accumulators, which are summed in
chunk order, so results are bit-for-bit the same whatever the thread count.

The njit options (``_NJIT``, the same in every file): cached, no GIL, the floating-point reassociation and
contraction that let loops vectorize, and numpy's error model (no zero-division checks around every integer
division of the index arithmetic, whose divisors the layers have validated).

Every kernel file is self-contained: its helpers and its njit options (the same ``_NJIT`` in every file) live
in the file itself and it imports nothing from genbound but the data-only shape tuple
:class:`genbound._kernels.geometry.Geometry` (one class for every kernel: see that module), because numba's
cache notices changes to the kernel's own file only (tests/nn/test_kernel_cache.py checks both).
"""
