"""Full 2-D convolution, one image at a time: im2col into a per-chunk buffer, then a BLAS product.

Per image, with cols = im2col(x[n]) of shape (C*kh*kw, Ho*Wo) (for small images: per group of images, their
columns side by side, so that each BLAS product has a few hundred columns):

- forward: y[n] = W2 @ cols + bias (W2 = weight reshaped (O, C*kh*kw)), written straight into NCHW;
- weight gradient: G += dy[n] @ cols.T; input gradient: dx[n] = col2im(W2.T @ dy[n]).

Columns are rebuilt in the backward pass instead of being kept for the whole batch: they are kh*kw times
larger than the input and rebuilding them costs less than writing and reading them back. The batch is cut
into ``geo.chunks`` chunks (a number fixed by the caller, never the thread count); a call covers chunks
[c_lo, c_hi), and the caller runs calls on disjoint ranges in parallel threads (the kernels release the
GIL). Each chunk adds its gradients into its own slot of the accumulators (shape (chunks, ...), zeroed by
the caller), summed in chunk order by the caller; BLAS must be single-threaded meanwhile (the layers see to
it). Results are bit-for-bit the same whatever the number of threads.

Shapes: x (N, C, H, W), y and dy (N, O, Ho*Wo), w2 (O, C*kh*kw), bias (O,); ``geo`` a :class:`Geometry`.
"""
import numba
import numpy as np

from genbound._kernels.geometry import Geometry

_NJIT = dict(cache=True, nogil=True, fastmath={"reassoc", "contract"}, error_model="numpy")

_GEOMETRY_FIELDS = ("h", "w", "kh", "kw", "stride", "pad", "ho", "wo", "group", "chunks")
if Geometry._fields != _GEOMETRY_FIELDS:  # see geometry.py: this file's cached kernels assume these fields
    raise ImportError(f"genbound._kernels.geometry.Geometry has fields {Geometry._fields}, the kernels of "
                      f"{__name__} were written for {_GEOMETRY_FIELDS}: update both")


@numba.njit(**_NJIT)
def _valid_range(k, s, p, w, wo):
    """Range [b_lo, b_hi) of outputs b whose input b*s + k - p lies in [0, w) (rows or columns alike)."""
    b_lo = 0
    if k < p:
        b_lo = (p - k + s - 1) // s
    b_hi = (w - 1 - k + p) // s + 1
    if b_hi > wo:
        b_hi = wo
    if b_hi < b_lo:
        b_hi = b_lo
    return b_lo, b_hi


@numba.njit(**_NJIT)
def tap_map(geo):
    """Flat input index read by each (tap, output pixel): m[j*kw + k, a*wo + b], or -1 in the padding."""
    h, w, kh, kw, s, p, ho, wo = geo.h, geo.w, geo.kh, geo.kw, geo.stride, geo.pad, geo.ho, geo.wo
    m = np.empty((kh * kw, ho * wo), dtype=np.int64)
    for j in range(kh):
        for k in range(kw):
            for a in range(ho):
                for b in range(wo):
                    hi = a * s + j - p
                    wi = b * s + k - p
                    m[j * kw + k, a * wo + b] = hi * w + wi if 0 <= hi < h and 0 <= wi < w else -1
    return m


@numba.njit(**_NJIT)
def _flat_ok(geo):
    """Whether im2col can copy whole shifted planes (stride 1, same width, rows long enough to pay)."""
    return geo.stride == 1 and geo.wo == geo.w and geo.w >= 8


@numba.njit(**_NJIT)
def im2col(xn, geo, tmap, cols, col0):
    """cols[(c*kh + j)*kw + k, col0 + a*wo + b] = xn[c, a*s + j - p, b*s + k - p] (0 outside): one image.

    At stride 1 with wo == w, each row of cols is the input plane shifted by a constant offset: one flat copy
    (which vectorizes whatever the row length) followed by zeroing the entries that fell off a row end.
    Otherwise (small planes, strides) each row is gathered through ``tmap`` (:func:`tap_map`).
    """
    n_ch, h, w = xn.shape
    kh, kw, s, p, ho, wo = geo.kh, geo.kw, geo.stride, geo.pad, geo.ho, geo.wo
    n = ho * wo
    zero = xn.dtype.type(0)
    flat = _flat_ok(geo)
    for c in range(n_ch):
        xc = xn[c].reshape(h * w)
        for j in range(kh):
            a_lo, a_hi = _valid_range(j, s, p, h, ho)
            for k in range(kw):
                row = cols[(c * kh + j) * kw + k, col0:]
                if not flat:
                    mp = tmap[j * kw + k]
                    for i in range(n):
                        ix = mp[i]
                        row[i] = xc[ix] if ix >= 0 else zero
                    continue
                b_lo, b_hi = _valid_range(k, s, p, w, wo)
                for i in range(a_lo * wo):
                    row[i] = zero
                for i in range(a_hi * wo, n):
                    row[i] = zero
                d = (j - p) * w + (k - p)
                f_lo = max(a_lo * w, -d)
                f_hi = min(a_hi * w, h * w - d)
                if f_hi > f_lo:
                    dst = row[f_lo:]
                    src = xc[f_lo + d:]
                    for i in range(f_hi - f_lo):
                        dst[i] = src[i]
                for a in range(a_lo, a_hi):
                    for b in range(b_lo):
                        row[a * w + b] = zero
                    for b in range(b_hi, w):
                        row[a * w + b] = zero


@numba.njit(**_NJIT)
def col2im(cols, geo, tmap, col0, dxn):
    """Adjoint of :func:`im2col` for one image: dxn (overwritten) sums the cols entries that read it.

    ``cols`` is scratch: in the flat case its entries that fall off a row end are zeroed so that each row
    adds into the plane as one flat shifted sum.
    """
    n_ch, h, w = dxn.shape
    kh, kw, s, p, ho, wo = geo.kh, geo.kw, geo.stride, geo.pad, geo.ho, geo.wo
    n = ho * wo
    zero = dxn.dtype.type(0)
    flat = _flat_ok(geo)
    for c in range(n_ch):
        dxc = dxn[c].reshape(h * w)
        for i in range(h * w):
            dxc[i] = zero
        for j in range(kh):
            a_lo, a_hi = _valid_range(j, s, p, h, ho)
            for k in range(kw):
                row = cols[(c * kh + j) * kw + k, col0:]
                if not flat:
                    mp = tmap[j * kw + k]
                    for i in range(n):
                        ix = mp[i]
                        if ix >= 0:
                            dxc[ix] += row[i]
                    continue
                b_lo, b_hi = _valid_range(k, s, p, w, wo)
                for a in range(a_lo, a_hi):
                    for b in range(b_lo):
                        row[a * w + b] = zero
                    for b in range(b_hi, w):
                        row[a * w + b] = zero
                d = (j - p) * w + (k - p)
                f_lo = max(a_lo * w, -d)
                f_hi = min(a_hi * w, h * w - d)
                if f_hi > f_lo:
                    src = row[f_lo:]
                    dst = dxc[f_lo + d:]
                    for i in range(f_hi - f_lo):
                        dst[i] += src[i]


@numba.njit(**_NJIT)
def _stack(x, n0, gn, buf):
    """x[n0:n0+gn] (each (C, P)) as one (C, gn*P) matrix: x[n0] itself if gn == 1, else copied into buf."""
    if gn == 1:
        return x[n0]
    c, pp = x.shape[1], x.shape[2]
    out = buf[:c * gn * pp].reshape(c, gn * pp)
    for gi in range(gn):
        for cc in range(c):
            src = x[n0 + gi, cc]
            dst = out[cc, gi * pp:]
            for i in range(pp):
                dst[i] = src[i]
    return out


@numba.njit(**_NJIT)
def _unstack(src, n0, gn, x):
    """Inverse of :func:`_stack`: x[n0 + gi, c] = src[c, gi*P:(gi+1)*P]."""
    c, pp = x.shape[1], x.shape[2]
    for gi in range(gn):
        for cc in range(c):
            s = src[cc, gi * pp:]
            d = x[n0 + gi, cc]
            for i in range(pp):
                d[i] = s[i]


@numba.njit(**_NJIT)
def conv_forward(x, w2, x2, w22, add2, bias, geo, c_lo, c_hi, y):
    """y[n] = bias + W2 @ im2col(x[n]) (+ W22 @ im2col(x2[n]) if ``add2``: the tangent rule).

    Images go by groups of ``geo.group`` (one BLAS product over their columns side by side); the call covers
    chunks [c_lo, c_hi) of the ``geo.chunks`` chunks of the batch.
    """
    n_img = x.shape[0]
    n_out, ckk = w2.shape
    group, nch = geo.group, geo.chunks
    howo = geo.ho * geo.wo
    tmap = tap_map(geo)
    colb = np.empty(ckk * group * howo, dtype=x.dtype)
    yb = np.empty(n_out * group * howo, dtype=x.dtype)
    tmpb = np.empty(n_out * group * howo, dtype=x.dtype)
    for ci in range(c_lo, c_hi):
        n0, n1 = ci * n_img // nch, (ci + 1) * n_img // nch
        while n0 < n1:
            gn = min(group, n1 - n0)
            cols = colb[:ckk * gn * howo].reshape(ckk, gn * howo)
            ys = y[n0] if gn == 1 else yb[:n_out * gn * howo].reshape(n_out, gn * howo)
            for gi in range(gn):
                im2col(x[n0 + gi], geo, tmap, cols, gi * howo)
            np.dot(w2, cols, ys)
            if add2:
                tmp = tmpb[:n_out * gn * howo].reshape(n_out, gn * howo)
                for gi in range(gn):
                    im2col(x2[n0 + gi], geo, tmap, cols, gi * howo)
                np.dot(w22, cols, tmp)
                for o in range(n_out):
                    for i in range(gn * howo):
                        ys[o, i] += tmp[o, i]
            for o in range(n_out):
                bo = bias[o]
                for i in range(gn * howo):
                    ys[o, i] += bo
            if gn > 1:
                _unstack(ys, n0, gn, y)
            n0 += gn


@numba.njit(**_NJIT)
def _add_product(a, b, acc, tmp):
    """acc += a @ b (tmp: scratch of acc's shape)."""
    np.dot(a, b, tmp)
    for r in range(acc.shape[0]):
        for i in range(acc.shape[1]):
            acc[r, i] += tmp[r, i]


@numba.njit(**_NJIT)
def conv_backward(x, dy, w2, x2, dy2, w22, gw_adds_x2, dx_adds_w22, geo, c_lo, c_hi, need_gw, need_dx, gw_c,
                  gb_c, dx):
    """Adjoint of :func:`conv_forward`, with optional second terms (the tangent rule).

    For each chunk ci in [c_lo, c_hi), if ``need_gw``: gw_c[ci] += sum_n dy[n] @ im2col(x[n]).T
    (+ dy2[n] @ im2col(x2[n]).T if ``gw_adds_x2``) and gb_c[ci] += the sum of dy over its images; if
    ``need_dx``: dx[n] = col2im(W2.T @ dy[n] (+ W22.T @ dy2[n] if ``dx_adds_w22``)) for its images.
    """
    n_img = x.shape[0]
    n_out, ckk = w2.shape
    group, nch = geo.group, geo.chunks
    howo = geo.ho * geo.wo
    second = gw_adds_x2 or dx_adds_w22
    tmap = tap_map(geo)
    colb = np.empty(ckk * group * howo, dtype=x.dtype)
    dcolb = np.empty(ckk * group * howo, dtype=x.dtype)
    dyb = np.empty(n_out * group * howo, dtype=x.dtype)
    dy2b = np.empty(n_out * group * howo, dtype=x.dtype)
    tmp = np.empty((n_out, ckk), dtype=x.dtype)
    for ci in range(c_lo, c_hi):
        n0, n1 = ci * n_img // nch, (ci + 1) * n_img // nch
        while n0 < n1:
            gn = min(group, n1 - n0)
            cols = colb[:ckk * gn * howo].reshape(ckk, gn * howo)
            dys = _stack(dy, n0, gn, dyb)
            dy2s = _stack(dy2, n0, gn, dy2b) if second else dys
            if need_gw:
                acc = gw_c[ci]
                for gi in range(gn):
                    im2col(x[n0 + gi], geo, tmap, cols, gi * howo)
                _add_product(dys, cols.T, acc, tmp)
                if gw_adds_x2:
                    for gi in range(gn):
                        im2col(x2[n0 + gi], geo, tmap, cols, gi * howo)
                    _add_product(dy2s, cols.T, acc, tmp)
                for o in range(n_out):
                    sb = dy.dtype.type(0)
                    for i in range(gn * howo):
                        sb += dys[o, i]
                    gb_c[ci, o] += sb
            if need_dx:
                dcols = dcolb[:ckk * gn * howo].reshape(ckk, gn * howo)
                np.dot(w2.T, dys, dcols)
                if dx_adds_w22:
                    _add_product(w22.T, dy2s, dcols, cols)
                for gi in range(gn):
                    col2im(dcols, geo, tmap, gi * howo, dx[n0 + gi])
            n0 += gn
