"""Rank-R CP convolution, fused per group of images: forward, backward and their tangents.

A CP filter W[o] = sum_r p[o,r] (x) q[o,r] (x) t[o,r] is applied as: the channel mix Z = P x (P of shape
(O*R, C), one BLAS product per group of images), a 1-D pass along H with q (giving U), then a 1-D pass along
W with t, summed over r. Each kernel works on a small group of images at a time (one image for large planes,
enough images for a few hundred pixels for small ones), so that Z, U and their adjoints stay in cache: the
backward recomputes Z and U instead of storing them for the whole batch (recomputing costs less than
writing and reading them back).

Parallel layout: the batch is cut into ``geo.chunks`` chunks (a number fixed by the caller, never the
thread count); one call processes chunks [c_lo, c_hi), and the caller runs calls on disjoint chunk ranges
in parallel threads (the kernels release the GIL). Each chunk adds its factor gradients into its own slot of
the accumulators (shape (chunks, ...), zeroed by the caller), which the caller sums in chunk order.
BLAS must be single-threaded meanwhile (the layers see to it). Results are therefore bit-for-bit the same
whatever the number of threads.

Shapes: x (N, C, H*W), dy and y (N, O, Ho*Wo); ``factors`` and their tangents are tuples (p2, q, t) with
p2 (O*R, C), q (O, R, kh), t (O, R, kw); bias (O,); ``geo`` a :class:`Geometry`; the per-chunk accumulators
``acc`` a tuple (gp_c, gq_c, gt_c, gb_c) of shapes (chunks, O*R, C), (chunks, O, R, kh), (chunks, O, R, kw),
(chunks, O).
"""
import numba
import numpy as np

from genbound._kernels.geometry import Geometry

_NJIT = dict(cache=True, nogil=True, fastmath={"reassoc", "contract"}, error_model="numpy")

_GEOMETRY_FIELDS = ("h", "w", "kh", "kw", "stride", "pad", "ho", "wo", "group", "chunks")
if Geometry._fields != _GEOMETRY_FIELDS:  # see geometry.py: this file's cached kernels assume these fields
    raise ImportError(f"genbound._kernels.geometry.Geometry has fields {Geometry._fields}, the kernels of "
                      f"{__name__} were written for {_GEOMETRY_FIELDS}: update both")


# --------------------------------------------------------------------------------------------------------
# 1-D passes
# --------------------------------------------------------------------------------------------------------
# Planes are flat, row-major vectors. With a plane z of h rows and w columns, the pass along H with taps q
# (stride s, zero padding p) gives u of ho rows and w columns, u[a, c] = sum_j q[j] z[a*s + j - p, c]; the
# pass along W with taps t gives y of ho rows and wo columns, y[a, b] = sum_k t[k] u[a, b*s + k - p]. Each
# pass has its adjoint and the correlation giving the gradient of its taps. Every pass takes ``acc``: add
# into the output instead of overwriting it.
#
# The common case (3 taps, stride 1, padding 1: *3 functions) runs as flat loops over a stack of planes,
# which vectorize whatever the row length; rows and planes end where the masks of stack_masks say (ml, mr:
# the left / right neighbour lies in the same row; mt, mb: the row above / below lies in the same plane).
# Every index in a hot loop is a plain loop counter (shifted views instead of i - w), or numba's negative
# index handling keeps LLVM from vectorizing. Other shapes take the general one-plane loops (*_g).
# (All helpers live in this file: numba's cache only notices changes to the file of the kernel itself.)


@numba.njit(**_NJIT)
def stack_masks(g, h, w, like):
    """Masks (4, g*h*w) over a stack of g planes of h x w: rows ml = [b > 0], mr = [b < w-1],
    mt = [a > 0], mb = [a < h-1] (1 or 0)."""
    m = np.empty((4, g * h * w), dtype=like.dtype)
    for gi in range(g):
        for a in range(h):
            for b in range(w):
                i = (gi * h + a) * w + b
                m[0, i] = 1.0 if b > 0 else 0.0
                m[1, i] = 1.0 if b < w - 1 else 0.0
                m[2, i] = 1.0 if a > 0 else 0.0
                m[3, i] = 1.0 if a < h - 1 else 0.0
    return m


@numba.njit(**_NJIT)
def h3(z, q0, q1, q2, w, n, mt, mb, single, u, acc):
    """u[i] (+)= q0 z[i-w] + q1 z[i] + q2 z[i+w] within planes (the adjoint passes the taps reversed).
    A ``single`` plane needs no masks: only its first and last rows lack a neighbour."""
    if single and n > 2 * w:
        z1 = z[w:]
        for i in range(w):
            v = q1 * z[i] + q2 * z1[i]
            u[i] = u[i] + v if acc else v
        z2 = z[2 * w:]
        u1 = u[w:]
        for i in range(n - 2 * w):
            v = q0 * z[i] + q1 * z1[i] + q2 * z2[i]
            u1[i] = u1[i] + v if acc else v
        zl = z[n - 2 * w:]
        zc = z[n - w:]
        ul = u[n - w:]
        for i in range(w):
            v = q0 * zl[i] + q1 * zc[i]
            ul[i] = ul[i] + v if acc else v
        return
    if n <= 2 * w:
        for i in range(n):
            v = q1 * z[i]
            if i >= w:
                v += q0 * (mt[i] * z[i - w])
            if i + w < n:
                v += q2 * (mb[i] * z[i + w])
            u[i] = u[i] + v if acc else v
        return
    z1 = z[w:]
    for i in range(w):
        v = q1 * z[i] + q2 * (mb[i] * z1[i])
        u[i] = u[i] + v if acc else v
    z2 = z[2 * w:]
    u1 = u[w:]
    mt1 = mt[w:]
    mb1 = mb[w:]
    for i in range(n - 2 * w):
        v = q0 * (mt1[i] * z[i]) + q1 * z1[i] + q2 * (mb1[i] * z2[i])
        u1[i] = u1[i] + v if acc else v
    zl = z[n - 2 * w:]
    zc = z[n - w:]
    ul = u[n - w:]
    mtl = mt[n - w:]
    for i in range(w):
        v = q0 * (mtl[i] * zl[i]) + q1 * zc[i]
        ul[i] = ul[i] + v if acc else v


@numba.njit(**_NJIT)
def w3(u, t0, t1, t2, n, ml, mr, y, acc, base):
    """y[i] (+)= t0 u[i-1] + t1 u[i] + t2 u[i+1] within rows (+ ``base`` when not ``acc``)."""
    if n == 1:
        v = t1 * u[0]
        y[0] = y[0] + v if acc else v + base
        return
    v = t1 * u[0] + t2 * (mr[0] * u[1])
    y[0] = y[0] + v if acc else v + base
    u1 = u[1:]
    u2 = u[2:]
    y1 = y[1:]
    ml1 = ml[1:]
    mr1 = mr[1:]
    for i in range(n - 2):
        v = t0 * (ml1[i] * u[i]) + t1 * u1[i] + t2 * (mr1[i] * u2[i])
        y1[i] = y1[i] + v if acc else v + base
    v = t0 * (ml[n - 1] * u[n - 2]) + t1 * u[n - 1]
    y[n - 1] = y[n - 1] + v if acc else v + base


@numba.njit(**_NJIT)
def wt3c(dy, u, t, n, ml, mr, du, g):
    """Fused: du = adjoint W-pass of dy with taps t (overwritten), and g[k] += sum_i dy[i] u[i + k - 1] within
    rows (the gradient of t): one sweep over dy instead of two."""
    t0, t1, t2 = t[0], t[1], t[2]
    s1 = dy[0] * u[0]
    if n == 1:
        du[0] = t1 * dy[0]
        g[1] += s1
        return
    s0 = dy.dtype.type(0)
    s2 = dy[0] * (mr[0] * u[1])
    du[0] = t1 * dy[0] + t0 * (mr[0] * dy[1])
    dy1 = dy[1:]
    dy2 = dy[2:]
    u1 = u[1:]
    u2 = u[2:]
    du1 = du[1:]
    ml1 = ml[1:]
    mr1 = mr[1:]
    for i in range(n - 2):
        d = dy1[i]
        lm = ml1[i]
        rm = mr1[i]
        du1[i] = t2 * (lm * dy[i]) + t1 * d + t0 * (rm * dy2[i])
        s0 += d * (lm * u[i])
        s1 += d * u1[i]
        s2 += d * (rm * u2[i])
    d = dy[n - 1]
    du[n - 1] = t2 * (ml[n - 1] * dy[n - 2]) + t1 * d
    s0 += d * (ml[n - 1] * u[n - 2])
    s1 += d * u[n - 1]
    g[0] += s0
    g[1] += s1
    g[2] += s2


@numba.njit(**_NJIT)
def ht3c(du, z, q, w, n, mt, mb, dz, g):
    """Fused: dz = adjoint H-pass of du with taps q (overwritten), and g[j] += sum_i du[i] z[i + (j - 1) w]
    within planes (the gradient of q): one sweep over du instead of two."""
    q0, q1, q2 = q[0], q[1], q[2]
    zero = du.dtype.type(0)
    s0 = zero
    s1 = zero
    s2 = zero
    if n <= 2 * w:
        for i in range(n):
            d = du[i]
            v = q1 * d
            s1 += d * z[i]
            if i >= w:
                v += q2 * (mt[i] * du[i - w])
                s0 += d * (mt[i] * z[i - w])
            if i + w < n:
                v += q0 * (mb[i] * du[i + w])
                s2 += d * (mb[i] * z[i + w])
            dz[i] = v
        g[0] += s0
        g[1] += s1
        g[2] += s2
        return
    du1 = du[w:]
    z1 = z[w:]
    for i in range(w):
        d = du[i]
        dz[i] = q1 * d + q0 * (mb[i] * du1[i])
        s1 += d * z[i]
        s2 += d * (mb[i] * z1[i])
    du2 = du[2 * w:]
    z2 = z[2 * w:]
    dz1 = dz[w:]
    mt1 = mt[w:]
    mb1 = mb[w:]
    for i in range(n - 2 * w):
        d = du1[i]
        tm = mt1[i]
        bm = mb1[i]
        dz1[i] = q2 * (tm * du[i]) + q1 * d + q0 * (bm * du2[i])
        s0 += d * (tm * z[i])
        s1 += d * z1[i]
        s2 += d * (bm * z2[i])
    dul = du[n - 2 * w:]
    duc = du[n - w:]
    zl = z[n - 2 * w:]
    zc = z[n - w:]
    dzl = dz[n - w:]
    mtl = mt[n - w:]
    for i in range(w):
        d = duc[i]
        dzl[i] = q2 * (mtl[i] * dul[i]) + q1 * d
        s0 += d * (mtl[i] * zl[i])
        s1 += d * zc[i]
    g[0] += s0
    g[1] += s1
    g[2] += s2


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
def hpass_g(z, q, h, w, s, p, ho, u, acc):
    """u (ho x w) (+)= pass of z (h x w) along H with taps q."""
    if not acc:
        for i in range(ho * w):
            u[i] = 0.0
    for j in range(q.shape[0]):
        qj = q[j]
        a_lo, a_hi = _valid_range(j, s, p, h, ho)
        for a in range(a_lo, a_hi):
            src = z[(a * s + j - p) * w:]
            dst = u[a * w:]
            for c in range(w):
                dst[c] += qj * src[c]


@numba.njit(**_NJIT)
def hpass_t_g(du, q, h, w, s, p, ho, dz, acc):
    """Adjoint of :func:`hpass_g`: dz (h x w) (+)= H-pass transposed applied to du (ho x w)."""
    if not acc:
        for i in range(h * w):
            dz[i] = 0.0
    for j in range(q.shape[0]):
        qj = q[j]
        a_lo, a_hi = _valid_range(j, s, p, h, ho)
        for a in range(a_lo, a_hi):
            src = du[a * w:]
            dst = dz[(a * s + j - p) * w:]
            for c in range(w):
                dst[c] += qj * src[c]


@numba.njit(**_NJIT)
def wpass_g(u, t, ho, w, s, p, wo, y, acc, base):
    """y (ho x wo) (+)= pass of u (ho x w) along W with taps t (+ ``base`` when not ``acc``)."""
    if not acc:
        for i in range(ho * wo):
            y[i] = base
    for k in range(t.shape[0]):
        tk = t[k]
        b_lo, b_hi = _valid_range(k, s, p, w, wo)
        for a in range(ho):
            src = u[a * w:]
            dst = y[a * wo:]
            for b in range(b_lo, b_hi):
                dst[b] += tk * src[b * s + k - p]


@numba.njit(**_NJIT)
def wpass_t_g(dy, t, ho, w, s, p, wo, du, acc):
    """Adjoint of :func:`wpass_g`: du (ho x w) (+)= W-pass transposed applied to dy (ho x wo)."""
    if not acc:
        for i in range(ho * w):
            du[i] = 0.0
    for k in range(t.shape[0]):
        tk = t[k]
        b_lo, b_hi = _valid_range(k, s, p, w, wo)
        for a in range(ho):
            src = dy[a * wo:]
            dst = du[a * w:]
            for b in range(b_lo, b_hi):
                dst[b * s + k - p] += tk * src[b]


@numba.njit(**_NJIT)
def corr_w_g(dy, u, kw, ho, w, s, p, wo, g):
    """g[k] += sum_{a,b} dy[a, b] u[a, b*s + k - p]."""
    for k in range(kw):
        b_lo, b_hi = _valid_range(k, s, p, w, wo)
        acc = dy.dtype.type(0)
        for a in range(ho):
            src = u[a * w:]
            d = dy[a * wo:]
            for b in range(b_lo, b_hi):
                acc += d[b] * src[b * s + k - p]
        g[k] += acc


@numba.njit(**_NJIT)
def corr_h_g(du, z, kh, h, w, s, p, ho, g):
    """g[j] += sum_{a,c} du[a, c] z[a*s + j - p, c]."""
    for j in range(kh):
        a_lo, a_hi = _valid_range(j, s, p, h, ho)
        acc = du.dtype.type(0)
        for a in range(a_lo, a_hi):
            src = z[(a * s + j - p) * w:]
            d = du[a * w:]
            for c in range(w):
                acc += d[c] * src[c]
        g[j] += acc


# Dispatch between the two forms: the 3-tap form runs over a stack of gn planes, the general form over one
# plane (gn is 1 there).

@numba.njit(**_NJIT)
def _three_taps(geo):
    """Whether the passes take the flat 3-tap form (kernel 3, stride 1, padding 1), which stacks planes."""
    return geo.kh == 3 and geo.kw == 3 and geo.stride == 1 and geo.pad == 1


@numba.njit(**_NJIT)
def _hp(z, q, geo, gn, m, u, acc):
    if _three_taps(geo):
        h3(z, q[0], q[1], q[2], geo.w, gn * geo.h * geo.w, m[2], m[3], gn == 1, u, acc)
    else:
        hpass_g(z, q, geo.h, geo.w, geo.stride, geo.pad, geo.ho, u, acc)


@numba.njit(**_NJIT)
def _hp_t(du, q, geo, gn, m, dz, acc):
    if _three_taps(geo):
        h3(du, q[2], q[1], q[0], geo.w, gn * geo.h * geo.w, m[2], m[3], gn == 1, dz, acc)
    else:
        hpass_t_g(du, q, geo.h, geo.w, geo.stride, geo.pad, geo.ho, dz, acc)


@numba.njit(**_NJIT)
def _wp(u, t, geo, gn, m, y, acc, base):
    if _three_taps(geo):
        w3(u, t[0], t[1], t[2], gn * geo.ho * geo.w, m[0], m[1], y, acc, base)
    else:
        wpass_g(u, t, geo.ho, geo.w, geo.stride, geo.pad, geo.wo, y, acc, base)


@numba.njit(**_NJIT)
def _wp_t(dy, t, geo, gn, m, du, acc):
    if _three_taps(geo):
        w3(dy, t[2], t[1], t[0], gn * geo.ho * geo.w, m[0], m[1], du, acc, dy.dtype.type(0))
    else:
        wpass_t_g(dy, t, geo.ho, geo.w, geo.stride, geo.pad, geo.wo, du, acc)


@numba.njit(**_NJIT)
def _wp_t_cw(dy, u, t, geo, gn, m, du, g):
    """du = Wpass^T(dy, t) (overwritten) and g += corr(dy, u), the gradient of the W taps."""
    if _three_taps(geo):
        wt3c(dy, u, t, gn * geo.ho * geo.w, m[0], m[1], du, g)
    else:
        wpass_t_g(dy, t, geo.ho, geo.w, geo.stride, geo.pad, geo.wo, du, False)
        corr_w_g(dy, u, g.shape[0], geo.ho, geo.w, geo.stride, geo.pad, geo.wo, g)


@numba.njit(**_NJIT)
def _hp_t_ch(du, z, q, geo, gn, m, dz, g):
    """dz = Hpass^T(du, q) (overwritten) and g += corr(du, z), the gradient of the H taps."""
    if _three_taps(geo):
        ht3c(du, z, q, geo.w, gn * geo.h * geo.w, m[2], m[3], dz, g)
    else:
        hpass_t_g(du, q, geo.h, geo.w, geo.stride, geo.pad, geo.ho, dz, False)
        corr_h_g(du, z, g.shape[0], geo.h, geo.w, geo.stride, geo.pad, geo.ho, g)


# --------------------------------------------------------------------------------------------------------
# Groups of images: stacking planes, channel mixes
# --------------------------------------------------------------------------------------------------------

@numba.njit(**_NJIT)
def _group(geo):
    """Images per group: ``geo.group`` for the 3-tap form, one image otherwise."""
    return geo.group if _three_taps(geo) else 1


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
def _plane_in(a, n0, gn, o, buf):
    """Planes a[n0:n0+gn, o] as one vector: a view if gn == 1, else copied into buf."""
    if gn == 1:
        return a[n0, o]
    pp = a.shape[2]
    out = buf[:gn * pp]
    for gi in range(gn):
        src = a[n0 + gi, o]
        dst = out[gi * pp:]
        for i in range(pp):
            dst[i] = src[i]
    return out


@numba.njit(**_NJIT)
def _plane_out(buf, n0, gn, o, a):
    """Write back planes produced by :func:`_plane_in`'s layout (no-op for gn == 1, which wrote in place)."""
    if gn == 1:
        return
    pp = a.shape[2]
    for gi in range(gn):
        src = buf[gi * pp:]
        dst = a[n0 + gi, o]
        for i in range(pp):
            dst[i] = src[i]


@numba.njit(**_NJIT)
def _mat(buf, rows, cols):
    return buf[:rows * cols].reshape(rows, cols)


@numba.njit(**_NJIT)
def _mix(p2, xs, z, acc, tmp):
    """z (+)= p2 @ xs (xs (C, P)); ``tmp`` (same shape as z) is scratch for accumulating."""
    if xs.shape[0] == 1:
        for r in range(p2.shape[0]):
            pr = p2[r, 0]
            zr = z[r]
            src = xs[0]
            for i in range(xs.shape[1]):
                v = pr * src[i]
                zr[i] = zr[i] + v if acc else v
    elif acc:
        np.dot(p2, xs, tmp)
        for r in range(z.shape[0]):
            zr = z[r]
            tr = tmp[r]
            for i in range(z.shape[1]):
                zr[i] += tr[i]
    else:
        np.dot(p2, xs, z)


@numba.njit(**_NJIT)
def _mix_grad(dz, xs, g, tmp):
    """g (O*R, C) += dz (O*R, P) @ xs.T."""
    if xs.shape[0] == 1:
        src = xs[0]
        for r in range(dz.shape[0]):
            acc = dz.dtype.type(0)
            d = dz[r]
            for i in range(dz.shape[1]):
                acc += d[i] * src[i]
            g[r, 0] += acc
        return
    np.dot(dz, xs.T, tmp)
    for r in range(g.shape[0]):
        for c in range(g.shape[1]):
            g[r, c] += tmp[r, c]


@numba.njit(**_NJIT)
def _total(v):
    acc = v.dtype.type(0)
    for i in range(v.shape[0]):
        acc += v[i]
    return acc


# --------------------------------------------------------------------------------------------------------
# Max-pooling epilogue (2x2 windows, stride 2), for a convolution followed by a max pool
# --------------------------------------------------------------------------------------------------------
# With ``pool`` the kernels pool each output plane while it is in cache (and the backward passes scatter the
# pooled gradient into the plane they are about to read): the full-size output and its gradient are never
# stored. The choices are those of genbound._kernels.pool (first maximum in row order; with ``relu`` the ReLU
# before the pool too, index -1 where the maximum is not positive); tests/nn/test_fusion.py checks that the
# bits equal the per-layer rules'. (pool.py holds the stand-alone pooling kernels; these helpers live here
# because numba's cache only notices changes to a kernel's own file.)


@numba.njit(**_NJIT)
def _pool_planes(src, gn, h, w, relu, n0, o, y, idx):
    """Max-pool each of the gn planes (h x w, row-major) stacked in ``src`` over 2x2 windows at stride 2 into
    y[n0 + gi, o] ((h // 2) x (w // 2)), with the flat index (into h*w) of each window's first maximum in
    idx[n0 + gi, o]; with ``relu``, y = max(maximum, 0) and index -1 where the maximum is not positive.

    One loop over all windows of the stack, compare-and-select without branches, flat unsigned offsets
    advanced by counters: views per row or plane cost more than the window itself on 4x4 planes."""
    zero = src.dtype.type(0)
    none = np.int32(-1)
    hp, wp = h // 2, w // 2
    n_out, pp = y.shape[1], y.shape[2]
    yf = y.reshape(y.size)
    idf = idx.reshape(idx.size)
    one, uw = np.uint64(1), np.uint64(w)
    right1, down0, down1 = np.int32(1), np.int32(w), np.int32(w + 1)
    s = np.uint64(0)  # offset in src of the window's first value
    d = np.uint64((n0 * n_out + o) * pp)  # offset in y (and idx) of the window's maximum
    rel = np.int32(0)  # index of the window's first value within its plane
    row_end = np.uint64(2 * w - 2 * wp)  # to the next window row: the rest of the row and the row below
    plane_end = np.uint64((h - 2 * hp) * w)  # an odd last row
    next_image = np.uint64((n_out - 1) * pp)
    b = 0
    a = 0
    for _ in range(gn * hp * wp):
        v0, v1, v2, v3 = src[s], src[s + one], src[s + uw], src[s + uw + one]
        right = v1 > v0
        upper = v1 if right else v0
        upper_at = right1 if right else np.int32(0)
        right = v3 > v2
        lower = v3 if right else v2
        lower_at = down1 if right else down0
        down = lower > upper
        best = lower if down else upper
        at = rel + (lower_at if down else upper_at)
        if relu:
            positive = best > zero
            best = best if positive else zero
            at = at if positive else none
        yf[d] = best
        idf[d] = at
        d += one
        s += np.uint64(2)
        rel += np.int32(2)
        b += 1
        if b == wp:
            b = 0
            s += row_end
            rel += np.int32(row_end)
            a += 1
            if a == hp:
                a = 0
                s += plane_end
                rel = np.int32(0)
                d += next_image


@numba.njit(**_NJIT)
def _gather_planes(src, gn, hw, idx, n0, o, ry):
    """ry[n0 + gi, o] = plane gi of ``src`` (hw values each) at the indices idx[n0 + gi, o] (0 for -1): the
    tangent of max pooling."""
    zero = src.dtype.type(0)
    for gi in range(gn):
        plane = src[gi * hw:]
        r = ry[n0 + gi, o]
        io = idx[n0 + gi, o]
        for i in range(r.shape[0]):
            j = io[i]
            found = j >= 0
            v = plane[np.uint64(j if found else 0)]
            r[i] = v if found else zero


@numba.njit(**_NJIT)
def _unpool_planes(dy, idx, n0, gn, o, hw, buf):
    """The stack of gn planes (hw values each) that is zero but at the indices idx[n0 + gi, o], which receive
    dy[n0 + gi, o] (none for -1): the adjoint of :func:`_gather_planes`, written into ``buf``."""
    out = buf[:gn * hw]
    zero = buf.dtype.type(0)
    for i in range(gn * hw):
        out[i] = zero
    for gi in range(gn):
        plane = out[gi * hw:]
        d = dy[n0 + gi, o]
        io = idx[n0 + gi, o]
        for i in range(d.shape[0]):
            j = io[i]
            if j >= 0:
                plane[np.uint64(j)] = d[i]
    return out


# --------------------------------------------------------------------------------------------------------
# Kernels
# --------------------------------------------------------------------------------------------------------

@numba.njit(**_NJIT)
def cp_forward(x, factors, bias, geo, pool, relu, c_lo, c_hi, y, idx):
    """y[n, o] = bias[o] + sum_r Wpass(Hpass(z[o*R + r], q[o, r]), t[o, r]) with z = p2 @ x[n]; with ``pool``,
    y is that max-pooled (after a ReLU with ``relu``) and idx its argmaxes (see :func:`_pool_planes`)."""
    p2, q, t = factors
    n_img, c, hw = x.shape
    n_out, rank, _ = q.shape
    ho, wo, nch, group = geo.ho, geo.wo, geo.chunks, _group(geo)
    m = stack_masks(group, geo.h, geo.w, x)
    n_or = n_out * rank
    xb = np.empty(c * group * hw, dtype=x.dtype)
    zb = np.empty(n_or * group * hw, dtype=x.dtype)
    ub = np.empty(group * ho * geo.w, dtype=x.dtype)
    yb = np.empty(group * ho * wo, dtype=x.dtype)
    for ci in range(c_lo, c_hi):
        n0, n1 = ci * n_img // nch, (ci + 1) * n_img // nch
        while n0 < n1:
            gn = min(group, n1 - n0)
            xs = _stack(x, n0, gn, xb)
            zs = _mat(zb, n_or, gn * hw)
            _mix(p2, xs, zs, False, zs)
            for o in range(n_out):
                out = y[n0, o] if gn == 1 and not pool else yb
                for r in range(rank):
                    _hp(zs[o * rank + r], q[o, r], geo, gn, m, ub, False)
                    _wp(ub, t[o, r], geo, gn, m, out, r > 0, bias[o])
                if pool:
                    _pool_planes(out, gn, ho, wo, relu, n0, o, y, idx)
                else:
                    _plane_out(out, n0, gn, o, y)
            n0 += gn


@numba.njit(**_NJIT)
def cp_jvp(x, rx, has_rx, factors, tangents, vb, geo, pool, relu, c_lo, c_hi, ry, need_y, bias, y, idx):
    """Tangent of :func:`cp_forward` along the input tangent rx (if ``has_rx``) and the parameter tangents
    (``tangents`` = (vp2, vq, vt), and vb): with z = P x, zt = V_p x + P rx, u = Hpass(z, q),
    ut = Hpass(zt, q) + Hpass(z, v_q), ry = v_b + sum_r Wpass(ut, t) + Wpass(u, v_t). With ``need_y`` also
    y = bias + sum_r Wpass(u, t), the output of :func:`cp_forward` (the same bits: z and u are at hand).
    With ``pool``, ry is gathered at the argmaxes idx, which :func:`cp_forward`'s pooling gives (with
    ``need_y``, y and idx are written here, as it would)."""
    p2, q, t = factors
    vp2, vq, vt = tangents
    n_img, c, hw = x.shape
    n_out, rank, _ = q.shape
    ho, wo, nch, group = geo.ho, geo.wo, geo.chunks, _group(geo)
    m = stack_masks(group, geo.h, geo.w, x)
    n_or = n_out * rank
    xb = np.empty(c * group * hw, dtype=x.dtype)
    rxb = np.empty(c * group * hw, dtype=x.dtype)
    zb = np.empty(n_or * group * hw, dtype=x.dtype)
    ztb = np.empty(n_or * group * hw, dtype=x.dtype)
    tmpb = np.empty(n_or * group * hw, dtype=x.dtype)
    ub = np.empty(group * ho * geo.w, dtype=x.dtype)
    utb = np.empty(group * ho * geo.w, dtype=x.dtype)
    yb = np.empty(group * ho * wo, dtype=x.dtype)
    ypb = np.empty(group * ho * wo, dtype=x.dtype)
    for ci in range(c_lo, c_hi):
        n0, n1 = ci * n_img // nch, (ci + 1) * n_img // nch
        while n0 < n1:
            gn = min(group, n1 - n0)
            xs = _stack(x, n0, gn, xb)
            zs = _mat(zb, n_or, gn * hw)
            zts = _mat(ztb, n_or, gn * hw)
            _mix(p2, xs, zs, False, zs)
            _mix(vp2, xs, zts, False, zts)
            if has_rx:
                _mix(p2, _stack(rx, n0, gn, rxb), zts, True, _mat(tmpb, n_or, gn * hw))
            for o in range(n_out):
                out = ry[n0, o] if gn == 1 and not pool else yb
                yo = y[n0, o] if gn == 1 and need_y and not pool else ypb
                for r in range(rank):
                    i = o * rank + r
                    _hp(zs[i], q[o, r], geo, gn, m, ub, False)
                    if need_y:
                        _wp(ub, t[o, r], geo, gn, m, yo, r > 0, bias[o])
                    _hp(zts[i], q[o, r], geo, gn, m, utb, False)
                    _hp(zs[i], vq[o, r], geo, gn, m, utb, True)
                    _wp(utb, t[o, r], geo, gn, m, out, r > 0, vb[o])
                    _wp(ub, vt[o, r], geo, gn, m, out, True, vb[o])
                if pool:
                    if need_y:
                        _pool_planes(yo, gn, ho, wo, relu, n0, o, y, idx)
                    _gather_planes(out, gn, ho * wo, idx, n0, o, ry)
                else:
                    if need_y:
                        _plane_out(yo, n0, gn, o, y)
                    _plane_out(out, n0, gn, o, ry)
            n0 += gn


@numba.njit(**_NJIT)
def cp_backward(x, dy, idx, factors, geo, pool, c_lo, c_hi, need_dx, acc, dx):
    """Adjoint of :func:`cp_forward`: adds each chunk's gradients into ``acc`` = (gp_c, gq_c, gt_c, gb_c) at
    [ci] and, if ``need_dx``, writes dx (N, C, H*W) for the chunks' images. With ``pool``, dy is the gradient
    of the pooled output, with argmaxes idx."""
    p2, q, t = factors
    gp_c, gq_c, gt_c, gb_c = acc
    n_img, c, hw = x.shape
    n_out, rank, _ = q.shape
    ho, wo, nch, group = geo.ho, geo.wo, geo.chunks, _group(geo)
    m = stack_masks(group, geo.h, geo.w, x)
    n_or = n_out * rank
    xb = np.empty(c * group * hw, dtype=x.dtype)
    zb = np.empty(n_or * group * hw, dtype=x.dtype)
    dzb = np.empty(n_or * group * hw, dtype=x.dtype)
    dxb = np.empty(c * group * hw, dtype=x.dtype)
    tmp = np.empty((n_or, c), dtype=x.dtype)
    ub = np.empty(group * ho * geo.w, dtype=x.dtype)
    dub = np.empty(group * ho * geo.w, dtype=x.dtype)
    dyb = np.empty(group * ho * wo, dtype=x.dtype)
    for ci in range(c_lo, c_hi):
        n0, n1 = ci * n_img // nch, (ci + 1) * n_img // nch
        while n0 < n1:
            gn = min(group, n1 - n0)
            xs = _stack(x, n0, gn, xb)
            zs = _mat(zb, n_or, gn * hw)
            dzs = _mat(dzb, n_or, gn * hw)
            _mix(p2, xs, zs, False, zs)
            for o in range(n_out):
                dyo = _unpool_planes(dy, idx, n0, gn, o, ho * wo, dyb) if pool else _plane_in(dy, n0, gn, o, dyb)
                gb_c[ci, o] += _total(dyo)
                for r in range(rank):
                    i = o * rank + r
                    _hp(zs[i], q[o, r], geo, gn, m, ub, False)
                    _wp_t_cw(dyo, ub, t[o, r], geo, gn, m, dub, gt_c[ci, o, r])
                    _hp_t_ch(dub, zs[i], q[o, r], geo, gn, m, dzs[i], gq_c[ci, o, r])
            _mix_grad(dzs, xs, gp_c[ci], tmp)
            if need_dx:
                if gn == 1:
                    np.dot(p2.T, dzs, dx[n0])
                else:
                    dxs = _mat(dxb, c, gn * hw)
                    np.dot(p2.T, dzs, dxs)
                    _unstack(dxs, n0, gn, dx)
            n0 += gn


@numba.njit(**_NJIT)
def cp_backward_jvp(x, rx, has_rx, dy, rdy, idx, factors, tangents, geo, pool, c_lo, c_hi, need_dx, acc, rdx,
                    dx):
    """Tangent of :func:`cp_backward` (given dy, its tangent rdy, rx and the parameter tangents): adds the
    tangents of the factor gradients into ``acc`` (per chunk) and, if ``need_dx``, writes the tangent rdx of
    dx and dx itself (= P^T dz, the same bits as :func:`cp_backward`: dz is computed here anyway). With
    ``pool``, dy and rdy are those of the pooled output, with argmaxes idx.

    With du = Wpass^T(dy, t), R{du} = Wpass^T(rdy, t) + Wpass^T(dy, v_t), dz = Hpass^T(du, q),
    R{dz} = Hpass^T(R{du}, q) + Hpass^T(du, v_q): R{gt} = corr(rdy, u) + corr(dy, ut),
    R{gq} = corr(R{du}, z) + corr(du, zt), R{gp} = R{dz} x^T + dz rx^T, R{dx} = P^T R{dz} + V_p^T dz.
    """
    p2, q, t = factors
    vp2, vq, vt = tangents
    gp_c, gq_c, gt_c, gb_c = acc
    n_img, c, hw = x.shape
    n_out, rank, _ = q.shape
    ho, wo, nch, group = geo.ho, geo.wo, geo.chunks, _group(geo)
    m = stack_masks(group, geo.h, geo.w, x)
    n_or = n_out * rank
    xb = np.empty(c * group * hw, dtype=x.dtype)
    rxb = np.empty(c * group * hw, dtype=x.dtype)
    zb = np.empty(n_or * group * hw, dtype=x.dtype)
    ztb = np.empty(n_or * group * hw, dtype=x.dtype)
    dzb = np.empty(n_or * group * hw, dtype=x.dtype)
    rdzb = np.empty(n_or * group * hw, dtype=x.dtype)
    tmpb = np.empty(n_or * group * hw, dtype=x.dtype)
    dxb = np.empty(c * group * hw, dtype=x.dtype)
    dxb2 = np.empty(c * group * hw, dtype=x.dtype)
    tmp = np.empty((n_or, c), dtype=x.dtype)
    ub = np.empty(group * ho * geo.w, dtype=x.dtype)
    utb = np.empty(group * ho * geo.w, dtype=x.dtype)
    dub = np.empty(group * ho * geo.w, dtype=x.dtype)
    rdub = np.empty(group * ho * geo.w, dtype=x.dtype)
    dyb = np.empty(group * ho * wo, dtype=x.dtype)
    rdyb = np.empty(group * ho * wo, dtype=x.dtype)
    for ci in range(c_lo, c_hi):
        n0, n1 = ci * n_img // nch, (ci + 1) * n_img // nch
        while n0 < n1:
            gn = min(group, n1 - n0)
            xs = _stack(x, n0, gn, xb)
            rxs = _stack(rx, n0, gn, rxb) if has_rx else xs
            zs = _mat(zb, n_or, gn * hw)
            zts = _mat(ztb, n_or, gn * hw)
            dzs = _mat(dzb, n_or, gn * hw)
            rdzs = _mat(rdzb, n_or, gn * hw)
            _mix(p2, xs, zs, False, zs)
            _mix(vp2, xs, zts, False, zts)
            if has_rx:
                _mix(p2, rxs, zts, True, _mat(tmpb, n_or, gn * hw))
            for o in range(n_out):
                if pool:
                    dyo = _unpool_planes(dy, idx, n0, gn, o, ho * wo, dyb)
                    rdyo = _unpool_planes(rdy, idx, n0, gn, o, ho * wo, rdyb)
                else:
                    dyo = _plane_in(dy, n0, gn, o, dyb)
                    rdyo = _plane_in(rdy, n0, gn, o, rdyb)
                gb_c[ci, o] += _total(rdyo)
                for r in range(rank):
                    i = o * rank + r
                    _hp(zs[i], q[o, r], geo, gn, m, ub, False)
                    _hp(zts[i], q[o, r], geo, gn, m, utb, False)
                    _hp(zs[i], vq[o, r], geo, gn, m, utb, True)
                    # du and R{du}, with R{gt} = corr(dy, ut) + corr(rdy, u)
                    _wp_t_cw(dyo, utb, t[o, r], geo, gn, m, dub, gt_c[ci, o, r])
                    _wp_t_cw(rdyo, ub, t[o, r], geo, gn, m, rdub, gt_c[ci, o, r])
                    _wp_t(dyo, vt[o, r], geo, gn, m, rdub, True)
                    # dz and R{dz}, with R{gq} = corr(du, zt) + corr(R{du}, z)
                    _hp_t_ch(dub, zts[i], q[o, r], geo, gn, m, dzs[i], gq_c[ci, o, r])
                    _hp_t_ch(rdub, zs[i], q[o, r], geo, gn, m, rdzs[i], gq_c[ci, o, r])
                    _hp_t(dub, vq[o, r], geo, gn, m, rdzs[i], True)
            _mix_grad(rdzs, xs, gp_c[ci], tmp)
            if has_rx:
                _mix_grad(dzs, rxs, gp_c[ci], tmp)
            if need_dx:
                dxs = _mat(dxb, c, gn * hw)
                dxs2 = _mat(dxb2, c, gn * hw)
                np.dot(p2.T, rdzs, dxs)
                np.dot(vp2.T, dzs, dxs2)
                for cc in range(c):
                    for k in range(gn * hw):
                        dxs[cc, k] += dxs2[cc, k]
                _unstack(dxs, n0, gn, rdx)
                np.dot(p2.T, dzs, dxs2)
                _unstack(dxs2, n0, gn, dx)
            n0 += gn
