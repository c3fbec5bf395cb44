"""Layers of the CNN engine: forward, backward and their tangents (R-operator), one class per layer.

Each layer is a function of its input and its parameters. Four rules define it:

- ``forward(x)`` -> ``(y, cache)``
- ``backward(dy, cache, need_dx, need_grads)`` -> ``(dx, grads)``, the vector-Jacobian product (``grads`` is
  ``{}`` without ``need_grads``: a Hessian-vector product needs only dx of the primal backward pass)
- ``jvp(rx, tparams, cache)`` -> ``(ry, tcache)``, the tangent of ``forward`` along the input tangent ``rx``
  and the parameter tangents ``tparams`` (Pearlmutter's R-operator: R{y})
- ``backward_jvp(dy, rdy, cache, tcache, tparams, need_dx)`` -> ``(rdx, rgrads)``, the tangent of
  ``backward`` (R{dx}, R{grads}); with ``jvp`` it gives exact Hessian-vector products.

``forward_with_jvp`` and ``backward_with_jvp`` give what a Hessian-vector product needs of the primal and the
tangent rules together: two calls each by default, one kernel pass each for :class:`CPConv2d`.

Every layer here is multilinear in (input, parameters) apart from the bias, given its ReLU mask or max-pool
argmax, so each tangent rule is the sum of the primal rule with one argument replaced by its tangent.

The classes validate shapes and call the numba kernels of :mod:`genbound._kernels` through
:mod:`genbound.nn.runtime` (batch chunks, threads, single-threaded BLAS); large outputs go into buffers the
layer reuses across calls (:class:`genbound.nn.runtime.Workspace`).
"""
from __future__ import annotations

import functools
import inspect
import itertools
import math

import numpy as np

from genbound._checks import as_array, check_dtype, check_int, check_real_dtype
from genbound._kernels import activation as kact
from genbound._kernels import conv as kconv
from genbound._kernels import cpconv as kcp
from genbound._kernels import pool as kpool
from genbound._rng import as_generator
from genbound.nn.runtime import Workspace, batch_chunks, image_group, run_parallel


#: The argmax array the CP kernels take when they do not pool (never read).
_NO_INDEX = np.zeros((1, 1, 1), np.int32)


def _out_size(size, k, stride, pad, layer, axis):
    if size + 2 * pad < k:
        raise ValueError(
            f"kernel_size: expected at most the padded image size {size + 2 * pad} along {axis}, got {k}"
            f" ({layer!r})"
        )
    return (size + 2 * pad - k) // stride + 1


def _arr(a, dtype):
    return np.ascontiguousarray(a, dtype=dtype)


#: Largest number of parameters one layer may hold (2**28, 2 GiB in float64): a width, rank or kernel size
#: beyond it is refused by a ValueError when the layer is built, before anything is allocated.
MAX_LAYER_PARAMS = 2**28


def _as_input(a, name, dtype=None):
    """``a`` as a C-contiguous real array of ``dtype`` (default: its own float32/float64 dtype, or float64 for
    integers), with O(1) checks only: complex, float16, bool, object and ragged input are refused (TypeError or
    ValueError naming ``name``) before any kernel sees them. Finiteness is the caller's business (checked once
    per public call by :meth:`genbound.nn.Sequential.check_x`)."""
    arr = check_real_dtype(as_array(a, name), name)
    if dtype is None:
        dtype = arr.dtype if arr.dtype.kind == "f" else np.float64
    return np.ascontiguousarray(arr, dtype=dtype)


def _as_like(a, shape, name, dtype=None, what="the layer's output"):
    """:func:`_as_input` plus an exact shape check: a gradient or tangent of the wrong shape would otherwise be
    reshaped and read past the end of its buffer by the kernels."""
    arr = _as_input(a, name, dtype)
    if arr.shape != tuple(shape):
        raise ValueError(f"{name}: expected shape {tuple(shape)} ({what}), got {arr.shape}")
    return arr


@functools.lru_cache(maxsize=None)
def _skips_grads(cls):
    """Whether ``cls.backward`` takes ``need_grads`` (the library's layers do; a user's layer may not)."""
    return "need_grads" in inspect.signature(cls.backward).parameters


class Layer:
    """Base class: a layer with named parameters (possibly none)."""

    def __init__(self):
        self.params = {}
        self.workspace = Workspace()

    def param_shapes(self):
        """Ordered mapping of parameter name -> shape."""
        return {}

    def param_scales(self):
        """The natural scale of each parameter: the standard deviation its initializer draws it with.

        Biases, initialized at zero, get the scale of their layer's (reconstructed) weights. The one source
        of these numbers: :meth:`init_params` draws with them and PAC-Bayes priors scale by them.
        """
        return {}

    def init_params(self, seed, dtype):
        """Fresh parameter values (a dict of arrays of ``dtype``) drawn from ``seed`` (int, Generator or None)."""
        return {}

    def bind(self, params):
        """Use the given arrays (views into a model's flat buffer, say) as this layer's parameters.

        Each must be a numpy array (it is used, not copied) of the shape of :meth:`param_shapes`, all of one
        dtype, float32 or float64.
        """
        shapes = self.param_shapes()
        if not hasattr(params, "keys") or set(params) != set(shapes):
            got = sorted(params) if hasattr(params, "keys") else type(params).__name__
            raise ValueError(f"params: expected keys {sorted(shapes)}, got {got}")
        dtypes = set()
        for name, shape in shapes.items():
            value = params[name]
            if not isinstance(value, np.ndarray):
                raise TypeError(f"params[{name!r}]: expected a numpy array (used in place), got "
                                f"{type(value).__name__}")
            check_dtype(value.dtype, f"params[{name!r}]")
            if value.shape != tuple(shape):
                raise ValueError(f"params[{name!r}]: expected shape {tuple(shape)}, got {value.shape}")
            dtypes.add(value.dtype)
        if len(dtypes) > 1:
            raise TypeError(f"params: expected one dtype for all parameters, got {sorted(map(str, dtypes))}")
        self.params = dict(params)
        return self

    def initialize(self, seed=0, dtype=np.float64):
        """Bind freshly initialized parameters (for using a layer on its own)."""
        return self.bind(self.init_params(seed, check_dtype(dtype)))

    def _bound(self):
        """The bound parameters, or a ValueError saying how to bind them."""
        if not self.params and self.param_shapes():
            raise ValueError(f"layer: {self!r} has no parameters bound; call layer.initialize(seed) or use it "
                             "inside a genbound.nn.Sequential")
        return self.params

    def _check_size(self, names):
        """Refuse, before any allocation, a layer with more than :data:`MAX_LAYER_PARAMS` parameters."""
        total = sum(int(np.prod(shape, dtype=object)) for shape in self.param_shapes().values())
        if total > MAX_LAYER_PARAMS:
            raise ValueError(f"{', '.join(names)}: {self!r} would hold {total:,} parameters, above the maximum "
                             f"of {MAX_LAYER_PARAMS:,} per layer (genbound.nn.layers.MAX_LAYER_PARAMS)")

    def _tangents(self, tparams):
        """Parameter tangents checked against :meth:`param_shapes` (keys, shapes, real dtype)."""
        shapes = self.param_shapes()
        if not hasattr(tparams, "keys") or not set(shapes) <= set(tparams):
            got = sorted(tparams) if hasattr(tparams, "keys") else type(tparams).__name__
            raise ValueError(f"tparams: expected keys {sorted(shapes)}, got {got}")
        dtype = self._bound()[next(iter(shapes))].dtype if shapes else None
        return {name: _as_like(tparams[name], shape, f"tparams[{name!r}]", dtype, "the parameter's shape")
                for name, shape in shapes.items()}

    def __getattr__(self, name):
        params = self.__dict__.get("params", {})
        if name in params:
            return params[name]
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def output_shape(self, in_shape):
        """Shape (without the batch axis) of the output for an input of shape ``in_shape``."""
        return tuple(in_shape)

    def _buffer(self, role, shape, dtype):
        """An uninitialized output array, reused from this layer's previous call when free
        (:class:`genbound.nn.runtime.Workspace`)."""
        return self.workspace.empty(role, shape, dtype)

    def _zeros(self, role, shape, dtype):
        """A zeroed array from :meth:`_buffer` (gradient accumulators)."""
        out = self._buffer(role, shape, dtype)
        out.fill(0)
        return out

    def __repr__(self):
        return f"{type(self).__name__}()"

    def forward_with_jvp(self, x, rx, tparams):
        """``(y, cache, ry, tcache)``: :meth:`forward` and :meth:`jvp` at once, as a Hessian-vector product needs
        them. Two calls here; a layer whose kernels give both in one pass overrides it."""
        y, cache = self.forward(x)
        ry, tcache = self.jvp(rx, tparams, cache)
        return y, cache, ry, tcache

    def backward_with_jvp(self, dy, rdy, cache, tcache, tparams, need_dx=True):
        """``(dx, rdx, rgrads)``: dx of :meth:`backward` (its parameter gradients skipped where the layer can)
        and ``(rdx, rgrads)`` of :meth:`backward_jvp`, what a Hessian-vector product needs of each layer.

        Two calls here; a layer whose kernels give both in one pass overrides it. dx and rdx are None without
        ``need_dx``.
        """
        rdx, rgrads = self.backward_jvp(dy, rdy, cache, tcache, tparams, need_dx=need_dx)
        if not need_dx:
            return None, None, rgrads
        if _skips_grads(type(self)):
            return self.backward(dy, cache, need_dx=True, need_grads=False)[0], rdx, rgrads
        return self.backward(dy, cache, need_dx=True)[0], rdx, rgrads

    # -- models as data -----------------------------------------------------------------------------------
    def config(self):
        """The constructor arguments that rebuild this layer: ``type(layer)(**layer.config())``.

        Plain ints and strings (the layer's architecture, never its parameters), as saved in the JSON header
        of :func:`genbound.nn.save`.
        """
        names = list(inspect.signature(type(self).__init__).parameters)[1:]
        return {name: getattr(self, name) for name in names}

    def __getstate__(self):
        """Pickle and copy without the workspace: reusable buffers are never saved nor shared between copies."""
        state = self.__dict__.copy()
        state.pop("workspace", None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.workspace = Workspace()


# --------------------------------------------------------------------------------------------------------
# Convolutions
# --------------------------------------------------------------------------------------------------------


class _ConvBase(Layer):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0):
        super().__init__()
        self.in_channels = check_int(in_channels, "in_channels", 1)
        self.out_channels = check_int(out_channels, "out_channels", 1)
        self.kernel_size = check_int(kernel_size, "kernel_size", 1)
        self.stride = check_int(stride, "stride", 1)
        self.padding = check_int(padding, "padding", 0)
        if type(self) is Conv2d:
            self._check_size(("in_channels", "out_channels", "kernel_size"))

    def output_shape(self, in_shape):
        if len(in_shape) != 3:
            raise ValueError(f"x: expected images of shape (C, H, W) for {self!r}, got {tuple(in_shape)}")
        c, h, w = in_shape
        if c != self.in_channels:
            raise ValueError(f"x: expected {self.in_channels} input channels for {self!r}, got {c}")
        k, s, p = self.kernel_size, self.stride, self.padding
        return (self.out_channels, _out_size(h, k, s, p, self, "H"), _out_size(w, k, s, p, self, "W"))

    @property
    def _dtype(self):
        return next(iter(self._bound().values())).dtype

    def _out_shape(self, x_shape):
        """The output shape (N, O, Ho, Wo) for an input of shape ``x_shape``."""
        return (x_shape[0], *self.output_shape(x_shape[1:]))

    def _param(self, params, name, dtype=None):
        """Parameter ``name`` of ``params`` as a C-contiguous array of the layer's dtype (``dtype``, if the
        caller has it at hand)."""
        return _arr(params[name], self._dtype if dtype is None else dtype)

    def _geometry(self, kernels, x_shape):
        """The ``Geometry`` tuple of the kernel module ``kernels`` for a batch of shape ``x_shape`` (checked).

        Images are grouped by output plane for the full convolution (its BLAS products run over output
        pixels) and by input plane for the CP convolution (its channel mix runs over input pixels).
        """
        _, ho, wo = self.output_shape(x_shape[1:])
        n, _, h, w = x_shape
        plane = ho * wo if kernels is kconv else h * w
        k, s, p = self.kernel_size, self.stride, self.padding
        return kernels.Geometry(h, w, k, k, s, p, ho, wo, image_group(plane), batch_chunks(n))

    def _full_adjoint(self, x, dy, w2, need_dx, role, x2=None, dy2=None, w22=None, need_gw=True):
        """Gradients of a full convolution y = conv(x, W2): ``{"weight": G (O, C, kh, kw), "bias": ...}`` with
        G = sum_n dy[n] im2col(x[n])^T, and dx = col2im(W2^T dy) if ``need_dx`` (written into the buffer
        ``role``); plus the second terms of the tangent rule: dy2 im2col(x2)^T in G when ``x2`` is given,
        col2im(W22^T dy2) in dx when ``w22`` is given. Without ``need_gw`` only dx is computed (grads ``{}``).
        """
        n, c = x.shape[:2]
        o, k = self.out_channels, self.kernel_size
        geo = self._geometry(kconv, x.shape)
        dy3 = _arr(dy, x.dtype).reshape(n, o, -1)
        gw_adds_x2, dx_adds_w22 = x2 is not None, w22 is not None
        dy23 = dy3 if dy2 is None else _arr(dy2, x.dtype).reshape(n, o, -1)
        x2 = x if x2 is None else x2
        w22 = w2 if w22 is None else w22
        gw_c = self._zeros("gw_c", (geo.chunks, *w2.shape), x.dtype)
        gb_c = self._zeros("gb_c", (geo.chunks, o), x.dtype)
        dx = self._buffer(role, x.shape, x.dtype) if need_dx else x[:1]
        terms = 2 if gw_adds_x2 or dx_adds_w22 else 1
        work = dy3.size * w2.shape[1] * terms * (int(need_gw) + int(need_dx))
        x3, x23, dx3 = (a.reshape(a.shape[0], c, -1) for a in (x, x2, dx))
        run_parallel(lambda lo, hi: kconv.conv_backward(x3, dy3, w2, x23, dy23, w22, gw_adds_x2, dx_adds_w22,
                                                        geo, lo, hi, need_gw, need_dx, gw_c, gb_c, dx3),
                     geo.chunks, work)
        if not need_gw:
            return (dx if need_dx else None), {}
        grads = {"weight": gw_c.sum(axis=0).reshape(o, c, k, k), "bias": gb_c.sum(axis=0)}
        return (dx if need_dx else None), grads

    def _gw(self, x, dy):
        """Weight-space gradient G = sum_n dy[n] (x) im2col(x[n]) as (O, C, kh, kw)."""
        w2_shape = (self.out_channels, self.in_channels * self.kernel_size**2)
        dy = _as_like(dy, self._out_shape(x.shape), "dy", x.dtype)
        return self._full_adjoint(x, dy, np.empty(w2_shape, x.dtype), False, None)[1]["weight"]


class Conv2d(_ConvBase):
    """2-D convolution with full filters: ``weight`` (O, C, kh, kw), ``bias`` (O,), as in PyTorch.

    .. math:: y[n, o, a, b] = b_o + \\sum_{c,j,k} W[o,c,j,k]\\, x[n, c, sa + j - p, sb + k - p]

    (cross-correlation, zero padding p, stride s). Computed by groups of images as im2col followed by one BLAS
    product, in parallel over chunks of the batch (:mod:`genbound._kernels.conv`).
    """

    def __repr__(self):
        return (f"Conv2d({self.in_channels}, {self.out_channels}, {self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding})")

    def param_shapes(self):
        k = self.kernel_size
        return {"weight": (self.out_channels, self.in_channels, k, k), "bias": (self.out_channels,)}

    def param_scales(self):
        """He initialization: std sqrt(2 / (C kh kw)) for the weight (and, as its scale, the bias)."""
        s = float(np.sqrt(2.0 / (self.in_channels * self.kernel_size**2)))
        return {"weight": s, "bias": s}

    def init_params(self, seed, dtype):
        w = as_generator(seed).normal(0.0, self.param_scales()["weight"], self.param_shapes()["weight"])
        return {"weight": w.astype(dtype), "bias": np.zeros(self.out_channels, dtype)}

    def _w2(self, params):
        return self._param(params, "weight").reshape(self.out_channels, -1)

    def _conv(self, x, w2, bias, role, x2=None, w22=None):
        """bias + conv(x, W2) (+ conv(x2, W22) when x2 is given) as (N, O, Ho, Wo), in the buffer ``role``."""
        n = x.shape[0]
        geo = self._geometry(kconv, x.shape)
        y = self._buffer(role, (n, self.out_channels, geo.ho * geo.wo), x.dtype)
        add2 = x2 is not None
        x2, w22 = (x2, w22) if add2 else (x, w2)
        x3, x23 = x.reshape(n, self.in_channels, -1), x2.reshape(n, self.in_channels, -1)
        run_parallel(lambda lo, hi: kconv.conv_forward(x3, w2, x23, w22, add2, bias, geo, lo, hi, y),
                     geo.chunks, y.size * w2.shape[1] * (1 + add2))
        return y.reshape(n, self.out_channels, geo.ho, geo.wo)

    # -- rules --------------------------------------------------------------------------------------------
    def forward(self, x):
        x = _as_input(x, "x", self._dtype)
        if x.ndim != 4:
            raise ValueError(f"x: expected a batch of images (N, C, H, W) for {self!r}, got shape {x.shape}")
        return self._conv(x, self._w2(self.params), self._param(self.params, "bias"), "y"), {"x": x}

    def backward(self, dy, cache, need_dx=True, need_grads=True):
        x = cache["x"]
        dy = _as_like(dy, self._out_shape(x.shape), "dy", x.dtype)
        return self._full_adjoint(x, dy, self._w2(self.params), need_dx, "dx", need_gw=need_grads)

    def jvp(self, rx, tparams, cache):
        # R{y} = conv(x, V) + v_b + conv(rx, W)
        x = cache["x"]
        tparams = self._tangents(tparams)
        rx = None if rx is None else _as_like(rx, x.shape, "rx", x.dtype, "the layer's input")
        ry = self._conv(x, self._w2(tparams), self._param(tparams, "bias"), "ry", rx, self._w2(self.params))
        return ry, {"rx": rx}

    def backward_jvp(self, dy, rdy, cache, tcache, tparams, need_dx=True):
        # R{G} = rdy (x) x + dy (x) rx ; R{dx} = W^T rdy + V^T dy
        x = cache["x"]
        out = self._out_shape(x.shape)
        dy, rdy = _as_like(dy, out, "dy", x.dtype), _as_like(rdy, out, "rdy", x.dtype)
        tparams = self._tangents(tparams)
        return self._full_adjoint(x, rdy, self._w2(self.params), need_dx, "rdx", x2=tcache["rx"], dy2=dy,
                                  w22=self._w2(tparams))

    def weight_grad(self, dy, cache):
        """dL/dW for the batch of ``cache`` given the output gradient ``dy`` (same as ``backward``)."""
        return self._gw(cache["x"], dy)


class CPConv2d(_ConvBase):
    """2-D convolution whose filters are rank-R CP tensors, applied in factored form.

    Factors ``p`` (O, R, C), ``q`` (O, R, kh), ``t`` (O, R, kw) and ``bias`` (O,), with

    .. math:: W[o] = \\sum_{r=1}^R p_{o,r} \\otimes q_{o,r} \\otimes t_{o,r},

    applied without forming W: a channel mix ``z = P x`` (one BLAS product), a 1-D convolution along H with
    q, a 1-D convolution along W with t, summed over r. At stride 1 this costs R (C + kh + kw)
    multiply-adds per output pixel instead of C kh kw. The backward pass returns dL/dp, dL/dq, dL/dt
    directly; :meth:`weight_grad` gives the weight-space gradient G = dL/dW on demand (Eq. 2 of Lee & Lee).

    ``update`` chooses how an optimizer trains the layer: ``"factor"`` (default) steps p, q, t by SGD, which
    moves the filter by Eq. 2-3; ``"project"`` steps the full filter W by SGD on G and projects it back to
    rank R by ALS warm-started from the current factors (:func:`genbound.factor.project_rank`).
    """

    UPDATES = ("factor", "project")

    def __init__(self, in_channels, out_channels, kernel_size, rank=1, stride=1, padding=0, update="factor"):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding)
        self.rank = check_int(rank, "rank", 1)
        if not isinstance(update, str) or update not in self.UPDATES:
            raise ValueError(f"update: expected one of {self.UPDATES}, got {update!r}")
        self.update = update
        self._check_size(("rank", "in_channels", "out_channels", "kernel_size"))

    def __repr__(self):
        return (f"CPConv2d({self.in_channels}, {self.out_channels}, {self.kernel_size}, rank={self.rank}, "
                f"stride={self.stride}, padding={self.padding})")

    def param_shapes(self):
        o, r, c, k = self.out_channels, self.rank, self.in_channels, self.kernel_size
        return {"p": (o, r, c), "q": (o, r, k), "t": (o, r, k), "bias": (o,)}

    def init_params(self, seed, dtype):
        """He-style init of the reconstructed filter: Var W = 2 / (C kh kw) with Var p = 2/(C R),
        Var q = 1/kh, Var t = 1/kw."""
        shapes, scales, rng = self.param_shapes(), self.param_scales(), as_generator(seed)
        return {
            "p": rng.normal(0.0, scales["p"], shapes["p"]).astype(dtype),
            "q": rng.normal(0.0, scales["q"], shapes["q"]).astype(dtype),
            "t": rng.normal(0.0, scales["t"], shapes["t"]).astype(dtype),
            "bias": np.zeros(self.out_channels, dtype),
        }

    def param_scales(self):
        """Init stds sqrt(2/(C R)) (p), sqrt(1/kh) (q), sqrt(1/kw) (t); the bias gets the reconstructed
        filter's sqrt(2/(C kh kw))."""
        c, k, r = self.in_channels, self.kernel_size, self.rank
        return {"p": float(np.sqrt(2.0 / (c * r))), "q": float(np.sqrt(1.0 / k)), "t": float(np.sqrt(1.0 / k)),
                "bias": float(np.sqrt(2.0 / (c * k * k)))}

    def full_weight(self):
        """The reconstructed weight W (O, C, kh, kw)."""
        params = self._bound()
        p, q, t = params["p"], params["q"], params["t"]
        return np.einsum("orc,orj,ork->ocjk", p, q, t)

    def to_full(self):
        """The equivalent :class:`Conv2d` (weight = reconstructed filters, same bias), for unconstrained training."""
        layer = Conv2d(self.in_channels, self.out_channels, self.kernel_size, self.stride, self.padding)
        return layer.bind({"weight": self.full_weight(), "bias": self.params["bias"].copy()})

    # -- helpers ------------------------------------------------------------------------------------------
    def _work(self, values):
        """Multiply-adds of a pass writing ``values`` outputs: R (C + kh + kw) each."""
        return values * self.rank * (self.in_channels + 2 * self.kernel_size)

    def _flat_in(self, x, name="x", shape=None):
        """``x`` checked and flattened to (N, C, H*W), and its shape (N, C, H, W)."""
        x = _as_input(x, name, self._dtype) if shape is None else _as_like(x, shape, name, self._dtype,
                                                                             "the layer's input")
        if x.ndim != 4:
            raise ValueError(f"{name}: expected a batch of images (N, C, H, W) for {self!r}, got shape {x.shape}")
        n, c, h, w = x.shape
        return x.reshape(n, c, h * w), x.shape

    def _factors(self, params):
        """(p2, q, t) with p2 the (O*R, C) matrix of the channel mix, as the kernels take them."""
        dtype = self._dtype
        p = self._param(params, "p", dtype).reshape(-1, self.in_channels)
        return p, self._param(params, "q", dtype), self._param(params, "t", dtype)

    def _accumulators(self, geo, factors):
        """Zeroed per-chunk gradient accumulators for p, q, t, bias: C-contiguous parts of one buffer."""
        shapes = [(geo.chunks, *shape) for shape in (*(f.shape for f in factors), (self.out_channels,))]
        sizes = [math.prod(shape) for shape in shapes]
        flat = self._zeros("acc", (sum(sizes),), factors[0].dtype)
        ends = itertools.accumulate(sizes)
        return tuple(flat[end - size:end].reshape(shape) for shape, size, end in zip(shapes, sizes, ends))

    def _sum_chunks(self, acc):
        """Factor gradients from the per-chunk accumulators, summed in chunk order."""
        gp, gq, gt, gb = (a.sum(axis=0) if a.shape[0] > 1 else a[0].copy() for a in acc)
        return {"p": gp.reshape(self.params["p"].shape), "q": gq, "t": gt, "bias": gb}

    def _y_shape(self, n, geo, pooled):
        """Shape of the output for n images of geometry ``geo``: (N, O, Ho, Wo), or (N, O, Ho // 2, Wo // 2)
        when it is max-pooled (see :class:`_CPConvMaxPool`)."""
        return (n, self.out_channels, geo.ho // 2, geo.wo // 2) if pooled else (n, self.out_channels, geo.ho, geo.wo)

    def _dy(self, dy, cache, geo, name):
        """A gradient or tangent of the output as (N, O, P), checked: of the pooled output when ``cache`` holds
        argmaxes."""
        shape = self._y_shape(cache["x_shape"][0], geo, "idx" in cache)
        return _as_like(dy, shape, name, cache["x"].dtype).reshape(shape[0], shape[1], -1)

    # -- rules --------------------------------------------------------------------------------------------
    def forward(self, x):
        return self._forward(x, None)

    def _forward(self, x, relu_pool):
        """:meth:`forward`; with ``relu_pool`` not None, the 2x2 stride-2 max pool of the output (after a ReLU
        if ``relu_pool`` is True) from the same kernel pass, its argmaxes in the cache."""
        x3, x_shape = self._flat_in(x)
        geo = self._geometry(kcp, x_shape)
        cache = {"x": x3, "x_shape": x_shape}
        pool = relu_pool is not None
        shape = self._y_shape(x_shape[0], geo, pool)
        factors, bias = self._factors(self.params), self._param(self.params, "bias")
        y = self._buffer("y", (*shape[:2], shape[2] * shape[3]), x3.dtype)
        idx = self._buffer("idx", y.shape, np.int32) if pool else _NO_INDEX
        run_parallel(lambda lo, hi: kcp.cp_forward(x3, factors, bias, geo, pool, bool(relu_pool), lo, hi, y, idx),
                     geo.chunks, self._work(shape[0] * self.out_channels * geo.ho * geo.wo))
        if pool:
            cache["idx"] = idx
        return y.reshape(shape), cache

    def backward(self, dy, cache, need_dx=True, need_grads=True):
        # need_grads=False is accepted but saves nothing here: a kernel of its own for dx alone (which needs
        # neither x nor its channel mix) made an HVP 13 % faster but cost 5 s more of cold compile time
        geo = self._geometry(kcp, cache["x_shape"])
        x3, idx = cache["x"], cache.get("idx", _NO_INDEX)
        factors = self._factors(self.params)
        dy3 = self._dy(dy, cache, geo, "dy")
        acc = self._accumulators(geo, factors)
        dx = self._buffer("dx", x3.shape, x3.dtype) if need_dx else x3[:1]
        pool = "idx" in cache
        run_parallel(lambda lo, hi: kcp.cp_backward(x3, dy3, idx, factors, geo, pool, lo, hi, need_dx, acc, dx),
                     geo.chunks, self._work(x3.shape[0] * self.out_channels * geo.ho * geo.wo * (2 + need_dx)))
        grads = self._sum_chunks(acc) if need_grads else {}
        return (dx.reshape(cache["x_shape"]) if need_dx else None), grads

    def jvp(self, rx, tparams, cache):
        return self._tangent_forward(rx, tparams, cache, need_y=False)[1:]

    def forward_with_jvp(self, x, rx, tparams):
        """y and the tangent ry from one kernel pass (the tangent pass computes the channel mix and the H pass
        of the forward pass anyway), unless a subclass has rules of its own."""
        if type(self).forward is not CPConv2d.forward or type(self).jvp is not CPConv2d.jvp:
            return super().forward_with_jvp(x, rx, tparams)
        return self._forward_with_jvp(x, rx, tparams, None)

    def _forward_with_jvp(self, x, rx, tparams, relu_pool):
        """:meth:`forward_with_jvp`, pooled as by :meth:`_forward` when ``relu_pool`` is not None."""
        x3, x_shape = self._flat_in(x)
        cache = {"x": x3, "x_shape": x_shape}
        y, ry, tcache = self._tangent_forward(rx, tparams, cache, need_y=True, relu_pool=relu_pool)
        return y, cache, ry, tcache

    def _tangent_forward(self, rx, tparams, cache, need_y, relu_pool=None):
        """``(y, ry, tcache)`` from one kernel call (y None without ``need_y``). With ``need_y`` and
        ``relu_pool`` not None, y is pooled as by :meth:`_forward` and the argmaxes go into ``cache``; without
        ``need_y``, ry is pooled if ``cache`` holds argmaxes."""
        geo = self._geometry(kcp, cache["x_shape"])
        x3 = cache["x"]
        pool = relu_pool is not None if need_y else "idx" in cache
        shape = self._y_shape(cache["x_shape"][0], geo, pool)
        rx3 = None if rx is None else self._flat_in(rx, "rx", cache["x_shape"])[0]
        factors, tangents = self._factors(self.params), self._factors(self._tangents(tparams))
        out = (*shape[:2], shape[2] * shape[3])
        ry = self._buffer("ry", out, x3.dtype)
        y = self._buffer("y", out, x3.dtype) if need_y else ry[:1]
        idx = (self._buffer("idx", out, np.int32) if need_y else cache["idx"]) if pool else _NO_INDEX
        rx_, vb, bias = x3 if rx3 is None else rx3, self._param(tparams, "bias"), self._param(self.params, "bias")
        run_parallel(lambda lo, hi: kcp.cp_jvp(x3, rx_, rx3 is not None, factors, tangents, vb, geo, pool,
                                               bool(relu_pool), lo, hi, ry, need_y, bias, y, idx),
                     geo.chunks, self._work(shape[0] * self.out_channels * geo.ho * geo.wo * (3 + need_y)))
        if pool and need_y:
            cache["idx"] = idx
        return (y.reshape(shape) if need_y else None), ry.reshape(shape), {"rx": rx3}

    def backward_jvp(self, dy, rdy, cache, tcache, tparams, need_dx=True):
        return self._backward_and_tangent(dy, rdy, cache, tcache, tparams, need_dx)[1:]

    def backward_with_jvp(self, dy, rdy, cache, tcache, tparams, need_dx=True):
        """dx and :meth:`backward_jvp` from one kernel pass (the tangent pass computes the adjoint dz of the
        channel mix, and dx = P^T dz), unless a subclass has rules of its own."""
        if type(self).backward is not CPConv2d.backward or type(self).backward_jvp is not CPConv2d.backward_jvp:
            return super().backward_with_jvp(dy, rdy, cache, tcache, tparams, need_dx)
        return self._backward_and_tangent(dy, rdy, cache, tcache, tparams, need_dx)

    def _backward_and_tangent(self, dy, rdy, cache, tcache, tparams, need_dx):
        """``(dx, rdx, rgrads)`` from one kernel call (dx and rdx None without ``need_dx``)."""
        geo = self._geometry(kcp, cache["x_shape"])
        x3, rx3, idx = cache["x"], tcache["rx"], cache.get("idx", _NO_INDEX)
        factors, tangents = self._factors(self.params), self._factors(self._tangents(tparams))
        dy3, rdy3 = self._dy(dy, cache, geo, "dy"), self._dy(rdy, cache, geo, "rdy")
        acc = self._accumulators(geo, factors)
        rdx = self._buffer("rdx", x3.shape, x3.dtype) if need_dx else x3[:1]
        dx = self._buffer("dx", x3.shape, x3.dtype) if need_dx else x3[:1]
        rx_, pool = x3 if rx3 is None else rx3, "idx" in cache
        run_parallel(lambda lo, hi: kcp.cp_backward_jvp(x3, rx_, rx3 is not None, dy3, rdy3, idx, factors, tangents,
                                                        geo, pool, lo, hi, need_dx, acc, rdx, dx),
                     geo.chunks, self._work(x3.shape[0] * self.out_channels * geo.ho * geo.wo * (5 + 2 * need_dx)))
        if not need_dx:
            return None, None, self._sum_chunks(acc)
        return dx.reshape(cache["x_shape"]), rdx.reshape(cache["x_shape"]), self._sum_chunks(acc)

    def weight_grad(self, dy, cache):
        """Weight-space gradient G = dL/dW (O, C, kh, kw) for the batch of ``cache``.

        .. math:: G[o,c,j,k] = \\sum_{n,a,b} dy[n,o,a,b]\\, x[n,c,sa+j-p,sb+k-p]

        By the chain rule dL/dp[o,r,c] = sum_jk G[o,c,j,k] q[o,r,j] t[o,r,k] (tested).
        """
        return self._gw(cache["x"].reshape(cache["x_shape"]), dy)


# --------------------------------------------------------------------------------------------------------
# Dense, activations, pooling, reshaping
# --------------------------------------------------------------------------------------------------------


class Dense(Layer):
    """Affine layer ``y = x W^T + b`` with ``weight`` (out, in) and ``bias`` (out,), as in PyTorch."""

    def __init__(self, in_features, out_features):
        super().__init__()
        self.in_features = check_int(in_features, "in_features", 1)
        self.out_features = check_int(out_features, "out_features", 1)
        self._check_size(("in_features", "out_features"))

    def __repr__(self):
        return f"Dense({self.in_features}, {self.out_features})"

    def param_shapes(self):
        return {"weight": (self.out_features, self.in_features), "bias": (self.out_features,)}

    def param_scales(self):
        """Init std sqrt(1 / n_in) for the weight (and, as its scale, the bias)."""
        s = float(np.sqrt(1.0 / self.in_features))
        return {"weight": s, "bias": s}

    def init_params(self, seed, dtype):
        w = as_generator(seed).normal(0.0, self.param_scales()["weight"], (self.out_features, self.in_features))
        return {"weight": w.astype(dtype), "bias": np.zeros(self.out_features, dtype)}

    def output_shape(self, in_shape):
        if tuple(in_shape) != (self.in_features,):
            raise ValueError(f"x: expected inputs of shape ({self.in_features},) for {self!r}, got {tuple(in_shape)}")
        return (self.out_features,)

    def forward(self, x):
        params = self._bound()
        x = _as_input(x, "x", params["weight"].dtype)
        if x.ndim != 2:
            raise ValueError(f"x: expected a batch of vectors (N, {self.in_features}) for {self!r}, got shape "
                             f"{x.shape}")
        self.output_shape(x.shape[1:])
        return x @ params["weight"].T + params["bias"], {"x": x}

    def _out(self, cache):
        return (cache["x"].shape[0], self.out_features)

    def backward(self, dy, cache, need_dx=True, need_grads=True):
        dy = _as_like(dy, self._out(cache), "dy", cache["x"].dtype)
        grads = {"weight": dy.T @ cache["x"], "bias": dy.sum(axis=0)} if need_grads else {}
        return (self._product(dy, self.params["weight"], "dx") if need_dx else None), grads

    def _product(self, a, b, role):
        """a @ b in the buffer ``role``: an input gradient of a large batch is megabytes, which a fresh array
        would fault in page by page on every call (measured: 2 ms of a 35 ms Hessian-vector product)."""
        out = self._buffer(role, (a.shape[0], b.shape[1]), a.dtype)
        return np.matmul(a, b, out=out)

    def jvp(self, rx, tparams, cache):
        tparams = self._tangents(tparams)
        ry = cache["x"] @ tparams["weight"].T + tparams["bias"]
        if rx is not None:
            rx = _as_like(rx, cache["x"].shape, "rx", cache["x"].dtype, "the layer's input")
            ry += rx @ self.params["weight"].T
        return ry, {"rx": rx}

    def backward_jvp(self, dy, rdy, cache, tcache, tparams, need_dx=True):
        dtype = cache["x"].dtype
        dy, rdy = _as_like(dy, self._out(cache), "dy", dtype), _as_like(rdy, self._out(cache), "rdy", dtype)
        tparams = self._tangents(tparams)
        rgw = rdy.T @ cache["x"]
        if tcache["rx"] is not None:
            rgw += dy.T @ tcache["rx"]
        rgrads = {"weight": rgw, "bias": rdy.sum(axis=0)}
        if not need_dx:
            return None, rgrads
        rdx = self._product(rdy, self.params["weight"], "rdx")
        rdx += self._product(dy, tparams["weight"], "rdx_term")
        return rdx, rgrads


class _Linear(Layer):
    """A parameter-free layer that is linear given its cache (ReLU mask, max-pool argmax, shapes).

    Subclasses give ``forward``, ``_apply(x, cache, role)`` (the linear map of the cache) and
    ``_transpose(dy, cache, role)`` (its adjoint); the tangent rules are these maps applied to tangents.
    ``role`` names the output buffer (see :meth:`Layer._buffer`). ``_shapes(cache)`` gives the shapes of the
    input and the output, against which gradients and tangents are checked before any kernel reads them.
    """

    def _shapes(self, cache):
        shape = cache["x_shape"]
        return shape, (shape[0], *self.output_shape(shape[1:]))

    def backward(self, dy, cache, need_dx=True, need_grads=True):
        return self._transpose(_as_like(dy, self._shapes(cache)[1], "dy"), cache, "dx"), {}

    def jvp(self, rx, tparams, cache):
        if rx is None:
            return None, {}
        return self._apply(_as_like(rx, self._shapes(cache)[0], "rx", what="the layer's input"), cache, "ry"), {}

    def backward_jvp(self, dy, rdy, cache, tcache, tparams, need_dx=True):
        if not need_dx:
            return None, {}
        return self._transpose(_as_like(rdy, self._shapes(cache)[1], "rdy"), cache, "rdx"), {}


class ReLU(_Linear):
    """Rectified linear unit, ``y = max(x, 0)``; the derivative at 0 is taken as 0.

    The cache holds the output y: the derivative is read off it (1 where y > 0), so no mask is stored.
    Inside :class:`genbound.nn.Sequential` a ReLU followed by a max pool or a global average pool runs fused
    with it (see :func:`fused_plan`).
    """

    def forward(self, x):
        x = _as_input(x, "x")
        y = self._buffer("y", x.shape, x.dtype)
        run_parallel(lambda lo, hi: kact.relu_forward(x, lo, hi, y), x.size, x.size)
        return y, {"y": y}

    def _shapes(self, cache):
        return cache["y"].shape, cache["y"].shape

    def _apply(self, x, cache, role):
        x = np.ascontiguousarray(x)
        out = self._buffer(role, x.shape, x.dtype)
        run_parallel(lambda lo, hi: kact.relu_mask(x, cache["y"], lo, hi, out), x.size, x.size)
        return out

    _transpose = _apply


class _Pool(_Linear):
    def __init__(self, kernel_size, stride=None):
        super().__init__()
        self.kernel_size = check_int(kernel_size, "kernel_size", 1)
        self.stride = self.kernel_size if stride is None else check_int(stride, "stride", 1)

    def __repr__(self):
        return f"{type(self).__name__}({self.kernel_size}, stride={self.stride})"

    def output_shape(self, in_shape):
        if len(in_shape) != 3:
            raise ValueError(f"x: expected images of shape (C, H, W) for {self!r}, got {tuple(in_shape)}")
        c, h, w = in_shape
        k, s = self.kernel_size, self.stride
        return (c, _out_size(h, k, s, 0, self, "H"), _out_size(w, k, s, 0, self, "W"))


#: What one input value of max pooling costs, in the multiply-adds that :func:`genbound.nn.runtime.run_parallel`
#: weighs work in: its compare-and-select code does not vectorize (measured: about 1.5 ns per 2x2 window
#: forward, 0.6 ns backward, against about 0.1 ns per vectorized multiply-add).
MAXPOOL_WORK_PER_VALUE = 4


class MaxPool2d(_Pool):
    """Max pooling over k x k windows (stride k by default); ties go to the first maximum in row order."""

    _relu = False  # see _ReLUMaxPool

    def forward(self, x):
        x = _as_input(x, "x")
        c, ho, wo = self.output_shape(x.shape[1:])
        n, k, s = x.shape[0], self.kernel_size, self.stride
        y = self._buffer("y", (n, c, ho, wo), x.dtype)
        idx = self._buffer("idx", (n, c, ho, wo), np.int32)
        run_parallel(lambda lo, hi: kpool.maxpool_forward(x, k, s, ho, wo, self._relu, lo, hi, y, idx), n,
                     MAXPOOL_WORK_PER_VALUE * x.size)
        return y, {"idx": idx, "x_shape": x.shape}

    def _apply(self, x, cache, role):
        x, idx = np.ascontiguousarray(x), cache["idx"]
        y = self._buffer(role, idx.shape, x.dtype)
        run_parallel(lambda lo, hi: kpool.gather(x, idx, lo, hi, y), x.shape[0], x.size)
        return y

    def _transpose(self, dy, cache, role):
        dy, idx = np.ascontiguousarray(dy), cache["idx"]
        dx = self._buffer(role, cache["x_shape"], dy.dtype)
        k, s = self.kernel_size, self.stride
        run_parallel(lambda lo, hi: kpool.scatter(dy, idx, k, s, lo, hi, dx), dx.shape[0],
                     MAXPOOL_WORK_PER_VALUE * dx.size)
        return dx


class AvgPool2d(_Pool):
    """Average pooling over k x k windows (stride k by default)."""

    def forward(self, x):
        x = _as_input(x, "x")
        cache = {"x_shape": x.shape}
        return self._apply(x, cache, "y"), cache

    def _apply(self, x, cache, role):
        c, ho, wo = self.output_shape(x.shape[1:])
        x, k, s = np.ascontiguousarray(x), self.kernel_size, self.stride
        y = self._buffer(role, (x.shape[0], c, ho, wo), x.dtype)
        run_parallel(lambda lo, hi: kpool.avgpool_forward(x, k, s, ho, wo, lo, hi, y), x.shape[0], x.size)
        return y

    def _transpose(self, dy, cache, role):
        dy, k, s = np.ascontiguousarray(dy), self.kernel_size, self.stride
        dx = self._buffer(role, cache["x_shape"], dy.dtype)
        run_parallel(lambda lo, hi: kpool.avgpool_backward(dy, k, s, lo, hi, dx), dx.shape[0], dx.size)
        return dx


class GlobalAvgPool(_Linear):
    """Mean over the spatial axes: (N, C, H, W) -> (N, C)."""

    def output_shape(self, in_shape):
        if len(in_shape) != 3:
            raise ValueError(f"x: expected images of shape (C, H, W) for GlobalAvgPool, got {tuple(in_shape)}")
        return (in_shape[0],)

    def forward(self, x):
        x = _as_input(x, "x")
        self.output_shape(x.shape[1:])
        cache = {"x_shape": x.shape}
        return self._apply(x, cache, "y"), cache

    def _apply(self, x, cache, role):
        return x.mean(axis=(2, 3))

    def _transpose(self, dy, cache, role):
        n, c, h, w = cache["x_shape"]
        dx = self._buffer(role, cache["x_shape"], dy.dtype)
        dx[...] = (dy / (h * w))[:, :, None, None]
        return dx


class Flatten(_Linear):
    """Flatten (C, H, W) in C order: (N, C, H, W) -> (N, C*H*W)."""

    def output_shape(self, in_shape):
        return (math.prod(in_shape),)

    def forward(self, x):
        x = _as_input(x, "x")
        if x.ndim < 2:
            raise ValueError(f"x: expected a batch (N, ...) for Flatten, got shape {x.shape}")
        cache = {"x_shape": x.shape}
        return self._apply(x, cache, "y"), cache

    def _apply(self, x, cache, role):
        return x.reshape(x.shape[0], -1)

    def _transpose(self, dy, cache, role):
        return dy.reshape(cache["x_shape"])


# --------------------------------------------------------------------------------------------------------
# Fusion: a ReLU and the pool after it in one pass
# --------------------------------------------------------------------------------------------------------


class _ReLUMaxPool(MaxPool2d):
    """ReLU then max pooling, computed as ReLU(max pool): the same function (ReLU is monotone), the same
    derivative (a window whose maximum is not positive passes nothing, as ReLU's zero derivative would), but
    the full-size ReLU output, its mask and the ReLU backward pass never exist. Uses the pool's buffers."""

    _relu = True

    def __init__(self, pool):  # noqa: super().__init__ not called: the pool's workspace is shared
        self.params = {}
        self.kernel_size, self.stride = pool.kernel_size, pool.stride
        self.workspace = pool.workspace


class _ReLUGlobalAvgPool(GlobalAvgPool):
    """ReLU then global average pooling in one pass over the input: y = mean(max(x, 0)); the cache is the
    input x itself, whose sign gives ReLU's derivative. Uses the pool's buffers."""

    def __init__(self, pool):  # noqa: super().__init__ not called: the pool's workspace is shared
        self.params = {}
        self.workspace = pool.workspace

    def forward(self, x):
        x = _as_input(x, "x")
        self.output_shape(x.shape[1:])
        n, c, h, w = x.shape
        x3 = x.reshape(n, c, h * w)
        y = np.empty((n, c), x.dtype)
        run_parallel(lambda lo, hi: kact.relu_gap_forward(x3, lo, hi, y), n, x.size)
        return y, {"x": x3, "x_shape": x.shape}

    def _apply(self, rx, cache, role):
        x3 = cache["x"]
        rx3 = np.ascontiguousarray(rx).reshape(x3.shape)
        ry = np.empty(x3.shape[:2], rx3.dtype)
        run_parallel(lambda lo, hi: kact.relu_gap_tangent(rx3, x3, lo, hi, ry), x3.shape[0], x3.size)
        return ry

    def _transpose(self, dy, cache, role):
        x3 = cache["x"]
        dy = np.ascontiguousarray(dy)
        dx = self._buffer(role, x3.shape, dy.dtype)
        run_parallel(lambda lo, hi: kact.relu_gap_adjoint(dy, x3, lo, hi, dx), x3.shape[0], x3.size)
        return dx.reshape(cache["x_shape"])


class _CPConvMaxPool(Layer):
    """A :class:`CPConv2d`, the :class:`ReLU` after it (if ``relu``) and a 2x2, stride-2 :class:`MaxPool2d`
    after that, as one unit: the convolution's kernels pool each output plane while it is in cache, and its
    backward kernels scatter the pooled gradient into the plane they are about to read, so the full-size
    output, its ReLU and their gradients are never stored, and three layers cost one call. The same function,
    the same four rules and the same bits as the layers one by one (tests/nn/test_fusion.py); its parameters
    are the convolution's, its cache the convolution's with the argmaxes."""

    def __init__(self, conv, relu, pool):  # noqa: super().__init__ not called: the layers keep their buffers
        self.conv, self.relu, self.pool = conv, relu, pool

    @property
    def params(self):
        """The convolution's parameters (binding the unit binds the convolution)."""
        return self.conv.params

    @params.setter
    def params(self, value):
        self.conv.params = value

    def __repr__(self):
        return f"{type(self).__name__}({self.conv!r}, relu={self.relu})"

    def param_shapes(self):
        return self.conv.param_shapes()

    def output_shape(self, in_shape):
        return self.pool.output_shape(self.conv.output_shape(in_shape))

    def _input(self, x):
        """``x`` as the convolution checks it, refused too if its output has no 2x2 window for the pool."""
        x3, x_shape = self.conv._flat_in(x)
        self.output_shape(x_shape[1:])
        return x3.reshape(x_shape)

    def forward(self, x):
        return self.conv._forward(self._input(x), self.relu)

    def backward(self, dy, cache, need_dx=True, need_grads=True):
        return self.conv.backward(dy, cache, need_dx=need_dx, need_grads=need_grads)

    def jvp(self, rx, tparams, cache):
        return self.conv.jvp(rx, tparams, cache)

    def backward_jvp(self, dy, rdy, cache, tcache, tparams, need_dx=True):
        return self.conv.backward_jvp(dy, rdy, cache, tcache, tparams, need_dx=need_dx)

    def forward_with_jvp(self, x, rx, tparams):
        return self.conv._forward_with_jvp(self._input(x), rx, tparams, self.relu)

    def backward_with_jvp(self, dy, rdy, cache, tcache, tparams, need_dx=True):
        return self.conv.backward_with_jvp(dy, rdy, cache, tcache, tparams, need_dx=need_dx)

    def weight_grad(self, dy, cache):
        """:meth:`CPConv2d.weight_grad` for the gradient ``dy`` of the pooled output."""
        geo = self.conv._geometry(kcp, cache["x_shape"])
        n, o = cache["x_shape"][0], self.conv.out_channels
        dy = self.conv._dy(dy, cache, geo, "dy").reshape(n, o, geo.ho // 2, geo.wo // 2)
        idx = cache["idx"].reshape(dy.shape)
        dconv = self.pool._transpose(dy, {"idx": idx, "x_shape": (n, o, geo.ho, geo.wo)}, "dconv")
        return self.conv.weight_grad(dconv, cache)


#: Pairs (ReLU, pool) that run as one unit, and the unit built from the pool.
_FUSIONS = {MaxPool2d: _ReLUMaxPool, GlobalAvgPool: _ReLUGlobalAvgPool}


def _conv_pool(layers, i):
    """The :class:`_CPConvMaxPool` for layers[i:] if they start with a CPConv2d, an optional ReLU and a 2x2,
    stride-2 MaxPool2d (exact types: a subclass may have rules of its own), with the number of layers."""
    if type(layers[i]) is not CPConv2d:
        return None, 0
    relu = i + 1 < len(layers) and type(layers[i + 1]) is ReLU
    j = i + 1 + relu
    if j < len(layers) and type(layers[j]) is MaxPool2d and layers[j].kernel_size == 2 and layers[j].stride == 2:
        return _CPConvMaxPool(layers[i], relu, layers[j]), j + 1 - i
    return None, 0


def fused_plan(layers):
    """How :class:`genbound.nn.Sequential` runs ``layers``: a list of ``(indices, unit)``, in order.

    A unit is a layer on its own (``indices = (i,)``), or one unit computing several layers with the same four
    rules, in one pass over the activations:

    - a :class:`CPConv2d`, the :class:`ReLU` after it if any, and a 2x2, stride-2 :class:`MaxPool2d` after
      that (``indices = (i, i + 1, i + 2)`` or ``(i, i + 1)``): the pooled output is written as the
      convolution computes it (its full-size output and the ReLU's are never formed); the unit's parameters
      are the convolution's;
    - else a :class:`ReLU` directly followed by a :class:`MaxPool2d` or a :class:`GlobalAvgPool`
      (``indices = (i, i + 1)``): one parameter-free layer (the ReLU's output is never formed).

    Built from the layer types alone, for any network; the per-layer rules remain the reference the fused
    units are tested against.
    """
    plan, i = [], 0
    while i < len(layers):
        unit, count = _conv_pool(layers, i)
        if unit is not None:
            plan.append((tuple(range(i, i + count)), unit))
            i += count
            continue
        fused = _FUSIONS.get(type(layers[i + 1])) if i + 1 < len(layers) and type(layers[i]) is ReLU else None
        if fused is not None:
            plan.append(((i, i + 1), fused(layers[i + 1])))
            i += 2
        else:
            plan.append(((i,), layers[i]))
            i += 1
    return plan
