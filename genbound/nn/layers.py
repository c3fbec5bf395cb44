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


def _pair_check(value, name, minimum):
    return check_int(value, name, minimum=minimum)


class Layer:
    """Base class: a layer with named parameters (possibly none)."""

    def __init__(self):
        self.params = {}

    def param_shapes(self):
        """Ordered mapping of parameter name -> shape."""
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

    def _cols(self, x, ho, wo):
        n, c = x.shape[:2]
        k = self.kernel_size
        cols = np.empty((c * k * k, n * ho * wo), dtype=x.dtype)
        kconv.im2col(x, k, k, self.stride, self.padding, ho, wo, cols)
        return cols


class Conv2d(_ConvBase):
    """2-D convolution with full filters: ``weight`` (O, C, kh, kw), ``bias`` (O,), as in PyTorch.

    .. math:: y[n, o, a, b] = b_o + \\sum_{c,j,k} W[o,c,j,k]\\, x[n, c, sa + j - p, sb + k - p]

    (cross-correlation, zero padding p, stride s). Computed as im2col followed by one BLAS product.
    """

    def __repr__(self):
        return (f"Conv2d({self.in_channels}, {self.out_channels}, {self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding})")

    def param_shapes(self):
        k = self.kernel_size
        return {"weight": (self.out_channels, self.in_channels, k, k), "bias": (self.out_channels,)}

    def init_params(self, rng, dtype):
        fan_in = self.in_channels * self.kernel_size**2
        w = rng.normal(0.0, np.sqrt(2.0 / fan_in), self.param_shapes()["weight"])
        return {"weight": w.astype(dtype), "bias": np.zeros(self.out_channels, dtype)}

    def _apply(self, cols, w, n, ho, wo):
        y2 = w.reshape(self.out_channels, -1) @ cols
        y = np.empty((n, self.out_channels, ho * wo), dtype=cols.dtype)
        kconv.cnhw_to_nchw(y2, n, y)
        return y.reshape(n, self.out_channels, ho, wo)

    def forward(self, x):
        _, ho, wo = self.output_shape(x.shape[1:])
        cols = self._cols(x, ho, wo)
        y = self._apply(cols, self.params["weight"], x.shape[0], ho, wo)
        y += self.params["bias"][None, :, None, None]
        return y, {"cols": cols, "x_shape": x.shape}

    def _dy2(self, dy):
        n, o = dy.shape[:2]
        out = np.empty((o, dy[0, 0].size * n), dtype=dy.dtype)
        kconv.nchw_to_cnhw(np.ascontiguousarray(dy).reshape(n, o, -1), out)
        return out

    def _dx(self, dcols, cache, ho, wo):
        dx = np.empty(cache["x_shape"], dtype=dcols.dtype)
        k = self.kernel_size
        kconv.col2im(dcols, k, k, self.stride, self.padding, ho, wo, dx)
        return dx

    def backward(self, dy, cache, need_dx=True):
        ho, wo = dy.shape[2:]
        dy2 = self._dy2(dy)
        cache["dy2"] = dy2
        w2 = self.params["weight"].reshape(self.out_channels, -1)
        grads = {"weight": (dy2 @ cache["cols"].T).reshape(self.params["weight"].shape),
                 "bias": dy2.sum(axis=1)}
        dx = self._dx(w2.T @ dy2, cache, ho, wo) if need_dx else None
        return dx, grads

    def jvp(self, rx, tparams, cache):
        n = cache["x_shape"][0]
        _, ho, wo = self.output_shape(cache["x_shape"][1:])
        y2 = tparams["weight"].reshape(self.out_channels, -1) @ cache["cols"]
        rcols = None
        if rx is not None:
            rcols = self._cols(rx, ho, wo)
            y2 += self.params["weight"].reshape(self.out_channels, -1) @ rcols
        ry = np.empty((n, self.out_channels, ho * wo), dtype=y2.dtype)
        kconv.cnhw_to_nchw(y2, n, ry)
        ry = ry.reshape(n, self.out_channels, ho, wo) + tparams["bias"][None, :, None, None]
        return ry, {"rcols": rcols}

    def backward_jvp(self, dy, rdy, cache, tcache, tparams, need_dx=True):
        ho, wo = dy.shape[2:]
        dy2, rdy2 = cache["dy2"], self._dy2(rdy)
        rgw = rdy2 @ cache["cols"].T
        if tcache["rcols"] is not None:
            rgw += dy2 @ tcache["rcols"].T
        rgrads = {"weight": rgw.reshape(self.params["weight"].shape), "bias": rdy2.sum(axis=1)}
        rdx = None
        if need_dx:
            w2 = self.params["weight"].reshape(self.out_channels, -1)
            v2 = tparams["weight"].reshape(self.out_channels, -1)
            rdx = self._dx(w2.T @ rdy2 + v2.T @ dy2, cache, ho, wo)
        return rdx, rgrads

    def weight_grad(self, dy, cache):
        """dL/dW for the batch of ``cache`` given the output gradient ``dy`` (same as ``backward``)."""
        return (self._dy2(dy) @ cache["cols"].T).reshape(self.params["weight"].shape)


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
        shapes = self.param_shapes()
        c, k, r = self.in_channels, self.kernel_size, self.rank
        return {
            "p": rng.normal(0.0, np.sqrt(2.0 / (c * r)), shapes["p"]).astype(dtype),
            "q": rng.normal(0.0, np.sqrt(1.0 / k), shapes["q"]).astype(dtype),
            "t": rng.normal(0.0, np.sqrt(1.0 / k), shapes["t"]).astype(dtype),
            "bias": np.zeros(self.out_channels, dtype),
        }

    def full_weight(self):
        """The reconstructed weight W (O, C, kh, kw)."""
        p, q, t = self.params["p"], self.params["q"], self.params["t"]
        return np.einsum("orc,orj,ork->ocjk", p, q, t)

    def to_full(self):
        """The equivalent :class:`Conv2d` (weight = reconstructed filters, same bias), for unconstrained training."""
        layer = Conv2d(self.in_channels, self.out_channels, self.kernel_size, self.stride, self.padding)
        return layer.bind({"weight": self.full_weight(), "bias": self.params["bias"].copy()})

    # -- helpers ------------------------------------------------------------------------------------------
    def _mix(self, p, xt, n, h, w):
        """z = P x laid out (O*R, N, H, W)."""
        z = p.reshape(-1, self.in_channels) @ xt
        return z.reshape(-1, n, h, w)

    def _passes(self, z, q, t, bias, ho, wo):
        n = z.shape[1]
        u = np.empty((z.shape[0], n, ho, z.shape[3]), dtype=z.dtype)
        y = np.empty((n, self.out_channels, ho, wo), dtype=z.dtype)
        kcp.cp_forward(z, q, t, bias, self.stride, self.padding, ho, wo, u, y)
        return u, y

    def _adjoint(self, dy, z, u, q, t):
        dz = np.empty_like(z)
        gq = np.empty(q.shape, dtype=z.dtype)
        gt = np.empty(t.shape, dtype=z.dtype)
        kcp.cp_backward(np.ascontiguousarray(dy), z, u, q, t, self.stride, self.padding, dz, gq, gt)
        return dz, gq, gt

    @staticmethod
    def _to_cnhw(x):
        n, c = x.shape[:2]
        xt = np.empty((c, x[0, 0].size * n), dtype=x.dtype)
        kconv.nchw_to_cnhw(x.reshape(n, c, -1), xt)
        return xt

    def _dx(self, p, dz, x_shape):
        n, c, h, w = x_shape
        dxt = p.reshape(-1, c).T @ dz.reshape(dz.shape[0], -1)
        dx = np.empty((n, c, h * w), dtype=dz.dtype)
        kconv.cnhw_to_nchw(dxt, n, dx)
        return dx.reshape(x_shape)

    # -- rules --------------------------------------------------------------------------------------------
    def forward(self, x):
        _, ho, wo = self.output_shape(x.shape[1:])
        n, _, h, w = x.shape
        xt = self._to_cnhw(x)
        z = self._mix(self.params["p"], xt, n, h, w)
        u, y = self._passes(z, self.params["q"], self.params["t"], self.params["bias"], ho, wo)
        return y, {"xt": xt, "z": z, "u": u, "x_shape": x.shape}

    def backward(self, dy, cache, need_dx=True):
        p = self.params["p"]
        dz, gq, gt = self._adjoint(dy, cache["z"], cache["u"], self.params["q"], self.params["t"])
        cache["dz"] = dz
        gp = (dz.reshape(dz.shape[0], -1) @ cache["xt"].T).reshape(p.shape)
        grads = {"p": gp, "q": gq, "t": gt, "bias": dy.sum(axis=(0, 2, 3))}
        dx = self._dx(p, dz, cache["x_shape"]) if need_dx else None
        return dx, grads

    def jvp(self, rx, tparams, cache):
        n, _, h, w = cache["x_shape"]
        _, ho, wo = self.output_shape(cache["x_shape"][1:])
        p, q, t = self.params["p"], self.params["q"], self.params["t"]
        z = cache["z"]
        zero_bias = np.zeros(self.out_channels, dtype=z.dtype)
        # R{z} = P rx + V_p x ; R{u} = Hpass(R{z}, q) + Hpass(z, v_q) ; R{y} = sum of the four terms + v_b
        zt = self._mix(tparams["p"], cache["xt"], n, h, w)
        rxt = None
        if rx is not None:
            rxt = self._to_cnhw(rx)
            zt += self._mix(p, rxt, n, h, w)
        ut, ry = self._passes(zt, q, t, tparams["bias"], ho, wo)
        uq, yq = self._passes(z, tparams["q"], t, zero_bias, ho, wo)
        _, yt = self._passes(z, q, tparams["t"], zero_bias, ho, wo)
        ry += yq
        ry += yt
        return ry, {"rxt": rxt, "zt": zt, "ut": ut + uq}

    def backward_jvp(self, dy, rdy, cache, tcache, tparams, need_dx=True):
        p, q, t = self.params["p"], self.params["q"], self.params["t"]
        z, u, dz = cache["z"], cache["u"], cache["dz"]
        # the adjoint is linear in dy, in (z, u), in q and in t: one call per tangent, keeping only the
        # outputs that depend on the replaced argument
        dz_a, gq_a, gt_a = self._adjoint(rdy, z, u, q, t)
        _, gq_b, gt_b = self._adjoint(dy, tcache["zt"], tcache["ut"], q, t)
        dz_c, _, _ = self._adjoint(dy, z, u, tparams["q"], t)
        dz_d, gq_d, _ = self._adjoint(dy, z, u, q, tparams["t"])
        rdz = dz_a + dz_c + dz_d
        rdz2 = rdz.reshape(rdz.shape[0], -1)
        rgp = rdz2 @ cache["xt"].T
        if tcache["rxt"] is not None:
            rgp += dz.reshape(dz.shape[0], -1) @ tcache["rxt"].T
        rgrads = {"p": rgp.reshape(p.shape), "q": gq_a + gq_b + gq_d, "t": gt_a + gt_b,
                  "bias": rdy.sum(axis=(0, 2, 3))}
        rdx = None
        if need_dx:
            c = self.in_channels
            dxt = p.reshape(-1, c).T @ rdz2 + tparams["p"].reshape(-1, c).T @ dz.reshape(dz.shape[0], -1)
            n = cache["x_shape"][0]
            rdx = np.empty((n, c, dxt.shape[1] // n), dtype=dxt.dtype)
            kconv.cnhw_to_nchw(dxt, n, rdx)
            rdx = rdx.reshape(cache["x_shape"])
        return rdx, rgrads

    def weight_grad(self, dy, cache):
        """Weight-space gradient G = dL/dW (O, C, kh, kw) for the batch of ``cache``.

        .. math:: G[o,c,j,k] = \\sum_{n,a,b} dy[n,o,a,b]\\, x[n,c,sa+j-p,sb+k-p]

        By the chain rule dL/dp[o,r,c] = sum_jk G[o,c,j,k] q[o,r,j] t[o,r,k] (tested).
        """
        n, c, h, w = cache["x_shape"]
        x = np.empty((n, c, h * w), dtype=cache["xt"].dtype)
        kconv.cnhw_to_nchw(cache["xt"], n, x)
        full = Conv2d(self.in_channels, self.out_channels, self.kernel_size, self.stride, self.padding)
        full.params = {"weight": np.empty((self.out_channels, c, self.kernel_size, self.kernel_size), x.dtype)}
        ho, wo = dy.shape[2:]
        cols = full._cols(x.reshape(n, c, h, w), ho, wo)
        return full.weight_grad(dy, {"cols": cols})


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

    def init_params(self, rng, dtype):
        w = rng.normal(0.0, np.sqrt(1.0 / self.in_features), (self.out_features, self.in_features))
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
        idx = np.empty((x.shape[0], c, ho, wo), dtype=np.int64)
        kpool.maxpool_argmax(x, self.kernel_size, self.stride, ho, wo, idx)
        cache = {"idx": idx, "x_shape": x.shape}
        return self._apply(x, cache), cache

    def _apply(self, x, cache):
        y = np.empty(cache["idx"].shape, dtype=x.dtype)
        kpool.gather(np.ascontiguousarray(x), cache["idx"], y)
        return y

    def backward(self, dy, cache, need_dx=True):
        dx = np.empty(cache["x_shape"], dtype=dy.dtype)
        kpool.scatter(np.ascontiguousarray(dy), cache["idx"], dx)
        return dx, {}


class AvgPool2d(_Pool):
    """Average pooling over k x k windows (stride k by default)."""

    def forward(self, x):
        cache = {"x_shape": x.shape}
        return self._apply(x, cache), cache

    def _apply(self, x, cache):
        c, ho, wo = self.output_shape(x.shape[1:])
        y = np.empty((x.shape[0], c, ho, wo), dtype=x.dtype)
        kpool.avgpool_forward(np.ascontiguousarray(x), self.kernel_size, self.stride, ho, wo, y)
        return y

    def backward(self, dy, cache, need_dx=True):
        dx = np.empty(cache["x_shape"], dtype=dy.dtype)
        kpool.avgpool_backward(np.ascontiguousarray(dy), self.kernel_size, self.stride, dx)
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
