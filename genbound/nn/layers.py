"""Layers of the CNN engine: forward, backward and their tangents (R-operator), one class per layer.

Each layer is a function of its input and its parameters. Four rules define it:

- ``forward(x)`` -> ``(y, cache)``
- ``backward(dy, cache, need_dx)`` -> ``(dx, grads)``, the vector-Jacobian product
- ``jvp(rx, tparams, cache)`` -> ``(ry, tcache)``, the tangent of ``forward`` along the input tangent ``rx``
  and the parameter tangents ``tparams`` (Pearlmutter's R-operator: R{y})
- ``backward_jvp(dy, rdy, cache, tcache, tparams, need_dx)`` -> ``(rdx, rgrads)``, the tangent of
  ``backward`` (R{dx}, R{grads}); with ``jvp`` it gives exact Hessian-vector products.

Every layer here is multilinear in (input, parameters) apart from the bias, given its ReLU mask or max-pool
argmax, so each tangent rule is the sum of the primal rule with one argument replaced by its tangent.
"""
from __future__ import annotations

import contextlib
import itertools
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

from genbound._checks import check_int
from genbound._kernels import conv as kconv
from genbound._kernels import cpconv as kcp
from genbound._kernels import pool as kpool


def _out_size(size, k, stride, pad, name, axis):
    if size + 2 * pad < k:
        raise ValueError(
            f"kernel_size: expected at most the padded image size {size + 2 * pad} along {axis}, got {k}"
            f" ({name})"
        )
    return (size + 2 * pad - k) // stride + 1


# --------------------------------------------------------------------------------------------------------
# Running the kernels: batch chunks and single-threaded BLAS
# --------------------------------------------------------------------------------------------------------

#: The batch is cut into at most this many chunks, of at least CHUNK_IMAGES images each, whatever the
#: thread count; each chunk keeps its own gradient accumulators, summed in chunk order, so results do not
#: depend on the number of threads.
BATCH_CHUNKS = 16
CHUNK_IMAGES = 16

#: Images are processed in groups of about this many pixels per plane (one image per group for large
#: planes), so that BLAS products and 1-D passes run on long enough rows to amortize their set-up.
GROUP_PIXELS = 512

#: A kernel call with less work than this (multiply-adds, or values moved) runs on the calling thread
#: alone: handing work to another thread would cost more than it saves.
PARALLEL_MIN_WORK = 1_000_000

_BLAS = {"libs": None, "depth": 0, "saved": ()}


def _chunks(n):
    return max(1, min(BATCH_CHUNKS, n // CHUNK_IMAGES))


def _group(plane):
    return max(1, GROUP_PIXELS // plane)


@contextlib.contextmanager
def serial_blas():
    """Run the block with every BLAS library single-threaded (restoring the thread counts afterwards).

    The kernels run in parallel threads and call BLAS inside; a multi-threaded BLAS would oversubscribe the
    cores. Around a whole training step it also keeps BLAS worker threads, woken by the small products of
    other layers, from spinning against the kernels' threads. Re-entrant; the controller is built once (it
    scans the loaded libraries), afterwards only thread counts are switched.
    """
    state = _BLAS
    if state["libs"] is None:
        _keep_freed_memory()
        import scipy.linalg.cython_blas  # noqa: F401  (the BLAS that numba's np.dot calls)
        from threadpoolctl import ThreadpoolController

        state["libs"] = [_thread_switch(lib) for lib in ThreadpoolController().lib_controllers
                         if lib.user_api == "blas"]
    outer = state["depth"] == 0
    if outer:
        saved = [get() for get, _ in state["libs"]]
        for (_, put), count in zip(state["libs"], saved):
            if count != 1:
                put(1)
        state["saved"] = saved
    state["depth"] += 1
    try:
        yield
    finally:
        state["depth"] -= 1
        if outer:
            for (_, put), count in zip(state["libs"], state["saved"]):
                if count != 1:
                    put(count)


def _thread_switch(lib):
    """(get, set) of a BLAS library's thread count: OpenBLAS's C functions called directly (a training step
    switches them a dozen times), threadpoolctl's methods for other libraries."""
    try:
        get = lib._get_symbol("openblas_get_num_threads")
        put = lib._get_symbol("openblas_set_num_threads")
        if get is not None and put is not None and get() >= 1:
            return get, put
    except (AttributeError, TypeError, OSError):
        pass
    return lib.get_num_threads, lib.set_num_threads


def _keep_freed_memory():
    """Ask glibc's malloc to serve large arrays from its heap and keep freed memory for reuse.

    By default blocks over 32 MB are mmapped on every allocation and unmapped on every free, so each
    training step faults in its large activations afresh, page by page (a quarter to a third of a float64
    MNIST step). Done once, on first use of the engine; the process then keeps up to 1 GB of freed memory.
    Set ``GENBOUND_MALLOC=default`` to leave malloc alone.
    """
    import ctypes
    import os
    import sys

    if not sys.platform.startswith("linux") or os.environ.get("GENBOUND_MALLOC") == "default":
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 512 * 2**20)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, 1024 * 2**20)  # M_TRIM_THRESHOLD
    except (OSError, AttributeError):  # not glibc
        pass


_POOL = {"executor": None, "workers": 0}


def _executor(workers):
    """The shared pool of helper threads (at least ``workers`` of them), created on first use."""
    if _POOL["workers"] < workers:
        if _POOL["executor"] is not None:
            _POOL["executor"].shutdown(wait=False)
        _POOL["executor"] = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="genbound-kernel")
        _POOL["workers"] = workers
    return _POOL["executor"]


def _parallel(call, total, work):
    """Run ``call(lo, hi)`` over [0, total) cut into contiguous pieces, on several threads.

    The threads are numba's count (``numba.set_num_threads``), or one when ``work`` is below
    ``PARALLEL_MIN_WORK``. The calling thread works too; every thread takes the next free piece until none
    is left, and a helper that has not started by then is cancelled rather than waited for, so a busy
    machine costs no more than running alone. Kernels release the GIL and own the outputs of their range, so
    which thread runs which piece never changes a result.
    """
    threads = min(numba.get_num_threads(), total) if work >= PARALLEL_MIN_WORK else 1
    with serial_blas():
        if threads <= 1:
            call(0, total)
            return
        pieces = min(total, 2 * threads)
        bounds = [i * total // pieces for i in range(pieces + 1)]
        claim = itertools.count()  # next(...) is atomic under the GIL

        def work_off():
            for i in iter(claim.__next__, None):
                if i >= pieces:
                    return
                call(bounds[i], bounds[i + 1])

        helpers = [_executor(threads - 1).submit(work_off) for _ in range(threads - 1)]
        try:
            work_off()
        finally:
            for helper in helpers:
                if not helper.cancel():
                    helper.result()


def _arr(a, dtype):
    return np.ascontiguousarray(a, dtype=dtype)


def _pair_check(value, name, minimum):
    return check_int(value, name, minimum=minimum)


class Layer:
    """Base class: a layer with named parameters (possibly none)."""

    def __init__(self):
        self.params = {}

    def param_shapes(self):
        """Ordered mapping of parameter name -> shape."""
        return {}

    def param_scales(self):
        """The natural scale of each parameter: the standard deviation its initializer draws it with.

        Biases, initialized at zero, get the scale of their layer's (reconstructed) weights. The one source
        of these numbers: :meth:`init_params` draws with them and PAC-Bayes priors scale by them.
        """
        return {}

    def init_params(self, rng, dtype):
        """Fresh parameter values (a dict of arrays) drawn with ``rng``."""
        return {}

    def bind(self, params):
        """Use the given arrays (views into a model's flat buffer, say) as this layer's parameters."""
        shapes = self.param_shapes()
        if set(params) != set(shapes):
            raise ValueError(f"params: expected keys {sorted(shapes)}, got {sorted(params)}")
        for name, shape in shapes.items():
            if params[name].shape != tuple(shape):
                raise ValueError(f"params[{name!r}]: expected shape {tuple(shape)}, got {params[name].shape}")
        self.params = dict(params)
        return self

    def initialize(self, seed=0, dtype=np.float64):
        """Bind freshly initialized parameters (for using a layer on its own)."""
        from genbound._rng import as_generator

        return self.bind(self.init_params(as_generator(seed), np.dtype(dtype)))

    def __getattr__(self, name):
        params = self.__dict__.get("params", {})
        if name in params:
            return params[name]
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def output_shape(self, in_shape):
        """Shape (without the batch axis) of the output for an input of shape ``in_shape``."""
        return tuple(in_shape)

    def __repr__(self):
        return f"{type(self).__name__}()"


# --------------------------------------------------------------------------------------------------------
# Convolutions
# --------------------------------------------------------------------------------------------------------


class _ConvBase(Layer):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0):
        super().__init__()
        self.in_channels = _pair_check(in_channels, "in_channels", 1)
        self.out_channels = _pair_check(out_channels, "out_channels", 1)
        self.kernel_size = _pair_check(kernel_size, "kernel_size", 1)
        self.stride = _pair_check(stride, "stride", 1)
        self.padding = _pair_check(padding, "padding", 0)

    def output_shape(self, in_shape):
        if len(in_shape) != 3:
            raise ValueError(f"x: expected images of shape (C, H, W) for {self!r}, got {tuple(in_shape)}")
        c, h, w = in_shape
        if c != self.in_channels:
            raise ValueError(f"x: expected {self.in_channels} input channels for {self!r}, got {c}")
        k, s, p = self.kernel_size, self.stride, self.padding
        return (self.out_channels, _out_size(h, k, s, p, repr(self), "H"), _out_size(w, k, s, p, repr(self), "W"))

    @property
    def _dtype(self):
        return next(iter(self.params.values())).dtype

    def _param(self, params, name):
        """Parameter ``name`` of ``params`` as a C-contiguous array of the layer's dtype."""
        return _arr(params[name], self._dtype)

    def _run(self, call, n, out_size):
        """Run ``call(c_lo, c_hi)`` over the batch chunks of ``n`` images, in parallel when the call does
        enough work (``out_size`` output values, each costing ``_per_pixel`` multiply-adds)."""
        _parallel(call, _chunks(n), out_size * self._per_pixel)

    def _gw(self, x, dy):
        """Weight-space gradient G = sum_n dy[n] (x) im2col(x[n]) as (O, C, kh, kw)."""
        n, c = x.shape[:2]
        k, o = self.kernel_size, self.out_channels
        dy3 = _arr(dy, x.dtype).reshape(n, o, -1)
        nch = _chunks(n)
        gw_c = np.zeros((nch, o, c * k * k), dtype=x.dtype)
        gb_c = np.zeros((nch, o), dtype=x.dtype)
        group = _group(dy3.shape[2])
        _parallel(lambda lo, hi: kconv.conv_backward(x, dy3, gw_c[0], x, dy3, gw_c[0], 0, k, k, self.stride,
                                                     self.padding, group, nch, lo, hi, True, False, gw_c, gb_c,
                                                     x[:1]), nch, dy3.size * c * k * k)
        return gw_c.sum(axis=0).reshape(o, c, k, k)


class Conv2d(_ConvBase):
    """2-D convolution with full filters: ``weight`` (O, C, kh, kw), ``bias`` (O,), as in PyTorch.

    .. math:: y[n, o, a, b] = b_o + \\sum_{c,j,k} W[o,c,j,k]\\, x[n, c, sa + j - p, sb + k - p]

    (cross-correlation, zero padding p, stride s). Computed image by image as im2col followed by a BLAS
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

    def init_params(self, rng, dtype):
        w = rng.normal(0.0, self.param_scales()["weight"], self.param_shapes()["weight"])
        return {"weight": w.astype(dtype), "bias": np.zeros(self.out_channels, dtype)}

    @property
    def _per_pixel(self):
        return self.in_channels * self.kernel_size**2

    def _w2(self, params):
        return self._param(params, "weight").reshape(self.out_channels, -1)

    def _conv(self, x, w2, x2, w22, bias):
        """bias + conv(x, W) (+ conv(x2, W2) when x2 is given), as (N, O, Ho, Wo)."""
        _, ho, wo = self.output_shape(x.shape[1:])
        n, k = x.shape[0], self.kernel_size
        y = np.empty((n, self.out_channels, ho * wo), dtype=x.dtype)
        has2 = x2 is not None
        x2, w22 = (x2, w22) if has2 else (x, w2)
        group, nch = _group(ho * wo), _chunks(n)
        self._run(lambda lo, hi: kconv.conv_forward(x, w2, x2, w22, has2, bias, k, k, self.stride, self.padding,
                                                    ho, wo, group, nch, lo, hi, y), n, y.size * (1 + has2))
        return y.reshape(n, self.out_channels, ho, wo)

    def _adjoint(self, x, dy, w2, x2, dy2, w22, mode2, need_gw, need_dx):
        n, k, o = x.shape[0], self.kernel_size, self.out_channels
        dy3 = _arr(dy, x.dtype).reshape(n, o, -1)
        dy23 = dy3 if dy2 is None else _arr(dy2, x.dtype).reshape(n, o, -1)
        nch, group = _chunks(n), _group(dy3.shape[2])
        gw_c = np.zeros((nch, *w2.shape) if need_gw else (1, 1, 1), dtype=x.dtype)
        gb_c = np.zeros((nch, o) if need_gw else (1, 1), dtype=x.dtype)
        dx = np.empty(x.shape, dtype=x.dtype) if need_dx else x[:1]
        x2 = x if x2 is None else x2
        self._run(lambda lo, hi: kconv.conv_backward(x, dy3, w2, x2, dy23, w22, mode2, k, k, self.stride,
                                                     self.padding, group, nch, lo, hi, need_gw, need_dx, gw_c,
                                                     gb_c, dx),
                  n, dy3.size * (1 + (mode2 != 0)) * (int(need_gw) + int(need_dx)))
        grads = None
        if need_gw:
            grads = {"weight": gw_c.sum(axis=0).reshape(self.params["weight"].shape), "bias": gb_c.sum(axis=0)}
        return (dx if need_dx else None), grads

    def forward(self, x):
        x = _arr(x, self._dtype)
        y = self._conv(x, self._w2(self.params), None, None, self._param(self.params, "bias"))
        return y, {"x": x}

    def backward(self, dy, cache, need_dx=True):
        w2 = self._w2(self.params)
        return self._adjoint(cache["x"], dy, w2, None, None, w2, 0, True, need_dx)

    def jvp(self, rx, tparams, cache):
        x = cache["x"]
        rx = None if rx is None else _arr(rx, x.dtype)
        ry = self._conv(x, self._w2(tparams), rx, self._w2(self.params), self._param(tparams, "bias"))
        return ry, {"rx": rx}

    def backward_jvp(self, dy, rdy, cache, tcache, tparams, need_dx=True):
        # R{G} = rdy * x + dy * rx ; R{dx} = W^T rdy + V^T dy
        rx = tcache["rx"]
        mode2 = (1 if rx is not None else 0) | 2
        return self._adjoint(cache["x"], rdy, self._w2(self.params), rx, dy, self._w2(tparams), mode2, True,
                             need_dx)

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
        self.rank = _pair_check(rank, "rank", 1)
        if update not in self.UPDATES:
            raise ValueError(f"update: expected one of {self.UPDATES}, got {update!r}")
        self.update = update

    def __repr__(self):
        return (f"CPConv2d({self.in_channels}, {self.out_channels}, {self.kernel_size}, rank={self.rank}, "
                f"stride={self.stride}, padding={self.padding})")

    def param_shapes(self):
        o, r, c, k = self.out_channels, self.rank, self.in_channels, self.kernel_size
        return {"p": (o, r, c), "q": (o, r, k), "t": (o, r, k), "bias": (o,)}

    def init_params(self, rng, dtype):
        """He-style init of the reconstructed filter: Var W = 2 / (C kh kw) with Var p = 2/(C R),
        Var q = 1/kh, Var t = 1/kw."""
        shapes, scales = self.param_shapes(), self.param_scales()
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
        p, q, t = self.params["p"], self.params["q"], self.params["t"]
        return np.einsum("orc,orj,ork->ocjk", p, q, t)

    def to_full(self):
        """The equivalent :class:`Conv2d` (weight = reconstructed filters, same bias), for unconstrained training."""
        layer = Conv2d(self.in_channels, self.out_channels, self.kernel_size, self.stride, self.padding)
        return layer.bind({"weight": self.full_weight(), "bias": self.params["bias"].copy()})

    # -- helpers ------------------------------------------------------------------------------------------
    @property
    def _per_pixel(self):
        return self.rank * (self.in_channels + 2 * self.kernel_size)

    def _flat_in(self, x):
        n, c, h, w = x.shape
        return _arr(x, self._dtype).reshape(n, c, h * w)

    def _factors(self, params):
        p = self._param(params, "p").reshape(-1, self.in_channels)
        return p, self._param(params, "q"), self._param(params, "t")

    def _accumulators(self, n, p2, q, t):
        """Zeroed per-chunk gradient accumulators for p, q, t, bias."""
        nch = _chunks(n)
        return tuple(np.zeros((nch, *shape), dtype=p2.dtype)
                     for shape in (p2.shape, q.shape, t.shape, (self.out_channels,)))

    def _sum_chunks(self, acc):
        """Factor gradients from the per-chunk accumulators, summed in chunk order."""
        gp, gq, gt, gb = (a.sum(axis=0) for a in acc)
        return {"p": gp.reshape(self.params["p"].shape), "q": gq, "t": gt, "bias": gb}

    # -- rules --------------------------------------------------------------------------------------------
    def forward(self, x):
        _, ho, wo = self.output_shape(x.shape[1:])
        n, _, h, w = x.shape
        x3 = self._flat_in(x)
        p2, q, t = self._factors(self.params)
        y = np.empty((n, self.out_channels, ho * wo), dtype=x3.dtype)
        bias, group, nch = self._param(self.params, "bias"), _group(h * w), _chunks(n)
        self._run(lambda lo, hi: kcp.cp_forward(x3, p2, q, t, bias, h, w, self.stride, self.padding, group, nch,
                                                lo, hi, y), n, y.size)
        return y.reshape(n, self.out_channels, ho, wo), {"x": x3, "x_shape": x.shape}

    def backward(self, dy, cache, need_dx=True):
        n, c, h, w = cache["x_shape"]
        x3 = cache["x"]
        p2, q, t = self._factors(self.params)
        dy3 = _arr(dy, x3.dtype).reshape(n, self.out_channels, -1)
        acc = self._accumulators(n, p2, q, t)
        dx = np.empty(x3.shape, x3.dtype) if need_dx else x3[:1]
        group, nch = _group(h * w), _chunks(n)
        self._run(lambda lo, hi: kcp.cp_backward(x3, dy3, p2, q, t, h, w, self.stride, self.padding, group, nch,
                                                 lo, hi, need_dx, *acc, dx), n, dy3.size * (2 + need_dx))
        grads = self._sum_chunks(acc)
        return (dx.reshape(cache["x_shape"]) if need_dx else None), grads

    def jvp(self, rx, tparams, cache):
        n, _, h, w = cache["x_shape"]
        _, ho, wo = self.output_shape(cache["x_shape"][1:])
        x3 = cache["x"]
        rx3 = None if rx is None else self._flat_in(rx)
        p2, q, t = self._factors(self.params)
        vp2, vq, vt = self._factors(tparams)
        ry = np.empty((n, self.out_channels, ho * wo), dtype=x3.dtype)
        rx_, vb, group, nch = x3 if rx3 is None else rx3, self._param(tparams, "bias"), _group(h * w), _chunks(n)
        self._run(lambda lo, hi: kcp.cp_jvp(x3, rx_, rx3 is not None, p2, vp2, q, vq, t, vt, vb, h, w, self.stride,
                                            self.padding, group, nch, lo, hi, ry), n, ry.size * 3)
        return ry.reshape(n, self.out_channels, ho, wo), {"rx": rx3}

    def backward_jvp(self, dy, rdy, cache, tcache, tparams, need_dx=True):
        n, c, h, w = cache["x_shape"]
        x3, rx3 = cache["x"], tcache["rx"]
        p2, q, t = self._factors(self.params)
        vp2, vq, vt = self._factors(tparams)
        dy3 = _arr(dy, x3.dtype).reshape(n, self.out_channels, -1)
        rdy3 = _arr(rdy, x3.dtype).reshape(n, self.out_channels, -1)
        acc = self._accumulators(n, p2, q, t)
        rdx = np.empty(x3.shape, x3.dtype) if need_dx else x3[:1]
        rx_, group, nch = x3 if rx3 is None else rx3, _group(h * w), _chunks(n)
        self._run(lambda lo, hi: kcp.cp_backward_jvp(x3, rx_, rx3 is not None, dy3, rdy3, p2, vp2, q, vq, t, vt, h,
                                                     w, self.stride, self.padding, group, nch, lo, hi, need_dx,
                                                     *acc, rdx), n, dy3.size * (5 + need_dx))
        rgrads = self._sum_chunks(acc)
        return (rdx.reshape(cache["x_shape"]) if need_dx else None), rgrads

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

    def __repr__(self):
        return f"Dense({self.in_features}, {self.out_features})"

    def param_shapes(self):
        return {"weight": (self.out_features, self.in_features), "bias": (self.out_features,)}

    def param_scales(self):
        """Init std sqrt(1 / n_in) for the weight (and, as its scale, the bias)."""
        s = float(np.sqrt(1.0 / self.in_features))
        return {"weight": s, "bias": s}

    def init_params(self, rng, dtype):
        w = rng.normal(0.0, self.param_scales()["weight"], (self.out_features, self.in_features))
        return {"weight": w.astype(dtype), "bias": np.zeros(self.out_features, dtype)}

    def output_shape(self, in_shape):
        if tuple(in_shape) != (self.in_features,):
            raise ValueError(f"x: expected inputs of shape ({self.in_features},) for {self!r}, got {tuple(in_shape)}")
        return (self.out_features,)

    def forward(self, x):
        self.output_shape(x.shape[1:])
        return x @ self.params["weight"].T + self.params["bias"], {"x": x}

    def backward(self, dy, cache, need_dx=True):
        grads = {"weight": dy.T @ cache["x"], "bias": dy.sum(axis=0)}
        return (dy @ self.params["weight"] if need_dx else None), grads

    def jvp(self, rx, tparams, cache):
        ry = cache["x"] @ tparams["weight"].T + tparams["bias"]
        if rx is not None:
            ry += rx @ self.params["weight"].T
        return ry, {"rx": rx}

    def backward_jvp(self, dy, rdy, cache, tcache, tparams, need_dx=True):
        rgw = rdy.T @ cache["x"]
        if tcache["rx"] is not None:
            rgw += dy.T @ tcache["rx"]
        rgrads = {"weight": rgw, "bias": rdy.sum(axis=0)}
        rdx = rdy @ self.params["weight"] + dy @ tparams["weight"] if need_dx else None
        return rdx, rgrads


class _Linear(Layer):
    """A parameter-free layer that is linear given its cache: tangents reuse forward/backward."""

    def jvp(self, rx, tparams, cache):
        return (None if rx is None else self._apply(rx, cache)), {}

    def backward_jvp(self, dy, rdy, cache, tcache, tparams, need_dx=True):
        return (self.backward(rdy, cache)[0] if need_dx else None), {}


class ReLU(_Linear):
    """Rectified linear unit, ``y = max(x, 0)``; the derivative at 0 is taken as 0."""

    def forward(self, x):
        mask = x > 0
        return x * mask, {"mask": mask}

    def _apply(self, x, cache):
        return x * cache["mask"]

    def backward(self, dy, cache, need_dx=True):
        return dy * cache["mask"], {}


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
        return (c, _out_size(h, k, s, 0, repr(self), "H"), _out_size(w, k, s, 0, repr(self), "W"))


class MaxPool2d(_Pool):
    """Max pooling over k x k windows (stride k by default); ties go to the first maximum in row order."""

    def forward(self, x):
        c, ho, wo = self.output_shape(x.shape[1:])
        x = np.ascontiguousarray(x)
        y = np.empty((x.shape[0], c, ho, wo), dtype=x.dtype)
        idx = np.empty((x.shape[0], c, ho, wo), dtype=np.int32)
        n, k, s = x.shape[0], self.kernel_size, self.stride
        _parallel(lambda lo, hi: kpool.maxpool_forward(x, k, s, ho, wo, lo, hi, y, idx), n, x.size)
        return y, {"idx": idx, "x_shape": x.shape}

    def _apply(self, x, cache):
        y = np.empty(cache["idx"].shape, dtype=x.dtype)
        x, idx = np.ascontiguousarray(x), cache["idx"]
        _parallel(lambda lo, hi: kpool.gather(x, idx, lo, hi, y), x.shape[0], x.size)
        return y

    def backward(self, dy, cache, need_dx=True):
        dx = np.empty(cache["x_shape"], dtype=dy.dtype)
        dy, idx = np.ascontiguousarray(dy), cache["idx"]
        k, s = self.kernel_size, self.stride
        _parallel(lambda lo, hi: kpool.scatter(dy, idx, k, s, lo, hi, dx), dx.shape[0], dx.size)
        return dx, {}


class AvgPool2d(_Pool):
    """Average pooling over k x k windows (stride k by default)."""

    def forward(self, x):
        cache = {"x_shape": x.shape}
        return self._apply(x, cache), cache

    def _apply(self, x, cache):
        c, ho, wo = self.output_shape(x.shape[1:])
        y = np.empty((x.shape[0], c, ho, wo), dtype=x.dtype)
        x, k, s = np.ascontiguousarray(x), self.kernel_size, self.stride
        _parallel(lambda lo, hi: kpool.avgpool_forward(x, k, s, ho, wo, lo, hi, y), x.shape[0], x.size)
        return y

    def backward(self, dy, cache, need_dx=True):
        dx = np.empty(cache["x_shape"], dtype=dy.dtype)
        dy, k, s = np.ascontiguousarray(dy), self.kernel_size, self.stride
        _parallel(lambda lo, hi: kpool.avgpool_backward(dy, k, s, lo, hi, dx), dx.shape[0], dx.size)
        return dx, {}


class GlobalAvgPool(_Linear):
    """Mean over the spatial axes: (N, C, H, W) -> (N, C)."""

    def output_shape(self, in_shape):
        if len(in_shape) != 3:
            raise ValueError(f"x: expected images of shape (C, H, W) for GlobalAvgPool, got {tuple(in_shape)}")
        return (in_shape[0],)

    def forward(self, x):
        self.output_shape(x.shape[1:])
        cache = {"x_shape": x.shape}
        return self._apply(x, cache), cache

    def _apply(self, x, cache):
        return x.mean(axis=(2, 3))

    def backward(self, dy, cache, need_dx=True):
        n, c, h, w = cache["x_shape"]
        dx = np.empty(cache["x_shape"], dtype=dy.dtype)
        dx[...] = (dy / (h * w))[:, :, None, None]
        return dx, {}


class Flatten(_Linear):
    """Flatten (C, H, W) in C order: (N, C, H, W) -> (N, C*H*W)."""

    def output_shape(self, in_shape):
        return (int(np.prod(in_shape)),)

    def forward(self, x):
        cache = {"x_shape": x.shape}
        return self._apply(x, cache), cache

    def _apply(self, x, cache):
        return x.reshape(x.shape[0], -1)

    def backward(self, dy, cache, need_dx=True):
        return dy.reshape(cache["x_shape"]), {}
