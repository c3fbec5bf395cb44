"""Assertion helpers and hypothesis strategies for users' own test suites.

``check_layer_grads``, ``check_model_grads`` and ``check_hvp`` compare the engine's exact derivatives with
central finite differences; ``activation_margin`` tells whether a point is safely away from ReLU kinks and
max-pool ties; :mod:`genbound.testing.strategies` draws layer configurations, networks and seeds.
"""
from genbound.testing.gradcheck import (activation_margin, check_hvp, check_layer_grads, check_model_grads,
                                        numerical_gradient, relative_error)

__all__ = ["activation_margin", "check_hvp", "check_layer_grads", "check_model_grads", "numerical_gradient",
           "relative_error"]
