"""Checks, assertion helpers and hypothesis strategies for users' own test suites (and genbound's).

- :func:`check_grads` (autograd's manner): a model's, a layer's or a function's derivative rules against
  central differences along random directions, reverse mode (backward), forward mode (R-operator) and
  order 2 (Hessian-vector products); float32 against the float64 rule. :func:`check_layer_tangents`: a
  layer's ``jvp`` and ``backward_jvp`` with all tangents at once.
- :func:`assert_update_equivalence` (Eq. 2-3 of Lee & Lee), :func:`assert_hvp_symmetric`,
  :func:`assert_bound_valid`.
- Coordinate-wise checks (O(n) evaluations, for small layers): ``check_layer_grads``,
  ``check_model_grads``, ``check_hvp``; ``numerical_gradient``, ``relative_error``; ``activation_margin``
  tells whether a point is safely away from ReLU kinks and max-pool ties.
- :mod:`genbound.testing.strategies`: hypothesis strategies (geometries, CP factors, small networks,
  datasets, parameter vectors, directions, bound arguments).

References
----------
D. Maclaurin, D. Duvenaud and R. P. Adams, "Autograd: effortless gradients in NumPy", 2015
(``autograd.test_util``); B. A. Pearlmutter, "Fast exact multiplication by the Hessian", Neural
Computation 6(1), 1994.
"""
from genbound.testing.assertions import assert_bound_valid, assert_hvp_symmetric, assert_update_equivalence
from genbound.testing.checks import MODES, check_grads, check_layer_tangents
from genbound.testing.gradcheck import (activation_margin, check_hvp, check_layer_grads, check_model_grads,
                                        numerical_gradient, relative_error)

__all__ = ["check_grads", "check_layer_tangents", "MODES", "assert_update_equivalence", "assert_hvp_symmetric",
           "assert_bound_valid", "activation_margin", "check_hvp", "check_layer_grads", "check_model_grads",
           "numerical_gradient", "relative_error"]
