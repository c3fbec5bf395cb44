"""Second-order analysis of the training loss: Hessian-vector products, dense Hessians, extreme eigenvalues
(Lanczos), trace (Hutchinson), spectral density (stochastic Lanczos quadrature), effective dimension.

Every function takes ``(model, data, ...)`` with ``data`` a :class:`genbound.data.Dataset` (its training set)
or an explicit ``(x, y)`` pair. The analysis is of the mean loss on all of it, computed in chunks of
``chunk_size`` examples and summed with weights n_c / m (:class:`genbound.nn.Objective`), so the chunking
changes nothing but memory. Random estimators (Hutchinson, SLQ) report their spread, so a number is never
given without its uncertainty.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.linalg import eigh_tridiagonal

from genbound._checks import as_float_array, check_int, check_positive, check_vector
from genbound._rng import as_generator
from genbound.nn.objective import Objective

__all__ = ["hvp", "hessian", "top_eigenvalues", "min_eigenvalue", "hessian_trace", "spectral_density",
           "effective_dimension", "EigenResult", "TraceResult", "SpectralDensity", "lanczos"]

#: Largest parameter count for which :func:`hessian` builds a dense matrix without ``force=True``.
DENSE_LIMIT = 20000

#: Largest ``n_probes`` of :func:`hessian_trace` and :func:`spectral_density` (each probe costs one or
#: ``lanczos_steps`` Hessian-vector products); larger counts are refused rather than run for days.
MAX_PROBES = 100_000

#: Largest number of grid points of :func:`spectral_density`.
MAX_GRID = 1_000_000


# --------------------------------------------------------------------------------------------------------
# Hessian-vector products and the dense Hessian
# --------------------------------------------------------------------------------------------------------


def hvp(model, data, v, *, chunk_size=1024):
    """Exact Hessian-vector product of the mean cross-entropy (Pearlmutter's R-operator).

    .. math:: H v = \\nabla^2_w L(w)\\, v, \\qquad
              L(w) = \\frac{1}{m} \\sum_{i=1}^m \\ell(f_w(x_i), y_i)
              = \\sum_b \\frac{n_b}{m} L_b(w)

    Computed by the model's forward-over-reverse pass through every layer (one tangent forward and one
    tangent backward pass, about the cost of two gradients), not by finite differences. The examples are
    processed in chunks of ``chunk_size`` and the chunk products summed with weights n_c / m, which is the
    full-data product (to rounding).

    Parameters
    ----------
    model : genbound.nn.Sequential
    data : Dataset or (x, y)
        The training set of a Dataset, or an explicit batch: inputs (n, C, H, W) and integer labels (n,).
    v : array_like, shape (n_params,)
        The direction, in the order of ``model.get_flat()``.
    chunk_size : int
        Memory chunk of the loop over the examples (the result does not depend on it).

    Returns
    -------
    numpy.ndarray, shape (n_params,), float64

    Raises
    ------
    ValueError
        ``v`` of the wrong length or with NaN/inf.
    TypeError
        ``data`` neither a Dataset nor an ``(x, y)`` pair.

    References
    ----------
    B. A. Pearlmutter, "Fast exact multiplication by the Hessian", Neural Computation 6 (1994).
    """
    obj = Objective(model, data, chunk_size)
    return obj.hvp(check_vector(v, obj.n, "v"))


def hessian(model, data, *, chunk_size=1024, max_params=DENSE_LIMIT, force=False, symmetrize=False):
    """Dense Hessian of the mean loss, built column by column from exact Hessian-vector products.

    .. math:: H_{:, j} = H e_j, \\qquad j = 1, \\dots, N

    Costs N Hessian-vector products and N^2 floats of memory, so it is refused for N > ``max_params``
    unless ``force=True``. Meant for small networks (checks, exact spectra).

    Parameters
    ----------
    model, data, chunk_size : see :func:`hvp`
    max_params : int
        Size limit (default 20,000 parameters, a 3.2 GB matrix).
    force : bool
        Build the matrix whatever its size.
    symmetrize : bool
        Return (H + H^T) / 2. The raw matrix is symmetric to rounding (about 1e-15 relative).

    Returns
    -------
    numpy.ndarray, shape (n_params, n_params)
    """
    obj = Objective(model, data, chunk_size)
    max_params = check_int(max_params, "max_params", 1)
    if obj.n > max_params and not force:
        raise ValueError(f"model: a dense Hessian of {obj.n} parameters needs {obj.n ** 2 * 8 / 1e9:.1f} GB and "
                         f"{obj.n} Hessian-vector products; the limit is max_params={max_params} (pass force=True "
                         "to build it anyway, or use top_eigenvalues / hessian_trace / spectral_density)")
    h = np.empty((obj.n, obj.n))
    e = np.zeros(obj.n)
    for j in range(obj.n):
        e[j] = 1.0
        h[:, j] = obj.hvp(e)
        e[j] = 0.0
    if symmetrize:
        h = 0.5 * (h + h.T)
    return h


# --------------------------------------------------------------------------------------------------------
# Lanczos with full reorthogonalization
# --------------------------------------------------------------------------------------------------------


@dataclass
class LanczosRun:
    """A Lanczos factorization H Q_j = Q_j T_j + beta_j q_{j+1} e_j^T.

    Attributes
    ----------
    alpha, beta : numpy.ndarray
        Diagonal (j,) and off-diagonal (j - 1,) of the tridiagonal T_j (a zero in ``beta`` marks a restart
        after an invariant subspace was found).
    residual_beta : float
        beta_j, the norm of the part of H q_j outside the Krylov space (0 when the space is invariant).
    basis : numpy.ndarray or None
        Q_j as rows (j, n), when kept.
    n_matvec : int
        Number of products with H.
    """

    alpha: np.ndarray
    beta: np.ndarray
    residual_beta: float
    basis: np.ndarray | None
    n_matvec: int

    def ritz(self):
        """Ritz values (ascending) and the eigenvectors of T_j (columns)."""
        return eigh_tridiagonal(self.alpha, self.beta)

    def residual_bounds(self, s):
        """Residual norms ||H y_i - theta_i y_i|| = |beta_j s_{j,i}| of the Ritz pairs (exact arithmetic)."""
        return np.abs(self.residual_beta * s[-1, :])


def lanczos(matvec, v0, max_iter, *, seed=0, keep_basis=True, restart=True, stop=None, check_every=1):
    """Symmetric Lanczos iteration with full reorthogonalization (classical Gram-Schmidt, applied twice).

    .. math:: \\beta_{j} q_{j+1} = H q_j - \\alpha_j q_j - \\beta_{j-1} q_{j-1}, \\qquad
              \\alpha_j = q_j^T H q_j,

    each new vector orthogonalized again against all previous ones, so the Ritz values of T_j carry no
    spurious copies. One product with H per step. When the Krylov space becomes invariant (beta_j = 0) and
    ``restart`` is set, the iteration continues from a random vector orthogonal to it (an exact zero in
    ``beta``), which lets it find repeated eigenvalues; without ``restart`` it stops there.

    Parameters
    ----------
    matvec : callable v -> H v
        A symmetric linear map on R^n.
    v0 : numpy.ndarray (n,)
        Start vector (normalized here): finite, nonzero; a zero vector raises a ValueError (it spans no
        Krylov space). ``matvec`` must return finite vectors of the same shape (checked at every step).
    max_iter : int
        Maximum number of steps, each one product with H (capped at n).
    seed : int, numpy.random.Generator or None
        Source of restart vectors (a Generator is advanced only when a restart happens).
    keep_basis : bool
        Keep Q (needed for Ritz vectors); SLQ does not need it but still uses it for reorthogonalization.
    restart : bool
    stop : callable(LanczosRun) -> bool, optional
        Checked every ``check_every`` steps; True ends the iteration.

    Returns
    -------
    LanczosRun

    References
    ----------
    C. Lanczos, "An iteration method for the solution of the eigenvalue problem of linear differential and
    integral operators", J. Res. Nat. Bur. Standards 45 (1950). B. N. Parlett, The Symmetric Eigenvalue
    Problem (1998), ch. 13.
    """
    from genbound._checks import check_callable

    check_callable(matvec, "matvec", allow_none=False)
    check_callable(stop, "stop")
    check_every = check_int(check_every, "check_every", 1)
    v0 = as_float_array(v0, "v0", ndim=1)
    n = v0.shape[0]
    if n == 0:
        raise ValueError("v0: expected a non-empty start vector, got shape (0,)")
    norm0 = float(np.linalg.norm(v0))
    if not norm0 > 0:
        raise ValueError("v0: expected a nonzero start vector (a zero vector spans no Krylov space)")
    steps = min(check_int(max_iter, "max_iter", 1), n)
    gen = as_generator(seed)
    cap = min(steps, 64)
    q_rows = np.empty((cap, n))
    alpha, beta = [], []
    q = v0 / norm0
    b = 0.0
    n_mv = 0
    scale = 0.0
    for j in range(steps):
        if j >= q_rows.shape[0]:
            grown = np.empty((min(2 * q_rows.shape[0], steps), n))
            grown[:j] = q_rows[:j]
            q_rows = grown
        q_rows[j] = q
        w = as_float_array(matvec(q), "matvec", finite=False)
        if w.shape != (n,):
            raise ValueError(f"matvec: expected a vector of shape ({n},) (that of v0), got {w.shape}")
        if not np.all(np.isfinite(w)):
            raise ValueError(f"matvec: returned NaN or inf at step {j}")
        n_mv += 1
        a = float(q @ w)
        w = w - a * q
        if j > 0:
            w -= beta[-1] * q_rows[j - 1]
        basis = q_rows[:j + 1]
        for _ in range(2):
            h = basis @ w
            w -= basis.T @ h
            a += h[j]
        alpha.append(a)
        b = float(np.linalg.norm(w))
        scale = max(scale, abs(a) + b + (beta[-1] if beta else 0.0))
        last = j == steps - 1
        run = None
        if stop is not None and (last or (j + 1) % check_every == 0):
            run = LanczosRun(np.array(alpha), np.array(beta), b, q_rows[:j + 1], n_mv)
            if stop(run):
                break
        if last:
            break
        if b <= 1e-12 * max(scale, 1e-300):
            # invariant subspace: the Ritz values so far are exact eigenvalues
            if not restart:
                b = 0.0
                break
            r = gen.standard_normal(n)
            for _ in range(2):
                r -= basis.T @ (basis @ r)
            q = r / np.linalg.norm(r)
            beta.append(0.0)
        else:
            q = w / b
            beta.append(b)
    j = len(alpha)
    if b <= 1e-12 * max(scale, 1e-300):
        b = 0.0
    return LanczosRun(np.array(alpha), np.array(beta), b, q_rows[:j] if keep_basis else None, n_mv)


# --------------------------------------------------------------------------------------------------------
# Extreme eigenvalues
# --------------------------------------------------------------------------------------------------------


@dataclass
class EigenResult:
    """Eigenvalues (and eigenvectors) of the Hessian from an iterative solver.

    Unpacks as a pair: ``values, vectors = top_eigenvalues(...)``.

    Attributes
    ----------
    values : numpy.ndarray (k,)
        Descending for :func:`top_eigenvalues`; ``values[0]`` is the most negative for :func:`min_eigenvalue`.
    vectors : numpy.ndarray (n_params, k)
        Unit eigenvectors, column i for ``values[i]``.
    residuals : numpy.ndarray (k,)
        Residual norms ||H u - lambda u||: Lanczos' estimate |beta_j s_j| (method "lanczos") or measured
        with one extra product per vector (method "eigsh"). The eigenvalue error is at most the residual.
    converged : numpy.ndarray of bool (k,)
    n_hvp : int
        Hessian-vector products of the analysed loss (each a full pass over ``data`` when given).
    seconds : float
        Wall-clock time.
    method : str
    """

    values: np.ndarray
    vectors: np.ndarray
    residuals: np.ndarray
    converged: np.ndarray
    n_hvp: int
    seconds: float
    method: str
    info: dict = field(default_factory=dict)

    def __iter__(self):
        return iter((self.values, self.vectors))

    @property
    def value(self):
        """The first eigenvalue (the top one, or the minimum for :func:`min_eigenvalue`)."""
        return float(self.values[0])


def _extreme_eigs(obj, k, which, method, tol, max_iter, seed):
    gen = as_generator(seed)
    n = obj.n
    v0 = gen.standard_normal(n)
    start = time.perf_counter()
    n0 = obj.n_hvp
    if method == "lanczos":
        def pick(theta):
            return np.arange(len(theta))[::-1][:k] if which == "LA" else np.arange(len(theta))[:k]

        def stop(run):
            if len(run.alpha) < k:
                return False
            theta, s = run.ritz()
            idx = pick(theta)
            res = run.residual_bounds(s)[idx]
            return bool(np.all(res <= tol * max(np.max(np.abs(theta)), 1e-300)))

        run = lanczos(obj.hvp, v0, max_iter, seed=gen, stop=stop)
        theta, s = run.ritz()
        idx = pick(theta)
        values = theta[idx]
        vectors = run.basis.T @ s[:, idx]
        vectors /= np.linalg.norm(vectors, axis=0, keepdims=True)
        residuals = run.residual_bounds(s)[idx]
        scale = max(np.max(np.abs(theta)), 1e-300)
        converged = (residuals <= tol * scale) | (len(run.alpha) >= n)
        info = {"steps": len(run.alpha)}
    else:
        from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh

        op = LinearOperator((n, n), matvec=lambda v: obj.hvp(np.ravel(v)), dtype=np.float64)
        ncv = min(n, max(2 * k + 1, 20))
        try:
            vals, vecs = eigsh(op, k=k, which=which, v0=v0, tol=tol, maxiter=max_iter, ncv=ncv)
            ok = True
        except ArpackNoConvergence as exc:
            vals, vecs, ok = exc.eigenvalues, exc.eigenvectors, False
            if vals.size == 0:
                raise RuntimeError(f"max_iter: eigsh found no converged eigenvalue in {max_iter} restarts") from exc
        order = np.argsort(vals)[::-1] if which == "LA" else np.argsort(vals)
        values, vectors = vals[order], vecs[:, order]
        residuals = np.array([np.linalg.norm(obj.hvp(vectors[:, i]) - values[i] * vectors[:, i])
                              for i in range(values.size)])
        converged = np.full(values.size, ok)
        info = {"ncv": ncv}
    if not np.all(converged):
        warnings.warn(f"{method} did not converge to tol={tol} in max_iter={max_iter}; residuals {residuals} "
                      "(raise max_iter or tol)", RuntimeWarning, stacklevel=3)
    return EigenResult(values=np.asarray(values, dtype=np.float64), vectors=np.asarray(vectors),
                       residuals=np.asarray(residuals, dtype=np.float64), converged=np.asarray(converged),
                       n_hvp=obj.n_hvp - n0, seconds=time.perf_counter() - start, method=method, info=info)


def _check_method(method):
    if method not in ("lanczos", "eigsh"):
        raise ValueError(f"method: expected 'lanczos' or 'eigsh', got {method!r}")
    return method


def top_eigenvalues(model, data, k=1, *, chunk_size=1024, method="lanczos", tol=1e-8, max_iter=None, seed=0):
    """The k largest (algebraic) eigenvalues of the Hessian of the mean loss, with eigenvectors.

    Lanczos with full reorthogonalization (default), stopped when the k largest Ritz pairs have residual
    ||H u - theta u|| <= ``tol`` * max |theta|; or ARPACK's implicitly restarted Lanczos
    (``scipy.sparse.linalg.eigsh``, which='LA') on a LinearOperator. Both use one Hessian-vector product per
    step and a start vector drawn from ``seed``, so a call is deterministic.

    .. math:: \\lambda_1 \\ge \\lambda_2 \\ge \\dots \\ge \\lambda_k, \\qquad H u_i = \\lambda_i u_i

    Parameters
    ----------
    model, data, chunk_size : see :func:`hvp` (pass the whole training set for analysis: a small batch gives
        a different Hessian, not an estimate of the full one)
    k : int, 1 <= k <= n_params
    method : {"lanczos", "eigsh"}
    tol : float > 0
        Relative residual tolerance. The eigenvalue error is at most the residual, and typically its
        square over the gap to the next eigenvalue.
    max_iter : int, optional
        Lanczos steps (default min(n_params, max(300, 20 k))); for eigsh, restarts (default 10 n_params).
        Lanczos keeps its basis: memory 8 n_params max_iter bytes.
    seed : int, numpy.random.Generator or None
        Start vector (and Lanczos restart vectors).

    Returns
    -------
    EigenResult
        ``values`` descending, ``vectors`` (n_params, k), residuals, ``n_hvp``, ``seconds``; unpacks as
        ``(values, vectors)``.

    Notes
    -----
    Single-vector Lanczos finds one copy of a repeated eigenvalue before the others; the restart on an
    invariant subspace recovers multiplicities only once the Krylov space is exhausted.

    References
    ----------
    C. Lanczos (1950); B. A. Pearlmutter (1994); Z. Yao, A. Gholami, K. Keutzer, M. W. Mahoney,
    "PyHessian: neural networks through the lens of the Hessian" (2020).
    """
    return _eigs_entry(model, data, k, chunk_size, method, tol, max_iter, seed, "LA")


def min_eigenvalue(model, data, k=1, *, chunk_size=1024, method="lanczos", tol=1e-8, max_iter=None, seed=0):
    """The most negative (smallest algebraic) eigenvalue(s) of the Hessian, with eigenvector(s).

    Same solver and arguments as :func:`top_eigenvalues`, at the other end of the spectrum (eigsh:
    which='SA'); the tolerance is relative to the largest |Ritz value|, so a tiny negative eigenvalue next
    to a large top one is resolved to ``tol`` times the top one. Convergence at the bottom of a
    neural-network spectrum, which sits next to the bulk near zero, can take many more steps than at the top.

    Returns
    -------
    EigenResult
        ``values`` ascending (``values[0]`` = ``result.value`` is the minimum).
    """
    return _eigs_entry(model, data, k, chunk_size, method, tol, max_iter, seed, "SA")


def _eigs_entry(model, data, k, chunk_size, method, tol, max_iter, seed, which):
    obj = Objective(model, data, chunk_size)
    k = check_int(k, "k", 1)
    if k > obj.n:
        raise ValueError(f"k: expected at most n_params = {obj.n} eigenvalues, got {k}")
    method = _check_method(method)
    tol = check_positive(tol, "tol")
    if max_iter is None:
        max_iter = min(obj.n, max(300, 20 * k)) if method == "lanczos" else obj.n * 10
    max_iter = check_int(max_iter, "max_iter", 1)
    if method == "eigsh" and k >= obj.n:
        raise ValueError(f"k: eigsh needs k < n_params = {obj.n}; use method='lanczos' or numpy.linalg.eigh")
    return _extreme_eigs(obj, k, which, method, tol, max_iter, seed)


# --------------------------------------------------------------------------------------------------------
# Trace and spectral density
# --------------------------------------------------------------------------------------------------------


@dataclass
class TraceResult:
    """Hutchinson estimate of tr(H).

    Attributes
    ----------
    estimate : float
        Mean of z^T H z over the probes.
    stderr : float
        Standard error of the mean (sample standard deviation / sqrt(n_probes)).
    samples : numpy.ndarray (n_probes,)
        The individual z^T H z.
    n_hvp : int
    seconds : float
    """

    estimate: float
    stderr: float
    samples: np.ndarray
    n_hvp: int
    seconds: float

    def __float__(self):
        return float(self.estimate)


def _probe(gen, n, kind):
    if kind == "rademacher":
        return gen.integers(0, 2, size=n) * 2.0 - 1.0
    return gen.standard_normal(n)


def hessian_trace(model, data, *, chunk_size=1024, n_probes=100, seed=0, probes="rademacher"):
    """Hutchinson's stochastic estimate of the Hessian trace, with its standard error.

    .. math:: \\operatorname{tr} H = \\mathbb{E}_z[z^T H z], \\qquad
              \\widehat{\\operatorname{tr}} = \\frac{1}{P} \\sum_{p=1}^P z_p^T H z_p,

    z with independent Rademacher (+-1) entries: the estimator of least variance among i.i.d. probes,
    Var = 2 (||H||_F^2 - sum_i H_ii^2) / P. One Hessian-vector product per probe.

    Parameters
    ----------
    model, data, chunk_size : see :func:`hvp`
    n_probes : int in [2, MAX_PROBES]
    seed : int, numpy.random.Generator or None
        Source of the probes.
    probes : {"rademacher", "gaussian"}

    Returns
    -------
    TraceResult
        ``estimate``, ``stderr`` (of the mean), ``samples``, ``n_hvp``, ``seconds``.

    References
    ----------
    M. F. Hutchinson, "A stochastic estimator of the trace of the influence matrix for Laplacian smoothing
    splines", Comm. Statist. Simulation Comput. 18 (1989).
    """
    obj = Objective(model, data, chunk_size)
    n_probes = check_int(n_probes, "n_probes", 2)
    if n_probes > MAX_PROBES:
        raise ValueError(f"n_probes: expected an int <= {MAX_PROBES} (genbound.landscape.hessian.MAX_PROBES), "
                         f"got {n_probes}")
    if probes not in ("rademacher", "gaussian"):
        raise ValueError(f"probes: expected 'rademacher' or 'gaussian', got {probes!r}")
    gen = as_generator(seed)
    start = time.perf_counter()
    samples = np.empty(n_probes)
    for p in range(n_probes):
        z = _probe(gen, obj.n, probes)
        samples[p] = z @ obj.hvp(z)
    return TraceResult(estimate=float(samples.mean()), stderr=float(samples.std(ddof=1) / np.sqrt(n_probes)),
                       samples=samples, n_hvp=n_probes, seconds=time.perf_counter() - start)


@dataclass
class SpectralDensity:
    """Stochastic Lanczos quadrature of the Hessian spectrum.

    Attributes
    ----------
    density : pandas.DataFrame
        Columns ``eigenvalue`` (the grid) and ``density`` (the smoothed spectral density, integrating to 1).
    nodes, weights : numpy.ndarray (n_probes, steps)
        Gauss quadrature nodes (Ritz values) and weights (squared first components of T's eigenvectors) of
        each probe; weights of a probe sum to 1. Rows padded with NaN nodes / zero weights when a probe's
        Krylov space became invariant early.
    sigma : float
        Width of the Gaussian kernel.
    n_params : int
    trace, trace_stderr : float
        n_params times the mean of the quadrature's first moment (Hutchinson's estimator with the same probes)
        and its standard error.
    n_hvp : int
    seconds : float
    """

    density: pd.DataFrame
    nodes: np.ndarray
    weights: np.ndarray
    sigma: float
    n_params: int
    trace: float
    trace_stderr: float
    n_hvp: int
    seconds: float

    def expectation(self, f):
        """Estimate of (1/n) tr f(H) = integral of f against the (unsmoothed) density, per probe averaged."""
        vals = np.where(self.weights > 0, f(np.nan_to_num(self.nodes)), 0.0)
        return float(np.mean(np.sum(self.weights * vals, axis=1)))

    def effective_dimension(self, z):
        """SLQ estimate of the effective dimension n * E[lambda+/(lambda+ + z)] (see :func:`effective_dimension`)."""
        z = check_positive(z, "z")
        return self.n_params * self.expectation(lambda t: np.maximum(t, 0) / (np.maximum(t, 0) + z))


def spectral_density(model, data, *, chunk_size=1024, n_probes=10, lanczos_steps=80, seed=0, grid=2000,
                     sigma=None):
    """Spectral density of the Hessian by stochastic Lanczos quadrature (SLQ), Gaussian-smoothed.

    For each probe v (Rademacher, normalized), m Lanczos steps give T_m = S diag(theta) S^T, and the Gauss
    quadrature v^T f(H) v / v^T v ~ sum_j tau_j f(theta_j) with tau_j = S_{1j}^2. Averaging over probes and
    smoothing the nodes by a Gaussian of width sigma,

    .. math:: \\phi_\\sigma(t) = \\frac{1}{P} \\sum_{p=1}^{P} \\sum_{j=1}^{m} \\tau_j^{(p)}
              \\frac{1}{\\sqrt{2\\pi}\\sigma} \\exp\\left(-\\frac{(t - \\theta_j^{(p)})^2}{2\\sigma^2}\\right)
              \\approx \\frac{1}{n} \\sum_{i=1}^{n} \\delta(t - \\lambda_i) * g_\\sigma .

    The quadrature is exact for polynomials of degree < 2m, so the mean of the density, sum_j tau_j theta_j
    = alpha_1, is exactly Hutchinson's trace / n with the same probes. Cost: P m Hessian-vector products.

    Parameters
    ----------
    model, data, chunk_size : see :func:`hvp`
    n_probes : int in [1, MAX_PROBES]
    lanczos_steps : int >= 1 (capped at n_params)
        The quadrature degree m: every probe runs exactly m steps (a Krylov dimension, not an iteration limit:
        there is no stopping rule), unless its Krylov space becomes invariant earlier.
    seed : int, numpy.random.Generator or None
        Source of the probes: the same Rademacher probes as :func:`hessian_trace` with the same seed.
    grid : int or array_like
        Number of grid points spanning [min node - 6 sigma, max node + 6 sigma], or the grid itself; at most
        :data:`MAX_GRID` points.
    sigma : float > 0, optional
        Kernel width; default 1 % of the spread of the nodes (max - min).

    Returns
    -------
    SpectralDensity
        ``density`` DataFrame (eigenvalue, density), ``nodes``, ``weights``, ``trace``, ``trace_stderr``.

    References
    ----------
    B. Ghorbani, S. Krishnan, Y. Xiao, "An investigation into neural net optimization via Hessian eigenvalue
    density", ICML 2019. S. Ubaru, J. Chen, Y. Saad, "Fast estimation of tr(f(A)) via stochastic Lanczos
    quadrature", SIAM J. Matrix Anal. Appl. 38 (2017). G. H. Golub, G. Meurant, Matrices, Moments and
    Quadrature with Applications (2010).
    """
    obj = Objective(model, data, chunk_size)
    n_probes = check_int(n_probes, "n_probes", 1)
    if n_probes > MAX_PROBES:
        raise ValueError(f"n_probes: expected an int <= {MAX_PROBES} (genbound.landscape.hessian.MAX_PROBES), "
                         f"got {n_probes}")
    steps = min(check_int(lanczos_steps, "lanczos_steps", 1), obj.n)
    if np.ndim(grid) == 0:
        grid = check_int(grid, "grid", 2)
        if grid > MAX_GRID:
            raise ValueError(f"grid: expected at most {MAX_GRID} points (genbound.landscape.hessian.MAX_GRID), "
                             f"got {grid}")
    else:
        grid = as_float_array(grid, "grid", ndim=1)
        if not 1 <= grid.size <= MAX_GRID:
            raise ValueError(f"grid: expected 1 to {MAX_GRID} points, got {grid.size}")
    if sigma is not None:
        sigma = check_positive(sigma, "sigma")
    gen = as_generator(seed)
    start = time.perf_counter()
    nodes = np.full((n_probes, steps), np.nan)
    weights = np.zeros((n_probes, steps))
    first = np.empty(n_probes)
    n0 = obj.n_hvp
    for p in range(n_probes):
        v = _probe(gen, obj.n, "rademacher")
        run = lanczos(obj.hvp, v, steps, seed=gen, keep_basis=False, restart=False)
        theta, s = run.ritz()
        nodes[p, :theta.size] = theta
        weights[p, :theta.size] = s[0, :] ** 2
        first[p] = run.alpha[0]
    valid = weights > 0
    lo, hi = np.nanmin(nodes), np.nanmax(nodes)
    if sigma is None:
        sigma = 0.01 * (hi - lo) if hi > lo else max(1e-3 * abs(hi), 1e-12)
    if np.ndim(grid) == 0:
        grid = np.linspace(lo - 6 * sigma, hi + 6 * sigma, grid)
    t = grid[:, None]
    dens = np.zeros(grid.size)
    for p in range(n_probes):
        th, w = nodes[p, valid[p]], weights[p, valid[p]]
        dens += np.exp(-0.5 * ((t - th[None, :]) / sigma) ** 2) @ w
    dens /= n_probes * np.sqrt(2 * np.pi) * sigma
    per_probe_trace = obj.n * first
    stderr = float(per_probe_trace.std(ddof=1) / np.sqrt(n_probes)) if n_probes > 1 else float("nan")
    return SpectralDensity(density=pd.DataFrame({"eigenvalue": grid, "density": dens}), nodes=nodes,
                           weights=weights, sigma=float(sigma), n_params=obj.n, trace=float(per_probe_trace.mean()),
                           trace_stderr=stderr, n_hvp=obj.n_hvp - n0, seconds=time.perf_counter() - start)


# --------------------------------------------------------------------------------------------------------
# Effective dimension
# --------------------------------------------------------------------------------------------------------


def effective_dimension(eigenvalues, z):
    """Effective dimensionality of a Hessian spectrum (Maddox, Benton & Wilson 2020).

    .. math:: N_\\mathrm{eff}(H, z) = \\sum_{i:\\, \\lambda_i \\ge 0} \\frac{\\lambda_i}{\\lambda_i + z}

    Only the non-negative part of the spectrum is used: negative eigenvalues (present away from a minimum,
    and at ReLU networks' saddles) contribute 0 rather than a negative or singular term. Eigenvalues much
    larger than z count about 1, those much smaller about 0. Pass the full spectrum (e.g. ``eigh`` of
    :func:`hessian`) for the exact value; a top-k list gives a lower bound; for large models use
    :meth:`SpectralDensity.effective_dimension`.

    Parameters
    ----------
    eigenvalues : array_like (any shape) or EigenResult
    z : float > 0
        The regularization scale (prior precision in the Bayesian reading).

    Returns
    -------
    float

    References
    ----------
    W. J. Maddox, G. Benton, A. G. Wilson, "Rethinking parameter counting in deep models: effective
    dimensionality revisited", arXiv:2003.02139 (2020).
    """
    if isinstance(eigenvalues, EigenResult):
        eigenvalues = eigenvalues.values
    lam = as_float_array(eigenvalues, "eigenvalues").ravel()
    z = check_positive(z, "z")
    lam = lam[lam >= 0]
    return float(np.sum(lam / (lam + z)))
