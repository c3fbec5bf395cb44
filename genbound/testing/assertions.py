r"""Assertion helpers for users' test suites: the factored update (Eq. 2-3), the symmetry of Hessian-vector
products, and the properties every generalization bound must have.

Each helper computes its claim independently of the code it checks (the stepped CP filter by explicit outer
products; the symmetry from two Hessian-vector products; the bound's properties from calls on a grid), raises
an AssertionError whose message says what failed with which arguments, and returns the measured error.

References
----------
Lee & Lee, "Effect of local search with real data on generalization in deep learning" (Eqs. 2-3).
B. A. Pearlmutter, "Fast exact multiplication by the Hessian", Neural Computation 6(1), 1994.
D. Maclaurin, D. Duvenaud and R. P. Adams, "Autograd: effortless gradients in NumPy", 2015 (assertion helpers
shipped inside the package, ``autograd.test_util``).
"""
from __future__ import annotations

import itertools
import math
import numbers

import numpy as np

from genbound._checks import check_int, check_model, check_positive
from genbound._rng import as_generator
from genbound.factor import delta, step_arguments
from genbound.nn import Objective

__all__ = ["assert_update_equivalence", "assert_hvp_symmetric", "assert_bound_valid"]

_LETTERS = "abcdefghijklmnopqrstuvw"


def _cp_full(factors):
    """sum_r f1[o, r] (x) f2[o, r] (x) ... (x) fd[o, r] as (O, n_1, ..., n_d), by one einsum (in float64)."""
    d = len(factors)
    subs = ",".join(f"zy{_LETTERS[i]}" for i in range(d))
    return np.einsum(f"{subs}->z{_LETTERS[:d]}", *(np.asarray(f, dtype=np.float64) for f in factors))


def _rtol_for(dtype, rtol, float64_default, float32_default, name="rtol"):
    if rtol is None:
        return float32_default if np.dtype(dtype) == np.float32 else float64_default
    return check_positive(rtol, name)


def assert_update_equivalence(p=None, q=None, t=None, grads=None, lr=None, *, factors=None, rtol=None):
    r"""Assert Eq. 2-3: a gradient step on the CP factors moves the filter by exactly ``-lr * delta``.

    .. math::

        (p - \alpha g_p) \otimes (q - \alpha g_q) \otimes (t - \alpha g_t) = W - \alpha\, \Delta(p, q, t,
        g_p, g_q, g_t, \alpha), \qquad W = p \otimes q \otimes t,

    summed over the rank axis, with :math:`\Delta` from :func:`genbound.factor.delta` (Eq. 3 corrected). The
    left side is computed independently, by explicit outer products of the stepped factors (one einsum, in
    float64). Any rank R and any order d (keyword form).

    Parameters
    ----------
    p, q, t : array_like
        Order-3 factors (O, R, C), (O, R, kh), (O, R, kw).
    grads : sequence of array_like
        Their gradients (or step directions): ``(gp, gq, gt)``, or ``[g1, ..., gd]`` with ``factors``.
    lr : float
        Learning rate :math:`\alpha`, any finite real.
    factors : list of array_like, keyword only
        The order-d form: ``assert_update_equivalence(factors=[f1, ..., fd], grads=[g1, ..., gd], lr=lr)``.
    rtol : float, optional
        Tolerance on :math:`\|W'' - (W - \alpha\Delta)\| / \max(\|W''\|, \|W\|, |\alpha| \|\Delta\|)`.
        Default 1e-12 (float64 factors), 1e-5 (all float32, as ``delta`` computes in float32 then).

    Returns
    -------
    float
        The relative error.

    Raises
    ------
    AssertionError
        When the two sides differ by more than ``rtol``.
    TypeError, ValueError
        Malformed arguments (as :func:`genbound.factor.delta`). Integer, Fortran-ordered and read-only arrays
        are converted (never written to).

    References
    ----------
    Lee & Lee, Eqs. 2-3 (the printed Eq. 3 has a misprint; see :func:`genbound.symbolic.verify_eq3`).
    """
    caller = "assert_update_equivalence"
    if factors is None:
        if grads is None or isinstance(grads, np.ndarray) or not isinstance(grads, (list, tuple)) or len(grads) != 3:
            raise TypeError(f"grads: expected the three gradients (gp, gq, gt) of p, q, t, got "
                            f"{type(grads).__name__}; call as {caller}(p, q, t, (gp, gq, gt), lr) or "
                            f"{caller}(factors=[f1, ..., fd], grads=[g1, ..., gd], lr=lr)")
        fs, gs, lr, _ = step_arguments(p, q, t, *grads, lr, caller=caller)
    else:
        if not isinstance(grads, (list, tuple)):
            raise TypeError(f"grads: expected a list of d gradient arrays with factors=, got {type(grads).__name__}")
        fs, gs, lr, _ = step_arguments(p, q, t, factors=factors, grads=list(grads), lr=lr, caller=caller)
    rtol = _rtol_for(fs[0].dtype, rtol, 1e-12, 1e-5)
    d = delta(factors=fs, grads=gs, lr=lr)
    w = _cp_full(fs)
    stepped = _cp_full([f.astype(np.float64) - lr * g.astype(np.float64) for f, g in zip(fs, gs)])
    if d.shape != w.shape:
        raise AssertionError(f"delta has shape {d.shape}, expected the filter shape {w.shape}")
    moved = w - lr * np.asarray(d, dtype=np.float64)
    scale = max(np.linalg.norm(stepped), np.linalg.norm(w), abs(lr) * np.linalg.norm(d))
    err = 0.0 if scale == 0 else float(np.linalg.norm(stepped - moved) / scale)
    if not err <= rtol:
        worst = np.unravel_index(int(np.argmax(np.abs(stepped - moved))), w.shape)
        raise AssertionError(
            f"Eq. 2-3 do not hold (order {len(fs)}, rank {fs[0].shape[1]}, lr={lr!r}): the stepped factors give "
            f"W'' with ||W'' - (W - lr*delta)|| / scale = {err:.3e} > rtol {rtol:.1e}; largest difference at index "
            f"{tuple(int(i) for i in worst)}: W'' = {stepped[worst]!r}, W - lr*delta = {moved[worst]!r}")
    return err


def assert_hvp_symmetric(model, data, n_pairs=3, seed=0, rtol=None, chunk_size=1024):
    r"""Assert that the model's Hessian-vector products are symmetric: :math:`u^\top (H v) = v^\top (H u)`.

    For ``n_pairs`` pairs of random directions (standard normal, drawn from ``seed``), with H the Hessian of
    the mean loss on ``data`` (exact R-operator products through :class:`genbound.nn.Objective`), the error

    .. math:: \frac{|u^\top H v - v^\top H u|}{\max(\|u\| \|H v\|, \|v\| \|H u\|)}

    must stay below ``rtol``. A wrong tangent rule in one layer generally breaks this symmetry.

    Parameters
    ----------
    model : genbound.nn.Sequential
    data : Dataset or (x, y)
        Its training part, or the pair.
    n_pairs : int
        Number of direction pairs (default 3).
    seed : int, numpy.random.Generator or None
    rtol : float, optional
        Default 1e-10 (float64 models), 1e-4 (float32).
    chunk_size : int
        Memory chunk of the full-data products.

    Returns
    -------
    float
        The largest error over the pairs.

    Raises
    ------
    AssertionError
        Naming the pair and both products.

    References
    ----------
    B. A. Pearlmutter, "Fast exact multiplication by the Hessian", Neural Computation 6(1), 1994.
    """
    model = check_model(model)
    n_pairs = check_int(n_pairs, "n_pairs", 1)
    rtol = _rtol_for(model.dtype, rtol, 1e-10, 1e-4)
    objective = Objective(model, data, chunk_size=chunk_size)
    rng = as_generator(seed)
    worst = 0.0
    for k in range(n_pairs):
        u = rng.normal(size=model.n_params).astype(model.dtype).astype(np.float64)
        v = rng.normal(size=model.n_params).astype(model.dtype).astype(np.float64)
        hu, hv = objective.hvp(u), objective.hvp(v)
        uhv, vhu = float(u @ hv), float(v @ hu)
        scale = max(np.linalg.norm(u) * np.linalg.norm(hv), np.linalg.norm(v) * np.linalg.norm(hu))
        err = 0.0 if scale == 0 else abs(uhv - vhu) / scale
        if not err <= rtol:
            raise AssertionError(f"Hessian-vector products are not symmetric (pair {k}): u.Hv = {uhv!r}, "
                                 f"v.Hu = {vhu!r}, relative error {err:.3e} > rtol {rtol:.1e}")
        worst = max(worst, err)
    return worst


#: The default grid of :func:`assert_bound_valid`.
BOUND_GRID = dict(emp_errors=(0.0, 1e-3, 0.05, 0.2, 0.5, 0.8, 1.0), kls=(0.0, 0.1, 10.0, 1e3, 1e5),
                  ms=(10, 1000, 60000), deltas=(0.01, 0.05))


def _grid(values, name, check):
    if isinstance(values, (numbers.Number, np.ndarray)) and np.ndim(values) == 0:
        values = (values,)
    values = list(np.asarray(values).ravel().tolist()) if isinstance(values, np.ndarray) else list(values)
    if not values:
        raise ValueError(f"{name}: expected at least one value, got none")
    return sorted(check(v, f"{name}[{i}]") for i, v in enumerate(values))


def _probability(v, name, open_interval):
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
        raise TypeError(f"{name}: expected a finite real number, got {v!r}")
    ok = 0 < v < 1 if open_interval else 0 <= v <= 1
    if not ok:
        raise ValueError(f"{name}: expected a number in {'(0, 1)' if open_interval else '[0, 1]'}, got {v!r}")
    return float(v)


def _bound_value(bound_fn, args):
    out = bound_fn(*args)
    value = getattr(out, "bound", out)
    real = isinstance(value, numbers.Real) or (isinstance(value, np.ndarray) and value.ndim == 0
                                               and value.dtype.kind in "fiu")
    if isinstance(value, bool) or not real:
        raise TypeError(f"bound_fn: expected a real number (or a result with .bound), got {type(out).__name__}")
    return float(value)


def assert_bound_valid(bound_fn, emp_errors=None, kls=None, ms=None, deltas=None, *, clipped=False, atol=1e-12):
    r"""Assert that a generalization bound behaves as a bound on a grid of valid arguments.

    ``bound_fn(emp_error, kl, m, delta)`` (a float, or a result with a ``.bound`` field such as
    :func:`genbound.bounds.catoni_bound`'s) is evaluated on the product of the grids, and must be

    - a number, not NaN;
    - at least the empirical error: :math:`B(\hat e, \mathrm{KL}, m, \delta) \ge \hat e`;
    - in [0, 1] after clipping to 1 (``clipped=True``: in [0, 1] as returned, for the kl-inverse forms);
    - non-decreasing in the empirical error (at fixed KL, m, delta) and non-decreasing in KL (at fixed
      empirical error, m, delta),

    each up to ``atol`` (times 1 + |B|). Wrap a bound with another signature, e.g.
    ``lambda e, kl, m, d: gb.bounds.occam_bound(e, kl / math.log(2), m, d)``.

    Parameters
    ----------
    bound_fn : callable
    emp_errors : sequence of float in [0, 1], optional
        Default (0, 1e-3, 0.05, 0.2, 0.5, 0.8, 1).
    kls : sequence of float >= 0, optional
        Default (0, 0.1, 10, 1e3, 1e5).
    ms : sequence of int >= 1, optional
        Default (10, 1000, 60000).
    deltas : sequence of float in (0, 1), optional
        Default (0.01, 0.05).
    clipped : bool
        Also require B <= 1 as returned.
    atol : float
        Slack of each comparison (rounding; default 1e-12).

    Returns
    -------
    int
        The number of argument tuples checked.

    Raises
    ------
    AssertionError
        Naming each violated property, how often it fails and two examples with their arguments and values.

    References
    ----------
    D. McAllester, "PAC-Bayesian model averaging", COLT 1999; J. Langford, "Tutorial on practical prediction
    theory for classification", JMLR 6, 2005.
    """
    if not callable(bound_fn):
        raise TypeError(f"bound_fn: expected a callable bound_fn(emp_error, kl, m, delta), got "
                        f"{type(bound_fn).__name__}")
    atol = check_positive(atol, "atol", allow_zero=True)
    grid = BOUND_GRID
    es = _grid(grid["emp_errors"] if emp_errors is None else emp_errors, "emp_errors",
               lambda v, n: _probability(v, n, False))
    ks = _grid(grid["kls"] if kls is None else kls, "kls", lambda v, n: check_positive(v, n, allow_zero=True))
    mm = _grid(grid["ms"] if ms is None else ms, "ms", lambda v, n: check_int(v, n, 1))
    ds = _grid(grid["deltas"] if deltas is None else deltas, "deltas", lambda v, n: _probability(v, n, True))
    values = {}
    problems = []
    for args in itertools.product(es, ks, mm, ds):
        b = _bound_value(bound_fn, args)
        values[args] = b
        call = f"bound_fn(emp_error={args[0]!r}, kl={args[1]!r}, m={args[2]!r}, delta={args[3]!r})"
        slack = atol * (1 + abs(b)) if math.isfinite(b) else atol
        if math.isnan(b):
            problems.append(("NaN", f"{call} is NaN"))
            continue
        if b < args[0] - slack:
            problems.append(("below the empirical error", f"{call} = {b!r} < {args[0]!r}"))
        if clipped and b > 1 + slack:
            problems.append(("above 1", f"{call} = {b!r}"))
    for axis, what in ((0, "the empirical error"), (1, "KL")):
        for args in values:
            if axis == 0:
                nxt = [e for e in es if e > args[0]]
                later = (nxt[0], *args[1:]) if nxt else None
            else:
                nxt = [k for k in ks if k > args[1]]
                later = (args[0], nxt[0], *args[2:]) if nxt else None
            if later is None:
                continue
            b0, b1 = values[args], values[later]
            if math.isnan(b0) or math.isnan(b1):
                continue
            if b1 < b0 - atol * (1 + abs(b0) if math.isfinite(b0) else 1):
                problems.append((f"decreasing in {what}", f"bound{args} = {b0!r} > bound{later} = {b1!r}"))
    if problems:
        lines = [f"bound_fn fails {len(problems)} property check(s) on the grid of (emp_error, kl, m, delta):"]
        for kind in dict.fromkeys(k for k, _ in problems):
            cases = [text for k, text in problems if k == kind]
            lines.append(f"  {kind} ({len(cases)} cases), e.g.")
            lines += [f"    {text}" for text in cases[:2]]
        raise AssertionError("\n".join(lines))
    return len(values)
