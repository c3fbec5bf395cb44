"""Same seed, same bits: gradients and Hessian-vector products do not depend on the number of threads.

The kernels cut the batch into a fixed number of chunks with one gradient accumulator each, summed in chunk
order, and keep BLAS single-threaded inside; so numba's thread count and BLAS's must not change a bit.
"""
import numba
import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import genbound as gb

MAX_THREADS = min(2, numba.config.NUMBA_NUM_THREADS)


def _run(model, x, y, v, threads):
    before = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        with threadpool_limits(limits=threads, user_api="blas"):
            loss, grad = model.loss_and_grad(x, y, flat=True)
            hv = model.hvp(x, y, v)
    finally:
        numba.set_num_threads(before)
    return loss, grad, hv


@pytest.mark.skipif(MAX_THREADS < 2, reason="numba has a single thread here")
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("rank", [None, 1])
@pytest.mark.parametrize("name, n", [("digits", 75), ("mnist", 40)])
def test_bits_do_not_depend_on_thread_count(name, n, rank, dtype):
    model = gb.nn.reference_cnn(name, rank=rank, seed=3, dtype=dtype)
    rng = np.random.default_rng(7)
    x = rng.normal(size=(n, *model.input_shape)).astype(dtype)
    y = rng.integers(0, 10, n)
    v = rng.normal(size=model.n_params).astype(dtype)
    one = _run(model, x, y, v, 1)
    two = _run(model, x, y, v, MAX_THREADS)
    again = _run(model, x, y, v, MAX_THREADS)
    assert one[0] == two[0] == again[0]
    for a, b, c in zip(one[1:], two[1:], again[1:]):
        assert a.dtype == np.dtype(dtype)
        assert np.array_equal(a, b) and np.array_equal(b, c)
        assert np.all(np.isfinite(a)) and np.any(a != 0)
