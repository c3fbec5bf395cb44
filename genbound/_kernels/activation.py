"""ReLU kernels, and ReLU fused with the global average pool that follows it.

Each call covers a range [lo, hi) of the flat array (ReLU) or of the images (pooling); every index owns its
outputs, so the caller may run calls on disjoint ranges in parallel threads (the kernels release the GIL)
with results independent of the thread count. ReLU's derivative at 0 is taken as 0 everywhere.
"""
import numba

_NJIT = dict(cache=True, nogil=True, fastmath={"reassoc", "contract"}, error_model="numpy")


@numba.njit(**_NJIT)
def relu_forward(x, lo, hi, y):
    """y = max(x, 0) over the flat range [lo, hi)."""
    xf = x.reshape(x.size)[lo:hi]
    yf = y.reshape(y.size)[lo:hi]
    zero = x.dtype.type(0)
    for i in range(hi - lo):
        v = xf[i]
        yf[i] = v if v > zero else zero


@numba.njit(**_NJIT)
def relu_mask(d, y, lo, hi, out):
    """out = d where y > 0, else 0 (the derivative of ReLU applied to ``d``, read off its output y) over the
    flat range [lo, hi)."""
    df = d.reshape(d.size)[lo:hi]
    yf = y.reshape(y.size)[lo:hi]
    of = out.reshape(out.size)[lo:hi]
    zero = d.dtype.type(0)
    for i in range(hi - lo):
        of[i] = df[i] if yf[i] > zero else zero


@numba.njit(**_NJIT)
def relu_gap_forward(x, n_lo, n_hi, y):
    """y[n, c] = mean over the plane of max(x[n, c], 0), for images [n_lo, n_hi); x is (N, C, H*W)."""
    n_img, n_ch, hw = x.shape
    zero = x.dtype.type(0)
    scale = x.dtype.type(1.0 / hw)
    for n in range(n_lo, n_hi):
        for c in range(n_ch):
            xs = x[n, c]
            s = zero
            for i in range(hw):
                v = xs[i]
                s += v if v > zero else zero
            y[n, c] = s * scale


@numba.njit(**_NJIT)
def relu_gap_tangent(rx, x, n_lo, n_hi, ry):
    """ry[n, c] = mean over the plane of rx[n, c] where x[n, c] > 0 (the tangent of :func:`relu_gap_forward`
    along rx)."""
    n_img, n_ch, hw = x.shape
    zero = x.dtype.type(0)
    scale = x.dtype.type(1.0 / hw)
    for n in range(n_lo, n_hi):
        for c in range(n_ch):
            xs = x[n, c]
            rs = rx[n, c]
            s = zero
            for i in range(hw):
                s += rs[i] if xs[i] > zero else zero
            ry[n, c] = s * scale


@numba.njit(**_NJIT)
def relu_gap_adjoint(dy, x, n_lo, n_hi, dx):
    """dx[n, c, i] = dy[n, c] / (H*W) where x[n, c, i] > 0, else 0: the adjoint of :func:`relu_gap_tangent`."""
    n_img, n_ch, hw = x.shape
    zero = x.dtype.type(0)
    scale = x.dtype.type(1.0 / hw)
    for n in range(n_lo, n_hi):
        for c in range(n_ch):
            xs = x[n, c]
            ds = dx[n, c]
            g = dy[n, c] * scale
            for i in range(hw):
                ds[i] = g if xs[i] > zero else zero
