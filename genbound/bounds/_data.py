"""The examples a bound is computed on and the examples it only reports.

A bound's sample is the training set of ``data`` (a Dataset or an ``(x, y)`` pair, see
:func:`genbound.nn.objective.training_pair`); the test set of a Dataset is measured for the table only.
"""
from __future__ import annotations

from genbound.nn.objective import training_pair

__all__ = ["training_pair", "test_pair"]


def test_pair(data):
    """The test inputs and labels of a Dataset, or None for an ``(x, y)`` pair or an empty test set."""
    x_test = getattr(data, "x_test", None)
    if x_test is None or len(x_test) == 0:
        return None
    return x_test, data.y_test
