"""The Sequential model: parameters in one flat buffer, forward, gradients, Hessian-vector products."""
from __future__ import annotations

import functools

import numpy as np

from genbound._checks import as_float_array, check_dtype, check_labels, check_int
from genbound._rng import as_generator
from genbound.nn.layers import Conv2d, CPConv2d, Layer
from genbound.nn.loss import softmax_cross_entropy, softmax_cross_entropy_jvp
from genbound.nn.runtime import Workspace, serial_blas


def _serial_blas(method):
    """Run a whole model computation with BLAS single-threaded: the kernels parallelize over the batch, and
    BLAS workers woken by the small products of dense layers would otherwise spin against them."""

    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        with serial_blas():
            return method(*args, **kwargs)

    return wrapper


class Sequential:
    """A feed-forward network: a list of layers applied in order, ending in class logits.

    All parameters live in one contiguous vector (``get_flat`` / ``set_flat``); ``params`` maps names such as
    ``"0.p"`` or ``"6.weight"`` (layer index, parameter name) to views of it, in layer order.

    Parameters
    ----------
    layers : list of Layer
    seed : int or numpy.random.Generator
        Seed of the parameter initialization.
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
        self.input_shape = None if input_shape is None else tuple(int(s) for s in input_shape)
        self.classes = None
        if self.input_shape is not None:
            shape = self.input_shape
            for layer in layers:
                shape = layer.output_shape(shape)
            if len(shape) != 1:
                raise ValueError(f"layers: expected the network to end in a vector of logits, got shape {shape}")
            self.classes = shape[0]
        rng = as_generator(seed)
        # one flat buffer, each layer's parameters are views into it
        specs = [(i, name, tuple(shape)) for i, layer in enumerate(layers)
                 for name, shape in layer.param_shapes().items()]
        sizes = [int(np.prod(shape)) for _, _, shape in specs]
        self._flat = np.zeros(sum(sizes), dtype=self.dtype)
        self.params = {}
        self._slices = {}
        offset = 0
        for (i, name, shape), size in zip(specs, sizes):
            self._slices[f"{i}.{name}"] = slice(offset, offset + size)
            self.params[f"{i}.{name}"] = self._flat[offset:offset + size].reshape(shape)
            offset += size
        for i, layer in enumerate(layers):
            values = layer.init_params(rng, self.dtype)
            bound = {}
            for name, value in values.items():
                view = self.params[f"{i}.{name}"]
                view[...] = value
                bound[name] = view
            layer.bind(bound)

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

    def copy(self):
        """An independent copy of the model (same layers, copied parameters, workspaces of its own)."""
        import copy

        clone = copy.copy(self)
        clone.layers = [copy.copy(layer) for layer in self.layers]
        for layer in clone.layers:
            layer.workspace = Workspace()
        clone._flat = self._flat.copy()
        clone.params = {key: clone._flat[sl].reshape(self.params[key].shape) for key, sl in self._slices.items()}
        for i, layer in enumerate(clone.layers):
            layer.params = {name: clone.params[f"{i}.{name}"] for name in layer.param_shapes()}
        return clone

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
        analyses that evaluate many chunks of data already validated once.

        Returns
        -------
        logits : ndarray (n, classes)
        caches : list, one entry per layer
        """
        caches = []
        for layer in self.layers:
            x, cache = layer.forward(x)
            caches.append(cache)
        if x.ndim != 2:
            raise ValueError(f"layers: expected the network to output logits (n, classes), got shape {x.shape}")
        return x, caches

    @_serial_blas
    def forward(self, x):
        """Logits (n, classes) for inputs x (n, C, H, W)."""
        return self.forward_with_caches(self.check_x(x))[0]

    def predict(self, x):
        """Predicted classes (argmax of the logits)."""
        return self.forward(x).argmax(axis=1)

    @_serial_blas
    def loss(self, x, y):
        """Mean softmax cross-entropy on (x, y)."""
        x, y = self.check_xy(x, y)
        return softmax_cross_entropy(self.forward_with_caches(x)[0], y)[0]

    @_serial_blas
    def error(self, x, y):
        """0-1 error in [0, 1]: the fraction of misclassified inputs."""
        x, y = self.check_xy(x, y)
        return float(np.mean(self.forward_with_caches(x)[0].argmax(axis=1) != y))

    @_serial_blas
    def evaluate(self, x, y, chunk_size=1024):
        """(mean loss, 0-1 error) on (x, y), computed in chunks of ``chunk_size`` examples (memory only: the
        result does not depend on it beyond rounding)."""
        x, y = self.check_xy(x, y)
        chunk_size = check_int(chunk_size, "chunk_size", 1)
        total_loss, wrong = 0.0, 0
        for start in range(0, x.shape[0], chunk_size):
            xb, yb = x[start:start + chunk_size], y[start:start + chunk_size]
            logits = self.forward_with_caches(xb)[0]
            total_loss += softmax_cross_entropy(logits, yb)[0] * xb.shape[0]
            wrong += int(np.sum(logits.argmax(axis=1) != yb))
        return total_loss / x.shape[0], wrong / x.shape[0]

    def _backward(self, dlogits, caches, weight_grads=False):
        grads, wgrads = {}, {}
        dy = dlogits
        for i in range(len(self.layers) - 1, -1, -1):
            layer = self.layers[i]
            if weight_grads and isinstance(layer, (Conv2d, CPConv2d)):
                wgrads[i] = layer.weight_grad(dy, caches[i])
            dy, g = layer.backward(dy, caches[i], need_dx=i > 0)
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
        logits, caches = self.forward_with_caches(x)
        loss, dlogits, _ = softmax_cross_entropy(logits, y)
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
        if not np.all(np.isfinite(self._flat)):
            raise ValueError("model parameters: expected finite values, got NaN or inf")
        acts, caches, tcaches, tparams = x, [], [], []
        rx = None
        for i, layer in enumerate(self.layers):
            tp = {name: tparams_all[f"{i}.{name}"] for name in layer.param_shapes()}
            new_acts, cache = layer.forward(acts)
            rx, tcache = layer.jvp(rx, tp, cache)
            acts = new_acts
            caches.append(cache)
            tcaches.append(tcache)
            tparams.append(tp)
        _, dy, probs = softmax_cross_entropy(acts, y)
        rdy = softmax_cross_entropy_jvp(probs, rx)
        out = {}
        for i in range(len(self.layers) - 1, -1, -1):
            layer = self.layers[i]
            new_dy, _ = layer.backward(dy, caches[i], need_dx=i > 0)
            rdy, rg = layer.backward_jvp(dy, rdy, caches[i], tcaches[i], tparams[i], need_dx=i > 0)
            dy = new_dy
            for name, value in rg.items():
                out[f"{i}.{name}"] = value
        return self.flatten(out)

    def __repr__(self):
        inner = ",\n  ".join(repr(layer) for layer in self.layers)
        return f"Sequential([\n  {inner}\n], n_params={self.n_params}, dtype={self.dtype})"
