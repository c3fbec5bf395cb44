"""Derivative checks against central finite differences, for layers, models and users' own functions."""
from __future__ import annotations

import numbers

import numpy as np

from genbound._checks import as_array, as_float_array, check_callable, check_model, check_positive, \
    check_real_dtype
from genbound._rng import as_generator
from genbound.nn.layers import Layer, MaxPool2d, ReLU
from genbound.nn.objective import restored, training_pair


def numerical_gradient(f, x, h=1e-5):
    """Central-difference gradient of a scalar function ``f`` at the array ``x`` (every coordinate).

    .. math:: \\partial_i f(x) \\approx \\frac{f(x + h e_i) - f(x - h e_i)}{2h}

    ``x`` is perturbed in place, element by element whatever its memory layout (C or Fortran order, a
    strided view), and restored; ``f`` must read that same array.

    Parameters
    ----------
    f : callable () -> float
        The function, reading ``x``; must return a finite real scalar.
    x : numpy.ndarray of float32 or float64, writeable
        An integer array (which cannot hold x + h), a list (which ``f`` cannot see perturbed) or a read-only
        array is refused with a TypeError or ValueError naming ``x``.
    h : float > 0
        The step.

    Returns
    -------
    numpy.ndarray (float64, shape of ``x``)
    """
    check_callable(f, "f", allow_none=False)
    h = check_positive(h, "h")
    if not isinstance(x, np.ndarray):
        raise TypeError(f"x: expected the numpy array that f reads (it is perturbed in place), got "
                        f"{type(x).__name__}")
    check_real_dtype(x, "x")
    if x.dtype.kind != "f":
        raise TypeError(f"x: expected a float array to perturb in place, got dtype {x.dtype} (an integer array "
                        "cannot hold x + h: convert it to float and let f read the converted array)")
    if not x.flags.writeable:
        raise ValueError("x: expected a writeable array (it is perturbed in place), got a read-only array")
    grad = np.empty(x.shape, dtype=np.float64)

    def value(where):
        out = f()
        if isinstance(out, np.ndarray) and out.size == 1:
            out = out.reshape(())[()]
        if isinstance(out, (bool, np.bool_)) or not isinstance(out, (numbers.Real, np.floating, np.integer)):
            raise TypeError(f"f: expected a real scalar, got {type(out).__name__}")
        if not np.isfinite(out):
            raise ValueError(f"f: returned {out} at x{list(where)} perturbed by {h:g}: expected finite values")
        return float(out)

    for idx in np.ndindex(x.shape):
        old = x[idx]
        x[idx] = old + h
        fp = value(idx)
        x[idx] = old - h
        fm = value(idx)
        x[idx] = old
        grad[idx] = (fp - fm) / (2 * h)
    return grad


def relative_error(a, b):
    """Norm-wise relative error ||a - b|| / max(||a||, ||b||) (0 when both vanish).

    ``a`` and ``b`` must have the same shape (no broadcasting) and finite real values; otherwise a ValueError or
    TypeError names the argument.
    """
    a0, b0 = as_array(a, "a"), as_array(b, "b")
    if a0.shape != b0.shape:
        raise ValueError(f"b: expected the shape of a, {a0.shape}, got {b0.shape} (no broadcasting)")
    a, b = as_float_array(a0, "a").ravel(), as_float_array(b0, "b").ravel()
    scale = max(np.linalg.norm(a), np.linalg.norm(b))
    return 0.0 if scale == 0 else float(np.linalg.norm(a - b) / scale)


def layer_loss_probe(layer, x, seed=0):
    """A scalar test function of a layer: L = <R, layer(x)> with a fixed random R; returns (L, dL/dy)."""
    y, _ = layer.forward(x)
    r = as_generator(seed).normal(size=y.shape).astype(x.dtype)
    return (lambda: float(np.sum(r * layer.forward(x)[0]))), r


def check_layer_grads(layer, x, seed=0, h=1e-5, rtol=1e-6):
    """Compare a layer's backward pass with central differences, for its input and every parameter.

    The layer is probed through L = <R, layer(x)> with R drawn from ``seed``. Raises AssertionError naming
    the array whose gradient disagrees (norm-wise relative error above ``rtol``); returns the errors.

    ``x`` is converted to the layer's float dtype first (float64 for layers without parameters), so an integer
    or list input is checked, not blamed on the layer; NaN or inf in ``x`` raise a ValueError.
    """
    if not isinstance(layer, Layer):
        raise TypeError(f"layer: expected a genbound.nn layer, got {type(layer).__name__}")
    dtype = next(iter(layer.params.values())).dtype if layer.params else np.float64  # unbound: forward says so
    x = as_float_array(x, "x", dtype=dtype)
    h, rtol = check_positive(h, "h"), check_positive(rtol, "rtol")
    f, r = layer_loss_probe(layer, x, seed)
    _, cache = layer.forward(x)
    dx, grads = layer.backward(r, cache, need_dx=True)
    errors = {"x": relative_error(dx, numerical_gradient(f, x, h))}
    for name, value in layer.params.items():
        errors[name] = relative_error(grads[name], numerical_gradient(f, value, h))
    bad = {k: v for k, v in errors.items() if not v <= rtol}
    if bad:
        raise AssertionError(f"gradient check failed for {layer!r}: relative errors {bad} > {rtol}")
    return errors


def check_model_grads(model, data, h=1e-5, rtol=1e-6):
    """Compare ``model.loss_and_grad`` with central differences of ``model.loss`` for every parameter.

    ``data`` is a :class:`genbound.data.Dataset` (its training set is used) or an ``(x, y)`` pair. Returns the
    norm-wise relative error; raises AssertionError above ``rtol``.
    """
    check_model(model)
    h, rtol = check_positive(h, "h"), check_positive(rtol, "rtol")
    x, y = training_pair(data)
    _, grads = model.loss_and_grad(x, y, flat=True)
    with restored(model) as w0:
        w = w0.copy()

        def f():
            model.set_flat(w)
            return model.loss(x, y)

        numerical = numerical_gradient(f, w, h)
    err = relative_error(grads, numerical)
    if not err <= rtol:
        raise AssertionError(f"gradient check failed: relative error {err:.3e} > {rtol}")
    return err


def check_hvp(model, data, v=None, seed=0, h=1e-5, rtol=1e-6):
    """Compare ``model.hvp`` with central differences of exact gradients along ``v``.

    .. math:: H v \\approx \\frac{\\nabla L(w + h v) - \\nabla L(w - h v)}{2h}

    ``data`` is a Dataset (its training set) or an ``(x, y)`` pair; ``v`` defaults to a standard normal
    direction drawn from ``seed``. Returns the norm-wise relative error; raises AssertionError above ``rtol``.
    """
    check_model(model)
    h, rtol = check_positive(h, "h"), check_positive(rtol, "rtol")
    x, y = training_pair(data)
    if v is None:
        v = as_generator(seed).normal(size=model.n_params)
    hv = model.hvp(x, y, v)
    with restored(model) as w0:
        model.set_flat(w0 + h * v)
        gp = model.loss_and_grad(x, y, flat=True)[1]
        model.set_flat(w0 - h * v)
        gm = model.loss_and_grad(x, y, flat=True)[1]
    err = relative_error(hv, (gp - gm) / (2 * h))
    if not err <= rtol:
        raise AssertionError(f"Hessian-vector product check failed: relative error {err:.3e} > {rtol}")
    return err


def activation_margin(model, x):
    """Distance of the forward pass from a kink: the smallest |ReLU input| and the smallest gap between the
    largest and second-largest entry of a max-pooling window, each divided by the largest |activation| of its
    layer when that is above 1.

    Finite-difference checks are only meaningful when this margin is well above the step times the
    gradient; test suites redraw inputs whose margin is too small. A step h moves an activation by about h
    times its own size through a weight, and by h through a bias: so large activations are measured
    relative to their size, small ones absolutely (relative to a layer whose activations are all ~1e-3, a
    kink 3e-7 away looks safe at 2e-4, yet a step of 1e-5 in a bias crosses it).
    """
    margin = np.inf
    acts = check_model(model).check_x(x)
    for layer in model.layers:
        scale = max(1.0, float(np.max(np.abs(acts))))
        if isinstance(layer, ReLU):
            margin = min(margin, float(np.min(np.abs(acts))) / scale)
        elif isinstance(layer, MaxPool2d):
            n, c, h, w = acts.shape
            k, s = layer.kernel_size, layer.stride
            for a in range(0, h - k + 1, s):
                for b in range(0, w - k + 1, s):
                    win = np.sort(acts[:, :, a:a + k, b:b + k].reshape(n, c, -1), axis=-1)
                    gap = (win[..., -1] - win[..., -2])[win[..., -1] != 0]  # ties at 0 after ReLU are harmless
                    if win.shape[-1] > 1 and gap.size:
                        margin = min(margin, float(np.min(gap)) / scale)
        acts, _ = layer.forward(acts)
    return margin
