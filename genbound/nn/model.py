"""The Sequential model: parameters in one flat buffer, forward, gradients, Hessian-vector products."""
from __future__ import annotations

import collections
import collections.abc
import copy as _copy
import functools
import numbers

import numpy as np

from genbound._checks import as_float_array, check_dtype, check_labels, check_int
from genbound._rng import as_generator
from genbound.nn.layers import Conv2d, CPConv2d, Layer, fused_plan
from genbound.nn.loss import cross_entropy_checked, softmax_cross_entropy_jvp
from genbound.nn.runtime import serial_blas


class NonFiniteLogitsError(ValueError):
    """A forward pass produced NaN or inf logits from finite inputs and parameters: it overflowed (inputs too
    large for the model's dtype, or parameters too large). A ValueError; :func:`genbound.train` reports it as a
    divergence."""


def _serial_blas(method):
    """Run a whole model computation with BLAS single-threaded: the kernels parallelize over the batch, and
    BLAS workers woken by the small products of dense layers would otherwise spin against them."""

    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        with serial_blas():
            return method(*args, **kwargs)

    return wrapper


def _logits_shaped(x):
    """The network's output ``x`` if it has the shape of logits (n, classes), else a ValueError."""
    if x.ndim != 2:
        raise ValueError(f"layers: expected the network to output logits (n, classes), got shape {x.shape}")
    return x


class Sequential:
    """A feed-forward network: a list of layers applied in order, ending in class logits.

    All parameters live in one contiguous vector (``get_flat`` / ``set_flat``); ``params`` maps names such as
    ``"0.p"`` or ``"6.weight"`` (layer index, parameter name) to views of it, in layer order.

    A model is data: ``pickle``, ``copy.copy``, ``copy.deepcopy`` and :meth:`copy` all give an independent
    model whose layers view its own parameter vector (and keep buffers of their own); :meth:`state_dict` /
    :meth:`load_state_dict` exchange parameters under PyTorch's names; :func:`genbound.nn.save` /
    :func:`genbound.nn.load` write and read a file that holds no executable content.

    Parameters
    ----------
    layers : list of Layer
    seed : int or numpy.random.Generator
        Seed of the parameter initialization (an int seed is kept as ``model.seed`` and saved with the
        model; otherwise ``model.seed`` is None).
    dtype : {numpy.float64, numpy.float32}
        Precision of parameters and computation; inputs are converted to it.
    input_shape : tuple (C, H, W), optional
        Expected shape of one input; checked on every call and used to infer the number of classes.
    """

    def __init__(self, layers, seed=0, dtype=np.float64, input_shape=None):
        layers = list(layers)
        if not layers or not all(isinstance(layer, Layer) for layer in layers):
            raise TypeError("layers: expected a non-empty list of genbound.nn layers, got "
                            f"{[type(layer).__name__ for layer in layers]}")
        self.layers = layers
        self.dtype = check_dtype(dtype)
        if input_shape is not None:
            if isinstance(input_shape, (str, bytes)) or not hasattr(input_shape, "__iter__"):
                raise TypeError(f"input_shape: expected a tuple of ints (C, H, W), got {input_shape!r}")
            input_shape = tuple(check_int(s, "input_shape", 1) for s in input_shape)
        self.input_shape = input_shape
        self.classes = None
        if self.input_shape is not None:
            shape = self.input_shape
            for layer in layers:
                shape = layer.output_shape(shape)
            if len(shape) != 1:
                raise ValueError(f"layers: expected the network to end in a vector of logits, got shape {shape}")
            self.classes = shape[0]
        rng = as_generator(seed)
        self.seed = int(seed) if isinstance(seed, numbers.Integral) and not isinstance(seed, bool) else None
        # one flat buffer, each layer's parameters are views into it
        specs = [(i, name, tuple(shape)) for i, layer in enumerate(layers)
                 for name, shape in layer.param_shapes().items()]
        sizes = [int(np.prod(shape)) for _, _, shape in specs]
        self._flat = np.zeros(sum(sizes), dtype=self.dtype)
        self._slices = {}
        offset = 0
        for (i, name, shape), size in zip(specs, sizes):
            self._slices[f"{i}.{name}"] = slice(offset, offset + size)
            offset += size
        self._bind_views()
        for i, layer in enumerate(layers):
            for name, value in layer.init_params(rng, self.dtype).items():
                self.params[f"{i}.{name}"][...] = value

    def _bind_views(self):
        """Make ``params`` and every layer's parameters views of ``_flat`` (after building, copying, unpickling)."""
        self.params = {}
        for i, layer in enumerate(self.layers):
            bound = {}
            for name, shape in layer.param_shapes().items():
                key = f"{i}.{name}"
                sl = self._slices[key]
                self.params[key] = bound[name] = self._flat[sl].reshape(shape)
            layer.bind(bound)

    # -- models as data -----------------------------------------------------------------------------------
    def __getstate__(self):
        """What pickle and copy keep: the flat vector and parameter-free layers; the views are rebuilt."""
        state = self.__dict__.copy()
        state.pop("params", None)
        state.pop("_plan_cache", None)
        shells = []
        for layer in self.layers:
            shell = _copy.copy(layer)  # the layer's own __getstate__ drops its workspace
            shell.params = {}
            shells.append(shell)
        state["layers"] = shells
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        if not (self._flat.flags.c_contiguous and self._flat.flags.writeable):
            self._flat = self._flat.copy()
        self._bind_views()

    def __copy__(self):
        """An independent model, as :meth:`copy` (the parameters are the model's value, as an array's
        elements are)."""
        return self.copy()

    def copy(self):
        """An independent copy of the model (same layers, copied parameters, workspaces of its own)."""
        return _copy.deepcopy(self)

    def architecture(self):
        """The layers as plain data: a list of ``{"class": name, "config": layer.config()}``, in order."""
        return [{"class": type(layer).__name__, "config": layer.config()} for layer in self.layers]

    def state_dict(self):
        """The parameters under PyTorch's names and shapes, as an ordered dict of copies.

        Keys are ``"i.weight"`` / ``"i.bias"`` for :class:`Conv2d` and :class:`Dense` layers and ``"i.p"``,
        ``"i.q"``, ``"i.t"``, ``"i.bias"`` for :class:`CPConv2d` (``i`` the layer index), so a
        ``torch.nn.Sequential`` with the same layers loads the full-filter entries as they are (see
        :meth:`to_full` for a model with full filters only).
        """
        return collections.OrderedDict((key, value.copy()) for key, value in self.params.items())

    def load_state_dict(self, state_dict):
        """Overwrite every parameter from ``state_dict`` (name -> array, as from :meth:`state_dict`).

        The keys must be exactly those of ``params``, each value of its shape and finite; arrays of another
        float or integer dtype (and CPU torch tensors) are converted to the model's dtype. Nothing is written
        unless every entry is valid.

        Raises
        ------
        ValueError
            Naming the missing, unexpected, misshapen or non-finite key.
        """
        if not isinstance(state_dict, collections.abc.Mapping):
            raise TypeError(f"state_dict: expected a mapping name -> array, got {type(state_dict).__name__}")
        missing = [key for key in self.params if key not in state_dict]
        unexpected = [key for key in state_dict if key not in self.params]
        if missing or unexpected:
            raise ValueError(f"state_dict: expected the keys of model.params; missing {missing}, "
                             f"unexpected {unexpected}")
        values = {}
        for key, ref in self.params.items():
            value = state_dict[key]
            if hasattr(value, "detach"):  # a torch tensor
                value = value.detach().cpu().numpy()
            value = as_float_array(value, f"state_dict[{key!r}]", dtype=self.dtype, finite=False)
            if value.shape != ref.shape:
                raise ValueError(f"state_dict[{key!r}]: expected shape {ref.shape}, got {value.shape}")
            if not np.all(np.isfinite(value)):
                raise ValueError(f"state_dict[{key!r}]: expected finite values, got NaN or inf")
            values[key] = value
        for key, value in values.items():
            self.params[key][...] = value
        return self

    def to_full(self):
        """An equivalent model with full filters: every :class:`CPConv2d` becomes the :class:`Conv2d` of its
        reconstructed weight W = sum_r p_r (x) q_r (x) t_r (same bias); other layers are copied.

        The result computes the same function (up to rounding) and exports to plain PyTorch through
        :meth:`state_dict`.
        """
        layers, values = [], {}
        for i, layer in enumerate(self.layers):
            if isinstance(layer, CPConv2d):
                full = layer.to_full()
                layers.append(Conv2d(**full.config()))
                values[f"{i}.weight"], values[f"{i}.bias"] = full.params["weight"], full.params["bias"]
            else:
                layers.append(type(layer)(**layer.config()))
                for name in layer.param_shapes():
                    values[f"{i}.{name}"] = layer.params[name]
        model = Sequential(layers, seed=0, dtype=self.dtype, input_shape=self.input_shape)
        model.seed = self.seed
        return model.load_state_dict(values)

    def check_finite(self):
        """Raise a ValueError naming the first parameter that holds NaN or inf; return the model otherwise.

        Cheap: one sum over the flat vector when all values are finite (the names are looked up only when
        the sum is not finite).
        """
        with np.errstate(over="ignore", invalid="ignore"):
            total = self._flat.sum()
        if np.isfinite(total):
            return self
        for key, value in self.params.items():
            bad = int(np.count_nonzero(~np.isfinite(value)))
            if bad:
                raise ValueError(f"model parameters: expected finite values, got {bad} NaN or inf in "
                                 f"param {key!r}")
        return self

    # -- parameters ---------------------------------------------------------------------------------------
    @property
    def n_params(self):
        """Number of trainable scalars."""
        return self._flat.size

    def get_flat(self):
        """A copy of all parameters as one vector, in the order of ``params``."""
        return self._flat.copy()

    def set_flat(self, v):
        """Overwrite all parameters from one vector of length ``n_params``."""
        v = as_float_array(v, "v", dtype=self.dtype)
        if v.shape != self._flat.shape:
            raise ValueError(f"v: expected a vector of length {self._flat.size}, got shape {v.shape}")
        self._flat[...] = v

    def flatten(self, mapping, name="grads"):
        """Stack a mapping name -> array with the keys of ``params`` into one vector."""
        out = np.empty_like(self._flat)
        for key, sl in self._slices.items():
            if key not in mapping:
                raise ValueError(f"{name}: missing key {key!r}")
            out[sl] = np.asarray(mapping[key]).ravel()
        return out

    def unflatten(self, v, name="v"):
        """Split a vector of length ``n_params`` into a dict name -> array shaped like ``params``."""
        v = as_float_array(v, name, dtype=self.dtype)
        if v.shape != self._flat.shape:
            raise ValueError(f"{name}: expected a vector of length {self._flat.size}, got shape {v.shape}")
        return {key: v[sl].reshape(self.params[key].shape) for key, sl in self._slices.items()}

    def layer_params(self, i):
        """Parameter names of layer ``i`` in ``params``."""
        return [f"{i}.{name}" for name in self.layers[i].param_shapes()]

    def param_scales(self):
        """Every parameter's natural scale (its layer's :meth:`~genbound.nn.Layer.param_scales`) as one
        float64 vector in the order of :meth:`get_flat`; parameters of layers without scales get 1."""
        parts = {}
        for i, layer in enumerate(self.layers):
            scales = layer.param_scales()
            for name, shape in layer.param_shapes().items():
                parts[f"{i}.{name}"] = np.full(shape, scales.get(name, 1.0))
        return self.flatten(parts, name="scales").astype(np.float64)

    def param_slices(self):
        """Where each parameter lives in the flat vector: a dict name -> ``slice`` in the order of ``params``.

        ``model.get_flat()[model.param_slices()["0.p"]]`` is ``model.params["0.p"].ravel()``.
        """
        return dict(self._slices)

    def layer_slices(self):
        """Where each layer's parameters live in the flat vector: a dict layer index -> ``slice``.

        Only layers with parameters appear; each layer's parameters are contiguous in the flat vector.
        """
        out = {}
        for key, sl in self._slices.items():
            i = int(key.split(".", 1)[0])
            start = out[i].start if i in out else sl.start
            out[i] = slice(start, sl.stop)
        return out

    # -- validation ---------------------------------------------------------------------------------------
    def check_x(self, x):
        """``x`` as a C-contiguous array of the model's dtype with a valid batch shape, else a ValueError.

        Parameters
        ----------
        x : array_like (n, C, H, W)

        Returns
        -------
        ndarray
        """
        x = as_float_array(x, "x", dtype=self.dtype)
        if self.input_shape is not None:
            if x.ndim != len(self.input_shape) + 1 or x.shape[1:] != self.input_shape:
                raise ValueError(f"x: expected shape (n, {', '.join(map(str, self.input_shape))}), got {x.shape}")
        elif x.ndim < 2:
            raise ValueError(f"x: expected a batch of inputs (n, ...), got shape {x.shape}")
        if x.shape[0] == 0:
            raise ValueError("x: expected at least one input, got an empty batch")
        return x

    def check_xy(self, x, y):
        """``(x, y)`` checked for this model: inputs as by :meth:`check_x`, labels int64 in [0, classes).

        Returns
        -------
        x : ndarray
        y : ndarray of int64
        """
        x = self.check_x(x)
        classes = self.classes if self.classes is not None else self._infer_classes(x)
        return x, check_labels(y, x.shape[0], classes)

    def _infer_classes(self, x):
        shape = x.shape[1:]
        for layer in self.layers:
            shape = layer.output_shape(shape)
        return shape[0]

    # -- computation --------------------------------------------------------------------------------------
    def forward_with_caches(self, x):
        """Logits and every layer's cache for an already checked batch (see :meth:`check_x`).

        The forward pass without the loss: what :meth:`loss_and_grad` runs before backpropagation, for
        analyses that evaluate many chunks of data already validated once. Layers run as
        :func:`genbound.nn.layers.fused_plan` groups them: the layers of a fused unit (a ReLU and the pool after
        it; a CP convolution, its ReLU and a 2x2 max pool) have no cache of their own (None) but the last,
        whose entry is the unit's.

        Returns
        -------
        logits : ndarray (n, classes)
        caches : list, one entry per layer
        """
        caches = [None] * len(self.layers)
        for indices, unit in self._plan():
            x, caches[indices[-1]] = unit.forward(x)
        return _logits_shaped(x), caches

    def _plan(self):
        """``fused_plan(self.layers)``, built again only when the list of layers has changed."""
        layers = tuple(self.layers)
        cached = self.__dict__.get("_plan_cache")
        if cached is None or len(cached[0]) != len(layers) or any(a is not b for a, b in zip(cached[0], layers)):
            cached = self._plan_cache = (layers, fused_plan(layers))
        return cached[1]

    def _finite(self, logits):
        """``logits``, or :class:`NonFiniteLogitsError` when the forward pass overflowed."""
        if not np.all(np.isfinite(logits)):
            raise NonFiniteLogitsError(
                f"logits: the forward pass overflowed to NaN or inf (inputs x too large for the model's dtype "
                f"{np.dtype(self.dtype).name}, or parameters too large)")
        return logits

    @_serial_blas
    def forward(self, x):
        """Logits (n, classes) for inputs x (n, C, H, W).

        Like :meth:`loss`, :meth:`error`, :meth:`evaluate` and :meth:`loss_and_grad`, refuses NaN/inf
        parameters (ValueError naming the parameter) and raises :class:`NonFiniteLogitsError` when the forward
        pass overflows, instead of returning NaN.
        """
        x = self.check_x(x)
        self.check_finite()
        return self._finite(self.forward_with_caches(x)[0])

    def predict(self, x):
        """Predicted classes (argmax of the logits)."""
        return self.forward(x).argmax(axis=1)

    @_serial_blas
    def loss(self, x, y):
        """Mean softmax cross-entropy on (x, y)."""
        x, y = self.check_xy(x, y)
        self.check_finite()
        return cross_entropy_checked(self._finite(self.forward_with_caches(x)[0]), y)[0]

    @_serial_blas
    def error(self, x, y):
        """0-1 error in [0, 1]: the fraction of misclassified inputs."""
        x, y = self.check_xy(x, y)
        self.check_finite()
        return float(np.mean(self._finite(self.forward_with_caches(x)[0]).argmax(axis=1) != y))

    @_serial_blas
    def evaluate(self, x, y, chunk_size=1024):
        """(mean loss, 0-1 error) on (x, y), computed in chunks of ``chunk_size`` examples (memory only: the
        result does not depend on it beyond rounding)."""
        x, y = self.check_xy(x, y)
        chunk_size = check_int(chunk_size, "chunk_size", 1)
        self.check_finite()
        total_loss, wrong = 0.0, 0
        for start in range(0, x.shape[0], chunk_size):
            xb, yb = x[start:start + chunk_size], y[start:start + chunk_size]
            logits = self._finite(self.forward_with_caches(xb)[0])
            total_loss += cross_entropy_checked(logits, yb)[0] * xb.shape[0]
            wrong += int(np.sum(logits.argmax(axis=1) != yb))
        return total_loss / x.shape[0], wrong / x.shape[0]

    def _backward(self, dlogits, caches, weight_grads=False):
        grads, wgrads = {}, {}
        dy = dlogits
        for indices, unit in reversed(self._plan()):
            i = indices[0]
            if weight_grads and isinstance(self.layers[i], (Conv2d, CPConv2d)):  # the unit may pool its output too
                wgrads[i] = unit.weight_grad(dy, caches[indices[-1]])
            dy, g = unit.backward(dy, caches[indices[-1]], need_dx=i > 0)
            for name, value in g.items():
                grads[f"{i}.{name}"] = value
        grads = {key: grads[key] for key in self.params}
        return (grads, dict(sorted(wgrads.items()))) if weight_grads else grads

    @_serial_blas
    def loss_and_grad(self, x, y, flat=False, weight_grads=False):
        """Mean cross-entropy on (x, y) and its exact gradient (backpropagation).

        Parameters
        ----------
        x, y : batch of inputs and integer labels
        flat : bool
            Return the gradient as one vector in the order of ``params``.
        weight_grads : bool
            Also return the weight-space gradients G = dL/dW of the convolutions (see :meth:`weight_grads`).

        Returns
        -------
        loss : float
        grads : dict name -> array with the keys and shapes of ``params`` (or one vector if ``flat``)
        G : dict layer index -> array (O, C, kh, kw), only with ``weight_grads``
        """
        x, y = self.check_xy(x, y)
        self.check_finite()
        logits, caches = self.forward_with_caches(x)
        loss, dlogits, _ = cross_entropy_checked(self._finite(logits), y)
        if weight_grads:
            grads, wgrads = self._backward(dlogits, caches, weight_grads=True)
            return loss, (self.flatten(grads) if flat else grads), wgrads
        grads = self._backward(dlogits, caches)
        return loss, (self.flatten(grads) if flat else grads)

    def weight_grads(self, x, y):
        """Weight-space gradients G = dL/dW of every convolution, keyed by layer index.

        For :class:`CPConv2d` layers this is the gradient with respect to the reconstructed filter, the G of
        Eq. 2 of Lee & Lee; for :class:`Conv2d` it is the ordinary weight gradient.
        """
        return self.loss_and_grad(x, y, weight_grads=True)[2]

    @_serial_blas
    def hvp(self, x, y, v):
        """Exact Hessian-vector product H v of the mean loss on (x, y) (Pearlmutter's R-operator).

        One forward pass, one tangent forward pass, and the backward pass with its tangent: the cost of about
        two gradient evaluations, exact except on the measure-zero set of ReLU kinks and max-pool ties.

        Parameters
        ----------
        x, y : batch
        v : ndarray (n_params,), the direction

        Returns
        -------
        ndarray (n_params,)
        """
        x, y = self.check_xy(x, y)
        tparams_all = self.unflatten(v, "v")
        self.check_finite()
        plan = self._plan()
        acts, caches, tcaches, tparams = x, [], [], []
        rx = None
        for indices, unit in plan:
            tp = {name: tparams_all[f"{indices[0]}.{name}"] for name in unit.param_shapes()}
            acts, cache, rx, tcache = unit.forward_with_jvp(acts, rx, tp)
            caches.append(cache)
            tcaches.append(tcache)
            tparams.append(tp)
        _, dy, probs = cross_entropy_checked(self._finite(_logits_shaped(acts)), y)
        rdy = softmax_cross_entropy_jvp(probs, rx)
        out = {}
        for k in range(len(plan) - 1, -1, -1):
            i, unit = plan[k][0][0], plan[k][1]
            # the primal backward pass only carries dy down: its parameter gradients are not needed
            dy, rdy, rg = unit.backward_with_jvp(dy, rdy, caches[k], tcaches[k], tparams[k], need_dx=i > 0)
            for name, value in rg.items():
                out[f"{i}.{name}"] = value
        return self.flatten(out)

    def __repr__(self):
        inner = ",\n  ".join(repr(layer) for layer in self.layers)
        return f"Sequential([\n  {inner}\n], n_params={self.n_params}, dtype={self.dtype})"
