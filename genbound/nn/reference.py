"""The reference networks of genbound (tests, benchmarks, experiments)."""
from __future__ import annotations

import numbers

import numpy as np

from genbound._checks import check_int
from genbound.nn.layers import Conv2d, CPConv2d, Dense, Flatten, GlobalAvgPool, MaxPool2d, ReLU
from genbound.nn.model import Sequential

REFERENCE_NETWORKS = ("digits", "digits_gap", "mnist", "mnist_gap")

#: Largest ``width`` of :func:`reference_cnn` (4,096 channels in the second MNIST convolution).
MAX_WIDTH = 64.0


def _conv(c_in, c_out, rank):
    if rank is None:
        return Conv2d(c_in, c_out, 3, padding=1)
    return CPConv2d(c_in, c_out, 3, rank=rank, padding=1)


def reference_cnn(name, rank=None, seed=0, dtype=np.float64, width=1.0):
    """Build one of the reference networks, with full (``rank=None``) or rank-R CP filters.

    - ``"digits"``: input 1x8x8; conv 1->16 3x3 pad 1, ReLU, maxpool 2; conv 16->32 3x3 pad 1, ReLU,
      maxpool 2; flatten; dense 32*2*2 -> 10.
    - ``"digits_gap"``: input 1x8x8; conv 1->16, ReLU, maxpool 2; conv 16->32, ReLU; global average pool;
      dense 32 -> 10. Its parameters sit mostly in conv filters (5,130 full, 1,194 rank 1).
    - ``"mnist"``: input 1x28x28; conv 1->32, ReLU, maxpool 2; conv 32->64, ReLU, maxpool 2; flatten;
      dense 64*7*7 -> 10 (the dense layer holds 31,370 of its 50,186 parameters).
    - ``"mnist_gap"``: input 1x28x28; conv 1->32, ReLU, maxpool 2; conv 32->64, ReLU; global average pool;
      dense 64 -> 10. As in ``"digits_gap"`` the parameters sit in the conv filters (19,466 full, 3,402
      rank 1), so the CP rank is what changes N.

    Parameters
    ----------
    name : {"digits", "digits_gap", "mnist", "mnist_gap"}
    rank : int >= 1 or None
        CP rank of every convolution; None gives full filters.
    seed : int or numpy.random.Generator
    dtype : {numpy.float64, numpy.float32}
    width : float in (0, MAX_WIDTH]
        Multiplies the channel counts (16, 32 / 32, 64), for capacity sweeps; 1.0 gives the reference. At most
        :data:`MAX_WIDTH` = 64 (larger widths are refused before anything is allocated).

    Returns
    -------
    Sequential
    """
    if not isinstance(name, str) or name not in REFERENCE_NETWORKS:
        raise ValueError(f"name: expected one of {REFERENCE_NETWORKS}, got {name!r}")
    if rank is not None:
        rank = check_int(rank, "rank", 1)
    if isinstance(width, bool) or not isinstance(width, numbers.Real):
        raise TypeError(f"width: expected a positive number, got {type(width).__name__} {width!r}")
    if not (np.isfinite(width) and 0 < width <= MAX_WIDTH):
        raise ValueError(f"width: expected a number in (0, {MAX_WIDTH:g}] (genbound.nn.reference.MAX_WIDTH), "
                         f"got {width!r}")
    if name.startswith("mnist"):
        c1, c2, side = max(1, round(32 * width)), max(1, round(64 * width)), 28
    else:
        c1, c2, side = max(1, round(16 * width)), max(1, round(32 * width)), 8
    layers = [_conv(1, c1, rank), ReLU(), MaxPool2d(2), _conv(c1, c2, rank), ReLU()]
    if name.endswith("_gap"):
        layers += [GlobalAvgPool(), Dense(c2, 10)]
    else:
        layers += [MaxPool2d(2), Flatten(), Dense(c2 * (side // 4) ** 2, 10)]
    return Sequential(layers, seed=seed, dtype=dtype, input_shape=(1, side, side))
