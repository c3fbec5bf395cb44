"""Rank-R CP convolution, fused per image: forward, backward and their tangents.

A CP filter W[o] = sum_r p[o,r] (x) q[o,r] (x) t[o,r] is applied to one image as: the channel mix
Z = P x (P of shape (O*R, C), one small BLAS product), a 1-D pass along H with q (giving U), then a 1-D pass
along W with t, summed over r. Each kernel handles a whole image at a time, so that Z, U and their
adjoints stay in cache: the backward recomputes Z and U instead of storing them for the whole batch
(recomputing costs less than writing and reading them back).

Parallel layout: the batch is cut into ``nch`` chunks (a number fixed by the caller, never the thread
count); chunks run in parallel, each with its own accumulators of the factor gradients, which are summed
in chunk order at the end. BLAS must be single-threaded while these kernels run (the layers see to it).
Results are therefore bit-for-bit the same whatever the number of threads.

Shapes: x (N, C, H*W), dy and y (N, O, Ho*Wo), p2 (O*R, C), q (O, R, kh), t (O, R, kw), bias (O,).
"""
import numba
import numpy as np

_PAR = dict(cache=True, nogil=True, parallel=True, fastmath={"reassoc", "contract"})
_SER = dict(cache=True, nogil=True, fastmath={"reassoc", "contract"})


# --------------------------------------------------------------------------------------------------------
# 1-D passes over image planes
# --------------------------------------------------------------------------------------------------------
# Planes are flat, row-major vectors. With a plane z of h rows and w columns, the pass along H with taps q
# (stride s, zero padding p) gives u of ho rows and w columns, u[a, c] = sum_j q[j] z[a*s + j - p, c]; the
# pass along W with taps t gives y of ho rows and wo columns, y[a, b] = sum_k t[k] u[a, b*s + k - p]. Each
# pass has its adjoint (*_t) and the correlation giving the gradient of its taps (corr_*). The common case
# (3 taps, stride 1, padding 1) runs as flat loops over whole planes, which vectorize even for short rows;
# row ends are handled by the masks of row_masks (1 where the left or right neighbour lies in the same row).
# Every pass takes ``acc``: add into the output instead of overwriting it. (The helpers live in this file
# because numba's cache only notices changes to the file of the kernel itself.)


@numba.njit(**_SER)
def row_masks(ho, w, dtype_like):
    """Masks (ml, mr) over a plane of ``ho`` rows and ``w`` columns: ml = [b > 0], mr = [b < w - 1]."""
    ml = np.empty(ho * w, dtype=dtype_like.dtype)
    mr = np.empty(ho * w, dtype=dtype_like.dtype)
    for a in range(ho):
        for b in range(w):
            ml[a * w + b] = 1.0 if b > 0 else 0.0
            mr[a * w + b] = 1.0 if b < w - 1 else 0.0
    return ml, mr


@numba.njit(**_SER)
def hpass(z, q, rev, h, w, s, p, ho, u, acc):
    """u (+)= pass of z along H with taps q (in the fast path, ``rev`` reverses the taps: the adjoint)."""
    if q.shape[0] == 3 and s == 1 and p == 1:
        q0, q1, q2 = (q[2], q[1], q[0]) if rev else (q[0], q[1], q[2])
        n = h * w
        if h == 1:
            for i in range(n):
                v = q1 * z[i]
                u[i] = u[i] + v if acc else v
            return
        # shifted views keep every index a plain loop counter, so the loops vectorize
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
    kh = q.shape[0]
    if not acc:
        for i in range(ho * w):
            u[i] = 0.0
    for a in range(ho):
        for j in range(kh):
            hi = a * s + j - p
            if hi < 0 or hi >= h:
                continue
            qj = q[j]
            for c in range(w):
                u[a * w + c] += qj * z[hi * w + c]


@numba.njit(**_SER)
def hpass_t(du, q, h, w, s, p, ho, dz, acc):
    """Adjoint of :func:`hpass`: dz (h rows) (+)= H-pass transposed applied to du (ho rows)."""
    if q.shape[0] == 3 and s == 1 and p == 1:
        hpass(du, q, True, h, w, s, p, ho, dz, acc)
        return
    kh = q.shape[0]
    if not acc:
        for i in range(h * w):
            dz[i] = 0.0
    for a in range(ho):
        for j in range(kh):
            hi = a * s + j - p
            if hi < 0 or hi >= h:
                continue
            qj = q[j]
            for c in range(w):
                dz[hi * w + c] += qj * du[a * w + c]


@numba.njit(**_SER)
def wpass(u, t, rev, ho, w, s, p, wo, ml, mr, y, acc, base):
    """y (+)= pass of u along W with taps t (``rev``: reversed taps in the fast path, the adjoint);
    ``base`` is added when not ``acc``."""
    if t.shape[0] == 3 and s == 1 and p == 1:
        t0, t1, t2 = (t[2], t[1], t[0]) if rev else (t[0], t[1], t[2])
        n = ho * w
        if w == 1:
            for i in range(n):
                v = t1 * u[i]
                y[i] = y[i] + v if acc else v + base
            return
        v = t1 * u[0] + t2 * u[1]
        y[0] = y[0] + v if acc else v + base
        u1 = u[1:]
        u2 = u[2:]
        y1 = y[1:]
        ml1 = ml[1:]
        mr1 = mr[1:]
        for i in range(n - 2):
            v = t0 * (ml1[i] * u[i]) + t1 * u1[i] + t2 * (mr1[i] * u2[i])
            y1[i] = y1[i] + v if acc else v + base
        v = t0 * u[n - 2] + t1 * u[n - 1]
        y[n - 1] = y[n - 1] + v if acc else v + base
        return
    kw = t.shape[0]
    if not acc:
        for i in range(ho * wo):
            y[i] = base
    for k in range(kw):
        tk = t[k]
        b_lo = 0
        if k < p:
            b_lo = (p - k + s - 1) // s
        b_hi = (w - 1 - k + p) // s + 1
        if b_hi > wo:
            b_hi = wo
        for a in range(ho):
            for b in range(b_lo, b_hi):
                y[a * wo + b] += tk * u[a * w + b * s + k - p]


@numba.njit(**_SER)
def wpass_t(dy, t, ho, w, s, p, wo, ml, mr, du, acc):
    """Adjoint of :func:`wpass`: du (ho rows, w columns) (+)= W-pass transposed applied to dy."""
    if t.shape[0] == 3 and s == 1 and p == 1:
        wpass(dy, t, True, ho, w, s, p, wo, ml, mr, du, acc, dy.dtype.type(0))
        return
    kw = t.shape[0]
    if not acc:
        for i in range(ho * w):
            du[i] = 0.0
    for k in range(kw):
        tk = t[k]
        b_lo = 0
        if k < p:
            b_lo = (p - k + s - 1) // s
        b_hi = (w - 1 - k + p) // s + 1
        if b_hi > wo:
            b_hi = wo
        for a in range(ho):
            for b in range(b_lo, b_hi):
                du[a * w + b * s + k - p] += tk * dy[a * wo + b]


@numba.njit(**_SER)
def corr_w(dy, u, kw, ho, w, s, p, wo, ml, mr, g):
    """g[k] += sum_{a,b} dy[a, b] u[a, b*s + k - p] (the gradient of the W-pass taps)."""
    zero = dy.dtype.type(0)
    if kw == 3 and s == 1 and p == 1:
        n = ho * w
        if w == 1:
            s1 = zero
            for i in range(n):
                s1 += dy[i] * u[i]
            g[1] += s1
            return
        s0 = zero
        s1 = dy[0] * u[0]
        s2 = dy[0] * u[1]
        dy1 = dy[1:]
        u1 = u[1:]
        u2 = u[2:]
        ml1 = ml[1:]
        mr1 = mr[1:]
        for i in range(n - 2):
            d = dy1[i]
            s0 += d * (ml1[i] * u[i])
            s1 += d * u1[i]
            s2 += d * (mr1[i] * u2[i])
        s0 += dy[n - 1] * u[n - 2]
        s1 += dy[n - 1] * u[n - 1]
        g[0] += s0
        g[1] += s1
        g[2] += s2
        return
    for k in range(kw):
        b_lo = 0
        if k < p:
            b_lo = (p - k + s - 1) // s
        b_hi = (w - 1 - k + p) // s + 1
        if b_hi > wo:
            b_hi = wo
        acc = zero
        for a in range(ho):
            for b in range(b_lo, b_hi):
                acc += dy[a * wo + b] * u[a * w + b * s + k - p]
        g[k] += acc


@numba.njit(**_SER)
def corr_h(du, z, kh, h, w, s, p, ho, g):
    """g[j] += sum_{a,c} du[a, c] z[a*s + j - p, c] (the gradient of the H-pass taps)."""
    zero = du.dtype.type(0)
    if kh == 3 and s == 1 and p == 1:
        n = h * w
        s0 = zero
        s1 = zero
        s2 = zero
        du1 = du[w:]
        z1 = z[w:]
        for i in range(n - w):
            s0 += du1[i] * z[i]
            s2 += du[i] * z1[i]
        for i in range(n):
            s1 += du[i] * z[i]
        g[0] += s0
        g[1] += s1
        g[2] += s2
        return
    for j in range(kh):
        acc = zero
        for a in range(ho):
            hi = a * s + j - p
            if hi < 0 or hi >= h:
                continue
            for c in range(w):
                acc += du[a * w + c] * z[hi * w + c]
        g[j] += acc


# --------------------------------------------------------------------------------------------------------
# Kernels
# --------------------------------------------------------------------------------------------------------


@numba.njit(**_SER)
def _mix(p2, xn, z, acc, tmp):
    """z (+)= p2 @ xn (xn (C, P)); ``tmp`` (same shape as z) is scratch for accumulating."""
    if xn.shape[0] == 1:
        for r in range(p2.shape[0]):
            pr = p2[r, 0]
            for i in range(xn.shape[1]):
                v = pr * xn[0, i]
                z[r, i] = z[r, i] + v if acc else v
    elif acc:
        np.dot(p2, xn, tmp)
        for r in range(z.shape[0]):
            for i in range(z.shape[1]):
                z[r, i] += tmp[r, i]
    else:
        np.dot(p2, xn, z)


@numba.njit(**_SER)
def _mix_grad(dz, xn, g, tmp):
    """g (O*R, C) += dz (O*R, P) @ xn.T."""
    if xn.shape[0] == 1:
        zero = dz.dtype.type(0)
        for r in range(dz.shape[0]):
            acc = zero
            for i in range(dz.shape[1]):
                acc += dz[r, i] * xn[0, i]
            g[r, 0] += acc
        return
    np.dot(dz, xn.T, tmp)
    for r in range(g.shape[0]):
        for c in range(g.shape[1]):
            g[r, c] += tmp[r, c]


@numba.njit(**_SER)
def _plane_sum(v):
    acc = v.dtype.type(0)
    for i in range(v.shape[0]):
        acc += v[i]
    return acc


@numba.njit(**_PAR)
def cp_forward(x, p2, q, t, bias, h, w, s, pad, ho, wo, nch, y):
    """y[n, o] = bias[o] + sum_r Wpass(Hpass(z[o*R + r], q[o, r]), t[o, r]) with z = p2 @ x[n]."""
    n_img, c, hw = x.shape
    n_out, rank, _ = q.shape
    ml, mr = row_masks(ho, w, x)
    for ci in numba.prange(nch):
        zb = np.empty((n_out * rank, hw), dtype=x.dtype)
        ub = np.empty(ho * w, dtype=x.dtype)
        for n in range(ci * n_img // nch, (ci + 1) * n_img // nch):
            _mix(p2, x[n], zb, False, zb)
            for o in range(n_out):
                for r in range(rank):
                    hpass(zb[o * rank + r], q[o, r], False, h, w, s, pad, ho, ub, False)
                    wpass(ub, t[o, r], False, ho, w, s, pad, wo, ml, mr, y[n, o], r > 0, bias[o])


@numba.njit(**_PAR)
def cp_jvp(x, rx, has_rx, p2, vp2, q, vq, t, vt, vb, h, w, s, pad, ho, wo, nch, ry):
    """Tangent of :func:`cp_forward` along the input tangent rx (if ``has_rx``) and the parameter tangents
    (vp2, vq, vt, vb): with z = P x, zt = V_p x + P rx, u = Hpass(z, q), ut = Hpass(zt, q) + Hpass(z, v_q),
    ry = v_b + sum_r Wpass(ut, t) + Wpass(u, v_t)."""
    n_img, c, hw = x.shape
    n_out, rank, _ = q.shape
    ml, mr = row_masks(ho, w, x)
    for ci in numba.prange(nch):
        zb = np.empty((n_out * rank, hw), dtype=x.dtype)
        ztb = np.empty((n_out * rank, hw), dtype=x.dtype)
        tmp = np.empty((n_out * rank, hw), dtype=x.dtype)
        ub = np.empty(ho * w, dtype=x.dtype)
        utb = np.empty(ho * w, dtype=x.dtype)
        for n in range(ci * n_img // nch, (ci + 1) * n_img // nch):
            _mix(p2, x[n], zb, False, tmp)
            _mix(vp2, x[n], ztb, False, tmp)
            if has_rx:
                _mix(p2, rx[n], ztb, True, tmp)
            for o in range(n_out):
                for r in range(rank):
                    i = o * rank + r
                    hpass(zb[i], q[o, r], False, h, w, s, pad, ho, ub, False)
                    hpass(ztb[i], q[o, r], False, h, w, s, pad, ho, utb, False)
                    hpass(zb[i], vq[o, r], False, h, w, s, pad, ho, utb, True)
                    wpass(utb, t[o, r], False, ho, w, s, pad, wo, ml, mr, ry[n, o], r > 0, vb[o])
                    wpass(ub, vt[o, r], False, ho, w, s, pad, wo, ml, mr, ry[n, o], True, vb[o])


@numba.njit(**_PAR)
def cp_backward(x, dy, p2, q, t, h, w, s, pad, nch, need_dx, gp, gq, gt, gb, dx):
    """Adjoint of :func:`cp_forward`: gradients gp (O*R, C), gq, gt, gb and, if ``need_dx``, dx (N, C, H*W);
    all outputs are overwritten."""
    n_img, c, hw = x.shape
    n_out, rank, kh = q.shape
    kw = t.shape[2]
    ho = (h + 2 * pad - kh) // s + 1
    wo = dy.shape[2] // ho
    ml, mr = row_masks(ho, w, x)
    n_or = n_out * rank
    gp_c = np.zeros((nch, n_or, c), dtype=x.dtype)
    gq_c = np.zeros((nch, n_out, rank, kh), dtype=x.dtype)
    gt_c = np.zeros((nch, n_out, rank, kw), dtype=x.dtype)
    gb_c = np.zeros((nch, n_out), dtype=x.dtype)
    for ci in numba.prange(nch):
        zb = np.empty((n_or, hw), dtype=x.dtype)
        dzb = np.empty((n_or, hw), dtype=x.dtype)
        tmp = np.empty((n_or, c), dtype=x.dtype)
        ub = np.empty(ho * w, dtype=x.dtype)
        dub = np.empty(ho * w, dtype=x.dtype)
        for n in range(ci * n_img // nch, (ci + 1) * n_img // nch):
            _mix(p2, x[n], zb, False, zb)
            for o in range(n_out):
                dyo = dy[n, o]
                gb_c[ci, o] += _plane_sum(dyo)
                for r in range(rank):
                    i = o * rank + r
                    hpass(zb[i], q[o, r], False, h, w, s, pad, ho, ub, False)
                    corr_w(dyo, ub, kw, ho, w, s, pad, wo, ml, mr, gt_c[ci, o, r])
                    wpass_t(dyo, t[o, r], ho, w, s, pad, wo, ml, mr, dub, False)
                    corr_h(dub, zb[i], kh, h, w, s, pad, ho, gq_c[ci, o, r])
                    hpass_t(dub, q[o, r], h, w, s, pad, ho, dzb[i], False)
            _mix_grad(dzb, x[n], gp_c[ci], tmp)
            if need_dx:
                np.dot(p2.T, dzb, dx[n])
    _reduce(gp_c, gq_c, gt_c, gb_c, gp, gq, gt, gb)


@numba.njit(**_PAR)
def cp_backward_jvp(x, rx, has_rx, dy, rdy, p2, vp2, q, vq, t, vt, h, w, s, pad, nch, need_dx,
                    rgp, rgq, rgt, rgb, rdx):
    """Tangent of :func:`cp_backward` (given dy, its tangent rdy, rx and the parameter tangents): the
    tangents of the factor gradients rgp, rgq, rgt, rgb and, if ``need_dx``, of dx; outputs overwritten."""
    n_img, c, hw = x.shape
    n_out, rank, kh = q.shape
    kw = t.shape[2]
    ho = (h + 2 * pad - kh) // s + 1
    wo = dy.shape[2] // ho
    ml, mr = row_masks(ho, w, x)
    n_or = n_out * rank
    gp_c = np.zeros((nch, n_or, c), dtype=x.dtype)
    gq_c = np.zeros((nch, n_out, rank, kh), dtype=x.dtype)
    gt_c = np.zeros((nch, n_out, rank, kw), dtype=x.dtype)
    gb_c = np.zeros((nch, n_out), dtype=x.dtype)
    for ci in numba.prange(nch):
        zb = np.empty((n_or, hw), dtype=x.dtype)
        ztb = np.empty((n_or, hw), dtype=x.dtype)
        dzb = np.empty((n_or, hw), dtype=x.dtype)
        rdzb = np.empty((n_or, hw), dtype=x.dtype)
        tmpz = np.empty((n_or, hw), dtype=x.dtype)
        tmp = np.empty((n_or, c), dtype=x.dtype)
        tmpx = np.empty((c, hw), dtype=x.dtype)
        ub = np.empty(ho * w, dtype=x.dtype)
        utb = np.empty(ho * w, dtype=x.dtype)
        dub = np.empty(ho * w, dtype=x.dtype)
        rdub = np.empty(ho * w, dtype=x.dtype)
        for n in range(ci * n_img // nch, (ci + 1) * n_img // nch):
            _mix(p2, x[n], zb, False, tmpz)
            _mix(vp2, x[n], ztb, False, tmpz)
            if has_rx:
                _mix(p2, rx[n], ztb, True, tmpz)
            for o in range(n_out):
                dyo = dy[n, o]
                rdyo = rdy[n, o]
                gb_c[ci, o] += _plane_sum(rdyo)
                for r in range(rank):
                    i = o * rank + r
                    # u, ut = R{u}
                    hpass(zb[i], q[o, r], False, h, w, s, pad, ho, ub, False)
                    hpass(ztb[i], q[o, r], False, h, w, s, pad, ho, utb, False)
                    hpass(zb[i], vq[o, r], False, h, w, s, pad, ho, utb, True)
                    # du, rdu = R{du}
                    wpass_t(dyo, t[o, r], ho, w, s, pad, wo, ml, mr, dub, False)
                    wpass_t(rdyo, t[o, r], ho, w, s, pad, wo, ml, mr, rdub, False)
                    wpass_t(dyo, vt[o, r], ho, w, s, pad, wo, ml, mr, rdub, True)
                    # R{gt}, R{gq}
                    corr_w(rdyo, ub, kw, ho, w, s, pad, wo, ml, mr, gt_c[ci, o, r])
                    corr_w(dyo, utb, kw, ho, w, s, pad, wo, ml, mr, gt_c[ci, o, r])
                    corr_h(rdub, zb[i], kh, h, w, s, pad, ho, gq_c[ci, o, r])
                    corr_h(dub, ztb[i], kh, h, w, s, pad, ho, gq_c[ci, o, r])
                    # dz, rdz = R{dz}
                    hpass_t(dub, q[o, r], h, w, s, pad, ho, dzb[i], False)
                    hpass_t(rdub, q[o, r], h, w, s, pad, ho, rdzb[i], False)
                    hpass_t(dub, vq[o, r], h, w, s, pad, ho, rdzb[i], True)
            _mix_grad(rdzb, x[n], gp_c[ci], tmp)
            if has_rx:
                _mix_grad(dzb, rx[n], gp_c[ci], tmp)
            if need_dx:
                np.dot(p2.T, rdzb, rdx[n])
                np.dot(vp2.T, dzb, tmpx)
                for cc in range(c):
                    for k in range(hw):
                        rdx[n, cc, k] += tmpx[cc, k]
    _reduce(gp_c, gq_c, gt_c, gb_c, rgp, rgq, rgt, rgb)


@numba.njit(**_SER)
def _reduce(gp_c, gq_c, gt_c, gb_c, gp, gq, gt, gb):
    """Sum the per-chunk accumulators in chunk order (outputs overwritten)."""
    gp[...] = gp_c[0]
    gq[...] = gq_c[0]
    gt[...] = gt_c[0]
    gb[...] = gb_c[0]
    for ci in range(1, gp_c.shape[0]):
        gp += gp_c[ci]
        gq += gq_c[ci]
        gt += gt_c[ci]
        gb += gb_c[ci]
