"""Full 2-D convolution, one image at a time: im2col into a per-chunk buffer, then a BLAS product.

Per image, with cols = im2col(x[n]) of shape (C*kh*kw, Ho*Wo):

- forward: y[n] = W2 @ cols + bias (W2 = weight reshaped (O, C*kh*kw)), written straight into NCHW;
- weight gradient: G += dy[n] @ cols.T; input gradient: dx[n] = col2im(W2.T @ dy[n]).

Columns are rebuilt in the backward pass instead of being kept for the whole batch: they are kh*kw times
larger than the input and rebuilding them costs less than writing and reading them back. The batch is cut
into ``nch`` chunks (a number fixed by the caller, never the thread count) that run in parallel, each with
its own gradient accumulators, summed in chunk order; BLAS must be single-threaded meanwhile (the layers see
to it). Results are bit-for-bit the same whatever the number of threads.

Shapes: x (N, C, H, W), y and dy (N, O, Ho*Wo), w2 (O, C*kh*kw), bias (O,).
"""
import numba
import numpy as np

_PAR = dict(cache=True, nogil=True, parallel=True, fastmath={"reassoc", "contract"})
_SER = dict(cache=True, nogil=True, fastmath={"reassoc", "contract"})


@numba.njit(**_SER)
def _valid_cols(k, s, p, w, wo):
    """Range [b_lo, b_hi) of output columns b whose input column b*s + k - p lies in [0, w)."""
    b_lo = 0
    if k < p:
        b_lo = (p - k + s - 1) // s
    b_hi = (w - 1 - k + p) // s + 1
    if b_hi > wo:
        b_hi = wo
    if b_hi < b_lo:
        b_hi = b_lo
    return b_lo, b_hi


@numba.njit(**_SER)
def _valid_rows(j, s, p, h, ho):
    """Range [a_lo, a_hi) of output rows a whose input row a*s + j - p lies in [0, h)."""
    return _valid_cols(j, s, p, h, ho)


@numba.njit(**_SER)
def im2col(xn, kh, kw, s, p, ho, wo, cols):
    """cols[(c*kh + j)*kw + k, a*wo + b] = xn[c, a*s + j - p, b*s + k - p] (0 outside) for one image.

    At stride 1 with wo == w, each row of cols is the input plane shifted by a constant offset: one flat copy
    (which vectorizes whatever the row length) followed by zeroing the entries that fell off a row end.
    """
    n_ch, h, w = xn.shape
    n = ho * wo
    for c in range(n_ch):
        xc = xn[c].reshape(h * w)
        for j in range(kh):
            a_lo, a_hi = _valid_rows(j, s, p, h, ho)
            for k in range(kw):
                row = cols[(c * kh + j) * kw + k]
                b_lo, b_hi = _valid_cols(k, s, p, w, wo)
                for i in range(a_lo * wo):
                    row[i] = 0.0
                for i in range(a_hi * wo, n):
                    row[i] = 0.0
                if s == 1 and wo == w:
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
                            row[a * w + b] = 0.0
                        for b in range(b_hi, w):
                            row[a * w + b] = 0.0
                    continue
                for a in range(a_lo, a_hi):
                    src = xn[c, a * s + j - p]
                    off = a * wo
                    for b in range(b_lo):
                        row[off + b] = 0.0
                    for b in range(b_lo, b_hi):
                        row[off + b] = src[b * s + k - p]
                    for b in range(b_hi, wo):
                        row[off + b] = 0.0


@numba.njit(**_SER)
def col2im(cols, kh, kw, s, p, ho, wo, dxn):
    """Adjoint of :func:`im2col` for one image: dxn (overwritten) sums the cols entries that read it.

    ``cols`` is scratch: at stride 1 with wo == w its entries that fall off a row end are zeroed so that
    each row adds into the plane as one flat shifted sum.
    """
    n_ch, h, w = dxn.shape
    for c in range(n_ch):
        dxc = dxn[c].reshape(h * w)
        for i in range(h * w):
            dxc[i] = 0.0
        for j in range(kh):
            a_lo, a_hi = _valid_rows(j, s, p, h, ho)
            for k in range(kw):
                row = cols[(c * kh + j) * kw + k]
                b_lo, b_hi = _valid_cols(k, s, p, w, wo)
                if s == 1 and wo == w:
                    for a in range(a_lo, a_hi):
                        for b in range(b_lo):
                            row[a * w + b] = 0.0
                        for b in range(b_hi, w):
                            row[a * w + b] = 0.0
                    d = (j - p) * w + (k - p)
                    f_lo = max(a_lo * w, -d)
                    f_hi = min(a_hi * w, h * w - d)
                    if f_hi > f_lo:
                        src = row[f_lo:]
                        dst = dxc[f_lo + d:]
                        for i in range(f_hi - f_lo):
                            dst[i] += src[i]
                    continue
                for a in range(a_lo, a_hi):
                    dst = dxn[c, a * s + j - p]
                    off = a * wo
                    for b in range(b_lo, b_hi):
                        dst[b * s + k - p] += row[off + b]


@numba.njit(**_PAR)
def conv_forward(x, w2, x2, w22, has2, bias, kh, kw, s, p, ho, wo, nch, y):
    """y[n] = bias + W2 @ im2col(x[n]) (+ W22 @ im2col(x2[n]) if ``has2``: the tangent rule)."""
    n_img = x.shape[0]
    n_out, ckk = w2.shape
    for ci in numba.prange(nch):
        cols = np.empty((ckk, ho * wo), dtype=x.dtype)
        tmp = np.empty((n_out, ho * wo), dtype=x.dtype)
        for n in range(ci * n_img // nch, (ci + 1) * n_img // nch):
            yn = y[n]
            im2col(x[n], kh, kw, s, p, ho, wo, cols)
            np.dot(w2, cols, yn)
            if has2:
                im2col(x2[n], kh, kw, s, p, ho, wo, cols)
                np.dot(w22, cols, tmp)
                for o in range(n_out):
                    for i in range(ho * wo):
                        yn[o, i] += tmp[o, i]
            for o in range(n_out):
                bo = bias[o]
                for i in range(ho * wo):
                    yn[o, i] += bo


@numba.njit(**_PAR)
def conv_backward(x, dy, w2, x2, dy2, w22, mode2, kh, kw, s, p, nch, need_gw, need_dx, gw, gb, dx):
    """Adjoint of :func:`conv_forward`, for one or two (input, output gradient, weight) triples.

    gw = sum_n dy[n] @ im2col(x[n]).T (+ dy2[n] @ im2col(x2[n]).T if ``mode2 & 1``), gb = sum of dy,
    dx[n] = col2im(W2.T @ dy[n] (+ W22.T @ dy2[n] if ``mode2 & 2``)). Outputs overwritten; gw and gb only
    if ``need_gw``, dx only if ``need_dx``.
    """
    n_img, _, h, w = x.shape
    n_out, ckk = w2.shape
    howo = dy.shape[2]
    ho = (h + 2 * p - kh) // s + 1
    wo = howo // ho
    gw_c = np.zeros((nch, n_out, ckk), dtype=x.dtype)
    gb_c = np.zeros((nch, n_out), dtype=x.dtype)
    for ci in numba.prange(nch):
        cols = np.empty((ckk, howo), dtype=x.dtype)
        dcols = np.empty((ckk, howo), dtype=x.dtype)
        tmp = np.empty((n_out, ckk), dtype=x.dtype)
        acc = gw_c[ci]
        for n in range(ci * n_img // nch, (ci + 1) * n_img // nch):
            dyn = dy[n]
            if need_gw:
                im2col(x[n], kh, kw, s, p, ho, wo, cols)
                np.dot(dyn, cols.T, tmp)
                for o in range(n_out):
                    for i in range(ckk):
                        acc[o, i] += tmp[o, i]
                if mode2 & 1:
                    im2col(x2[n], kh, kw, s, p, ho, wo, cols)
                    np.dot(dy2[n], cols.T, tmp)
                    for o in range(n_out):
                        for i in range(ckk):
                            acc[o, i] += tmp[o, i]
                for o in range(n_out):
                    sb = dy.dtype.type(0)
                    for i in range(howo):
                        sb += dyn[o, i]
                    gb_c[ci, o] += sb
            if need_dx:
                np.dot(w2.T, dyn, dcols)
                if mode2 & 2:
                    np.dot(w22.T, dy2[n], cols)
                    for r in range(ckk):
                        for i in range(howo):
                            dcols[r, i] += cols[r, i]
                col2im(dcols, kh, kw, s, p, ho, wo, dx[n])
    if need_gw:
        gw[...] = gw_c[0]
        gb[...] = gb_c[0]
        for ci in range(1, nch):
            gw += gw_c[ci]
            gb += gb_c[ci]
