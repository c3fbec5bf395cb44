r"""CP algebra and the factored update: reconstruction, the chain rule, Eqs. 2-3.

A filter in CP form is :math:`W[o] = \sum_r f_1[o, r] \otimes \cdots \otimes f_d[o, r]`; training the factors
by gradient descent with learning rate :math:`\alpha` moves it to

.. math::

    W'' = \sum_r \bigotimes_n (f_n - \alpha g_n) = W - \alpha \Delta,

which Lee & Lee write as Eq. 2 (a correction of the plain step) and Eq. 3 (:math:`\Delta`, misprinted there;
see :func:`genbound.symbolic.verify_eq3`).

References
----------
Lee & Lee, "Effect of local search with real data on generalization in deep learning", Eqs. 2-3.
T. G. Kolda and B. W. Bader, "Tensor decompositions and applications", SIAM Review 51(3), 2009.
"""
from __future__ import annotations

import string

import numpy as np

from genbound._checks import as_float_array
from genbound.factor.arguments import check_lr, common_dtype, factor_arguments, step_arguments

__all__ = ["reconstruct", "factor_grads", "delta", "factor_step", "weight_step", "eq2_step"]


# ----------------------------------------------------------------------------------------------------
# outer products, batched over (O, R)
# ----------------------------------------------------------------------------------------------------

def outer(a, f):
    """Outer product along trailing axes, batched over (O, R): (O, R, *s) x (O, R, n) -> (O, R, *s, n)."""
    o, r = f.shape[:2]
    return (a.reshape(o, r, -1, 1) * f[:, :, None, :]).reshape(a.shape + (f.shape[2],))


def outer_all(factors):
    """The rank-one terms ``f1[o, r] x ... x fd[o, r]``, shape (O, R, n_1, ..., n_d)."""
    cur = factors[0]
    for f in factors[1:]:
        cur = outer(cur, f)
    return cur


# ----------------------------------------------------------------------------------------------------
# reconstruction and the chain rule
# ----------------------------------------------------------------------------------------------------

def reconstruct(p=None, q=None, t=None, *, factors=None):
    r"""Full filters from CP factors, any rank and order.

    Call as ``reconstruct(p, q, t)`` or ``reconstruct(factors=[f1, ..., fd])``.

    .. math::

        W[o] = \sum_{r=1}^{R} f_1[o, r] \otimes \cdots \otimes f_d[o, r]

    Parameters
    ----------
    p, q, t : ndarray
        Factor arrays of shapes (O, R, C), (O, R, kh), (O, R, kw).
    factors : list of ndarray
        The order-d form: d arrays (O, R, n_i).

    Returns
    -------
    ndarray
        Shape (O, n_1, ..., n_d); float32 when every factor is float32, else float64.

    References
    ----------
    Kolda & Bader 2009, Sec. 3 (the CP model).
    """
    fs, _, _ = factor_arguments("reconstruct", p, q, t, factors)
    return outer_all(fs).sum(axis=1)


def _einsum_grad_spec(order, mode):
    letters = string.ascii_lowercase.replace("o", "").replace("r", "")
    if order > len(letters):
        raise ValueError(f"factors: order {order} is too large (at most {len(letters)})")
    idx = letters[:order]
    inputs = ["o" + idx] + ["or" + idx[m] for m in range(order) if m != mode]
    return ",".join(inputs) + "->or" + idx[mode]


def chain_rule(G, fs, names):
    """Factor gradients from the weight gradient for checked factor arrays (see :func:`factor_grads`)."""
    G_arr = np.asarray(G)
    expected = (fs[0].shape[0],) + tuple(f.shape[2] for f in fs)
    if G_arr.shape != expected:
        shapes = ", ".join(f"{n} {f.shape}" for n, f in zip(names, fs))
        raise ValueError(f"G: expected shape {expected} to match the factors ({shapes}), got {G_arr.shape}")
    dtype = common_dtype(fs + [G_arr])
    G_arr = as_float_array(G_arr, "G", dtype=dtype)
    fs = [f.astype(dtype, copy=False) for f in fs]
    d = len(fs)
    grads = []
    for mode in range(d):
        others = [fs[m] for m in range(d) if m != mode]
        if not others:  # order 1: W = sum_r f_r, so every rank term gets G itself
            grads.append(np.ascontiguousarray(np.broadcast_to(G_arr[:, None, :], fs[0].shape)))
            continue
        grads.append(np.einsum(_einsum_grad_spec(d, mode), G_arr, *others, optimize=True))
    return grads


def factor_grads(G, p=None, q=None, t=None, *, factors=None):
    r"""Gradients of the CP factors from the weight-space gradient (the chain rule).

    Call as ``factor_grads(G, p, q, t)`` or ``factor_grads(G, factors=[f1, ..., fd])``.

    .. math::

        \frac{\partial L}{\partial p_{ri}} = \sum_{jk} G_{ijk}\, q_{rj}\, t_{rk},\qquad
        G = \frac{\partial L}{\partial W},

    and likewise for every other mode (contract ``G`` with all the other factors).

    Parameters
    ----------
    G : ndarray
        Weight-space gradient, shape (O, n_1, ..., n_d).
    p, q, t : ndarray
        Factor arrays (O, R, n_i).
    factors : list of ndarray
        The order-d form.

    Returns
    -------
    tuple or list of ndarray
        ``(gp, gq, gt)`` for the order-3 form, a list for the keyword form; each the shape of its factor.

    References
    ----------
    Lee & Lee (the chain rule behind Eq. 3); Kolda & Bader 2009, Sec. 3.4 (MTTKRP).
    """
    fs, names, listed = factor_arguments("factor_grads", p, q, t, factors)
    grads = chain_rule(G, fs, names)
    return grads if listed else tuple(grads)


# ----------------------------------------------------------------------------------------------------
# Eqs. 2-3: the factored update
# ----------------------------------------------------------------------------------------------------

def delta(p=None, q=None, t=None, gp=None, gq=None, gt=None, lr=None, *, factors=None, grads=None):
    r"""The exact weight move of a factored gradient step, Eq. 3 corrected: ``W'' = W - lr * Delta``.

    Call as ``delta(p, q, t, gp, gq, gt, lr)`` or ``delta(factors=[f1, ..., fd], grads=[g1, ..., gd], lr=lr)``.

    .. math::

        \Delta = \sum_{\emptyset \ne S \subseteq \{1, \dots, d\}} (-\alpha)^{|S|-1}
        \bigotimes_{n=1}^{d} \begin{cases} g_n & n \in S \\ f_n & n \notin S \end{cases}

    summed over the R rank-one terms. For d = 3 this is
    :math:`\Delta = p q g_t + q t g_p + p t g_q - \alpha (p g_q g_t + q g_p g_t + t g_p g_q)
    + \alpha^2 g_p g_q g_t` (the paper prints :math:`t g_p g_t` for the last bracketed term).

    The sum is evaluated by the recursion :math:`A_{m+1} = A_m \otimes f`,
    :math:`B_{m+1} = A_m \otimes g + B_m \otimes (f - \alpha g)`, which never divides by
    :math:`\alpha`, so it stays accurate as :math:`\alpha \to 0` (and ``lr = 0`` gives the first-order
    term). Any step direction may stand in for the gradients (momentum, weight decay: see
    :func:`genbound.nn.sgd_direction`); the identity is algebraic.

    Parameters
    ----------
    p, q, t : ndarray
        Factor arrays (O, R, n_i).
    gp, gq, gt : ndarray
        Their gradients (or step directions), same shapes.
    lr : float
        Learning rate, any finite real.
    factors, grads : list of ndarray
        The order-d form: d factor arrays and their d gradients.

    Returns
    -------
    ndarray
        Delta, shape (O, n_1, ..., n_d).

    References
    ----------
    Lee & Lee, Eqs. 2-3.
    """
    fs, gs, lr, _ = step_arguments(p, q, t, gp, gq, gt, lr, factors=factors, grads=grads, caller="delta")
    A, B = fs[0], gs[0]
    for f, g in zip(fs[1:], gs[1:]):
        # (A - lr B) x (f - lr g) = A x f - lr (A x g + B x (f - lr g))
        B = outer(A, g) + outer(B, f - lr * g)
        A = outer(A, f)
    return B.sum(axis=1)


def factor_step(p=None, q=None, t=None, gp=None, gq=None, gt=None, lr=None, *, factors=None, grads=None):
    r"""One gradient step on the factors: ``(p - lr gp, q - lr gq, t - lr gt)``.

    Call as ``factor_step(p, q, t, gp, gq, gt, lr)`` (returns a tuple) or
    ``factor_step(factors=[f1, ..., fd], grads=[g1, ..., gd], lr=lr)`` (returns a list).

    .. math::

        (p'', q'', t'') = (p - \alpha g_p,\ q - \alpha g_q,\ t - \alpha g_t)

    References
    ----------
    Lee & Lee, Eq. 2.
    """
    fs, gs, lr, listed = step_arguments(p, q, t, gp, gq, gt, lr, factors=factors, grads=grads,
                                        caller="factor_step")
    out = [f - lr * g for f, g in zip(fs, gs)]
    return out if listed else tuple(out)


def _check_weight_pair(W, G, names=("W", "G")):
    W_arr, G_arr = np.asarray(W), np.asarray(G)
    if W_arr.shape != G_arr.shape:
        raise ValueError(f"{names[1]}: expected shape {W_arr.shape} to match {names[0]}, got {G_arr.shape}")
    dtype = common_dtype([W_arr, G_arr])
    return as_float_array(W_arr, names[0], dtype=dtype), as_float_array(G_arr, names[1], dtype=dtype)


def weight_step(W, G, lr):
    r"""Plain gradient step on the full weight: ``w' = W - lr * G``.

    .. math::

        w'_{ijk} = w_{ijk} - \alpha \frac{\partial L}{\partial w_{ijk}}

    References
    ----------
    Lee & Lee, Eq. 2 (the definition of :math:`w'`).
    """
    lr = check_lr(lr)
    W, G = _check_weight_pair(W, G)
    return W - lr * G


def eq2_step(W, G, Delta, lr):
    r"""The factored step written as a correction of the plain step (Eq. 2).

    .. math::

        w'' = w' - \alpha (\Delta - G), \qquad w' = W - \alpha G,

    which equals ``W - lr * Delta``: the factored step is the plain step plus the departure
    :math:`-\alpha(\Delta - G)` (see :func:`genbound.factor.departure`).

    References
    ----------
    Lee & Lee, Eq. 2.
    """
    lr = check_lr(lr)
    W, G = _check_weight_pair(W, G)
    _, D = _check_weight_pair(W, Delta, names=("W", "Delta"))
    return (W - lr * G) - lr * (D - G)
