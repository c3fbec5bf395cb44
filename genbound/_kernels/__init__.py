"""Numba kernels: plain functions over arrays, no validation, no Python objects.

The layer classes in :mod:`genbound.nn` validate inputs, allocate outputs and call these. Each kernel cuts
the batch into a fixed number of chunks (never the thread count) and runs them in parallel, calling BLAS
(single-threaded) for the small matrix products of one group of images; every chunk owns its outputs and
its gradient accumulators, which are summed in chunk order, so results are bit-for-bit the same whatever
the thread count.

Importing this package makes OpenMP threads wait passively between parallel regions (OMP_WAIT_POLICY
defaults to PASSIVE unless already set): spinning workers of the default policy steal the cores from
everything else, and on a busy machine a training step became a hundred times slower.
"""
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
