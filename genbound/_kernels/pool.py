"""Pooling kernels: max pooling (forward with argmax, gather, scatter) and average pooling.

Each call covers images [n_lo, n_hi); every image owns its outputs, so the caller may run calls on disjoint
ranges in parallel threads (the kernels release the GIL) with results independent of the thread count.
Max-pool argmaxes are flat indices into the H*W plane (int32). Max pooling fused with the ReLU before it
(``relu=True``: max(ReLU(x)) = ReLU(max(x)), computed on the pooled values) marks a window whose maximum is not
positive with the index -1: no gradient or tangent flows through it, as through ReLU's zero derivative.
"""
import numba
import numpy as np

_NJIT = dict(cache=True, nogil=True, fastmath={"reassoc", "contract"}, error_model="numpy")

#: Flat indices are unsigned in the max-pooling kernels: numba wraps a negative signed index around (a
#: compare and a select on every access, which also keeps LLVM from simplifying the loop), an unsigned one it
#: uses as it is. Mixed signed and unsigned arithmetic gives floats in numba, so every index term is one.
_U = np.uint64


@numba.njit(**_NJIT)
def maxpool_forward(x, k, stride, ho, wo, relu, n_lo, n_hi, y, idx):
    """y = max over each k x k window, idx = flat index (into H*W) of its first maximum in row order; with
    ``relu``, y = max(that maximum, 0) and idx = -1 where the maximum is not positive."""
    n_img, n_ch, h, w = x.shape
    zero = x.dtype.type(0)
    none = np.int32(-1)
    xf = x.reshape(x.size)
    yf = y.reshape(y.size)
    idf = idx.reshape(idx.size)
    one, two = _U(1), _U(2)
    uw, uwo, uho = _U(w), _U(wo), _U(ho)
    uhw, upo = _U(h * w), _U(ho * wo)
    zero32, right1, down0, down1 = np.int32(0), np.int32(1), np.int32(w), np.int32(w + 1)
    if k == 2 and stride == 2 and h == 2 * ho:
        # Window rows tile every plane, so the rows of all planes in the range form one sequence (long
        # loops even for 4x4 planes); compare-and-select, no branches; flat unsigned indices (see _U).
        a = np.int32(0)
        for r in range(_U(n_lo * n_ch * ho), _U(n_hi * n_ch * ho)):
            src = two * r * uw
            row = r * uwo
            rel = np.int32(2 * w) * a
            for b in range(uwo):
                i0 = src + two * b
                v0, v1, v2, v3 = xf[i0], xf[i0 + one], xf[i0 + uw], xf[i0 + uw + one]
                right = v1 > v0
                top = v1 if right else v0
                top_at = right1 if right else zero32
                right = v3 > v2
                bottom = v3 if right else v2
                bottom_at = down1 if right else down0
                down = bottom > top
                best = bottom if down else top
                at = rel + np.int32(2) * np.int32(b) + (bottom_at if down else top_at)
                if relu:
                    positive = best > zero
                    best = best if positive else zero
                    at = at if positive else none
                yf[row + b] = best
                idf[row + b] = at
            a += np.int32(1)
            if a == ho:
                a = np.int32(0)
        return
    for pl in range(_U(n_lo * n_ch), _U(n_hi * n_ch)):
        xo = pl * uhw
        o = pl * upo
        for a in range(uho):
            for b in range(uwo):
                first = a * _U(stride) * uw + b * _U(stride)
                best = xf[xo + first]
                at = first
                for i in range(_U(k)):
                    for j in range(_U(k)):
                        v = xf[xo + first + i * uw + j]
                        if v > best:
                            best = v
                            at = first + i * uw + j
                bi = np.int32(at)
                if relu and not best > zero:
                    best = zero
                    bi = none
                yf[o] = best
                idf[o] = bi
                o += one


@numba.njit(**_NJIT)
def gather(x, idx, n_lo, n_hi, y):
    """y[n, c, a, b] = x[n, c].flat[idx[n, c, a, b]], 0 where the index is -1 (the tangent of max pooling)."""
    n_img, n_ch, ho, wo = y.shape
    zero = y.dtype.type(0)
    uhw, upo = _U(x.shape[2] * x.shape[3]), _U(ho * wo)
    xf = x.reshape(x.size)
    yf = y.reshape(y.size)
    idf = idx.reshape(idx.size)
    for pl in range(_U(n_lo * n_ch), _U(n_hi * n_ch)):
        xo = pl * uhw
        for i in range(pl * upo, (pl + _U(1)) * upo):
            j = idf[i]
            found = j >= 0
            v = xf[xo + _U(j if found else 0)]
            yf[i] = v if found else zero


@numba.njit(**_NJIT)
def scatter(dy, idx, k, stride, n_lo, n_hi, dx):
    """Adjoint of :func:`gather` for k x k windows at ``stride``: dx (overwritten) receives dy at the argmax
    positions (none for an index -1)."""
    n_img, n_ch, ho, wo = dy.shape
    zero = dx.dtype.type(0)
    uhw, upo = _U(dx.shape[2] * dx.shape[3]), _U(ho * wo)
    dxf = dx.reshape(dx.size)
    dyf = dy.reshape(dy.size)
    idf = idx.reshape(idx.size)
    overlap = stride < k  # only then can two windows share an argmax
    for pl in range(_U(n_lo * n_ch), _U(n_hi * n_ch)):
        xo = pl * uhw
        for i in range(xo, xo + uhw):  # one plane at a time: zeroed and written while in cache
            dxf[i] = zero
        for i in range(pl * upo, (pl + _U(1)) * upo):
            j = idf[i]
            if j >= 0:
                if overlap:
                    dxf[xo + _U(j)] += dyf[i]
                else:
                    dxf[xo + _U(j)] = dyf[i]


@numba.njit(**_NJIT)
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


@numba.njit(**_NJIT)
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
