r"""How CP factor arrays are passed and checked: the two call forms shared by the whole package.

Every function of :mod:`genbound.factor` that takes factors has exactly two forms:

* order 3, positional, with the paper's names: ``reconstruct(p, q, t)``,
  ``delta(p, q, t, gp, gq, gt, lr)``, ``departure(p, q, t, G, lr)``, ``cp_jacobian(p, q, t)``;
* any order d, by keyword: ``reconstruct(factors=[f1, ..., fd])``,
  ``delta(factors=[f1, ..., fd], grads=[g1, ..., gd], lr=lr)``, ``departure(factors=[...], G=G, lr=lr)``,
  ``cp_jacobian(factors=[...])``.

Mixing the two, or passing a list where an array belongs, is refused with a TypeError that shows both
forms. Factor arrays have shapes (O, R, n_i) and share the output axis O and the rank axis R.
"""
from __future__ import annotations

import numbers

import numpy as np

from genbound._checks import as_float_array

__all__ = ["step_arguments"]

ORDER3_NAMES = ("p", "q", "t")
ORDER3_GRAD_NAMES = ("gp", "gq", "gt")


def common_dtype(arrays):
    """float32 when every input is float32, else float64."""
    kinds = [np.asarray(a).dtype for a in arrays]
    if kinds and all(k == np.float32 for k in kinds):
        return np.float32
    return np.float64


def check_lr(lr, name="lr"):
    """Return ``float(lr)`` for a finite real learning rate (any sign)."""
    if lr is None:
        raise TypeError(f"{name}: a learning rate is required")
    if isinstance(lr, bool) or not isinstance(lr, numbers.Real):
        raise TypeError(f"{name}: expected a real number, got {type(lr).__name__} {lr!r}")
    lr = float(lr)
    if not np.isfinite(lr):
        raise ValueError(f"{name}: expected a finite number, got {lr}")
    return lr


def listed_names(order, grads=False):
    """Names used in messages for the keyword form: ``factors[0]``, ... or ``grads[0]``, ...."""
    base = "grads" if grads else "factors"
    return tuple(f"{base}[{i}]" for i in range(order))


def check_factors(factors, names, dtype=None, what="factors", ndim=3):
    """Validate CP factor arrays of shapes (O, R, n_i) sharing O and R; return float arrays.

    With ``ndim=2`` the arrays are the factors of one filter, (R, n_i); they are returned with a leading
    axis of length 1.
    """
    factors = list(factors)
    if not factors:
        raise ValueError(f"{what}: expected at least one factor array, got none")
    if dtype is None:
        dtype = common_dtype(factors)
    out = []
    for f, name in zip(factors, names):
        arr = np.asarray(f)
        if arr.ndim != ndim:
            layout = "(O, R, n)" if ndim == 3 else "(R, n) for one filter"
            raise ValueError(f"{name}: expected a {ndim}-d factor array {layout}, got shape {arr.shape}")
        out.append(as_float_array(arr if ndim == 3 else arr[None], name, dtype=dtype))
    o_r = {(a.shape[0], a.shape[1]) for a in out}
    if len(o_r) != 1:
        shapes = ", ".join(f"{n} {a.shape}" for n, a in zip(names, out))
        raise ValueError(f"{what}: factor arrays must share the output and rank axes (O, R); got {shapes}")
    if out[0].shape[1] < 1:
        raise ValueError(f"{what}: the rank axis must have length >= 1, got shape {out[0].shape}")
    return out


def _forms(caller, extra):
    return (f"call as {caller}(p, q, t{extra[0]}) for order 3 or {caller}(factors=[f1, ..., fd]{extra[1]}) "
            "for any order")


def _chosen_form(caller, positional, names, keyword, keyword_names, extra):
    """``True`` for the keyword form, ``False`` for the order-3 form; TypeError for anything else."""
    forms = _forms(caller, extra)
    if any(value is not None for value in keyword):
        if any(value is not None for value in positional):
            raise TypeError(f"{caller}: give either {', '.join(names)} or "
                            f"{', '.join(n + '=' for n in keyword_names)}, not both; " + forms)
        for value, name in zip(keyword, keyword_names):
            if value is None:
                raise TypeError(f"{caller}: missing {name}=; " + forms)
            if not isinstance(value, (list, tuple)):
                raise TypeError(f"{name}: expected a list of factor arrays, got {type(value).__name__}; " + forms)
        return True
    missing = [name for name, value in zip(names, positional) if value is None]
    if missing:
        raise TypeError(f"{caller}: missing {', '.join(missing)}; " + forms)
    for value, name in zip(positional, names):
        if isinstance(value, (list, tuple)):
            raise TypeError(f"{name}: expected an array, got a {type(value).__name__}; " + forms)
    return False


def factor_arguments(caller, p, q, t, factors, ndim=3):
    """Resolve ``(p, q, t)`` or ``factors=[...]`` into checked arrays.

    Returns
    -------
    arrays : list of ndarray
    names : tuple of str
        The argument names, for messages.
    listed : bool
        True for the keyword form.
    """
    listed = _chosen_form(caller, (p, q, t), ORDER3_NAMES, (factors,), ("factors",), ("", ""))
    if listed:
        names = listed_names(len(factors))
        return check_factors(factors, names, ndim=ndim), names, True
    return check_factors((p, q, t), ORDER3_NAMES, ndim=ndim), ORDER3_NAMES, False


def step_arguments(p=None, q=None, t=None, gp=None, gq=None, gt=None, lr=None, *, factors=None, grads=None,
                   caller="delta"):
    r"""Check the arguments of a factored gradient step, in either documented form.

    ``step_arguments(p, q, t, gp, gq, gt, lr)`` (order 3) or
    ``step_arguments(factors=[f1, ..., fd], grads=[g1, ..., gd], lr=lr)`` (any order d). The one parser
    behind :func:`delta`, :func:`factor_step` and functions that mirror them
    (:func:`genbound.symbolic.lambdify_delta`).

    Parameters
    ----------
    p, q, t, gp, gq, gt : ndarray
        Order-3 factors (O, R, n_i) and their gradients (or step directions), same shapes.
    lr : float
        Learning rate, any finite real.
    factors, grads : list of ndarray
        The keyword form: d factor arrays and d gradient arrays.
    caller : str
        Function name shown in error messages.

    Returns
    -------
    factors : list of ndarray
        Float arrays, float32 only when every input is float32.
    grads : list of ndarray
    lr : float
    listed : bool
        True for the keyword form (callers then return lists, tuples otherwise).

    Raises
    ------
    TypeError
        The forms mixed, an argument missing, a list where an array belongs, a non-real ``lr``.
    ValueError
        Shapes that do not match, non-finite values or ``lr``.
    """
    listed = _chosen_form(caller, (p, q, t, gp, gq, gt), ORDER3_NAMES + ORDER3_GRAD_NAMES, (factors, grads),
                          ("factors", "grads"), (", gp, gq, gt, lr", ", grads=[g1, ..., gd], lr=lr"))
    if listed:
        fnames, gnames = listed_names(len(factors)), listed_names(len(grads), grads=True)
    else:
        factors, grads = (p, q, t), (gp, gq, gt)
        fnames, gnames = ORDER3_NAMES, ORDER3_GRAD_NAMES
    lr = check_lr(lr)
    if len(grads) != len(factors):
        raise ValueError(f"{caller}: got {len(factors)} factor arrays but {len(grads)} gradient arrays: the lists "
                         "must have the same order (one gradient per factor)")
    dtype = common_dtype(list(factors) + list(grads))
    factors = check_factors(factors, fnames, dtype=dtype)
    out = []
    for g, f, gname, fname in zip(grads, factors, gnames, fnames):
        arr = np.asarray(g)
        if arr.shape != f.shape:
            raise ValueError(f"{gname}: expected shape {f.shape} to match {fname}, got {arr.shape}")
        out.append(as_float_array(arr, gname, dtype=dtype))
    return factors, out, lr, listed
