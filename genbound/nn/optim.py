"""Optimizers: SGD with momentum and weight decay, and full-batch gradient descent."""
from __future__ import annotations

import numpy as np

from genbound._checks import check_int, check_positive


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
    cp_update : {None, "factor", "project"}
        How CP layers are trained; None follows each layer's ``update`` attribute. ``"project"``: the full
        filter takes the step W - lr * direction(G) (momentum and weight decay act on W) and is projected back
        to rank R by ``project_iters`` ALS sweeps warm-started from the current factors.
    project_iters : int >= 1
    """

    full_batch = False
    CP_UPDATES = (None, "factor", "project")

    def __init__(self, lr, momentum=0.0, weight_decay=0.0, cp_update=None, project_iters=5):
        self.lr = check_positive(lr, "lr")
        self.momentum = check_positive(momentum, "momentum", allow_zero=True)
        if self.momentum >= 1:
            raise ValueError(f"momentum: expected a number in [0, 1), got {self.momentum}")
        self.weight_decay = check_positive(weight_decay, "weight_decay", allow_zero=True)
        if cp_update not in self.CP_UPDATES:
            raise ValueError(f"cp_update: expected one of {self.CP_UPDATES}, got {cp_update!r}")
        self.cp_update = cp_update
        self.project_iters = check_int(project_iters, "project_iters", 1)
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

    def projected_layers(self, model):
        """Indices of the CP layers that this optimizer trains by full-weight step and projection."""
        from genbound.nn.layers import CPConv2d

        return [i for i, layer in enumerate(model.layers)
                if isinstance(layer, CPConv2d) and (self.cp_update or layer.update) == "project"]

    def step(self, model, grads, weight_grads=None):
        """Update ``model.params`` in place with ``grads`` (a dict with the keys of ``params``).

        ``weight_grads`` (layer index -> G = dL/dW, from ``model.loss_and_grad(..., weight_grads=True)``) is
        needed for the CP layers trained by projection.
        """
        projected = self.projected_layers(model)
        skip = set()
        if projected:
            from genbound.factor import project_rank

            if weight_grads is None or any(i not in weight_grads for i in projected):
                raise ValueError(f"weight_grads: expected dL/dW for the projected CP layers {projected}, "
                                 f"got {None if weight_grads is None else sorted(weight_grads)}")
            for i in projected:
                layer = model.layers[i]
                w = layer.full_weight()
                w_new = w - self.lr * self.direction(f"{i}.W", weight_grads[i], w)
                p, q, t = project_rank(w_new, layer.p, layer.q, layer.t, n_iter=self.project_iters)
                layer.p[...], layer.q[...], layer.t[...] = p, q, t
                skip.update({f"{i}.p", f"{i}.q", f"{i}.t"})
        for name, param in model.params.items():
            if name not in skip:
                param -= self.lr * self.direction(name, grads[name], param)

    def reset(self):
        """Forget the momentum buffers."""
        self._buffers = {}

    def __repr__(self):
        return f"{type(self).__name__}(lr={self.lr}, momentum={self.momentum}, weight_decay={self.weight_decay})"


class GD(SGD):
    """Full-batch gradient descent: every step uses the whole training set, w <- w - lr * grad L(w)."""

    full_batch = True

    def __init__(self, lr, weight_decay=0.0, cp_update=None, project_iters=5):
        super().__init__(lr, momentum=0.0, weight_decay=weight_decay, cp_update=cp_update,
                         project_iters=project_iters)

    def __repr__(self):
        return f"GD(lr={self.lr}, weight_decay={self.weight_decay})"
