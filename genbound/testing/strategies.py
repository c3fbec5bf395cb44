"""Hypothesis strategies for genbound objects: seeds, convolution configurations, small networks.

Values inside arrays are drawn from a seeded normal distribution, never as raw hypothesis floats (which pile
up on ReLU kinks and max-pool ties); hypothesis chooses shapes, hyperparameters and the seed.
"""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from genbound._rng import as_generator


def seeds():
    """Integer seeds for numpy Generators."""
    return st.integers(min_value=0, max_value=2**31 - 1)


@st.composite
def conv_configs(draw, max_channels=4, max_size=7, max_kernel=3, max_rank=3, max_batch=3):
    """A dict describing a convolution and its input: batch, channels, image size, kernel, stride, padding,
    rank and a seed, such that the kernel fits the padded image."""
    kernel = draw(st.integers(1, max_kernel))
    padding = draw(st.integers(0, kernel - 1 if kernel > 1 else 0))
    size = draw(st.integers(max(1, kernel - 2 * padding), max_size))
    return dict(
        batch=draw(st.integers(1, max_batch)),
        in_channels=draw(st.integers(1, max_channels)),
        out_channels=draw(st.integers(1, max_channels)),
        height=size,
        width=draw(st.integers(max(1, kernel - 2 * padding), max_size)),
        kernel_size=kernel,
        stride=draw(st.integers(1, 2)),
        padding=padding,
        rank=draw(st.integers(1, max_rank)),
        seed=draw(seeds()),
    )


def normal_array(seed, shape, scale=1.0, dtype=np.float64):
    """An array of the given shape with entries from N(0, scale^2), drawn from ``seed`` (int, Generator or
    None)."""
    return (as_generator(seed).normal(size=shape) * scale).astype(dtype)


@st.composite
def small_cnns(draw, rank=None, max_channels=3):
    """A small Sequential CNN on 1x6x6 inputs with conv, ReLU, pooling and dense layers, and its seed.

    ``rank`` None lets hypothesis choose full or CP filters (rank 1..3)."""
    from genbound.nn import CPConv2d, Conv2d, Dense, Flatten, GlobalAvgPool, MaxPool2d, ReLU, Sequential

    seed = draw(seeds())
    c1 = draw(st.integers(1, max_channels))
    c2 = draw(st.integers(1, max_channels))
    r = rank if rank is not None else draw(st.sampled_from([None, 1, 2, 3]))

    def conv(ci, co):
        return Conv2d(ci, co, 3, padding=1) if r is None else CPConv2d(ci, co, 3, rank=r, padding=1)

    if draw(st.booleans()):
        layers = [conv(1, c1), ReLU(), MaxPool2d(2), conv(c1, c2), ReLU(), Flatten(), Dense(c2 * 9, 4)]
    else:
        layers = [conv(1, c1), ReLU(), conv(c1, c2), ReLU(), GlobalAvgPool(), Dense(c2, 4)]
    return Sequential(layers, seed=seed, input_shape=(1, 6, 6))
