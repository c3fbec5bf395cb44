"""Pooling kernels: max pooling (argmax, gather, scatter) and average pooling."""
import numba
import numpy as np

_OPTS = dict(cache=True, nogil=True, parallel=False)


@numba.njit(**_OPTS)
def maxpool_argmax(x, k, stride, ho, wo, idx):
    """idx[n, c, a, b] = flat index (into H*W) of the first maximum of each pooling window."""
    n_img, n_ch, h, w = x.shape
    for nc in numba.prange(n_img * n_ch):
        n = nc // n_ch
        c = nc % n_ch
        for a in range(ho):
            for b in range(wo):
                best_i = a * stride
                best_j = b * stride
                best = x[n, c, best_i, best_j]
                for i in range(a * stride, a * stride + k):
                    for j in range(b * stride, b * stride + k):
                        v = x[n, c, i, j]
                        if v > best:
                            best = v
                            best_i = i
                            best_j = j
                idx[n, c, a, b] = best_i * w + best_j


@numba.njit(**_OPTS)
def gather(x, idx, y):
    """y[n, c, a, b] = x[n, c].flat[idx[n, c, a, b]] (max-pool forward and its tangent)."""
    n_img, n_ch, ho, wo = y.shape
    w = x.shape[3]
    for nc in numba.prange(n_img * n_ch):
        n = nc // n_ch
        c = nc % n_ch
        for a in range(ho):
            for b in range(wo):
                f = idx[n, c, a, b]
                y[n, c, a, b] = x[n, c, f // w, f % w]


@numba.njit(**_OPTS)
def scatter(dy, idx, dx):
    """Adjoint of :func:`gather`: dx (overwritten) receives dy at the argmax positions."""
    n_img, n_ch, ho, wo = dy.shape
    w = dx.shape[3]
    for nc in numba.prange(n_img * n_ch):
        n = nc // n_ch
        c = nc % n_ch
        dx[n, c, :, :] = 0.0
        for a in range(ho):
            for b in range(wo):
                f = idx[n, c, a, b]
                dx[n, c, f // w, f % w] += dy[n, c, a, b]


@numba.njit(**_OPTS)
def avgpool_forward(x, k, stride, ho, wo, y):
    """y[n, c, a, b] = mean of the k x k window at (a*stride, b*stride)."""
    n_img, n_ch, h, w = x.shape
    scale = 1.0 / (k * k)
    for nc in numba.prange(n_img * n_ch):
        n = nc // n_ch
        c = nc % n_ch
        for a in range(ho):
            for b in range(wo):
                s = 0.0
                for i in range(a * stride, a * stride + k):
                    for j in range(b * stride, b * stride + k):
                        s += x[n, c, i, j]
                y[n, c, a, b] = s * scale


@numba.njit(**_OPTS)
def avgpool_backward(dy, k, stride, dx):
    """Adjoint of :func:`avgpool_forward` (dx overwritten)."""
    n_img, n_ch, ho, wo = dy.shape
    scale = 1.0 / (k * k)
    for nc in numba.prange(n_img * n_ch):
        n = nc // n_ch
        c = nc % n_ch
        dx[n, c, :, :] = 0.0
        for a in range(ho):
            for b in range(wo):
                g = dy[n, c, a, b] * scale
                for i in range(a * stride, a * stride + k):
                    for j in range(b * stride, b * stride + k):
                        dx[n, c, i, j] += g
