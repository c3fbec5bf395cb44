"""The 1-D passes of a rank-R CP convolution, forward and backward.

A CP filter W[o] = sum_r p[o,r] (x) q[o,r] (x) t[o,r] is applied as: channel mix z = P x (a BLAS product
done by the caller, z laid out (O*R, N, H, W)), then a 1-D pass along H with q (giving u), then a 1-D pass
along W with t, summed over r. The kernels below do the two passes and their adjoints; each output channel
o owns its outputs and its factor-gradient accumulators, so the loop over o runs in parallel without
contention and the summation order never depends on the thread count.
"""
import numba
import numpy as np

_OPTS = dict(cache=True, nogil=True, parallel=False)


@numba.njit(**_OPTS)
def cp_forward(z, q, t, bias, stride, pad, ho, wo, u, y):
    """u[o*R+r, n] = H-pass of z with q[o,r]; y[n, o] = bias[o] + sum_r W-pass of u with t[o,r]."""
    n_or, n_img, h, w = z.shape
    n_out, rank, kh = q.shape
    kw = t.shape[2]
    for o in numba.prange(n_out):
        for n in range(n_img):
            y[n, o, :, :] = bias[o]
        for r in range(rank):
            idx = o * rank + r
            for n in range(n_img):
                # H-pass: u[a, :] = sum_j q[j] z[a*stride + j - pad, :]
                for a in range(ho):
                    for c in range(w):
                        u[idx, n, a, c] = 0.0
                    for j in range(kh):
                        hi = a * stride + j - pad
                        if hi < 0 or hi >= h:
                            continue
                        qj = q[o, r, j]
                        for c in range(w):
                            u[idx, n, a, c] += qj * z[idx, n, hi, c]
                # W-pass: y[a, b] += sum_k t[k] u[a, b*stride + k - pad]
                for k in range(kw):
                    tk = t[o, r, k]
                    # valid b: 0 <= b*stride + k - pad < w
                    b_lo = 0
                    if k < pad:
                        b_lo = (pad - k + stride - 1) // stride
                    b_hi = (w - 1 - k + pad) // stride + 1
                    if b_hi > wo:
                        b_hi = wo
                    for a in range(ho):
                        for b in range(b_lo, b_hi):
                            y[n, o, a, b] += tk * u[idx, n, a, b * stride + k - pad]


@numba.njit(**_OPTS)
def cp_backward(dy, z, u, q, t, stride, pad, dz, gq, gt):
    """Adjoint of :func:`cp_forward`: dz (overwritten) and the factor gradients gq, gt (overwritten)."""
    n_or, n_img, h, w = z.shape
    n_out, rank, kh = q.shape
    kw = t.shape[2]
    ho = dy.shape[2]
    wo = dy.shape[3]
    for o in numba.prange(n_out):
        du = np.empty((ho, w), dtype=z.dtype)
        for r in range(rank):
            idx = o * rank + r
            gq_loc = np.zeros(kh, dtype=z.dtype)
            gt_loc = np.zeros(kw, dtype=z.dtype)
            for n in range(n_img):
                du[:, :] = 0.0
                for k in range(kw):
                    tk = t[o, r, k]
                    b_lo = 0
                    if k < pad:
                        b_lo = (pad - k + stride - 1) // stride
                    b_hi = (w - 1 - k + pad) // stride + 1
                    if b_hi > wo:
                        b_hi = wo
                    acc = 0.0
                    for a in range(ho):
                        for b in range(b_lo, b_hi):
                            d = dy[n, o, a, b]
                            col = b * stride + k - pad
                            acc += d * u[idx, n, a, col]
                            du[a, col] += tk * d
                    gt_loc[k] += acc
                dz[idx, n, :, :] = 0.0
                for a in range(ho):
                    for j in range(kh):
                        hi = a * stride + j - pad
                        if hi < 0 or hi >= h:
                            continue
                        qj = q[o, r, j]
                        acc = 0.0
                        for c in range(w):
                            acc += du[a, c] * z[idx, n, hi, c]
                            dz[idx, n, hi, c] += qj * du[a, c]
                        gq_loc[j] += acc
            for j in range(kh):
                gq[o, r, j] = gq_loc[j]
            for k in range(kw):
                gt[o, r, k] = gt_loc[k]
