"""Input validation shared by the public API: clear errors that name the argument."""
from __future__ import annotations

import numbers

import numpy as np

FLOAT_DTYPES = (np.float32, np.float64)


def check_dtype(dtype, name="dtype"):
    """Return ``np.dtype(dtype)`` if it is float32 or float64, else raise."""
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"{name}: expected float32 or float64, got {dtype!r}") from exc
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"{name}: expected float32 or float64, got {dt}")
    return dt


def as_array(a, name):
    """``numpy.asarray(a)``, with a ragged nested sequence (rows of different lengths) refused by a ValueError
    naming ``name`` instead of numpy's message about an inhomogeneous shape."""
    if isinstance(a, np.ndarray):
        return a
    try:
        return np.asarray(a)
    except ValueError as exc:
        raise ValueError(f"{name}: expected a rectangular array, got a ragged nested sequence (rows of "
                         "different lengths)") from exc


def check_real_dtype(arr, name):
    """Refuse (TypeError naming ``name``) an array whose dtype is not float32, float64 or integer: complex
    (whose imaginary part a conversion would drop), float16 (too little precision for the kernels), bool,
    object and strings. O(1)."""
    kind = arr.dtype.kind
    if kind == "c":
        raise TypeError(f"{name}: expected a real float array, got complex dtype {arr.dtype}")
    if kind == "f" and arr.dtype.itemsize < 4:
        raise TypeError(f"{name}: expected float32 or float64, got {arr.dtype} (too little precision)")
    if kind == "f" and arr.dtype.itemsize > 8:
        raise TypeError(f"{name}: expected float32 or float64, got {arr.dtype}")
    if kind not in "fiu":
        raise TypeError(f"{name}: expected a numeric float array, got dtype {arr.dtype}")
    return arr


def as_float_array(a, name, dtype=np.float64, ndim=None, finite=True):
    """Convert ``a`` to a C-contiguous float array of ``dtype``.

    Float32/float64/integer input is converted; float16, complex, bool, object and non-numeric input is
    refused with a TypeError naming ``name``, a ragged nested list with a ValueError. Non-finite values
    raise a ValueError when ``finite`` (also finite values that overflow ``dtype``, e.g. 1e300 as float32).
    """
    arr = as_array(a, name)
    kind = arr.dtype.kind
    if kind == "c":
        raise TypeError(f"{name}: expected a real float array, got complex dtype {arr.dtype}")
    if kind == "f" and arr.dtype.itemsize < 4:
        raise TypeError(f"{name}: expected float32 or float64, got {arr.dtype} (too little precision)")
    if kind not in "fiu":
        raise TypeError(f"{name}: expected a numeric float array, got dtype {arr.dtype}")
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-d array, got shape {arr.shape}")
    source = arr
    with np.errstate(over="ignore"):
        arr = np.ascontiguousarray(arr, dtype=dtype)
    if finite and not np.all(np.isfinite(arr)):
        if arr is not source and np.all(np.isfinite(source)):
            top = np.finfo(arr.dtype).max
            raise ValueError(f"{name}: expected finite values, got values beyond the range of {arr.dtype} "
                             f"(largest {top:.3g}) that overflow to inf")
        raise ValueError(f"{name}: expected finite values, got NaN or inf")
    return arr


def _number(value, name, kind):
    """``value`` if it is an instance of ``kind`` (numbers.Integral or numbers.Real) and not a bool."""
    if isinstance(value, bool) or not isinstance(value, kind):
        what = "an int" if kind is numbers.Integral else "a real number"
        raise TypeError(f"{name}: expected {what}, got {type(value).__name__} {value!r}")
    return value


def check_int(value, name, minimum=None):
    """Return ``int(value)`` for an integral value (not bool) >= ``minimum``."""
    value = int(_number(value, name, numbers.Integral))
    if minimum is not None and value < minimum:
        raise ValueError(f"{name}: expected an int >= {minimum}, got {value}")
    return value


def check_positive(value, name, allow_zero=False):
    """Return ``float(value)`` for a finite real value > 0 (or >= 0)."""
    value = float(_number(value, name, numbers.Real))
    if not np.isfinite(value):
        raise ValueError(f"{name}: expected a finite number, got {value}")
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name}: expected a number {bound}, got {value}")
    return value


def check_probability(value, name, open_interval=True):
    """Return ``float(value)`` in (0, 1) (or [0, 1] when ``open_interval`` is False)."""
    value = float(_number(value, name, numbers.Real))
    ok = (0 < value < 1) if open_interval else (0 <= value <= 1)
    if not ok or not np.isfinite(value):
        interval = "(0, 1)" if open_interval else "[0, 1]"
        raise ValueError(f"{name}: expected a number in {interval}, got {value}")
    return value


def check_labels(y, n, classes, name="y"):
    """Return ``y`` as int64 of length ``n`` with values in [0, classes)."""
    arr = as_array(y, name)
    if arr.size == 0 and arr.dtype.kind in "fb":
        arr = arr.astype(np.int64)
    if arr.dtype.kind not in "iu":
        if arr.dtype.kind == "f" and arr.size and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise TypeError(f"{name}: expected integer class labels, got dtype {arr.dtype}")
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"{name}: expected shape ({n},) to match the batch, got {arr.shape}")
    if arr.size and (arr.min() < 0 or arr.max() >= classes):
        raise ValueError(f"{name}: expected labels in [0, {classes}), got values in [{arr.min()}, {arr.max()}]")
    return np.ascontiguousarray(arr, dtype=np.int64)


def check_vector(v, n, name="v"):
    """``v`` as a float64 vector of length ``n`` with finite values, else a ValueError naming ``name``."""
    arr = as_float_array(v, name, dtype=np.float64, finite=False)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"{name}: expected a vector of length n_params = {n}, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: expected finite values, got NaN or inf")
    return arr


_MODEL_METHODS = ("get_flat", "set_flat", "check_xy", "forward", "loss_and_grad", "hvp", "n_params")


def check_model(model, name="model"):
    """Refuse anything that is not a genbound model (duck-typed on the methods analyses use)."""
    for attr in _MODEL_METHODS:
        if not hasattr(model, attr):
            raise TypeError(f"{name}: expected a genbound.nn.Sequential, got {type(model).__name__}")
    return model


_DATASET_FIELDS = ("x_train", "y_train", "x_test", "y_test")


def check_dataset(data, name="data"):
    """Refuse anything that is not a genbound Dataset (duck-typed on its four arrays)."""
    for attr in _DATASET_FIELDS:
        if not hasattr(data, attr):
            raise TypeError(f"{name}: expected a genbound.data.Dataset (with {attr}), got {type(data).__name__}")
    return data


def check_bool(value, name):
    """Return ``bool(value)`` for a Python or numpy bool, else a TypeError naming ``name``."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected a bool, got {type(value).__name__} {value!r}")
    return bool(value)


def check_callable(value, name, allow_none=True):
    """Return ``value`` if it is callable (or None when ``allow_none``), else a TypeError naming ``name``."""
    if value is None and allow_none:
        return None
    if not callable(value):
        expected = "a callable or None" if allow_none else "a callable"
        raise TypeError(f"{name}: expected {expected}, got {type(value).__name__} {value!r}")
    return value


def check_at_most(value, name, maximum, minimum=1):
    """``check_int(value, name, minimum)`` and at most ``maximum`` (a documented limit that keeps a call from
    running or allocating without end)."""
    value = check_int(value, name, minimum)
    if value > maximum:
        raise ValueError(f"{name}: expected an int <= {maximum} (the documented maximum), got {value}")
    return value


def check_named_entries(items, cls, name):
    """``items`` as a non-empty tuple of ``cls`` instances whose ``.name`` attributes are distinct (a declared
    list: prior configurations, refinements); TypeError or ValueError naming ``name`` otherwise."""
    items = tuple(items)
    if not items:
        raise ValueError(f"{name}: expected at least one {cls.__name__}")
    for item in items:
        if not isinstance(item, cls):
            raise TypeError(f"{name}: expected {cls.__name__} entries, got {type(item).__name__}")
    names = [item.name for item in items]
    if len(set(names)) != len(names):
        raise ValueError(f"{name}: expected distinct names, got {names}")
    return items
