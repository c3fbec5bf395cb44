r"""The iterations behind CP fitting, batched over filters: ALS, HOPM, Levenberg-Marquardt, starts.

Every routine takes filters ``X`` (O, C, kh, kw) in float64 and factors ``[p, q, t]`` of shapes
(O, R, C), (O, R, kh), (O, R, kw), and works on all filters at once; a filter's iteration stops on its own.

References
----------
T. G. Kolda and B. W. Bader, "Tensor decompositions and applications", SIAM Review 51(3), 2009.
L. De Lathauwer, B. De Moor and J. Vandewalle, "On the best rank-1 and rank-(R1, R2, ..., RN)
approximation of higher-order tensors", SIAM J. Matrix Anal. Appl. 21(4), 2000.
K. Madsen, H. B. Nielsen and O. Tingleff, "Methods for non-linear least squares problems", 2004.
"""
from __future__ import annotations

import numpy as np

from genbound.factor.algebra import outer_all
from genbound.factor.jacobian import jacobian_batched


def fro(X):
    """Frobenius norm of each filter (axis 0 kept)."""
    return np.linalg.norm(X.reshape(X.shape[0], -1), axis=1)


def rel_errors(X, factors, normX):
    """Relative Frobenius error of each filter's CP fit (0 for a zero filter)."""
    diff = X - outer_all(factors).sum(axis=1)
    num = fro(diff)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(normX > 0, num / np.where(normX > 0, normX, 1.0), 0.0)


def mttkrp(X, factors, mode):
    """sum over the other two modes of X times their factors: (O, n1, n2, n3) -> (O, R, n_mode)."""
    O = X.shape[0]
    a, b = (factors[m] for m in range(3) if m != mode)
    kr = (a[:, :, :, None] * b[:, :, None, :]).reshape(O, a.shape[1], -1)  # Khatri-Rao, (O, R, n_a n_b)
    unf = np.moveaxis(X, mode + 1, 1).reshape(O, X.shape[mode + 1], -1)  # mode unfolding
    return kr @ unf.transpose(0, 2, 1)


def solve_regularized(A, B):
    """Solve ``A[o] X[o] = B[o]`` for every filter; never raises.

    The batched LAPACK solve runs first. When a system is singular to working precision (collinear
    components, as in a rank-2 fit of an exact rank-1 filter), every filter is solved on its own and a
    singular one gets the minimum-norm least-squares solution (``numpy.linalg.lstsq``: the limit of
    Tikhonov regularization as the ridge goes to 0). A system with non-finite entries gives NaN, which
    :func:`fit_start` reads as a failed start for that filter only.
    """
    try:
        return np.linalg.solve(A, B)
    except np.linalg.LinAlgError:
        pass
    out = np.full(B.shape, np.nan)
    for o in range(A.shape[0]):
        if not (np.all(np.isfinite(A[o])) and np.all(np.isfinite(B[o]))):
            continue
        try:
            out[o] = np.linalg.solve(A[o], B[o])
        except np.linalg.LinAlgError:
            out[o] = np.linalg.lstsq(A[o], B[o], rcond=None)[0]
    return out


def als_update(X, fs, mode):
    r"""Least-squares update of one factor with the others fixed (batched over filters).

    .. math::

        P \leftarrow W_{(1)} (T \odot Q) \big(T^\top T * Q^\top Q + \lambda I\big)^{-1}, \qquad
        \lambda = \varepsilon \operatorname{tr}(T^\top T * Q^\top Q),

    a ridge scaled to the Gram matrix (the trace is its nuclear norm), and the minimum-norm solution where
    the Gram matrix is still singular (:func:`solve_regularized`).
    """
    M = mttkrp(X, fs, mode)  # (O, R, n)
    V = None
    for m in range(3):
        if m != mode:
            gram = fs[m] @ fs[m].transpose(0, 2, 1)
            V = gram if V is None else V * gram
    R = V.shape[1]
    ridge = np.finfo(np.float64).eps * np.maximum(np.einsum("orr->o", V), np.finfo(np.float64).tiny)
    return solve_regularized(V + ridge[:, None, None] * np.eye(R), M)


def hopm_update(X, fs, mode):
    """Higher-order power method update: contract, normalize (rank 1)."""
    v = mttkrp(X, fs, mode)
    nrm = np.linalg.norm(v, axis=2, keepdims=True)
    return np.where(nrm > 0, v / np.where(nrm > 0, nrm, 1.0), v)


def balance_terms(fs):
    """Rescale every rank-one term so that its factors have equal norms (product unchanged)."""
    norms = [np.linalg.norm(f, axis=2, keepdims=True) for f in fs]
    prod = norms[0] * norms[1] * norms[2]
    target = np.cbrt(prod)
    out = []
    for f, n in zip(fs, norms):
        out.append(np.where(n > 0, f * (target / np.where(n > 0, n, 1.0)), 0.0))
    return out


# Near an exact fit (relative error below POLISH_BELOW), ALS hands a filter over to Levenberg-Marquardt as
# soon as it slows down: its error changes by less than ALS_TOL_BEFORE_POLISH, or by less than the fraction
# ALS_SLOW_BEFORE_POLISH of the error itself (a swamp). Farther from an exact fit ALS runs to ``tol``.
POLISH_BELOW = 0.05
ALS_TOL_BEFORE_POLISH = 1e-9
ALS_SLOW_BEFORE_POLISH = 1e-2


def fit_start(X, normX, fs, rank, max_iter, tol, hopm, n_polish=0):
    """Run ALS (or HOPM for rank 1) from ``fs``, freezing filters as they converge; then polish.

    A filter whose iterate stops being finite is dropped from this start with error ``inf`` (not
    converged); the other filters go on.

    Returns
    -------
    factors, errors, converged, n_iter
    """
    O = X.shape[0]
    fs = [f.copy() for f in fs]
    if hopm:
        # unit factors q, t with the scale carried by p (the product is unchanged)
        for m in (1, 2):
            nrm = np.linalg.norm(fs[m], axis=2, keepdims=True)
            safe = np.where(nrm > 0, nrm, 1.0)
            fs[m] = fs[m] / safe
            fs[0] = fs[0] * safe
    zero = normX == 0
    for f in fs:
        f[zero] = 0.0  # the best fit of a zero filter
    err = rel_errors(X, fs, normX)
    polish = n_polish > 0 and not hopm
    n_iter = np.zeros(O, dtype=np.int64)
    converged = zero.copy()
    active = np.flatnonzero(~converged)
    for it in range(1, max_iter + 1):
        if active.size == 0:
            break
        Xa = X[active]
        sub = [f[active] for f in fs]
        if hopm:
            for mode in (1, 2):
                sub[mode] = hopm_update(Xa, sub, mode)
            sub[0] = mttkrp(Xa, sub, 0)  # optimal first factor for unit q, t: lambda times a unit vector
        else:
            for mode in range(3):
                sub[mode] = als_update(Xa, sub, mode)
            sub = balance_terms(sub)
        for f, s in zip(fs, sub):
            f[active] = s
        new_err = rel_errors(Xa, sub, normX[active])
        failed = ~np.isfinite(new_err)
        new_err[failed] = np.inf
        n_iter[active] = it
        change = np.abs(err[active] - new_err)
        done = ((change <= tol) | (new_err <= tol)) & ~failed
        handover = polish & ~done & (new_err <= POLISH_BELOW) & (
            (change <= ALS_TOL_BEFORE_POLISH) | (change <= ALS_SLOW_BEFORE_POLISH * new_err))
        err[active] = new_err
        converged[active[done]] = True
        active = active[~(done | handover | failed)]
    fs = balance_terms(fs)
    if polish:
        idx = np.flatnonzero(~converged & (err <= POLISH_BELOW))
        if idx.size:
            sub, sub_err, sub_conv, steps = lm_polish(X[idx], normX[idx], [f[idx] for f in fs], err[idx],
                                                       n_polish, tol)
            for f, s in zip(fs, sub):
                f[idx] = s
            err[idx] = sub_err
            converged[idx] = sub_conv
            n_iter[idx] += steps
    return fs, err, converged, n_iter


def lm_polish(X, normX, fs, err, n_steps, tol):
    """Levenberg-Marquardt steps on all factors at once (batched over filters).

    ALS converges linearly and can crawl through swamps; a damped Gauss-Newton step on the full parameter
    vector converges quadratically near an exact fit. A step is kept only if it lowers the error; the
    damping follows the gain ratio (Nielsen's rule, as in Madsen, Nielsen & Tingleff's LM notes).
    """
    O = X.shape[0]
    R = fs[0].shape[1]
    sizes = [f.shape[2] for f in fs]
    splits = np.cumsum([R * s for s in sizes])[:-1]

    def unpack(x):
        return [part.reshape(x.shape[0], R, s) for part, s in zip(np.split(x, splits, axis=1), sizes)]

    x = np.concatenate([f.reshape(O, -1) for f in fs], axis=1)
    err = err.copy()
    steps = np.zeros(O, dtype=np.int64)
    converged = (normX == 0) | (err <= tol)
    mu = np.full(O, np.nan)
    nu = np.full(O, 2.0)
    scale = np.ones(O)
    active = np.flatnonzero(~converged)
    n_par = x.shape[1]
    eye = np.eye(n_par)
    for _ in range(n_steps):
        if active.size == 0:
            break
        xa = x[active]
        fa = unpack(xa)
        Xa = X[active].reshape(active.size, -1)
        r = Xa - outer_all(fa).sum(axis=1).reshape(active.size, -1)
        J = jacobian_batched(fa)
        Jt = np.ascontiguousarray(J.transpose(0, 2, 1))
        JtJ = Jt @ J
        g = (Jt @ r[..., None])[..., 0]
        m = mu[active]
        fresh = np.isnan(m)
        if np.any(fresh):
            scale[active[fresh]] = np.maximum(np.einsum("opp->o", JtJ[fresh]) / n_par, np.finfo(float).tiny)
            m[fresh] = 1e-3 * scale[active[fresh]]
        m = np.maximum(m, 1e-14 * scale[active])
        step = solve_regularized(JtJ + m[:, None, None] * eye, g[..., None])[..., 0]
        trial = xa + step
        new_err = rel_errors(X[active], unpack(trial), normX[active])
        steps[active] += 1
        # gain ratio: actual over predicted decrease of ||r||^2 / 2
        nx = normX[active]
        actual = 0.5 * (err[active] ** 2 - np.where(np.isfinite(new_err), new_err, np.inf) ** 2) * nx**2
        predicted = 0.5 * np.einsum("op,op->o", step, m[:, None] * step + g)
        with np.errstate(divide="ignore", invalid="ignore"):
            rho = np.where(predicted > 0, actual / predicted, -1.0)
        good = np.isfinite(new_err) & (new_err < err[active]) & (rho > 0)
        gain = err[active] - np.where(good, new_err, err[active])
        x[active[good]] = trial[good]
        err[active[good]] = new_err[good]
        nu_a = nu[active]
        mu[active] = np.where(good, m * np.maximum(1 / 3, 1 - (2 * np.clip(rho, 0, 1) - 1) ** 3), m * nu_a)
        nu[active] = np.where(good, 2.0, 2.0 * nu_a)
        # a tiny gain only means convergence when the step was not held back by heavy damping
        finished = good & ((new_err <= tol) | ((gain <= tol) & (m <= scale[active])))
        stuck = ~good & (mu[active] > 1e10 * scale[active])
        converged[active[finished]] = True
        active = active[~(finished | stuck)]
    return balance_terms(unpack(x)), err, converged, steps


def hosvd_start(X, rank, gen):
    """HOSVD start: leading left singular vectors of each mode unfolding, random rows where R exceeds a mode."""
    O = X.shape[0]
    fs = []
    for mode in range(3):
        unf = np.moveaxis(X, mode + 1, 1).reshape(O, X.shape[mode + 1], -1)
        U = np.linalg.svd(unf, full_matrices=False)[0]  # (O, n, min(n, rest))
        k = min(rank, U.shape[2])
        f = np.empty((O, rank, X.shape[mode + 1]))
        f[:, :k] = U[:, :, :k].transpose(0, 2, 1)
        if rank > k:
            f[:, k:] = gen.standard_normal((O, rank - k, X.shape[mode + 1]))
        fs.append(f)
    return fs


def random_start(X, rank, gen):
    """Standard normal factors drawn from ``gen``."""
    O = X.shape[0]
    return [gen.standard_normal((O, rank, X.shape[m + 1])) for m in range(3)]


def degeneracy(fs):
    """``sum_r ||p_r|| ||q_r|| ||t_r|| / ||W_hat||`` per filter: 1 for one term, large when terms cancel."""
    comp = np.prod([np.linalg.norm(f, axis=2) for f in fs], axis=0).sum(axis=1)  # (O,)
    rec = outer_all(fs).sum(axis=1)
    rn = fro(rec)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(rn > 0, comp / np.where(rn > 0, rn, 1.0), np.where(comp > 0, np.inf, 1.0))
