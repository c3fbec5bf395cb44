r"""CP fitting: the best rank-R approximation of every filter (decompose) and the warm-started projection.

.. math::

    \min_{p, q, t} \Big\| W[o] - \sum_{r=1}^{R} p_r \otimes q_r \otimes t_r \Big\|_F

References
----------
T. G. Kolda and B. W. Bader, "Tensor decompositions and applications", SIAM Review 51(3), 2009.
L. De Lathauwer, B. De Moor and J. Vandewalle, "On the best rank-1 and rank-(R1, R2, ..., RN)
approximation of higher-order tensors", SIAM J. Matrix Anal. Appl. 21(4), 2000.
V. de Silva and L.-H. Lim, "Tensor rank and the ill-posedness of the best low-rank approximation
problem", SIAM J. Matrix Anal. Appl. 30(3), 2008.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from genbound._checks import as_float_array, check_int, check_positive
from genbound._rng import as_generator
from genbound.factor._als import balance_terms, degeneracy, fit_start, fro, hosvd_start, random_start
from genbound.factor.algebra import outer_all, reconstruct
from genbound.factor.arguments import ORDER3_NAMES, check_factors, common_dtype

__all__ = ["decompose", "project_rank", "DecomposeConfig", "CPResult", "DegeneracyWarning"]


@dataclass(frozen=True)
class DecomposeConfig:
    """Options of :func:`decompose` (printable, comparable, ``dataclasses.asdict``-able).

    Attributes
    ----------
    n_restarts : int
        Random starts besides the initial one (>= 0). Default 2.
    max_iter : int
        Maximum ALS (HOPM) sweeps per start (>= 0). Default 500.
    tol : float
        Convergence threshold on the change of the relative error (>= 0). Default 1e-12.
    n_polish : int
        Maximum Levenberg-Marquardt steps per start after ALS (rank >= 2; 0 for plain ALS). Default 200.
    degeneracy_threshold : float
        A fit that has not converged is flagged degenerate when
        ``sum_r ||p_r|| ||q_r|| ||t_r|| / ||W_hat||`` exceeds it (> 0). Default 5.0.
    """

    n_restarts: int = 2
    max_iter: int = 500
    tol: float = 1e-12
    n_polish: int = 200
    degeneracy_threshold: float = 5.0

    def __post_init__(self):
        check_int(self.n_restarts, "n_restarts", minimum=0)
        check_int(self.max_iter, "max_iter", minimum=0)
        check_positive(self.tol, "tol", allow_zero=True)
        check_int(self.n_polish, "n_polish", minimum=0)
        check_positive(self.degeneracy_threshold, "degeneracy_threshold")


class DegeneracyWarning(UserWarning):
    """A rank-R CP fit whose components grow and cancel: a best rank-R approximation may not exist."""


@dataclass
class CPResult:
    """Result of :func:`decompose`.

    Attributes
    ----------
    p, q, t : ndarray
        Factors (O, R, C), (O, R, kh), (O, R, kw) (O = 1 for a single 3-D filter), each rank-one term
        balanced so that its three factors have equal norms.
    error : float
        Relative Frobenius error of the whole layer, ``||W - W_hat|| / ||W||`` (0 when W is 0).
    errors : ndarray
        Relative Frobenius error per filter, shape (O,).
    converged : ndarray of bool
        Per filter: the change of the relative error fell below ``tol`` (or the error itself did) before
        the iteration limits.
    n_iter : ndarray of int
        Per filter: ALS sweeps plus Levenberg-Marquardt steps of the start that was kept.
    degeneracy : ndarray
        Per filter: ``sum_r ||p_r|| ||q_r|| ||t_r|| / ||W_hat||`` (1 for a single term; large values mean
        components that cancel each other).
    degenerate : ndarray of bool
        ``degeneracy > degeneracy_threshold`` on a fit that had not converged (a degenerate fit keeps
        creeping down; an exact fit whose terms cancel is not flagged).
    restart_errors : ndarray
        Shape (n_starts, O): final relative error of every start (row 0 the initial start, then the random
        restarts in order).
    restart_seeds : tuple of int
        Seeds of the random restarts:
        ``decompose(W, rank, init="random", seed=s, config=DecomposeConfig(n_restarts=0))`` reruns one.
    best_start : ndarray of int
        Per filter: index of the start that was kept (-1 where every start failed).
    """

    p: np.ndarray
    q: np.ndarray
    t: np.ndarray
    error: float
    errors: np.ndarray
    converged: np.ndarray
    n_iter: np.ndarray
    degeneracy: np.ndarray
    degenerate: np.ndarray
    restart_errors: np.ndarray
    restart_seeds: tuple = field(default_factory=tuple)
    best_start: np.ndarray = None

    @property
    def rank(self):
        """R, the number of rank-one terms per filter."""
        return self.p.shape[1]

    @property
    def factors(self):
        """``(p, q, t)``."""
        return (self.p, self.q, self.t)

    def reconstruct(self):
        """Reconstructed filters, shape (O, C, kh, kw)."""
        return reconstruct(self.p, self.q, self.t)


def _as_filters(W, name="W"):
    arr = np.asarray(W)
    if arr.ndim == 3:
        arr = arr[None]
    elif arr.ndim != 4:
        raise ValueError(f"{name}: expected filters (O, C, kh, kw) or one filter (C, kh, kw), got shape {arr.shape}")
    out_dtype = np.float32 if arr.dtype == np.float32 else np.float64
    return as_float_array(arr, name, dtype=np.float64), out_dtype


def _check_init_factors(init, X, rank, names=("p0", "q0", "t0")):
    if not (isinstance(init, (list, tuple)) and len(init) == 3):
        raise TypeError(f"init: expected 'hosvd', 'random' or a tuple (p0, q0, t0), got {type(init).__name__}")
    fs = check_factors(init, names, dtype=np.float64)
    O = X.shape[0]
    expected = [(O, rank, X.shape[m + 1]) for m in range(3)]
    for f, e, n in zip(fs, expected, names):
        if f.shape != e:
            raise ValueError(f"{n}: expected shape {e} to match W {X.shape} and rank {rank}, got {f.shape}")
    return fs


def decompose(W, rank, seed=0, init="hosvd", config=None, warn=True):
    r"""Rank-R CP approximation of every output filter, by ALS (HOPM for rank 1) with restarts.

    Each filter :math:`W[o] \in \mathbb{R}^{C \times k_h \times k_w}` is approximated by

    .. math::

        \min_{p, q, t} \Big\| W[o] - \sum_{r=1}^{R} p_r \otimes q_r \otimes t_r \Big\|_F

    by alternating least squares, :math:`P \leftarrow W_{(1)} (T \odot Q) (T^\top T * Q^\top Q)^{-1}`
    and cyclically, started from the HOSVD (leading left singular vectors of each mode unfolding, random
    columns where R exceeds a mode size) and from ``config.n_restarts`` random starts, each drawn from its
    own seed; the best start is kept per filter. For rank 1 the iteration is the higher-order power method
    (HOPM). Iterations stop when the relative error changes by at most ``config.tol`` (or is at most
    ``tol``), or after ``config.max_iter`` sweeps. For R >= 2, a filter whose relative error is below 0.05
    leaves ALS as soon as ALS slows down (error change below 1e-9, or below 1e-2 of the error: a swamp) and
    up to ``config.n_polish`` Levenberg-Marquardt steps on all its factors finish the fit (quadratic
    convergence near an exact fit). Every start runs the same way, so the result is never worse, filter by
    filter, than any of its starts run alone.

    The least-squares solves are regularized by a ridge scaled to the Gram matrix, and a Gram matrix that
    is still singular (components that became collinear, as in a rank-2 fit of a rank-1 filter) gets the
    minimum-norm solution, so no start aborts the layer. A start that breaks down for a filter (a
    non-finite iterate) is dropped for that filter only, which keeps its best other start; a filter on
    which every start breaks down gets zero factors (relative error 1, not converged, ``best_start`` -1).

    For R >= 2 a best rank-R approximation need not exist: the iteration then drives components to diverge
    with opposite signs while the error creeps down. This is detected by the ratio
    ``sum_r ||p_r|| ||q_r|| ||t_r|| / ||W_hat||`` exceeding ``config.degeneracy_threshold`` on a fit that
    has not converged, and reported with a :class:`DegeneracyWarning`.

    Parameters
    ----------
    W : ndarray
        Filters (O, C, kh, kw), or one filter (C, kh, kw) (treated as O = 1).
    rank : int
        R >= 1.
    seed : int or numpy.random.Generator or None
        Seeds the random restarts (and the random HOSVD columns when R exceeds a mode size).
    init : {'hosvd', 'random'} or tuple of ndarray
        The initial start: HOSVD, random (drawn from ``seed``), or given factors ``(p0, q0, t0)``.
    config : DecomposeConfig, optional
        Restarts, iteration limits, tolerance, polish steps, degeneracy threshold (default
        ``DecomposeConfig()``).
    warn : bool
        Emit the DegeneracyWarning.

    Returns
    -------
    CPResult
        Factors ``.p, .q, .t``, ``.error`` (overall relative error), ``.errors`` (per filter),
        ``.converged``, ``.n_iter``, ``.degeneracy``, ``.restart_errors``, ``.restart_seeds``.
        Float32 filters give float32 factors (the fit runs in float64).

    Raises
    ------
    ValueError
        ``rank < 1`` or ``rank > C*kh*kw``, wrong shapes, non-finite values. TypeError for non-numeric input or a ``config``
        that is not a DecomposeConfig.

    References
    ----------
    Kolda & Bader 2009 (CP-ALS, HOSVD start); De Lathauwer, De Moor & Vandewalle 2000 (HOPM);
    de Silva & Lim 2008 (degeneracy).
    """
    X, out_dtype = _as_filters(W)
    rank = check_int(rank, "rank", minimum=1)
    entries = int(np.prod(X.shape[1:]))
    if rank > entries:
        raise ValueError(f"rank: expected an int <= C*kh*kw = {entries} (no filter needs more rank-1 terms than "
                         f"entries), got {rank}")
    if config is None:
        config = DecomposeConfig()
    elif not isinstance(config, DecomposeConfig):
        raise TypeError(f"config: expected a DecomposeConfig, got {type(config).__name__}")
    gen = as_generator(seed)
    normX = fro(X)
    hopm = rank == 1

    if isinstance(init, str):
        if init == "hosvd":
            start0 = hosvd_start(X, rank, gen)
        elif init == "random":
            start0 = random_start(X, rank, gen)
        else:
            raise ValueError(f"init: expected 'hosvd', 'random' or a tuple (p0, q0, t0), got {init!r}")
    else:
        start0 = _check_init_factors(init, X, rank)
    restart_seeds = tuple(int(s) for s in gen.integers(0, 2**63 - 1, size=config.n_restarts))
    starts = [start0] + [random_start(X, rank, as_generator(s)) for s in restart_seeds]

    O = X.shape[0]
    best_fs = [np.zeros_like(f) for f in start0]
    best_err = np.full(O, np.inf)
    best_conv = np.zeros(O, dtype=bool)
    best_nit = np.zeros(O, dtype=np.int64)
    best_start = np.full(O, -1, dtype=np.int64)
    all_err = []
    for si, start in enumerate(starts):
        fs, err, conv, nit = fit_start(X, normX, start, rank, config.max_iter, config.tol, hopm, config.n_polish)
        all_err.append(err)
        better = err < best_err
        for bf, f in zip(best_fs, fs):
            bf[better] = f[better]
        best_err[better] = err[better]
        best_conv[better] = conv[better]
        best_nit[better] = nit[better]
        best_start[better] = si
    failed = best_start < 0  # every start broke down: zero factors, the trivial approximation
    best_err[failed] = np.where(normX[failed] > 0, 1.0, 0.0)

    rec = outer_all(best_fs).sum(axis=1)
    total_norm = float(np.linalg.norm(X))
    overall = float(np.linalg.norm(X - rec) / total_norm) if total_norm > 0 else 0.0
    ratio = degeneracy(best_fs)
    # a degenerate fit is still creeping down when it stops; an exact fit with cancelling terms is not flagged
    degenerate = (ratio > config.degeneracy_threshold) & ~best_conv
    if warn and np.any(degenerate):
        idx = np.flatnonzero(degenerate)
        shown = ", ".join(str(i) for i in idx[:10]) + (", ..." if idx.size > 10 else "")
        warnings.warn(
            f"decompose: the rank-{rank} CP fit of filter(s) [{shown}] looks degenerate: the rank-one "
            f"components have norms summing to {ratio[idx].max():.3g} times the norm of their sum, so they "
            f"cancel each other; a best rank-{rank} approximation may not exist (de Silva & Lim 2008). "
            "Use a lower rank, fewer iterations, or regularize the factors.",
            DegeneracyWarning,
            stacklevel=2,
        )
    p, q, t = (f.astype(out_dtype, copy=False) for f in best_fs)
    return CPResult(
        p=p, q=q, t=t, error=overall, errors=best_err, converged=best_conv, n_iter=best_nit,
        degeneracy=ratio, degenerate=degenerate, restart_errors=np.array(all_err),
        restart_seeds=restart_seeds, best_start=best_start,
    )


def project_rank(W, p0, q0, t0, max_iter=10, tol=0.0, balance=True):
    r"""Project filters back to rank R by ALS warm-started from the given factors.

    Used to train CP layers by a full-weight step followed by projection: a few ALS sweeps from the
    current factors move them to (a local) best rank-R fit of ``W``, continuously in ``W``.

    .. math::

        (p, q, t) \approx \arg\min \Big\| W[o] - \sum_r p_r \otimes q_r \otimes t_r \Big\|_F
        \quad \text{(local, from } (p_0, q_0, t_0)\text{)}

    Parameters
    ----------
    W : ndarray
        Filters (O, C, kh, kw) (or one filter (C, kh, kw) with factors of O = 1).
    p0, q0, t0 : ndarray
        Warm start, shapes (O, R, C), (O, R, kh), (O, R, kw).
    max_iter : int
        ALS sweeps (>= 0; 0 returns the start, balanced).
    tol : float
        Stop a filter early when its relative error changes by at most ``tol``.
    balance : bool
        Rescale each rank-one term so that its factors have equal norms.

    Returns
    -------
    tuple of ndarray
        ``(p, q, t)``, in the dtype of the inputs (float32 only if all are float32).

    References
    ----------
    Kolda & Bader 2009 (CP-ALS).
    """
    X, _ = _as_filters(W)
    max_iter = check_int(max_iter, "max_iter", minimum=0)
    tol = check_positive(tol, "tol", allow_zero=True)
    out_dtype = common_dtype([W, p0, q0, t0])
    start = check_factors([p0, q0, t0], ORDER3_NAMES, dtype=np.float64)
    R = start[0].shape[1]
    expected = [(X.shape[0], R, X.shape[m + 1]) for m in range(3)]
    for f, e, n in zip(start, expected, ORDER3_NAMES):
        if f.shape != e:
            raise ValueError(f"{n}: expected shape {e} to match W {X.shape}, got {f.shape}")
    fs, _, _, _ = fit_start(X, fro(X), start, R, max_iter, tol, hopm=False)
    return tuple(f.astype(out_dtype, copy=False) for f in (balance_terms(fs) if balance else fs))
