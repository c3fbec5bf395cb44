"""Numba kernels: plain functions over arrays, no validation, no Python objects.

The layer classes in :mod:`genbound.nn` validate inputs, allocate outputs and call these. Heavy matrix
products are done by BLAS on whole-batch matrices outside the kernels; the kernels move and combine data
(im2col, the 1-D passes of CP filters, pooling). Every kernel parallelizes over an axis whose items own
their outputs, so results are bit-for-bit the same whatever the thread count.
"""
