r"""The Jacobian of the CP map and the dimension of the set of rank-R filters.

.. math::

    \dim \{ \textstyle\sum_{r=1}^{R} p_r \otimes q_r \otimes t_r \} \text{ near a point}
    = \operatorname{rank} \frac{\partial \operatorname{vec} W}{\partial (p, q, t)},

which is :math:`C + k_h + k_w - 2` for rank 1 (two scalings per rank-one term).

References
----------
T. G. Kolda and B. W. Bader, "Tensor decompositions and applications", SIAM Review 51(3), 2009.
"""
from __future__ import annotations

from collections import namedtuple

import numpy as np

from genbound._checks import check_int, check_positive
from genbound._rng import as_generator
from genbound.factor.algebra import outer_all
from genbound.factor.arguments import factor_arguments

__all__ = ["cp_jacobian", "cp_manifold_dimension", "ManifoldDimension"]


def cp_jacobian(p=None, q=None, t=None, *, factors=None):
    r"""Dense Jacobian of the CP map (factors of ONE filter) -> vec(W).

    Call as ``cp_jacobian(p, q, t)`` with ``p`` (R, C), ``q`` (R, kh), ``t`` (R, kw), or
    ``cp_jacobian(factors=[f1, ..., fd])`` with arrays (R, n_i).

    .. math::

        \frac{\partial W_{ijk}}{\partial p_{ri'}} = \delta_{ii'}\, q_{rj}\, t_{rk}, \quad
        \frac{\partial W_{ijk}}{\partial q_{rj'}} = p_{ri}\, \delta_{jj'}\, t_{rk}, \quad
        \frac{\partial W_{ijk}}{\partial t_{rk'}} = p_{ri}\, q_{rj}\, \delta_{kk'}

    Returns
    -------
    ndarray
        Shape (C*kh*kw, R*(C+kh+kw)). Rows follow ``W.ravel()`` (C order); columns follow
        ``concatenate([p.ravel(), q.ravel(), t.ravel()])``. ``J.T @ G.ravel()`` is the chain rule.

    References
    ----------
    Kolda & Bader 2009, Sec. 3 (CP model); Lee & Lee (rank-1 filters).
    """
    fs, _, _ = factor_arguments("cp_jacobian", p, q, t, factors, ndim=2)
    return jacobian_batched(fs)[0]


def jacobian_batched(fs):
    """CP Jacobians of a batch of filters: factors (O, R, n_i) -> (O, prod n_i, R * sum n_i)."""
    O, R = fs[0].shape[:2]
    sizes = [f.shape[2] for f in fs]
    n_rows = int(np.prod(sizes))
    blocks = []
    for mode, size in enumerate(sizes):
        # batch axis (O * size): the perturbed entry i' of this mode; that mode's factor becomes e_i'
        eye = np.broadcast_to(np.eye(size, dtype=fs[0].dtype)[None, :, None, :], (O, size, R, size))
        parts = [
            eye.reshape(O * size, R, size) if m == mode
            else np.broadcast_to(f[:, None], (O, size, R, f.shape[2])).reshape(O * size, R, f.shape[2])
            for m, f in enumerate(fs)
        ]
        full = outer_all(parts).reshape(O, size, R, n_rows)
        blocks.append(full.transpose(0, 3, 2, 1).reshape(O, n_rows, R * size))
    return np.concatenate(blocks, axis=2)


ManifoldDimension = namedtuple("ManifoldDimension", ["dim", "tol", "singular_values"])
ManifoldDimension.__doc__ = """Numerical rank of the CP Jacobian: ``(dim, tol, singular_values)``."""


#: Largest dense CP Jacobian :func:`cp_manifold_dimension` builds (entries; 400 MB in float64).
MAX_JACOBIAN_ENTRIES = 50_000_000


def cp_manifold_dimension(C, kh, kw, rank=1, seed=0, tol=None):
    r"""Dimension of the set of rank-R filters near a generic point: the rank of the CP Jacobian.

    Draws generic factors (standard normal, from ``seed``), builds :func:`cp_jacobian` and counts singular
    values above ``tol``. For rank 1 the answer is :math:`C + k_h + k_w - 2` (each rank-1 term has two
    scaling redundancies); for rank R it is generically :math:`\min(R (C + k_h + k_w - 2), C k_h k_w)`,
    except for a few defective shapes.

    .. math::

        \dim = \#\{ i : \sigma_i(J) > \text{tol} \}, \qquad
        \text{tol} = \sigma_{\max}(J) \cdot \max(\text{shape}(J)) \cdot \varepsilon_{\text{float64}}
        \text{ by default (NumPy's matrix\_rank rule)}.

    Parameters
    ----------
    C, kh, kw : int
        Filter shape, each >= 1.
    rank : int
        R >= 1.
    seed : int or numpy.random.Generator or None
        Draws the generic point.
    tol : float, optional
        Threshold on the singular values (default: NumPy's rule above).

    Returns
    -------
    ManifoldDimension
        Named tuple ``(dim, tol, singular_values)``.

    References
    ----------
    Kolda & Bader 2009, Sec. 3.1-3.2 (CP rank, uniqueness).
    """
    C = check_int(C, "C", minimum=1)
    kh = check_int(kh, "kh", minimum=1)
    kw = check_int(kw, "kw", minimum=1)
    rank = check_int(rank, "rank", minimum=1)
    entries = C * kh * kw
    if rank > entries:
        raise ValueError(f"rank: expected an int <= C*kh*kw = {entries} (no filter needs more rank-1 terms than "
                         f"entries), got {rank}")
    if entries * rank * (C + kh + kw) > MAX_JACOBIAN_ENTRIES:
        raise ValueError(f"C, kh, kw, rank: the dense Jacobian would have (C kh kw) x R (C + kh + kw) = "
                         f"{entries * rank * (C + kh + kw)} entries, expected at most {MAX_JACOBIAN_ENTRIES}")
    gen = as_generator(seed)
    p = gen.standard_normal((rank, C))
    q = gen.standard_normal((rank, kh))
    t = gen.standard_normal((rank, kw))
    J = cp_jacobian(p, q, t)
    s = np.linalg.svd(J, compute_uv=False)
    if tol is None:
        tol = float(s[0] * max(J.shape) * np.finfo(np.float64).eps) if s.size else 0.0
    else:
        tol = check_positive(tol, "tol", allow_zero=True)
    return ManifoldDimension(int(np.sum(s > tol)), tol, s)
