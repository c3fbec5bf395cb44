"""im2col / col2im and layout kernels for the full convolution (BLAS does the products)."""
import numba
import numpy as np

_OPTS = dict(cache=True, nogil=True, parallel=False)


@numba.njit(**_OPTS)
def im2col(x, kh, kw, stride, pad, ho, wo, cols):
    """cols[(c*kh + j)*kw + k, (n*ho + a)*wo + b] = x[n, c, a*stride + j - pad, b*stride + k - pad] (0 outside)."""
    n_img, n_ch, h, w = x.shape
    for row in numba.prange(n_ch * kh * kw):
        c = row // (kh * kw)
        j = (row // kw) % kh
        k = row % kw
        for n in range(n_img):
            base = n * ho * wo
            for a in range(ho):
                hi = a * stride + j - pad
                off = base + a * wo
                if hi < 0 or hi >= h:
                    for b in range(wo):
                        cols[row, off + b] = 0.0
                    continue
                for b in range(wo):
                    wi = b * stride + k - pad
                    if 0 <= wi < w:
                        cols[row, off + b] = x[n, c, hi, wi]
                    else:
                        cols[row, off + b] = 0.0


@numba.njit(**_OPTS)
def col2im(cols, kh, kw, stride, pad, ho, wo, dx):
    """Adjoint of :func:`im2col`: dx[n, c, ...] = sum of the cols entries that read it (dx overwritten)."""
    n_img, n_ch, h, w = dx.shape
    for c in numba.prange(n_ch):
        for n in range(n_img):
            dx[n, c, :, :] = 0.0
            base = n * ho * wo
            for j in range(kh):
                for k in range(kw):
                    row = (c * kh + j) * kw + k
                    for a in range(ho):
                        hi = a * stride + j - pad
                        if hi < 0 or hi >= h:
                            continue
                        off = base + a * wo
                        for b in range(wo):
                            wi = b * stride + k - pad
                            if 0 <= wi < w:
                                dx[n, c, hi, wi] += cols[row, off + b]


@numba.njit(**_OPTS)
def cnhw_to_nchw(src, n_img, out):
    """out[n, c, :] = src[c, n*p:(n+1)*p] for src of shape (C, N*P), out of shape (N, C, P)."""
    n_ch, total = src.shape
    p = total // n_img
    for n in numba.prange(n_img):
        for c in range(n_ch):
            for i in range(p):
                out[n, c, i] = src[c, n * p + i]


@numba.njit(**_OPTS)
def nchw_to_cnhw(src, out):
    """out[c, n*P + i] = src[n, c, i] for src of shape (N, C, P), out of shape (C, N*P)."""
    n_img, n_ch, p = src.shape
    for c in numba.prange(n_ch):
        for n in range(n_img):
            for i in range(p):
                out[c, n * p + i] = src[n, c, i]
