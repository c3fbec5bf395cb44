"""Numba kernels: plain functions over arrays, no validation, no Python objects.

The layer classes in :mod:`genbound.nn` validate inputs, allocate outputs and call these. The batch is cut
into a fixed number of chunks (never the thread count); each kernel call covers a range of chunks, and the
layers run calls on disjoint ranges in parallel threads (the kernels release the GIL), with BLAS
single-threaded inside. Every chunk owns its outputs and its gradient accumulators, which are summed in
chunk order, so results are bit-for-bit the same whatever the thread count.

All helpers of a kernel live in the kernel's own file: numba's cache notices changes to that file only.
"""
