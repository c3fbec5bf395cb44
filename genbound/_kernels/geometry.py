"""The shape tuple every convolution kernel takes: data only, no compiled code.

One class for both kernel files (conv.py, cpconv.py), because numba tells tuples apart by the types of their
fields, not by their class: with two NamedTuple classes of ten ints, the class seen first in a process owns
the dispatchers' type fingerprint and every call with the other class goes through numba's slow dispatch path
(measured: one full-filter call made every later step of a digits rank-1 network 2.5 times slower).

numba's on-disk cache notices changes to a kernel's own file only, so each kernel file states the fields it was
written against (``_GEOMETRY_FIELDS``) and refuses to import if this class differs: editing the fields here
means editing the kernel files too, which recompiles them.
"""
from typing import NamedTuple


class Geometry(NamedTuple):
    """Shape of one convolution call: input plane h x w, kernel kh x kw, stride, zero padding, output plane
    ho x wo, images per group (CP: for 3-tap passes; other shapes go one image at a time), and the number of
    batch chunks."""

    h: int
    w: int
    kh: int
    kw: int
    stride: int
    pad: int
    ho: int
    wo: int
    group: int
    chunks: int
