"""Optimizers: SGD with momentum and weight decay, full-batch gradient descent, and Adam."""
from __future__ import annotations

import numpy as np

from genbound._checks import as_float_array, check_int, check_positive


def _model_grads(model, grads, name="grads"):
    """Check ``model`` (has ``params``) and that ``grads`` maps every name of ``model.params`` to an array."""
    if not isinstance(getattr(model, "params", None), dict):
        raise TypeError(f"model: expected a genbound.nn.Sequential, got {type(model).__name__}")
    if not hasattr(grads, "keys"):
        raise TypeError(f"{name}: expected a mapping name -> gradient with the keys of model.params, got "
                        f"{type(grads).__name__}")
    missing = [key for key in model.params if key not in grads]
    if missing:
        raise ValueError(f"{name}: missing the gradients of {missing} (expected the keys of model.params)")


def _same_shape(a, ref, name):
    arr = as_float_array(a, name, dtype=ref.dtype)
    if arr.shape != ref.shape:
        raise ValueError(f"{name}: expected shape {ref.shape} (that of param), got {arr.shape}")
    return arr


def sgd_direction(grad, param, buf=None, momentum=0.0, weight_decay=0.0, dampening=0.0, nesterov=False):
    r"""Step direction of SGD with momentum and weight decay, in PyTorch's convention.

    .. math::

        d = g + \lambda\, \theta, \qquad b \leftarrow \mu b + (1 - \tau) d
        \ (b \leftarrow d \text{ on the first step}), \qquad
        \text{direction} = b \ (\text{or } d + \mu b \text{ with Nesterov}),

    and the update is :math:`\theta \leftarrow \theta - \alpha\,\text{direction}`.

    Because :func:`genbound.factor.delta` is an algebraic identity in the step directions, the exact weight move of a
    factored SGD step with momentum and weight decay is ``-lr * delta(p, q, t, dp, dq, dt, lr)`` with the
    directions returned here for each factor.

    Parameters
    ----------
    grad, param : ndarray
        Gradient and current value of one parameter array (same shape).
    buf : ndarray or None
        Momentum buffer from the previous step (None on the first step).
    momentum, weight_decay, dampening : float
        :math:`\mu`, :math:`\lambda`, :math:`\tau` (all >= 0).
    nesterov : bool
        Nesterov momentum (requires momentum > 0 and dampening 0, as in PyTorch).

    Returns
    -------
    direction : ndarray
    buf : ndarray or None
        The new momentum buffer (None when ``momentum == 0``).
    """
    momentum = check_positive(momentum, "momentum", allow_zero=True)
    weight_decay = check_positive(weight_decay, "weight_decay", allow_zero=True)
    dampening = check_positive(dampening, "dampening", allow_zero=True)
    if nesterov and (momentum <= 0 or dampening != 0):
        raise ValueError("nesterov: requires momentum > 0 and dampening == 0")
    theta = as_float_array(param, "param", dtype=np.result_type(np.asarray(param).dtype, np.float32))
    g = _same_shape(grad, theta, "grad")
    buf = None if buf is None else _same_shape(buf, theta, "buf")
    return _direction(g, theta, buf, momentum, weight_decay, dampening, nesterov)


def _direction(g, theta, buf, momentum, weight_decay, dampening=0.0, nesterov=False):
    """The arithmetic of :func:`sgd_direction` on arrays already checked (same shape and dtype, finite)."""
    d = g + weight_decay * theta if weight_decay else g.copy()
    if momentum == 0:
        return d, None
    new_buf = d.copy() if buf is None else momentum * buf + (1.0 - dampening) * d
    direction = d + momentum * new_buf if nesterov else new_buf.copy()
    return direction, new_buf



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
        """The step direction for one parameter (updates its momentum buffer): :func:`sgd_direction`."""
        d, buf = sgd_direction(grad, param, self._buffers.get(name), self.momentum, self.weight_decay)
        if buf is not None:
            self._buffers[name] = buf
        return d

    def _checked_direction(self, name, g, theta):
        """:meth:`direction` for a gradient and parameter that :meth:`step` has already checked."""
        d, buf = _direction(g, theta, self._buffers.get(name), self.momentum, self.weight_decay)
        if buf is not None:
            self._buffers[name] = buf
        return d

    def projected_layers(self, model):
        """Indices of the CP layers that this optimizer trains by full-weight step and projection."""
        from genbound.nn.layers import CPConv2d

        return [i for i, layer in enumerate(model.layers)
                if isinstance(layer, CPConv2d) and (self.cp_update or layer.update) == "project"]

    def step(self, model, grads, weight_grads=None):
        """Update ``model.params`` in place with ``grads`` (a dict with the keys of ``params``).

        ``weight_grads`` (layer index -> G = dL/dW, from ``model.loss_and_grad(..., weight_grads=True)``) is
        needed for the CP layers trained by projection. Gradients must be finite and shaped like their
        parameters (a ValueError names the first that is not).
        """
        _model_grads(model, grads)
        projected = self.projected_layers(model)
        model.check_finite()  # NaN/inf parameters are refused, naming the parameter
        skip = set()
        if projected:
            from genbound.factor import project_rank

            if weight_grads is None or any(i not in weight_grads for i in projected):
                raise ValueError(f"weight_grads: expected dL/dW for the projected CP layers {projected}, "
                                 f"got {None if weight_grads is None else sorted(weight_grads)}")
            for i in projected:
                layer = model.layers[i]
                w = layer.full_weight()
                g = _same_shape(weight_grads[i], w, f"weight_grads[{i}]")
                w_new = w - self.lr * self._checked_direction(f"{i}.W", g, w)
                p, q, t = project_rank(w_new, layer.p, layer.q, layer.t, max_iter=self.project_iters)
                layer.p[...], layer.q[...], layer.t[...] = p, q, t
                skip.update({f"{i}.p", f"{i}.q", f"{i}.t"})
        for name, param in model.params.items():
            if name not in skip:
                g = _same_shape(grads[name], param, f"grads[{name!r}]")  # the one check of each gradient
                param -= self.lr * self._checked_direction(name, g, param)

    def reset(self):
        """Forget the momentum buffers."""
        self._buffers = {}

    def __repr__(self):
        return f"{type(self).__name__}(lr={self.lr}, momentum={self.momentum}, weight_decay={self.weight_decay})"

    # -- state (checkpoints) ------------------------------------------------------------------------------
    def settings(self):
        """The hyperparameters as plain data (what a resumed run must share with the checkpointed one)."""
        return {"lr": self.lr, "momentum": self.momentum, "weight_decay": self.weight_decay,
                "cp_update": self.cp_update, "project_iters": self.project_iters}

    def state_dict(self):
        """``{"class", "settings", "buffers"}``: the momentum buffers (copies) by parameter name."""
        return {"class": type(self).__name__, "settings": self.settings(),
                "buffers": {name: buf.copy() for name, buf in self._buffers.items()}}

    def load_state_dict(self, state):
        """Restore the momentum buffers of :meth:`state_dict`; the class and settings must be this one's."""
        _check_state(self, state, ("buffers",))
        self._buffers = {str(name): _state_array(buf, f"state['buffers'][{name!r}]")
                         for name, buf in state["buffers"].items()}
        return self


class GD(SGD):
    """Full-batch gradient descent: every step uses the whole training set, w <- w - lr * grad L(w)."""

    full_batch = True

    def __init__(self, lr, weight_decay=0.0, cp_update=None, project_iters=5):
        super().__init__(lr, momentum=0.0, weight_decay=weight_decay, cp_update=cp_update,
                         project_iters=project_iters)

    def __repr__(self):
        return f"GD(lr={self.lr}, weight_decay={self.weight_decay})"


class Adam:
    r"""Adam (Kingma & Ba 2015), bias-corrected and deterministic.

    .. math::

        m \leftarrow \beta_1 m + (1-\beta_1) g, \quad v \leftarrow \beta_2 v + (1-\beta_2) g^2, \quad
        \theta \leftarrow \theta - \alpha \frac{m / (1-\beta_1^t)}{\sqrt{v / (1-\beta_2^t)} + \epsilon}

    Used two ways: as a model optimizer (``step(model, grads)``, like :class:`SGD`; CP layers train in factor
    space), or on a list of arrays (``update(params, grads)``), e.g. the mean and scale of a PAC-Bayes
    posterior. One instance keeps one set of moments: use it one way only.

    Parameters
    ----------
    lr : float > 0 or sequence of floats
        The step size alpha; with ``update``, one per array is allowed.
    beta1, beta2 : float in [0, 1)
    eps : float > 0

    References
    ----------
    Kingma & Ba, "Adam: a method for stochastic optimization", ICLR 2015.
    """

    full_batch = False

    def __init__(self, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
        if np.ndim(lr) == 0:
            self.lr = check_positive(lr, "lr")
        else:
            self.lr = [check_positive(v, "lr") for v in lr]
            if not self.lr:
                raise ValueError("lr: expected a step size or a non-empty list of them, got an empty list")
        for name, value in (("beta1", beta1), ("beta2", beta2)):
            value = check_positive(value, name, allow_zero=True)
            if value >= 1:
                raise ValueError(f"{name}: expected a number in [0, 1), got {value}")
        self.beta1, self.beta2 = float(beta1), float(beta2)
        self.eps = check_positive(eps, "eps")
        self.reset()

    def reset(self):
        """Forget the moments and the step count."""
        self.m = None
        self.v = None
        self.t = 0

    def update(self, params, grads):
        """One Adam step on a list of arrays, in place."""
        params, grads = list(params), list(grads)
        if len(params) != len(grads):
            raise ValueError(f"grads: expected {len(params)} arrays (one per param), got {len(grads)}")
        lrs = self.lr if isinstance(self.lr, list) else [self.lr] * len(params)
        if len(lrs) != len(params):
            raise ValueError(f"lr: expected {len(params)} step sizes (one per param), got {len(lrs)}")
        grads = [_same_shape(g, p, f"grads[{i}]") for i, (p, g) in enumerate(zip(params, grads))]
        if self.m is None:
            self.m = [np.zeros_like(p) for p in params]
            self.v = [np.zeros_like(p) for p in params]
        self.t += 1
        c1, c2 = 1.0 - self.beta1 ** self.t, 1.0 - self.beta2 ** self.t
        for p, g, m, v, lr in zip(params, grads, self.m, self.v, lrs):
            m *= self.beta1
            m += (1.0 - self.beta1) * g
            v *= self.beta2
            v += (1.0 - self.beta2) * g * g
            p -= lr * (m / c1) / (np.sqrt(v / c2) + self.eps)

    def projected_layers(self, model):
        """Adam trains every layer in its own parameters (no CP projection)."""
        return []

    def step(self, model, grads, weight_grads=None):
        """Update ``model.params`` in place with ``grads`` (a dict with the keys of ``params``)."""
        if isinstance(self.lr, list):
            raise ValueError("lr: a model optimizer takes one step size, got a list")
        _model_grads(model, grads)
        names = list(model.params)
        model.check_finite()  # NaN/inf parameters are refused, naming the parameter
        self.update([model.params[k] for k in names], [np.asarray(grads[k]) for k in names])

    def __repr__(self):
        return f"Adam(lr={self.lr}, beta1={self.beta1}, beta2={self.beta2}, eps={self.eps})"

    # -- state (checkpoints) ------------------------------------------------------------------------------
    def settings(self):
        """The hyperparameters as plain data (what a resumed run must share with the checkpointed one)."""
        return {"lr": self.lr, "beta1": self.beta1, "beta2": self.beta2, "eps": self.eps}

    def state_dict(self):
        """``{"class", "settings", "t", "m", "v"}``: the step count and the moments (copies; None before the
        first step)."""
        moments = {k: None if getattr(self, k) is None else [a.copy() for a in getattr(self, k)] for k in "mv"}
        return {"class": type(self).__name__, "settings": self.settings(), "t": self.t, **moments}

    def load_state_dict(self, state):
        """Restore the step count and moments of :meth:`state_dict`; the class and settings must be this one's."""
        _check_state(self, state, ("t", "m", "v"))
        if (state["m"] is None) != (state["v"] is None) or (state["m"] is not None
                                                             and len(state["m"]) != len(state["v"])):
            raise ValueError("state['m'], state['v']: expected two lists of the same length (or both None)")
        self.t = check_int(state["t"], "state['t']", 0)
        for k in "mv":
            saved = state[k]
            setattr(self, k, None if saved is None else [_state_array(a, f"state[{k!r}][{i}]")
                                                         for i, a in enumerate(saved)])
        return self


def _check_state(optimizer, state, fields):
    """Refuse an optimizer state of another class, other settings, or without ``fields``."""
    if not isinstance(state, dict):
        raise TypeError(f"state: expected a dict from state_dict(), got {type(state).__name__}")
    if state.get("class") != type(optimizer).__name__:
        raise ValueError(f"state['class']: expected {type(optimizer).__name__}, got {state.get('class')!r}")
    for field in ("settings", *fields):
        if field not in state:
            raise ValueError(f"state: missing field {field!r}")
    mine = optimizer.settings()
    for key in sorted(set(mine) | set(state["settings"])):
        if state["settings"].get(key) != mine.get(key):
            raise ValueError(f"state['settings'][{key!r}]: the state was saved with {state['settings'].get(key)!r}, "
                             f"this optimizer has {mine.get(key)!r}")


def _state_array(a, name):
    """A finite float array (copied) from a saved optimizer state."""
    arr = np.asarray(a)
    return as_float_array(arr, name, dtype=arr.dtype if arr.dtype.kind == "f" else np.float64).copy()
