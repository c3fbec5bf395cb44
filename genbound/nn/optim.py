"""Optimizers: SGD with momentum and weight decay, and full-batch gradient descent."""
from __future__ import annotations

import numpy as np

from genbound._checks import check_positive


class SGD:
    """Stochastic gradient descent, PyTorch's convention.

    .. math:: b \\leftarrow \\mu b + (g + \\lambda w), \\qquad w \\leftarrow w - \\alpha b

    (with mu = 0 the step is w - alpha (g + lambda w)). For CP layers the update acts on the factors p, q, t:
    the induced move of the filter is Eq. 2-3 of Lee & Lee with the step direction in place of the gradient.

    Parameters
    ----------
    lr : float > 0
        The learning rate alpha.
    momentum : float in [0, 1)
    weight_decay : float >= 0
    """

    full_batch = False

    def __init__(self, lr, momentum=0.0, weight_decay=0.0):
        self.lr = check_positive(lr, "lr")
        self.momentum = check_positive(momentum, "momentum", allow_zero=True)
        if self.momentum >= 1:
            raise ValueError(f"momentum: expected a number in [0, 1), got {self.momentum}")
        self.weight_decay = check_positive(weight_decay, "weight_decay", allow_zero=True)
        self._buffers = {}

    def direction(self, name, grad, param):
        """The step direction for one parameter (updates the momentum buffer)."""
        d = grad + self.weight_decay * param if self.weight_decay else grad
        if self.momentum:
            buf = self._buffers.get(name)
            buf = d.copy() if buf is None else self.momentum * buf + d
            self._buffers[name] = buf
            d = buf
        return d

    def step(self, model, grads):
        """Update ``model.params`` in place with ``grads`` (a dict with the keys of ``params``)."""
        for name, param in model.params.items():
            param -= self.lr * self.direction(name, grads[name], param)

    def reset(self):
        """Forget the momentum buffers."""
        self._buffers = {}

    def __repr__(self):
        return f"{type(self).__name__}(lr={self.lr}, momentum={self.momentum}, weight_decay={self.weight_decay})"


class GD(SGD):
    """Full-batch gradient descent: every step uses the whole training set, w <- w - lr * grad L(w)."""

    full_batch = True

    def __init__(self, lr, weight_decay=0.0):
        super().__init__(lr, momentum=0.0, weight_decay=weight_decay)

    def __repr__(self):
        return f"GD(lr={self.lr}, weight_decay={self.weight_decay})"
