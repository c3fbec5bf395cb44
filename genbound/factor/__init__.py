r"""CP (rank-R) filter algebra: reconstruction, the chain rule, the factored update (Eqs. 2-3), CP fitting.

A 3-D convolution filter of shape (C, kh, kw) is kept in CP form,

.. math::

    W_{ijk} = \sum_{r=1}^{R} p_{ri}\, q_{rj}\, t_{rk},

with factor arrays that always carry an output axis and a rank axis: ``p`` (O, R, C), ``q`` (O, R, kh),
``t`` (O, R, kw); rank 1 is ``R = 1``. Every function that takes ``p, q, t`` positionally also takes the
keyword ``factors=[f1, ..., fd]`` (and ``grads=[g1, ..., gd]``), arrays of shapes (O, R, n_i), for an
order-``d`` CP tensor (:mod:`genbound.factor.arguments`).

Training the factors by gradient descent with learning rate :math:`\alpha` moves the weight to

.. math::

    W'' = (p - \alpha g_p) \otimes (q - \alpha g_q) \otimes (t - \alpha g_t) = W - \alpha \Delta,

    \Delta = \sum_{\emptyset \ne S \subseteq \{1..d\}} (-\alpha)^{|S|-1}
              \bigotimes_n \begin{cases} g_n & n \in S \\ f_n & n \notin S \end{cases}

(Lee & Lee, Eqs. 2-3, with the misprint of Eq. 3 corrected; see ``genbound.symbolic``).

Modules: :mod:`~genbound.factor.algebra` (reconstruct, the chain rule, Eqs. 2-3),
:mod:`~genbound.factor.departures` (``w'' - w'`` by order in the learning rate),
:mod:`~genbound.factor.jacobian` (the CP Jacobian, the dimension of rank-R filters),
:mod:`~genbound.factor.fit` (CP fitting: decompose, project_rank).

References
----------
Lee & Lee, "Effect of local search with real data on generalization in deep learning".
T. G. Kolda and B. W. Bader, "Tensor decompositions and applications", SIAM Review 51(3), 2009.
L. De Lathauwer, B. De Moor and J. Vandewalle, "On the best rank-1 and rank-(R1, R2, ..., RN)
approximation of higher-order tensors", SIAM J. Matrix Anal. Appl. 21(4), 2000.
V. de Silva and L.-H. Lim, "Tensor rank and the ill-posedness of the best low-rank approximation
problem", SIAM J. Matrix Anal. Appl. 30(3), 2008.
"""
from __future__ import annotations

from genbound.factor.algebra import delta, eq2_step, factor_grads, factor_step, reconstruct, weight_step
from genbound.factor.arguments import step_arguments
from genbound.factor.departures import Departure, departure, departure_table
from genbound.factor.fit import CPResult, DecomposeConfig, DegeneracyWarning, decompose, project_rank
from genbound.factor.jacobian import ManifoldDimension, cp_jacobian, cp_manifold_dimension

__all__ = [
    "reconstruct",
    "factor_grads",
    "delta",
    "factor_step",
    "weight_step",
    "eq2_step",
    "step_arguments",
    "departure",
    "departure_table",
    "Departure",
    "cp_jacobian",
    "cp_manifold_dimension",
    "ManifoldDimension",
    "decompose",
    "project_rank",
    "DecomposeConfig",
    "CPResult",
    "DegeneracyWarning",
]
