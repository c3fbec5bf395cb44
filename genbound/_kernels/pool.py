"""Pooling kernels: max pooling (forward with argmax, gather, scatter) and average pooling.

Each call covers images [n_lo, n_hi); every image owns its outputs, so the caller may run calls on disjoint
ranges in parallel threads (the kernels release the GIL) with results independent of the thread count.
Max-pool argmaxes are flat indices into the H*W plane (int32). Max pooling fused with the ReLU before it
(``relu=True``: max(ReLU(x)) = ReLU(max(x)), computed on the pooled values) marks a window whose maximum is not
positive with the index -1: no gradient or tangent flows through it, as through ReLU's zero derivative.
"""
import numba

_NJIT = dict(cache=True, nogil=True, fastmath={"reassoc", "contract"})


@numba.njit(**_NJIT)
def maxpool_forward(x, k, stride, ho, wo, relu, n_lo, n_hi, y, idx):
    """y = max over each k x k window, idx = flat index (into H*W) of its first maximum in row order; with
    ``relu``, y = max(that maximum, 0) and idx = -1 where the maximum is not positive."""
    n_img, n_ch, h, w = x.shape
    zero = x.dtype.type(0)
    hw = h * w
    po = ho * wo
    xf = x.reshape(x.size)
    yf = y.reshape(y.size)
    idf = idx.reshape(idx.size)
    for pl in range(n_lo * n_ch, n_hi * n_ch):
        xs = xf[pl * hw:]
        for a in range(ho):
            yr = yf[pl * po + a * wo:]
            ir = idf[pl * po + a * wo:]
            if k == 2 and stride == 2:
                base = 2 * a * w
                r0 = xs[base:]
                r1 = xs[base + w:]
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
                    if relu and not best > zero:
                        best = zero
                        bi = -1
                    yr[b] = best
                    ir[b] = bi
                continue
            for b in range(wo):
                base = a * stride * w + b * stride
                best = xs[base]
                bi = base
                for i in range(k):
                    for j in range(k):
                        v = xs[base + i * w + j]
                        if v > best:
                            best = v
                            bi = base + i * w + j
                if relu and not best > zero:
                    best = zero
                    bi = -1
                yr[b] = best
                ir[b] = bi


@numba.njit(**_NJIT)
def gather(x, idx, n_lo, n_hi, y):
    """y[n, c, a, b] = x[n, c].flat[idx[n, c, a, b]], 0 where the index is -1 (the tangent of max pooling)."""
    n_img, n_ch, ho, wo = y.shape
    zero = y.dtype.type(0)
    hw = x.shape[2] * x.shape[3]
    po = ho * wo
    xf = x.reshape(x.size)
    yf = y.reshape(y.size)
    idf = idx.reshape(idx.size)
    for pl in range(n_lo * n_ch, n_hi * n_ch):
        xs = xf[pl * hw:]
        for i in range(pl * po, (pl + 1) * po):
            j = idf[i]
            yf[i] = xs[j] if j >= 0 else zero


@numba.njit(**_NJIT)
def scatter(dy, idx, k, stride, n_lo, n_hi, dx):
    """Adjoint of :func:`gather` for k x k windows at ``stride``: dx (overwritten) receives dy at the argmax
    positions (none for an index -1)."""
    n_img, n_ch, ho, wo = dy.shape
    h, w = dx.shape[2], dx.shape[3]
    hw = h * w
    po = ho * wo
    zero = dx.dtype.type(0)
    dxf = dx.reshape(dx.size)
    dyf = dy.reshape(dy.size)
    idf = idx.reshape(idx.size)
    if k == 2 and stride == 2 and h == 2 * ho and w == 2 * wo:  # windows tile the plane: no separate zeroing
        for pl in range(n_lo * n_ch, n_hi * n_ch):
            d = dxf[pl * hw:]
            for a in range(ho):
                r0 = d[2 * a * w:]
                r1 = d[(2 * a + 1) * w:]
                for j in range(w):
                    r0[j] = zero
                    r1[j] = zero
                o = pl * po + a * wo
                dr = dyf[o:]
                ir = idf[o:]
                for b in range(wo):
                    j = ir[b]
                    if j >= 0:
                        d[j] = dr[b]
        return
    for i in range(n_lo * n_ch * hw, n_hi * n_ch * hw):
        dxf[i] = zero
    for pl in range(n_lo * n_ch, n_hi * n_ch):
        d = dxf[pl * hw:]
        for i in range(pl * po, (pl + 1) * po):
            j = idf[i]
            if j >= 0:
                d[j] += dyf[i]


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
