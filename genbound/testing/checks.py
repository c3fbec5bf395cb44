r"""Derivative checks in the manner of autograd's ``check_grads``: random directions, central differences.

:func:`check_grads` compares every derivative rule of a layer, a model or a user's function with central
differences **along a few random directions** (each costs two evaluations, whatever the number of
parameters), one parameter array at a time so that a failure names the layer and the parameter:

- ``"rev"`` (reverse mode, the backward pass): the directional derivative :math:`\langle \nabla L, v\rangle`
  against :math:`(L(\theta + h v) - L(\theta - h v)) / 2h`;
- ``"fwd"`` (forward mode, Pearlmutter's R-operator, the layers' ``jvp``): the output tangent
  :math:`R\{y\} = J v` against :math:`(y(\theta + h v) - y(\theta - h v)) / 2h`;
- ``order=2``: the Hessian-vector product (a model's ``hvp``, a layer's ``backward_jvp``) against the
  central difference of the gradient, :math:`(\nabla L(\theta + h v) - \nabla L(\theta - h v)) / 2h`.

float32 layers and models cannot be checked this way (float32 central differences are good to about 1e-3):
they are compared with a float64 copy of themselves (``rtol_float32``, about 1e-4), and the float64 copy with
central differences (``rtol``, about 1e-6).

:func:`check_layer_tangents` checks a layer's two tangent rules (``jvp`` and ``backward_jvp``) with all
tangents at once (input, every parameter, the incoming gradient), as the model's Hessian-vector product uses
them.

Finite differences are only meaningful away from ReLU kinks and max-pool ties: draw inputs with a margin
(:func:`genbound.testing.activation_margin`) or redraw them (hypothesis ``assume``).

References
----------
D. Maclaurin, D. Duvenaud and R. P. Adams, "Autograd: effortless gradients in NumPy", ICML AutoML workshop,
2015; ``autograd.test_util.check_grads`` (github.com/HIPS/autograd).
B. A. Pearlmutter, "Fast exact multiplication by the Hessian", Neural Computation 6(1), 147-160, 1994.
"""
from __future__ import annotations

import copy
import numbers

import numpy as np

from genbound._checks import as_float_array, check_int, check_model, check_positive
from genbound._rng import as_generator
from genbound.nn import Layer, Sequential, restored, training_pair
from genbound.nn.loss import softmax_cross_entropy
from genbound.nn.runtime import Workspace

__all__ = ["check_grads", "check_layer_tangents", "MODES"]

#: The derivative modes :func:`check_grads` knows: reverse mode (backward) and forward mode (R-operator).
MODES = ("rev", "fwd")
_EPS = np.finfo(np.float64).eps
_ROUNDING = 64.0  # central differences of a value computed to ~eps * scale carry ~eps * scale / h of noise


# --------------------------------------------------------------------------------------------------------
# argument checks
# --------------------------------------------------------------------------------------------------------

def _check_modes(modes):
    if isinstance(modes, str):
        modes = (modes,)
    try:
        modes = tuple(modes)
    except TypeError:
        raise TypeError(f"modes: expected a sequence of {MODES}, got {type(modes).__name__}") from None
    bad = [m for m in modes if m not in MODES]
    if bad or not modes:
        raise ValueError(f"modes: expected a non-empty subset of {MODES}, got {modes!r}")
    return modes


def _check_order(order):
    order = check_int(order, "order", 1)
    if order > 2:
        raise ValueError(f"order: expected 1 or 2, got {order}")
    return order


def _check_step(h, rtol, rtol_float32):
    return (check_positive(h, "h"), check_positive(rtol, "rtol"), check_positive(rtol_float32, "rtol_float32"))


def _param_dtype(layer):
    """The one float dtype of a layer's parameters (None for a parameter-free layer)."""
    shapes = layer.param_shapes()
    if shapes and set(layer.params) != set(shapes):
        raise ValueError(f"layer: {layer!r} has no parameters bound; call layer.initialize(seed) first")
    dtypes = {name: np.asarray(value).dtype for name, value in layer.params.items()}
    for name, dt in dtypes.items():
        if dt not in (np.float32, np.float64):
            raise TypeError(f"layer: parameter {name!r} of {layer!r} has dtype {dt}; expected float32 or float64")
    if len(set(dtypes.values())) > 1:
        raise TypeError(f"layer: parameters of {layer!r} mix dtypes {dtypes}")
    return next(iter(dtypes.values())) if dtypes else None


def _describe(layer):
    """The layer's repr, prefixed by its class name when the repr shows another (a subclass)."""
    text, name = repr(layer), type(layer).__name__
    return text if text.startswith(name) else f"{name} {text}"


def _layer_input(layer, x):
    """``x`` as a C-contiguous float array of the layer's dtype (ints and Fortran order converted)."""
    arr = np.asarray(x)
    dtype = _param_dtype(layer)
    if dtype is None:
        dtype = arr.dtype if arr.dtype in (np.float32, np.float64) else np.float64
    return as_float_array(arr, "x", dtype=dtype)


# --------------------------------------------------------------------------------------------------------
# comparisons
# --------------------------------------------------------------------------------------------------------

def _compare(analytic, reference, floor=0.0):
    """``(error, allowance)``: the norm-wise relative error ||a - b|| / max(||a||, ||b||) (0 when both vanish,
    inf for mismatched shapes or non-finite values) and the absolute rounding allowance ``floor`` on the same
    relative scale; a check passes when error <= rtol + allowance."""
    a = np.asarray(analytic, dtype=np.float64).ravel()
    b = np.asarray(reference, dtype=np.float64).ravel()
    if a.shape != b.shape:
        return np.inf, 0.0
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        return np.inf, 0.0
    scale = max(np.linalg.norm(a), np.linalg.norm(b))
    if scale == 0:
        return 0.0, 0.0
    return float(np.linalg.norm(a - b) / scale), float(floor / scale)


class _Report:
    """Collects each comparison: key -> error; failures as lines of the tolerance report."""

    def __init__(self, what):
        self.what = what
        self.errors = {}
        self.failures = []

    def add(self, key, label, measured, rtol, against="central differences"):
        """Record a check: ``measured`` is one ``(error, allowance)`` pair or a list of them (one per
        direction; the worst counts). It fails when error > rtol + allowance."""
        pairs = [measured] if isinstance(measured, tuple) else list(measured)
        error, allowance = max(pairs, key=lambda p: p[0] - p[1])
        self.errors[key] = error
        if not error <= rtol + allowance:
            extra = f" (rounding allowance {allowance:.1e})" if allowance > 0 else ""
            self.failures.append(f"  [{key[0]}] {label}: relative error {error:.3e} > rtol {rtol:.1e}{extra}, "
                                 f"analytic vs {against}")

    def raise_if_failed(self, notes=()):
        if self.failures:
            lines = [f"{self.what}: {len(self.failures)} of {len(self.errors)} derivative checks failed"]
            lines += self.failures
            lines += list(notes)
            raise AssertionError("\n".join(lines))
        return self.errors


def _unit_directions(rng, shape, n):
    out = []
    for _ in range(n):
        v = rng.normal(size=shape)
        out.append(v / np.linalg.norm(v))
    return out


# --------------------------------------------------------------------------------------------------------
# a layer as a function of its input and its parameters
# --------------------------------------------------------------------------------------------------------

def _float64_twin(layer):
    """A copy of ``layer`` (same class, so the same rules) with float64 copies of its parameters."""
    twin = copy.copy(layer)
    twin.workspace = Workspace()
    twin.params = {}
    if layer.param_shapes():
        twin.bind({k: np.array(v, dtype=np.float64) for k, v in layer.params.items()})
    return twin


class _LayerFunction:
    """Evaluations of ``layer`` at shifted inputs and parameters (never writing into the caller's arrays).

    The scalar probe is L(y) = <R, y> (+ 1/2 <S, y * y> for second-order checks, so that the tangent of the
    incoming gradient, rdy = S * R{y}, is exercised too).
    """

    def __init__(self, layer, x, probe):
        self.layer, self.x = layer, x
        self.R, self.S = probe
        self.names = ["x", *layer.param_shapes()]

    def label(self, name):
        what = _describe(self.layer)
        return f"input x of {what}" if name == "x" else f"parameter {name!r} of {what}"

    def shape(self, name):
        return self.x.shape if name == "x" else self.layer.params[name].shape

    def _at(self, shifts, fn):
        """Run ``fn(x)`` with the input and parameters shifted by ``shifts`` (name -> array)."""
        layer = self.layer
        dtype = self.x.dtype
        x = self.x + shifts["x"].astype(dtype) if "x" in shifts else self.x
        saved = layer.params
        moved = {k: (v + shifts[k].astype(v.dtype) if k in shifts else v) for k, v in saved.items()}
        if moved:
            layer.bind(moved)
        try:
            return fn(x)
        finally:
            layer.params = saved

    def output(self, shifts):
        return self._at(shifts, lambda x: np.array(self.layer.forward(x)[0], dtype=np.float64))

    def gradient(self, shifts, quadratic):
        """(dL/dx, {name: dL/dparam}) of the probe at the shifted point."""
        def run(x):
            y, cache = self.layer.forward(x)
            dy = self.R + (self.S * y if quadratic else 0)
            dx, grads = self.layer.backward(dy.astype(y.dtype), cache, need_dx=True)
            return {"x": np.array(dx, dtype=np.float64), **{k: np.array(v, np.float64) for k, v in grads.items()}}
        return self._at(shifts, run)

    def tangents(self, direction):
        """Input tangent and parameter tangents (zeros where ``direction`` has none) in the layer's dtype."""
        dtype = self.x.dtype
        rx = direction["x"].astype(dtype) if "x" in direction else None
        tparams = {k: (direction[k] if k in direction else np.zeros(v.shape)).astype(v.dtype)
                   for k, v in self.layer.params.items()}
        return rx, tparams

    def jvp(self, direction):
        y, cache = self.layer.forward(self.x)
        rx, tparams = self.tangents(direction)
        ry, _ = self.layer.jvp(rx, tparams, cache)
        return np.zeros(y.shape) if ry is None else np.array(ry, dtype=np.float64)

    def second_order(self, direction):
        """The tangent of the probe's gradient along ``direction``: backward_jvp with rdy = S * R{y}."""
        y, cache = self.layer.forward(self.x)
        rx, tparams = self.tangents(direction)
        ry, tcache = self.layer.jvp(rx, tparams, cache)
        ry = np.zeros(y.shape, y.dtype) if ry is None else ry
        dy = (self.R + self.S * y).astype(y.dtype)
        rdy = (self.S * ry).astype(y.dtype)
        self.layer.backward(dy, cache, need_dx=True)
        rdx, rgrads = self.layer.backward_jvp(dy, rdy, cache, tcache, tparams, need_dx=True)
        return {"x": np.array(rdx, dtype=np.float64), **{k: np.array(v, np.float64) for k, v in rgrads.items()}}


def _layer_checks(layer, x, modes, order, n_directions, seed, h, rtol, rtol_float32, report, prefix=""):
    rng = as_generator(seed)
    x = _layer_input(layer, x)
    y0 = layer.forward(x)[0]
    R, S = rng.normal(size=y0.shape), rng.normal(size=y0.shape)
    single = x.dtype == np.float32
    if single:  # every input of the float32 and float64 runs is exactly representable in float32
        R, S = R.astype(np.float32).astype(np.float64), S.astype(np.float32).astype(np.float64)
        f32 = _LayerFunction(layer, x, (R, S))
        f64 = _LayerFunction(_float64_twin(layer), x.astype(np.float64), (R, S))
    else:
        f32, f64 = None, _LayerFunction(layer, x, (R, S))
    vs64 = dict(rtol=rtol_float32, against="the float64 rule")
    for name in f64.names:
        label = prefix + f64.label(name)
        key = prefix + name
        dirs = _unit_directions(rng, f64.shape(name), n_directions)
        if single:
            dirs = [d.astype(np.float32).astype(np.float64) for d in dirs]
        shifted = [(f64.output({name: h * d}), f64.output({name: -h * d})) for d in dirs]
        if "rev" in modes:
            g64 = f64.gradient({}, quadratic=False)[name]
            a = [float(np.sum(g64 * d)) for d in dirs]
            b = [float(np.sum(R * (yp - ym))) / (2 * h) for yp, ym in shifted]
            floor = _ROUNDING * _EPS * max(float(np.sum(np.abs(R * yp))) for yp, _ in shifted) / h
            report.add(("rev", key), label, _compare(a, b, floor), rtol)
            if single:
                report.add(("rev", key, "float64"), label, _compare(f32.gradient({}, False)[name], g64), **vs64)
        if "fwd" in modes:
            measured, vs = [], []
            for d, (yp, ym) in zip(dirs, shifted):
                exact = f64.jvp({name: d})
                floor = _ROUNDING * _EPS * max(np.linalg.norm(yp), np.linalg.norm(ym)) / h
                measured.append(_compare(exact, (yp - ym) / (2 * h), floor))
                if single:
                    vs.append(_compare(f32.jvp({name: d}), exact))
            report.add(("fwd", key), f"{label}, output tangent", measured, rtol)
            if single:
                report.add(("fwd", key, "float64"), f"{label}, output tangent", vs, **vs64)
        if order == 2:
            measured, vs = {}, {}
            for d in dirs:
                exact = f64.second_order({name: d})
                gp, gm = f64.gradient({name: h * d}, True), f64.gradient({name: -h * d}, True)
                ours = f32.second_order({name: d}) if single else None
                for out in exact:  # each block of the tangent of the gradient: d/dx, d/dweight, ...
                    floor = _ROUNDING * _EPS * max(np.linalg.norm(gp[out]), np.linalg.norm(gm[out])) / h
                    measured.setdefault(out, []).append(_compare(exact[out], (gp[out] - gm[out]) / (2 * h), floor))
                    if single:
                        vs.setdefault(out, []).append(_compare(ours[out], exact[out]))
            for out, pairs in measured.items():
                what = f"{label}, tangent of the gradient block {_block(out)}"
                report.add(("hvp", key, out), what, pairs, rtol)
                if single:
                    report.add(("hvp", key, out, "float64"), what, vs[out], **vs64)
    return report


def _block(out):
    return "d/dx" if out == "x" else f"d/d{out}"


# --------------------------------------------------------------------------------------------------------
# a model as a function of its parameters
# --------------------------------------------------------------------------------------------------------

def _model_twin(model):
    """A float64 copy of a float32 Sequential: the same layer classes, the same parameter values."""
    layers = [_float64_twin(layer) for layer in model.layers]
    twin = Sequential(layers, seed=0, dtype=np.float64, input_shape=model.input_shape)
    twin.set_flat(model.get_flat().astype(np.float64))
    return twin


def _logits_tangent(model, x, v):
    """R{logits} along the flat parameter direction ``v``: the layers' jvp rules chained (the forward half of
    the model's Hessian-vector product)."""
    tparams_all = model.unflatten(v, "v")
    acts, rx = x, None
    for i, layer in enumerate(model.layers):
        tp = {name: tparams_all[f"{i}.{name}"] for name in layer.param_shapes()}
        new, cache = layer.forward(acts)
        rx, _ = layer.jvp(rx, tp, cache)
        acts = new
    return np.zeros(acts.shape) if rx is None else np.array(rx, dtype=np.float64)


def _layer_of(model, name):
    i = int(name.split(".", 1)[0])
    return i, model.layers[i]


def _model_checks(model, data, modes, order, n_directions, seed, h, rtol, rtol_float32, report):
    rng = as_generator(seed)
    x, y = model.check_xy(*training_pair(data))
    single = model.dtype == np.float32
    m64 = _model_twin(model) if single else model
    x64 = x.astype(np.float64)
    slices = m64.param_slices()
    w0 = m64.get_flat()
    g64 = m64.loss_and_grad(x64, y, flat=True)[1]
    g32 = model.loss_and_grad(x, y, flat=True)[1] if single else None

    def at(v, fn):
        with restored(m64):
            m64.set_flat(w0 + v)
            return fn()

    vs64 = dict(rtol=rtol_float32, against="the float64 rule")
    for name, sl in slices.items():
        i, _ = _layer_of(m64, name)
        label = f"parameter {name.split('.', 1)[1]!r} of layer {i} {_describe(model.layers[i])}"
        dirs = []
        for d in _unit_directions(rng, (sl.stop - sl.start,), n_directions):
            v = np.zeros(m64.n_params)
            v[sl] = d.astype(model.dtype)  # representable in the model's dtype
            dirs.append(v)
        logits = [(at(h * v, lambda: m64.forward(x64)), at(-h * v, lambda: m64.forward(x64))) for v in dirs]
        if "rev" in modes:
            a = [float(g64 @ v) for v in dirs]
            losses = [(softmax_cross_entropy(zp, y)[0], softmax_cross_entropy(zm, y)[0]) for zp, zm in logits]
            b = [(lp - lm) / (2 * h) for lp, lm in losses]
            scale = max(abs(lp) + float(np.max(np.abs(zp))) for (lp, _), (zp, _) in zip(losses, logits))
            report.add(("rev", name), label, _compare(a, b, _ROUNDING * _EPS * scale / h), rtol)
            if single:
                report.add(("rev", name, "float64"), label, _compare(g32[sl], g64[sl]), **vs64)
        if "fwd" in modes:
            measured, vs = [], []
            for v, (zp, zm) in zip(dirs, logits):
                exact = _logits_tangent(m64, x64, v)
                floor = _ROUNDING * _EPS * max(np.linalg.norm(zp), np.linalg.norm(zm)) / h
                measured.append(_compare(exact, (zp - zm) / (2 * h), floor))
                if single:
                    vs.append(_compare(_logits_tangent(model, x, v.astype(model.dtype)), exact))
            report.add(("fwd", name), f"{label}, logits tangent", measured, rtol)
            if single:
                report.add(("fwd", name, "float64"), f"{label}, logits tangent", vs, **vs64)
        if order == 2:
            measured, vs, worst_block = [], [], {}
            for v in dirs:
                hv = m64.hvp(x64, y, v)
                gp = at(h * v, lambda: m64.loss_and_grad(x64, y, flat=True)[1])
                gm = at(-h * v, lambda: m64.loss_and_grad(x64, y, flat=True)[1])
                fd = (gp - gm) / (2 * h)
                floor = _ROUNDING * _EPS * max(np.linalg.norm(gp), np.linalg.norm(gm)) / h
                measured.append(_compare(hv, fd, floor))
                for k, s_ in slices.items():
                    worst_block[k] = max(worst_block.get(k, 0.0), _compare(hv[s_], fd[s_])[0])
                if single:
                    vs.append(_compare(model.hvp(x, y, v.astype(model.dtype)), hv))
            block = max(worst_block, key=worst_block.get)
            report.add(("hvp", name), f"{label}, H v (largest error in block {block!r})", measured, rtol)
            if single:
                report.add(("hvp", name, "float64"), f"{label}, H v", vs, **vs64)
    return report


def _localize(model, data, modes, order, n_directions, seed, h, rtol, rtol_float32):
    """Lines naming the layers whose own rules fail near the model's activations on ``data``.

    Each layer is probed at its actual input plus normal noise of 0.3 times the input's standard deviation:
    the activations after a ReLU hold exact zeros, ties that max pooling cannot be differentiated through,
    and a rule is a rule at any generic point.
    """
    x, _ = model.check_xy(*training_pair(data))
    rng = as_generator(seed)
    notes = []
    acts = x
    for i, layer in enumerate(model.layers):
        sub = _Report(f"layer {i}")
        spread = float(np.std(acts)) or 1.0
        probe = (acts + rng.normal(scale=0.3 * spread, size=acts.shape)).astype(acts.dtype)
        try:
            _layer_checks(layer, probe, modes, order, n_directions, seed, h, rtol, rtol_float32, sub,
                          prefix=f"layer {i}: ")
        except Exception as exc:  # a rule that raises is as wrong as one that errs
            sub.failures.append(f"  layer {i} {_describe(layer)}: {type(exc).__name__}: {exc}")
        notes += sub.failures
        acts = np.array(layer.forward(acts)[0])
    if notes:
        return ["The layers' own rules near these activations (probe L = <R, y>):", *notes]
    return ["Every layer's own rules pass near these activations; look at the loss or at how the model chains "
            "them."]


# --------------------------------------------------------------------------------------------------------
# a user's function
# --------------------------------------------------------------------------------------------------------

def _function_checks(fn, x, hvp, order, n_directions, seed, h, rtol, report):
    rng = as_generator(seed)
    x = as_float_array(x, "x", dtype=np.float64)

    def evaluate(z):
        out = fn(z)
        if not (isinstance(out, tuple) and len(out) == 2):
            raise TypeError("fn: expected fn(x) to return (value, gradient), got "
                            f"{type(out).__name__}")
        value, grad = out
        if not isinstance(value, numbers.Real) and np.ndim(value) != 0:
            raise TypeError(f"fn: expected a scalar value, got shape {np.shape(value)}")
        grad = np.asarray(grad, dtype=np.float64)
        if grad.shape != x.shape:
            raise ValueError(f"fn: expected a gradient of shape {x.shape}, got {grad.shape}")
        return float(value), grad

    _, g = evaluate(x.copy())
    dirs = _unit_directions(rng, x.shape, n_directions)
    values = [(evaluate(x + h * d), evaluate(x - h * d)) for d in dirs]
    a = [float(np.sum(g * d)) for d in dirs]
    b = [(p[0] - m[0]) / (2 * h) for p, m in values]
    floor = _ROUNDING * _EPS * max(max(abs(p[0]), abs(m[0])) for p, m in values) / h
    report.add(("rev", "x"), "the gradient of fn", _compare(a, b, floor), rtol)
    if order == 2:
        if hvp is None:
            raise ValueError("hvp: order=2 for a function needs hvp(x, v), its Hessian-vector product")
        measured = []
        for d, (p, m) in zip(dirs, values):
            hv = np.asarray(hvp(x.copy(), d.copy()), dtype=np.float64)
            floor = _ROUNDING * _EPS * max(np.linalg.norm(p[1]), np.linalg.norm(m[1])) / h
            measured.append(_compare(hv, (p[1] - m[1]) / (2 * h), floor))
        report.add(("hvp", "x"), "the Hessian-vector product of fn", measured, rtol)
    return report


# --------------------------------------------------------------------------------------------------------
# public checks
# --------------------------------------------------------------------------------------------------------

def check_grads(fn_or_model, x, *, modes=MODES, order=1, n_directions=2, seed=0, h=1e-5, rtol=1e-6,
                rtol_float32=1e-4, hvp=None):
    r"""Check the derivative rules of a model, a layer or a function against central differences along
    random directions, in the manner of ``autograd.test_util.check_grads``.

    For each parameter array (and, for a layer, its input) in turn, ``n_directions`` random unit directions
    :math:`v` supported on that array are drawn, and

    - ``"rev"``: :math:`\langle \nabla L, v\rangle` from the backward pass against
      :math:`\frac{L(\theta + h v) - L(\theta - h v)}{2h}`;
    - ``"fwd"``: the tangent :math:`R_v\{y\}` of the output (logits of a model, output of a layer) from the
      ``jvp`` rules (Pearlmutter's R-operator) against :math:`\frac{y(\theta + h v) - y(\theta - h v)}{2h}`;
    - ``order=2`` (in addition to order 1): the Hessian-vector product :math:`H v` (``model.hvp``, a layer's
      ``backward_jvp``) against :math:`\frac{\nabla L(\theta + h v) - \nabla L(\theta - h v)}{2h}`.

    Each comparison is the norm-wise relative error :math:`\|a - b\| / \max(\|a\|, \|b\|)`, which must stay
    below ``rtol`` (plus an allowance for the rounding of the central differences, :math:`64\,\epsilon\,
    |\text{value}| / h`, which matters only for derivatives close to zero). The cost is
    :math:`2 \times` ``n_directions`` evaluations per parameter array (four gradient evaluations more for
    ``order=2``), independent of the number of parameters.

    A float32 model or layer is checked through a float64 copy of itself (same class, same values): the
    float32 results against the float64 results (``rtol_float32``), the float64 results against central
    differences (``rtol``), since float32 central differences are good to about 1e-3 only.

    Parameters
    ----------
    fn_or_model : genbound.nn.Sequential, genbound.nn.Layer or callable
        - a model: ``L`` is its mean cross-entropy on ``x``; checked: ``loss_and_grad`` (rev), the layers'
          ``jvp`` chained to the logits tangent (fwd), ``hvp`` (order 2); parameters ``"0.weight"``, ...
        - a layer (parameters bound, e.g. by ``layer.initialize(seed)``): ``L = <R, layer(x)>`` with a fixed
          random R (for ``order=2``, plus :math:`\frac12 \langle S, y \odot y\rangle` with a fixed random S, so
          that the tangent of the incoming gradient is exercised); checked: ``backward`` (rev), ``jvp`` (fwd),
          ``backward_jvp`` (order 2), for the input ``"x"`` and every parameter.
        - a function ``fn(x) -> (value, gradient)``: its gradient (whatever ``modes``); with ``order=2`` also
          ``hvp(x, v)``, which must then be given.
    x : array_like or data
        For a model, its data: a :class:`genbound.data.Dataset` (its training part) or an ``(x, y)`` pair.
        For a layer or a function, the input array. Integer, Fortran-ordered and read-only arrays are
        converted (never written to); bool, complex and non-finite arrays are refused.
    modes : sequence of {"rev", "fwd"}
        Which first-order rules to check (default both).
    order : {1, 2}
        2 also checks the Hessian-vector product (the rules of both modes composed).
    n_directions : int
        Random directions per parameter array (default 2).
    seed : int, numpy.random.Generator or None
        Seed of the directions and of the probe R, S.
    h : float
        Central-difference step along a unit direction (default 1e-5, for float64).
    rtol : float
        Tolerance of the float64 rules against central differences (default 1e-6).
    rtol_float32 : float
        Tolerance of float32 results against the float64 rule (default 1e-4).
    hvp : callable, optional
        ``hvp(x, v)`` for a function checked with ``order=2``.

    Returns
    -------
    dict
        Every relative error measured, keyed by ``(check, part)`` with check in {"rev", "fwd", "hvp"} and
        part the parameter (``"x"`` for an input), or ``(check, part, ..., "float64")`` for the float32
        against float64 comparisons.

    Raises
    ------
    AssertionError
        A tolerance report: one line per failing check naming the layer and the parameter, the relative error
        and the tolerance; for a model, also the layers whose own rules fail at the model's activations.

    Examples
    --------
    >>> import numpy as np, genbound as gb
    >>> from genbound.testing import check_grads
    >>> errors = check_grads(gb.nn.Dense(3, 2).initialize(0), np.ones((4, 3)), order=2)
    >>> model = gb.nn.reference_cnn("digits_gap", rank=1, seed=0)
    >>> x = np.random.default_rng(0).normal(size=(4, 1, 8, 8))
    >>> errors = check_grads(model, (x, [0, 1, 2, 3]))

    References
    ----------
    D. Maclaurin, D. Duvenaud and R. P. Adams, "Autograd: effortless gradients in NumPy", 2015
    (``autograd.test_util.check_grads``); B. A. Pearlmutter, "Fast exact multiplication by the Hessian",
    Neural Computation 6(1), 1994.
    """
    modes = _check_modes(modes)
    order = _check_order(order)
    n_directions = check_int(n_directions, "n_directions", 1)
    h, rtol, rtol_float32 = _check_step(h, rtol, rtol_float32)
    as_generator(seed)  # refuse a bad seed before any work
    if isinstance(fn_or_model, Layer):
        report = _Report(f"check_grads({_describe(fn_or_model)})")
        _layer_checks(fn_or_model, x, modes, order, n_directions, seed, h, rtol, rtol_float32, report)
        return report.raise_if_failed()
    if isinstance(fn_or_model, Sequential) or hasattr(fn_or_model, "layers"):
        model = check_model(fn_or_model, "fn_or_model")
        report = _Report(f"check_grads(model, dtype={np.dtype(model.dtype).name})")
        _model_checks(model, x, modes, order, n_directions, seed, h, rtol, rtol_float32, report)
        if report.failures:
            report.raise_if_failed(_localize(model, x, modes, order, n_directions, seed, h, rtol, rtol_float32))
        return report.errors
    if callable(fn_or_model):
        report = _Report(f"check_grads({getattr(fn_or_model, '__name__', 'fn')})")
        _function_checks(fn_or_model, x, hvp, order, n_directions, seed, h, rtol, report)
        return report.raise_if_failed()
    raise TypeError("fn_or_model: expected a genbound.nn.Sequential, a genbound.nn layer or a callable "
                    f"fn(x) -> (value, gradient), got {type(fn_or_model).__name__}")


def check_layer_tangents(layer, x, seed=0, h=1e-5, rtol=1e-6, rtol_float32=1e-4):
    r"""Check a layer's tangent rules, ``jvp`` and ``backward_jvp``, against central differences of its
    ``forward`` and ``backward``, with every tangent at once.

    Random tangents are drawn for the input (``rx``), every parameter (``tparams``) and the incoming gradient
    (``rdy``, beside a random ``dy``), and with :math:`\theta_\pm = \theta \pm h\,(\text{tangents})`

    .. math::

        R\{y\} \approx \frac{y(\theta_+) - y(\theta_-)}{2h}, \qquad
        R\{dx, \nabla_p\} \approx \frac{\mathrm{backward}(dy + h\,rdy;\ \theta_+) -
        \mathrm{backward}(dy - h\,rdy;\ \theta_-)}{2h}

    each compared by the norm-wise relative error with ``rtol``. On failure the tangents are tried one at a
    time (input only, each parameter only, ``rdy`` only) to name the one whose rule is wrong. A float32 layer
    is compared with its float64 copy (``rtol_float32``), and the copy with central differences.

    Parameters
    ----------
    layer : genbound.nn.Layer
        With parameters bound (``layer.initialize(seed)`` or inside a model).
    x : array_like
        Input batch (converted to the layer's dtype; never written to).
    seed : int, numpy.random.Generator or None
    h : float
        Central-difference step (default 1e-5).
    rtol : float
        Tolerance against central differences (default 1e-6).
    rtol_float32 : float
        Tolerance of a float32 layer against its float64 copy (default 1e-4).

    Returns
    -------
    dict
        Relative errors keyed ``"ry"``, ``"rdx"`` and ``"rgrads[name]"`` (and ``"... vs float64"`` keys for
        float32 layers).

    Raises
    ------
    AssertionError
        Naming the layer, the output whose tangent disagrees and the tangent input responsible.

    References
    ----------
    B. A. Pearlmutter, "Fast exact multiplication by the Hessian", Neural Computation 6(1), 1994.
    """
    if not isinstance(layer, Layer):
        raise TypeError(f"layer: expected a genbound.nn layer, got {type(layer).__name__}")
    h, rtol, rtol_float32 = _check_step(h, rtol, rtol_float32)
    rng = as_generator(seed)
    x = _layer_input(layer, x)
    single = x.dtype == np.float32
    y = layer.forward(x)[0]
    rx = rng.normal(size=x.shape)
    tparams = {k: rng.normal(size=v.shape) for k, v in layer.params.items()}
    dy, rdy = rng.normal(size=y.shape), rng.normal(size=y.shape)
    if single:
        rx, dy, rdy = (a.astype(np.float32).astype(np.float64) for a in (rx, dy, rdy))
        tparams = {k: v.astype(np.float32).astype(np.float64) for k, v in tparams.items()}
    ref_layer = _float64_twin(layer) if single else layer
    x64 = x.astype(np.float64)
    full = {"x": rx, **{f"p:{k}": v for k, v in tparams.items()}, "rdy": rdy}

    def measure(active):
        t_rx = active["x"] if "x" in active else np.zeros_like(rx)
        t_params = {k: active.get(f"p:{k}", np.zeros_like(v)) for k, v in tparams.items()}
        t_rdy = active["rdy"] if "rdy" in active else np.zeros_like(rdy)
        exact = _tangent_rules(ref_layer, x64, t_rx, t_params, dy, t_rdy)
        plus = _primal_rules(ref_layer, x64, t_rx, t_params, dy, t_rdy, h)
        minus = _primal_rules(ref_layer, x64, t_rx, t_params, dy, t_rdy, -h)
        out = {}
        for key in exact:
            floor = _ROUNDING * _EPS * max(np.linalg.norm(plus[key]), np.linalg.norm(minus[key])) / h
            out[key] = (_compare(exact[key], (plus[key] - minus[key]) / (2 * h), floor), exact[key])
        return out

    report = _Report(f"check_layer_tangents({_describe(layer)})")
    results = measure(full)
    for key, (measured, _) in results.items():
        report.add(("tangent", key), f"{key} of {_describe(layer)}", measured, rtol)
    if single:
        ours = _tangent_rules(layer, x, rx, tparams, dy, rdy)
        for key, (_, exact) in results.items():
            report.add(("tangent", f"{key} vs float64"), f"{key} of {_describe(layer)}", _compare(ours[key], exact),
                       rtol_float32, against="the float64 rule")
    notes = []
    if report.failures:
        for part, value in full.items():
            bad = [f"{k} {e:.2e}" for k, ((e, al), _) in measure({part: value}).items() if not e <= rtol + al]
            if bad:
                what = {"x": "input tangent rx", "rdy": "gradient tangent rdy"}.get(part, f"tangent of {part[2:]!r}")
                notes.append(f"  with only the {what}: {', '.join(bad)}")
    report.raise_if_failed(notes)
    return {key[1]: err for key, err in report.errors.items()}


def _tangent_rules(layer, x, rx, tparams, dy, rdy):
    """ry, rdx and rgrads of the layer's tangent rules (float64 results)."""
    dtype = x.dtype
    y, cache = layer.forward(x)
    tp = {k: v.astype(layer.params[k].dtype) for k, v in tparams.items()}
    ry, tcache = layer.jvp(rx.astype(dtype), tp, cache)
    layer.backward(dy.astype(dtype), cache)
    rdx, rgrads = layer.backward_jvp(dy.astype(dtype), rdy.astype(dtype), cache, tcache, tp)
    out = {"ry": np.array(ry, dtype=np.float64), "rdx": np.array(rdx, dtype=np.float64)}
    out.update({f"rgrads[{k}]": np.array(v, dtype=np.float64) for k, v in rgrads.items()})
    return out


def _primal_rules(layer, x, rx, tparams, dy, rdy, step):
    """y, dx and grads at the point shifted by ``step`` times the tangents (the layer's parameters restored)."""
    saved = layer.params
    if saved:
        layer.bind({k: v + step * tparams[k] for k, v in saved.items()})
    try:
        y, cache = layer.forward(x + step * rx)
        dx, grads = layer.backward(dy + step * rdy, cache)
    finally:
        layer.params = saved
    out = {"ry": np.array(y, dtype=np.float64), "rdx": np.array(dx, dtype=np.float64)}
    out.update({f"rgrads[{k}]": np.array(v, dtype=np.float64) for k, v in grads.items()})
    return out
