"""Pooling kernels: max pooling (forward with argmax, gather, scatter) and average pooling.

Each call covers images [n_lo, n_hi); every image owns its outputs, so the caller may run calls on disjoint
ranges in parallel threads (the kernels release the GIL) with results independent of the thread count.
Max-pool argmaxes are flat indices into the H*W plane (int32).
"""
import numba
import numpy as np

_OPTS = dict(cache=True, nogil=True)


@numba.njit(**_OPTS)
def maxpool_forward(x, k, stride, ho, wo, n_lo, n_hi, y, idx):
    """y = max over each k x k window, idx = flat index (into H*W) of its first maximum in row order."""
    n_img, n_ch, h, w = x.shape
    for n in range(n_lo, n_hi):
        for c in range(n_ch):
            xc = x[n, c]
            yc = y[n, c]
            ic = idx[n, c]
            if k == 2 and stride == 2:
                for a in range(ho):
                    r0 = xc[2 * a]
                    r1 = xc[2 * a + 1]
                    base = 2 * a * w
                    for b in range(wo):
                        j = 2 * b
                        best = r0[j]
                        bi = base + j
                        v = r0[j + 1]
                        if v > best:
                            best = v
                            bi = base + j + 1
                        v = r1[j]
                        if v > best:
                            best = v
                            bi = base + w + j
                        v = r1[j + 1]
                        if v > best:
                            best = v
                            bi = base + w + j + 1
                        yc[a, b] = best
                        ic[a, b] = bi
                continue
            for a in range(ho):
                for b in range(wo):
                    i0 = a * stride
                    j0 = b * stride
                    best = xc[i0, j0]
                    bi = i0 * w + j0
                    for i in range(i0, i0 + k):
                        for j in range(j0, j0 + k):
                            v = xc[i, j]
                            if v > best:
                                best = v
                                bi = i * w + j
                    yc[a, b] = best
                    ic[a, b] = bi


@numba.njit(**_OPTS)
def gather(x, idx, n_lo, n_hi, y):
    """y[n, c, a, b] = x[n, c].flat[idx[n, c, a, b]] (the tangent of max pooling)."""
    n_img, n_ch, ho, wo = y.shape
    w = x.shape[3]
    h = x.shape[2]
    for n in range(n_lo, n_hi):
        for c in range(n_ch):
            xc = x[n, c].reshape(h * w)
            ic = idx[n, c].reshape(ho * wo)
            yc = y[n, c].reshape(ho * wo)
            for i in range(ho * wo):
                yc[i] = xc[ic[i]]


@numba.njit(**_OPTS)
def scatter(dy, idx, n_lo, n_hi, dx):
    """Adjoint of :func:`gather`: dx (overwritten) receives dy at the argmax positions."""
    n_img, n_ch, ho, wo = dy.shape
    w = dx.shape[3]
    h = dx.shape[2]
    for n in range(n_lo, n_hi):
        for c in range(n_ch):
            dxc = dx[n, c].reshape(h * w)
            for i in range(h * w):
                dxc[i] = 0.0
            ic = idx[n, c].reshape(ho * wo)
            dyc = dy[n, c].reshape(ho * wo)
            for i in range(ho * wo):
                dxc[ic[i]] += dyc[i]


@numba.njit(**_OPTS)
def avgpool_forward(x, k, stride, ho, wo, n_lo, n_hi, y):
    """y[n, c, a, b] = mean of the k x k window at (a*stride, b*stride)."""
    n_img, n_ch, h, w = x.shape
    scale = 1.0 / (k * k)
    for n in range(n_lo, n_hi):
        for c in range(n_ch):
            for a in range(ho):
                for b in range(wo):
                    s = x.dtype.type(0)
                    for i in range(a * stride, a * stride + k):
                        for j in range(b * stride, b * stride + k):
                            s += x[n, c, i, j]
                    y[n, c, a, b] = s * scale


@numba.njit(**_OPTS)
def avgpool_backward(dy, k, stride, n_lo, n_hi, dx):
    """Adjoint of :func:`avgpool_forward` (dx overwritten)."""
    n_img, n_ch, ho, wo = dy.shape
    scale = 1.0 / (k * k)
    for n in range(n_lo, n_hi):
        for c in range(n_ch):
            dxc = dx[n, c]
            dxc[:, :] = 0.0
            for a in range(ho):
                for b in range(wo):
                    g = dy[n, c, a, b] * scale
                    for i in range(a * stride, a * stride + k):
                        for j in range(b * stride, b * stride + k):
                            dxc[i, j] += g
