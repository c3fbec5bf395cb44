"""Full 2-D convolution, by groups of images: im2col into a per-chunk buffer, then a BLAS product.

For a group of images (``geo.group`` of them, so that each BLAS product has a few hundred columns), with
cols = im2col of the group (C*kh*kw, gn*Ho*Wo): their columns side by side:

- forward: y[n] = W2 @ cols + bias (W2 = weight reshaped (O, C*kh*kw)), written straight into (N, O, Ho*Wo);
- weight gradient: G += dy @ cols.T; input gradient: dx = col2im(W2.T @ dy).

When each output plane has the shape of its input plane (stride 1, padding (k - 1) / 2: "same size"), the
group's input planes are stacked channel by channel into one (C, gn*H*W) matrix, and each row of cols is that
stack shifted by a constant offset, zero where the tap falls outside its own plane (:func:`tap_masks`): one
flat, vectorizable loop per row whatever the plane size. Other geometries gather each image's columns through
a tap map (:func:`tap_map`).

Columns are rebuilt in the backward pass instead of being kept for the whole batch: they are kh*kw times
larger than the input and rebuilding them costs less than writing and reading them back. The batch is cut
into ``geo.chunks`` chunks (a number fixed by the caller, never the thread count); a call covers chunks
[c_lo, c_hi), and the caller runs calls on disjoint ranges in parallel threads (the kernels release the
GIL). Each chunk adds its gradients into its own slot of the accumulators (shape (chunks, ...), zeroed by
the caller), summed in chunk order by the caller; BLAS must be single-threaded meanwhile (the layers see to
it). Results are bit-for-bit the same whatever the number of threads.

Shapes: x and dx (N, C, H*W), y and dy (N, O, Ho*Wo), w2 (O, C*kh*kw), bias (O,); ``geo`` a
:class:`Geometry`.
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
def _same_size(geo):
    """Whether output planes have the shape of the input planes at stride 1 (the stacked, shifted form)."""
    return geo.stride == 1 and geo.ho == geo.h and geo.wo == geo.w


@numba.njit(**_NJIT)
def tap_masks(geo):
    """For a same-size geometry: m[j*kw + k, i] = 1 if tap (j, k) of pixel i of a stack of ``geo.group``
    planes reads inside the pixel's own plane, else 0 (for other geometries: no columns)."""
    h, w, kh, kw, p = geo.h, geo.w, geo.kh, geo.kw, geo.pad
    m = np.empty((kh * kw, geo.group * h * w if _same_size(geo) else 0), dtype=np.uint8)
    if not _same_size(geo):
        return m
    for j in range(kh):
        for k in range(kw):
            for g in range(geo.group):
                for a in range(h):
                    for b in range(w):
                        inside = 0 <= a + j - p < h and 0 <= b + k - p < w
                        m[j * kw + k, (g * h + a) * w + b] = 1 if inside else 0
    return m


@numba.njit(**_NJIT)
def im2col(x, n0, gn, geo, stacked, tmap, masks, xb, cols):
    """cols = the columns of images n0 .. n0+gn-1 of x (N, C, H*W) side by side: cols[(c*kh + j)*kw + k,
    g*Ho*Wo + a*wo + b] = x[n0 + g, c, (a*s + j - p)*w + b*s + k - p] (0 outside the plane).

    ``stacked`` (same-size geometries only): the images' planes are stacked channel by channel into xb as
    one (C, gn*H*W) matrix, and each row of cols is that stack shifted by d = (j - p)*w + k - p, zero where
    ``masks`` (:func:`tap_masks`) says the tap leaves its plane: one flat loop per row. Otherwise each
    image's columns are gathered through ``tmap`` (:func:`tap_map`).
    """
    n_ch = x.shape[1]
    kh, kw, p, w = geo.kh, geo.kw, geo.pad, geo.w
    zero = x.dtype.type(0)
    if stacked:
        xs = _stack(x, n0, gn, xb)
        n = xs.shape[1]
        for c in range(n_ch):
            src = xs[c]
            for j in range(kh):
                for k in range(kw):
                    row = cols[(c * kh + j) * kw + k]
                    d = (j - p) * w + (k - p)
                    f_lo = min(max(0, -d), n)  # [f_lo, f_hi): the pixels i whose i + d lies in the stack
                    f_hi = max(min(n, n - d), f_lo)
                    for i in range(f_lo):
                        row[i] = zero
                    for i in range(f_hi, n):
                        row[i] = zero
                    dst = row[f_lo:]
                    sh = src[f_lo + d:]
                    mk = masks[j * kw + k, f_lo:]
                    for i in range(f_hi - f_lo):
                        dst[i] = sh[i] if mk[i] else zero
        return
    n = geo.ho * geo.wo
    for g in range(gn):
        for c in range(n_ch):
            xc = x[n0 + g, c]
            for t in range(kh * kw):
                row = cols[c * kh * kw + t, g * n:]
                mp = tmap[t]
                for i in range(n):
                    ix = mp[i]
                    row[i] = xc[ix] if ix >= 0 else zero


@numba.njit(**_NJIT)
def col2im(cols, n0, gn, geo, stacked, tmap, masks, dxb, dx):
    """Adjoint of :func:`im2col`: dx[n0:n0+gn] (overwritten) sums the cols entries that read each input
    value, tap by tap in (j, k) order (with ``stacked``, entries whose tap leaves the plane add an exact zero;
    dxb: scratch for the stack)."""
    n_ch, hw = dx.shape[1], dx.shape[2]
    kh, kw, p, w = geo.kh, geo.kw, geo.pad, geo.w
    zero = dx.dtype.type(0)
    if stacked:
        n = gn * hw
        dxs = dx[n0] if gn == 1 else dxb[:n_ch * n].reshape(n_ch, n)
        for c in range(n_ch):
            plane = dxs[c]
            for i in range(n):
                plane[i] = zero
            for j in range(kh):
                for k in range(kw):
                    row = cols[(c * kh + j) * kw + k]
                    d = (j - p) * w + (k - p)
                    f_lo = min(max(0, -d), n)  # [f_lo, f_hi): the pixels i whose i + d lies in the stack
                    f_hi = max(min(n, n - d), f_lo)
                    dst = plane[f_lo + d:]
                    src = row[f_lo:]
                    mk = masks[j * kw + k, f_lo:]
                    for i in range(f_hi - f_lo):
                        dst[i] += src[i] if mk[i] else zero
        if gn > 1:
            _unstack(dxs, n0, gn, dx)
        return
    n = geo.ho * geo.wo
    for g in range(gn):
        for c in range(n_ch):
            dxc = dx[n0 + g, c]
            for i in range(hw):
                dxc[i] = zero
            for t in range(kh * kw):
                row = cols[c * kh * kw + t, g * n:]
                mp = tmap[t]
                for i in range(n):
                    ix = mp[i]
                    if ix >= 0:
                        dxc[ix] += row[i]


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
    n_img, c, hw = x.shape
    n_out, ckk = w2.shape
    group, nch = geo.group, geo.chunks
    howo = geo.ho * geo.wo
    stacked = _same_size(geo)
    tmap = tap_map(geo)
    masks = tap_masks(geo)
    xb = np.empty(c * group * hw, dtype=x.dtype)
    colb = np.empty(ckk * group * howo, dtype=x.dtype)
    yb = np.empty(n_out * group * howo, dtype=x.dtype)
    tmpb = np.empty(n_out * group * howo, dtype=x.dtype)
    for ci in range(c_lo, c_hi):
        n0, n1 = ci * n_img // nch, (ci + 1) * n_img // nch
        while n0 < n1:
            gn = min(group, n1 - n0)
            cols = colb[:ckk * gn * howo].reshape(ckk, gn * howo)
            ys = y[n0] if gn == 1 else yb[:n_out * gn * howo].reshape(n_out, gn * howo)
            im2col(x, n0, gn, geo, stacked, tmap, masks, xb, cols)
            np.dot(w2, cols, ys)
            if add2:
                tmp = tmpb[:n_out * gn * howo].reshape(n_out, gn * howo)
                im2col(x2, n0, gn, geo, stacked, tmap, masks, xb, cols)
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
    n_img, c, hw = x.shape
    n_out, ckk = w2.shape
    group, nch = geo.group, geo.chunks
    howo = geo.ho * geo.wo
    second = gw_adds_x2 or dx_adds_w22
    stacked = _same_size(geo)
    tmap = tap_map(geo)
    masks = tap_masks(geo)
    xb = np.empty(c * group * hw, dtype=x.dtype)
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
                im2col(x, n0, gn, geo, stacked, tmap, masks, xb, cols)
                _add_product(dys, cols.T, acc, tmp)
                if gw_adds_x2:
                    im2col(x2, n0, gn, geo, stacked, tmap, masks, xb, cols)
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
                col2im(dcols, n0, gn, geo, stacked, tmap, masks, xb, dx)
            n0 += gn
