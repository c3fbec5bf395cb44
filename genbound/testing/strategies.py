"""Hypothesis strategies for genbound objects: seeds, convolution geometries, CP factors, small networks,
datasets, parameter vectors and directions, and the arguments of generalization bounds.

Every strategy draws only valid combinations (a geometry's output is at least 1 pixel, factor arrays share
their output and rank axes, labels are below the number of classes, bound arguments lie in their ranges), so
tests never need ``assume`` to discard them, and each draws in dependency order with ``st.integers``,
``st.sampled_from`` and ``st.builds``, so a failing example shrinks towards the smallest kernel, the lowest
rank and order, the fewest channels and the simplest numbers.

Values inside arrays are drawn from a seeded normal distribution, never as raw hypothesis floats (which pile
up on ReLU kinks and max-pool ties and make finite differences meaningless); hypothesis chooses shapes,
hyperparameters and the seed, which shrinks like any integer.

References
----------
D. R. MacIver, Z. Hatfield-Dodds et al., "Hypothesis: a new approach to property-based testing", JOSS 4(43),
2019.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from hypothesis import strategies as st

from genbound._checks import check_dtype, check_int, check_positive
from genbound._rng import as_generator

__all__ = ["seeds", "normal_array", "ConvGeometry", "conv_geometries", "conv_configs", "cp_factors", "cp_steps",
           "small_cnns", "datasets", "parameter_vectors", "directions", "BoundArguments", "bound_arguments"]


def seeds():
    """Integer seeds for numpy Generators (shrink towards 0)."""
    return st.integers(min_value=0, max_value=2**31 - 1)


def normal_array(seed, shape, scale=1.0, dtype=np.float64):
    """An array of the given shape with entries from N(0, scale^2), drawn from ``seed`` (int, Generator or
    None)."""
    return (as_generator(seed).normal(size=shape) * scale).astype(dtype)


# --------------------------------------------------------------------------------------------------------
# convolutions and CP factors
# --------------------------------------------------------------------------------------------------------

class ConvGeometry(NamedTuple):
    """The geometry of a 2-D convolution on one image: sizes, square kernel, stride, zero padding."""

    height: int
    width: int
    kernel_size: int
    stride: int
    padding: int

    @property
    def out_height(self):
        """floor((H + 2p - k) / s) + 1, at least 1 for every drawn geometry."""
        return (self.height + 2 * self.padding - self.kernel_size) // self.stride + 1

    @property
    def out_width(self):
        """floor((W + 2p - k) / s) + 1, at least 1 for every drawn geometry."""
        return (self.width + 2 * self.padding - self.kernel_size) // self.stride + 1


@st.composite
def conv_geometries(draw, max_size=7, max_kernel=3, max_stride=2):
    """A :class:`ConvGeometry` whose padded image holds the kernel (so the output has >= 1 pixel per axis).

    Drawn in dependency order: kernel in [1, max_kernel], padding in [p_min, kernel - 1] with p_min the least
    padding that lets a ``max_size`` image hold the kernel, height and width in [max(1, kernel - 2 padding),
    max_size], stride in [1, max_stride]. Shrinks towards a 1x1 kernel, no padding, the smallest image, stride 1.
    """
    max_size = check_int(max_size, "max_size", 1)
    max_kernel = check_int(max_kernel, "max_kernel", 1)
    max_stride = check_int(max_stride, "max_stride", 1)
    kernel = draw(st.integers(1, max_kernel))
    min_padding = max(0, -(-(kernel - max_size) // 2))  # ceil((k - max_size) / 2) <= k - 1
    padding = draw(st.integers(min_padding, kernel - 1))
    smallest = max(1, kernel - 2 * padding)
    height = draw(st.integers(smallest, max_size))
    width = draw(st.integers(smallest, max_size))
    return ConvGeometry(height, width, kernel, draw(st.integers(1, max_stride)), padding)


@st.composite
def conv_configs(draw, max_channels=4, max_size=7, max_kernel=3, max_rank=3, max_batch=3):
    """A dict describing a convolution and its input: batch, in/out channels, height, width, kernel_size,
    stride, padding, rank and a seed, such that the kernel fits the padded image (a :func:`conv_geometries`
    draw)."""
    max_channels = check_int(max_channels, "max_channels", 1)
    max_rank = check_int(max_rank, "max_rank", 1)
    max_batch = check_int(max_batch, "max_batch", 1)
    geo = draw(conv_geometries(max_size=max_size, max_kernel=max_kernel))
    return dict(
        batch=draw(st.integers(1, max_batch)),
        in_channels=draw(st.integers(1, max_channels)),
        out_channels=draw(st.integers(1, max_channels)),
        height=geo.height,
        width=geo.width,
        kernel_size=geo.kernel_size,
        stride=geo.stride,
        padding=geo.padding,
        rank=draw(st.integers(1, max_rank)),
        seed=draw(seeds()),
    )


def _fixed_or_drawn(draw, value, name, low, high):
    if value is not None:
        return check_int(value, name, low)
    return draw(st.integers(low, check_int(high, f"max_{name}", low)))


@st.composite
def cp_factors(draw, rank=None, order=None, max_rank=3, max_order=4, max_out=3, max_size=4, dtype=np.float64):
    """CP factor arrays ``[f1, ..., fd]`` of shapes (O, R, n_i), the ``factors=`` form of
    :mod:`genbound.factor` (order 3 is ``[p, q, t]``).

    ``rank`` and ``order`` are fixed when given, else drawn in [1, max_rank] and [1, max_order]; O in
    [1, max_out] and each n_i in [1, max_size]; entries standard normal from a drawn seed.
    """
    dtype = check_dtype(dtype)
    r = _fixed_or_drawn(draw, rank, "rank", 1, max_rank)
    d = _fixed_or_drawn(draw, order, "order", 1, max_order)
    o = draw(st.integers(1, check_int(max_out, "max_out", 1)))
    sizes = [draw(st.integers(1, check_int(max_size, "max_size", 1))) for _ in range(d)]
    rng = as_generator(draw(seeds()))
    return [rng.normal(size=(o, r, n)).astype(dtype) for n in sizes]


@st.composite
def cp_steps(draw, rank=None, order=None, max_rank=3, max_order=4, max_lr=1.0, dtype=np.float64):
    """``(factors, grads, lr)``: CP factors (:func:`cp_factors`), gradients of the same shapes (standard
    normal from a drawn seed) and a learning rate in [-max_lr, max_lr] (shrinking towards 0) — the
    arguments of ``genbound.factor.delta(factors=..., grads=..., lr=...)``."""
    factors = draw(cp_factors(rank=rank, order=order, max_rank=max_rank, max_order=max_order, dtype=dtype))
    rng = as_generator(draw(seeds()))
    grads = [rng.normal(size=f.shape).astype(f.dtype) for f in factors]
    max_lr = check_positive(max_lr, "max_lr")
    lr = draw(st.floats(-max_lr, max_lr, allow_nan=False, allow_infinity=False))
    return factors, grads, lr


# --------------------------------------------------------------------------------------------------------
# models and data
# --------------------------------------------------------------------------------------------------------

FILTERS = ("full", "cp")


@st.composite
def small_cnns(draw, rank=None, max_channels=3, filters=None, dtype=np.float64):
    """A tiny Sequential CNN on 1x6x6 inputs with 4 classes: conv, ReLU, (max pooling), conv, ReLU, then
    flatten or global average pooling, and a dense layer.

    Parameters
    ----------
    rank : int, optional
        Rank of CP filters; None lets hypothesis choose (with ``filters=None``: full or CP of rank 1..3).
    max_channels : int
        Channels of each convolution drawn in [1, max_channels].
    filters : {None, "full", "cp"}
        Full (:class:`~genbound.nn.Conv2d`) or CP (:class:`~genbound.nn.CPConv2d`) filters; None draws it
        (a given ``rank`` means CP).
    dtype : {numpy.float64, numpy.float32}
    """
    from genbound.nn import CPConv2d, Conv2d, Dense, Flatten, GlobalAvgPool, MaxPool2d, ReLU, Sequential

    if filters not in (None, *FILTERS):
        raise ValueError(f"filters: expected None or one of {FILTERS}, got {filters!r}")
    if filters == "full" and rank is not None:
        raise ValueError(f"rank: full filters have no rank, got rank={rank!r} with filters='full'")
    dtype = check_dtype(dtype)
    seed = draw(seeds())
    c1 = draw(st.integers(1, check_int(max_channels, "max_channels", 1)))
    c2 = draw(st.integers(1, max_channels))
    if rank is not None:
        r = check_int(rank, "rank", 1)
    elif filters == "full":
        r = None
    elif filters == "cp":
        r = draw(st.integers(1, 3))
    else:
        r = draw(st.sampled_from([None, 1, 2, 3]))

    def conv(ci, co):
        return Conv2d(ci, co, 3, padding=1) if r is None else CPConv2d(ci, co, 3, rank=r, padding=1)

    if draw(st.booleans()):
        layers = [conv(1, c1), ReLU(), MaxPool2d(2), conv(c1, c2), ReLU(), Flatten(), Dense(c2 * 9, 4)]
    else:
        layers = [conv(1, c1), ReLU(), conv(c1, c2), ReLU(), GlobalAvgPool(), Dense(c2, 4)]
    return Sequential(layers, seed=seed, dtype=dtype, input_shape=(1, 6, 6))


@st.composite
def datasets(draw, min_train=4, max_train=16, n_test=4, classes=4, input_shape=(1, 6, 6), corrupted=False,
             dtype=np.float64):
    """A tiny :class:`genbound.data.Dataset` of standard normal images with labels in [0, classes), shaped for
    :func:`small_cnns` by default.

    ``corrupted``: False (clean), True (corrupted by :func:`genbound.data.randomize` with a drawn kind, and a
    drawn fraction for ``"partial_labels"``), or None (hypothesis decides). The randomization is recorded in
    ``info`` by ``randomize``.
    """
    from genbound.data import RANDOMIZATIONS, Dataset, randomize

    min_train = check_int(min_train, "min_train", 1)
    max_train = check_int(max_train, "max_train", min_train)
    n_test = check_int(n_test, "n_test", 0)
    classes = check_int(classes, "classes", 1)
    shape = tuple(check_int(s, "input_shape", 1) for s in input_shape)
    if corrupted not in (None, True, False):
        raise TypeError(f"corrupted: expected True, False or None, got {corrupted!r}")
    dtype = check_dtype(dtype)
    m = draw(st.integers(min_train, max_train))
    rng = as_generator(draw(seeds()))
    data = Dataset(rng.normal(size=(m, *shape)).astype(dtype), rng.integers(0, classes, m),
                   rng.normal(size=(n_test, *shape)).astype(dtype), rng.integers(0, classes, n_test),
                   classes=classes)
    if corrupted is None:
        corrupted = draw(st.booleans())
    if corrupted:
        kind = draw(st.sampled_from(RANDOMIZATIONS))
        fraction = draw(st.sampled_from([0.0, 0.25, 0.5, 1.0])) if kind == "partial_labels" else 1.0
        data = randomize(data, kind, fraction=fraction, seed=draw(seeds()))
    return data


def parameter_vectors(model, scale=1.0):
    """Parameter vectors for ``model``: each entry normal with the parameter's natural scale
    (:meth:`genbound.nn.Sequential.param_scales`) times ``scale``, in the model's dtype, from a drawn seed."""
    scales = model.param_scales() * check_positive(scale, "scale")
    return seeds().map(lambda s: (as_generator(s).normal(size=model.n_params) * scales).astype(model.dtype))


def directions(model, normalized=True):
    """Directions in the parameter space of ``model`` (float64 vectors of length ``n_params``, standard normal
    from a drawn seed; unit norm when ``normalized``)."""

    def make(seed):
        v = as_generator(seed).normal(size=model.n_params)
        return v / np.linalg.norm(v) if normalized else v

    return seeds().map(make)


# --------------------------------------------------------------------------------------------------------
# arguments of generalization bounds
# --------------------------------------------------------------------------------------------------------

class BoundArguments(NamedTuple):
    """Valid arguments of the bounds of :mod:`genbound.bounds`: capacity N >= 1, sample size m >= 1,
    confidence delta in (0, 1), empirical error in [0, 1], KL >= 0 (nats)."""

    N: int
    m: int
    delta: float
    emp_error: float
    kl: float


def bound_arguments(min_m=1, max_m=10**6, max_n=10**7, max_kl=1e6, min_delta=1e-12):
    """:class:`BoundArguments` in their valid ranges: N in [1, max_n], m in [min_m, max_m] (8 for Maurer's
    bounds, 2 for Dziugaite & Roy's), delta in [min_delta, 1), emp_error in [0, 1], kl in [0, max_kl].

    Built with ``st.builds`` from bounded integers and finite floats, so every field shrinks on its own
    (towards N = 1, m = min_m, delta = 0.5, emp_error = 0, kl = 0).
    """
    min_m = check_int(min_m, "min_m", 1)
    max_m = check_int(max_m, "max_m", min_m)
    max_n = check_int(max_n, "max_n", 1)
    max_kl = check_positive(max_kl, "max_kl")
    min_delta = check_positive(min_delta, "min_delta")
    if not min_delta < 1:
        raise ValueError(f"min_delta: expected a number in (0, 1), got {min_delta}")
    finite = dict(allow_nan=False, allow_infinity=False)
    return st.builds(BoundArguments,
                     N=st.integers(1, max_n),
                     m=st.integers(min_m, max_m),
                     delta=st.floats(min_delta, 1.0, exclude_max=True, **finite),
                     emp_error=st.floats(0.0, 1.0, **finite),
                     kl=st.floats(0.0, max_kl, **finite))
