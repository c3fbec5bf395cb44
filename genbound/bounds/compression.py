"""Compression bounds, phase 1: code lengths of quantized parameter vectors and Occam bounds.

A quantized parameter vector is a codebook of ``k`` levels plus one index per parameter. Its code
length (in bits) under a prefix-free scheme fixed before seeing the data defines a prior
:math:`P(h) = 2^{-\\mathrm{bits}(h)}` over such vectors (Kraft's inequality makes it sum to at most 1),
and Occam's razor bound turns the code length into a generalization bound.

The model-level part (quantizing a trained network and measuring its error) is built on top of these
formulas elsewhere.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from genbound._checks import as_float_array, check_int, check_positive, check_probability
from genbound._rng import as_generator
from genbound.bounds.pacbayes import kl_inverse

__all__ = [
    "code_length_bits",
    "occam_bound",
    "Quantized",
    "quantize",
    "Codebook",
    "kmeans_codebook",
]

_SCHEMES = ("uniform", "entropy", "enumerative")


# ----------------------------------------------------------------------------------------------------
# code lengths
# ----------------------------------------------------------------------------------------------------

def _check_indices(indices, k):
    arr = np.asarray(indices)
    if arr.dtype.kind not in "iu":
        if arr.dtype.kind == "f" and arr.size and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        elif arr.size == 0 and arr.dtype.kind == "f":
            arr = arr.astype(np.int64)
        else:
            raise TypeError(f"indices: expected integer codebook indices, got dtype {arr.dtype}")
    arr = arr.ravel()
    if arr.size == 0:
        raise ValueError("indices: expected at least one index, got an empty array")
    lo, hi = int(arr.min()), int(arr.max())
    if lo < 0 or hi >= k:
        raise ValueError(f"indices: expected values in [0, {k}) for k = {k}, got values in [{lo}, {hi}]")
    return arr


def _log2_multinomial_ceil(counts):
    """ceil(log2(n! / prod(n_j!))) exactly, with integer arithmetic."""
    total, m = 0, 1
    for c in counts:
        total += int(c)
        m *= math.comb(total, int(c))
    return (m - 1).bit_length()


#: Up to this many bits in n**n, ceil(n H) is computed exactly with integers; above, in floats with a margin.
_EXACT_ENTROPY_BITS = 1 << 26


def _entropy_bits_ceil(counts):
    """ceil(n H) = ceil(log2(n^n / prod n_j^n_j)), never below the exact value.

    Exactly, with integers: the smallest b >= 0 with 2^b prod n_j^n_j >= n^n. For very long vectors (n log2 n
    above 2^26 bits) in floating point, rounded up past a margin larger than the rounding error."""
    counts = [int(c) for c in counts if c > 0]
    n = sum(counts)
    if n * math.log2(max(n, 2)) <= _EXACT_ENTROPY_BITS:
        num = n ** n
        den = 1
        for c in counts:
            den *= c ** c
        b = max(0, num.bit_length() - den.bit_length() - 1)
        while (den << b) < num:
            b += 1
        return b
    nz = np.asarray(counts, dtype=np.float64)
    nh = n * math.log2(n) - float(np.sum(nz * np.log2(nz)))
    # the float error is below 1e-15 (n log2 n) per operation: a 1e-12 relative margin only adds bits
    return max(0, math.ceil(nh + 1e-12 * n * math.log2(n) + 1e-9))


def code_length_bits(indices, k, *, scheme="entropy", level_bits=32, header_bits=64):
    r"""Length in bits of a prefix-free code for a quantized parameter vector.

    The vector has ``n = indices.size`` entries, each an index into a codebook of ``k`` levels. The
    message is, in order:

    1. a header of ``header_bits`` bits (default 64: ``n`` and ``k`` as 32-bit unsigned integers; set
       0 when ``n`` and ``k`` are fixed before seeing the data, i.e. part of the prior);
    2. the ``k`` codebook levels, ``level_bits`` bits each (default 32: float32 values, as produced by
       :func:`kmeans_codebook`);
    3. the indices, by ``scheme``:

       - ``"uniform"``: each index in :math:`\lceil\log_2 k\rceil` bits (0 bits when k = 1):

         .. math:: \mathrm{bits} = h + k\,b_\ell + n \lceil \log_2 k \rceil

       - ``"entropy"``: the ``k`` counts :math:`n_j` in :math:`\lceil\log_2(n+1)\rceil` bits each,
         then the index sequence in :math:`\lceil n H \rceil` bits, with
         :math:`H = -\sum_j (n_j/n)\log_2(n_j/n)` the empirical entropy (an arithmetic or enumerative
         code given the counts achieves this length; :math:`\lceil nH\rceil` is computed exactly with
         integers, :math:`2^{b}\prod_j n_j^{n_j} \ge n^n`, so no bit is ever dropped):

         .. math:: \mathrm{bits} = h + k\,b_\ell + k\lceil\log_2(n+1)\rceil + \lceil n H\rceil

       - ``"enumerative"``: as ``"entropy"`` but the sequence is sent as its rank among all
         sequences with the same counts, :math:`\lceil\log_2 \binom{n}{n_1,\dots,n_k}\rceil` bits
         (exact integer arithmetic, about 2 s for n = 500,000; never more than
         :math:`\lceil nH\rceil`).

    Every field has a length known to the decoder from what it has already read, so the code is
    prefix-free and :math:`\sum_h 2^{-\mathrm{bits}(h)} \le 1`: :math:`P(h) = 2^{-\mathrm{bits}(h)}`
    is a valid prior for :func:`occam_bound`.

    Parameters
    ----------
    indices : array_like of int
        Codebook indices in [0, k), any shape (flattened), at least one.
    k : int
        Codebook size, >= 1.
    scheme : {"entropy", "uniform", "enumerative"}
    level_bits : int
        Bits per codebook level, >= 0.
    header_bits : int
        Bits of the header, >= 0.

    Returns
    -------
    int
    """
    k = check_int(k, "k", minimum=1)
    if scheme not in _SCHEMES:
        raise ValueError(f"scheme: expected one of {_SCHEMES}, got {scheme!r}")
    level_bits = check_int(level_bits, "level_bits", minimum=0)
    header_bits = check_int(header_bits, "header_bits", minimum=0)
    idx = _check_indices(indices, k)
    n = idx.size
    fixed = header_bits + k * level_bits
    if scheme == "uniform":
        return fixed + n * (k - 1).bit_length()  # (k-1).bit_length() == ceil(log2 k) for k >= 1
    counts = np.bincount(idx, minlength=k)
    count_bits = k * n.bit_length()  # n.bit_length() == ceil(log2(n + 1))
    if scheme == "entropy":
        index_bits = _entropy_bits_ceil(counts)
    else:
        index_bits = _log2_multinomial_ceil(counts)
    return fixed + count_bits + index_bits


# ----------------------------------------------------------------------------------------------------
# Occam bound
# ----------------------------------------------------------------------------------------------------

def occam_bound(emp_error, bits, m, delta, form="kl"):
    r"""Occam's razor bound for a hypothesis described by a ``bits``-bit prefix-free code.

    With the prior :math:`P(h) = 2^{-\mathrm{bits}(h)}` of a prefix-free code fixed before seeing the
    data, a 0-1 loss and ``m`` i.i.d. examples: with probability at least :math:`1-\delta`, for every
    h simultaneously,

    - ``form="kl"`` (Chernoff / relative-entropy form):

      .. math::

          R(h) \le \mathrm{kl}^{-1}\Bigl(\hat R_S(h),\ \frac{\mathrm{bits}\,\ln 2 + \ln(1/\delta)}{m}\Bigr)

    - ``form="hoeffding"`` (looser, by Pinsker / Hoeffding):

      .. math::

          R(h) \le \hat R_S(h) + \sqrt{\frac{\mathrm{bits}\,\ln 2 + \ln(1/\delta)}{2m}}

    Parameters
    ----------
    emp_error : float
        Training 0-1 error of h, in [0, 1].
    bits : float
        Code length of h in bits, >= 0 (e.g. :func:`code_length_bits`).
    m : int
        Number of training examples, >= 1.
    delta : float
        Failure probability in (0, 1).
    form : {"kl", "hoeffding"}

    Returns
    -------
    float
        Unclipped for ``"hoeffding"``; in [emp_error, 1] for ``"kl"``.

    References
    ----------
    J. Langford, "Tutorial on practical prediction theory for classification", JMLR 6, 2005
    (Occam's razor bound, relaxed by the relative-entropy Chernoff bound); D. McAllester,
    "Some PAC-Bayesian theorems", COLT 1998 (the Hoeffding form).
    """
    emp_error = check_probability(emp_error, "emp_error", open_interval=False)
    bits = check_positive(bits, "bits", allow_zero=True)
    m = check_int(m, "m", minimum=1)
    delta = check_probability(delta, "delta")
    if form not in ("kl", "hoeffding"):
        raise ValueError(f"form: expected 'kl' or 'hoeffding', got {form!r}")
    c = (bits * math.log(2.0) + math.log(1.0 / delta)) / m
    if form == "kl":
        return kl_inverse(emp_error, c)
    return emp_error + math.sqrt(c / 2.0)


# ----------------------------------------------------------------------------------------------------
# quantization
# ----------------------------------------------------------------------------------------------------

class Quantized(NamedTuple):
    """Result of :func:`quantize`: quantized values (same shape as the input) and level indices."""

    quantized: np.ndarray
    indices: np.ndarray


class Codebook(NamedTuple):
    """Result of :func:`kmeans_codebook`: sorted levels and each value's level index."""

    levels: np.ndarray
    indices: np.ndarray


def _nearest(x, levels):
    """Index of the nearest level for each x; ties go to the smaller level (then the first index)."""
    order = np.argsort(levels, kind="stable")
    s = levels[order]
    pos = np.searchsorted(s, x, side="left")
    left = np.clip(pos - 1, 0, s.size - 1)
    right = np.clip(pos, 0, s.size - 1)
    take_left = np.abs(x - s[left]) <= np.abs(s[right] - x)
    j = np.where(take_left, left, right)
    # with duplicate levels, report the first occurrence in the caller's order
    first = np.searchsorted(s, s[j], side="left")
    return order[first]


def quantize(values, levels):
    """Round each value to its nearest codebook level.

    Parameters
    ----------
    values : array_like
        Finite real values, any shape.
    levels : array_like
        Finite codebook levels, 1-d, at least one; any order, duplicates allowed.

    Returns
    -------
    Quantized
        ``(quantized, indices)``: ``quantized = levels[indices]`` with the shape of ``values``;
        ``indices`` (int64) index ``levels`` as given. A value exactly halfway between two levels goes
        to the smaller level; among equal levels, the first one.
    """
    x = as_float_array(values, "values")
    lv = as_float_array(levels, "levels", ndim=1)
    if lv.size == 0:
        raise ValueError("levels: expected at least one level, got an empty array")
    idx = _nearest(x.ravel(), lv).astype(np.int64).reshape(x.shape)
    return Quantized(lv[idx], idx)


def _lloyd_1d(xs, levels, max_iter):
    """Lloyd iterations on sorted data ``xs`` from sorted initial ``levels`` (distinct data > k)."""
    n = xs.size
    csum = np.concatenate(([0.0], np.cumsum(xs)))
    prev = None
    for _ in range(max_iter):
        levels = np.sort(levels)
        bounds = 0.5 * (levels[:-1] + levels[1:])
        cut = np.searchsorted(xs, bounds, side="right")  # a value on a boundary goes to the lower level
        starts = np.concatenate(([0], cut))
        ends = np.concatenate((cut, [n]))
        counts = ends - starts
        new = levels.copy()
        full = counts > 0
        new[full] = (csum[ends[full]] - csum[starts[full]]) / counts[full]
        if not full.all():
            # move each empty level onto the value farthest from its current level (deterministic)
            for j in np.flatnonzero(~full):
                dist = np.abs(xs - new[_nearest(xs, new)])
                new[j] = xs[int(np.argmax(dist))]
        if prev is not None and np.array_equal(cut, prev) and full.all():
            return np.sort(new)
        prev = cut
        levels = new
    return np.sort(levels)


def kmeans_codebook(values, k, seed=None, *, init="quantile", max_iter=100):
    """Codebook of at most ``k`` levels by 1-d k-means (Lloyd's algorithm).

    Lloyd's iterations on the sorted values (assignment by midpoints, means by cumulative sums) until
    the assignment stops changing or ``max_iter`` iterations. Initialization:

    - ``"quantile"`` (default, deterministic): level i at the ``(i + 1/2)/k`` quantile of the values;
    - ``"random"``: ``k`` distinct values drawn with ``seed``.

    An empty cluster is moved onto the value farthest from its level. The final levels are rounded to
    float32 (so each is exactly described by the 32 bits that :func:`code_length_bits` charges) and
    the values are re-assigned to the nearest rounded level. If the values take at most ``k`` distinct
    values, those are the codebook (possibly fewer than ``k`` levels; exact when they are float32
    numbers).

    Parameters
    ----------
    values : array_like
        Finite real values, any shape, at least one.
    k : int
        Maximum number of levels, >= 1.
    seed : int, numpy.random.Generator or None
        Used by ``init="random"`` only (normalized by :func:`genbound._rng.as_generator`).
    init : {"quantile", "random"}
    max_iter : int
        Maximum number of Lloyd iterations, >= 1.

    Returns
    -------
    Codebook
        ``(levels, indices)``: sorted float32-representable levels (float64 array, length <= k) and
        int64 indices with the shape of ``values``.
    """
    x = as_float_array(values, "values")
    if x.size == 0:
        raise ValueError("values: expected at least one value, got an empty array")
    k = check_int(k, "k", minimum=1)
    max_iter = check_int(max_iter, "max_iter", minimum=1)
    if init not in ("quantile", "random"):
        raise ValueError(f"init: expected 'quantile' or 'random', got {init!r}")
    generator = as_generator(seed)
    xs = np.sort(x.ravel())
    distinct = np.unique(xs)
    if distinct.size <= k:
        levels = distinct
    else:
        if init == "quantile":
            start = np.quantile(xs, (np.arange(k) + 0.5) / k)
        else:
            start = generator.choice(distinct, size=k, replace=False)
        levels = _lloyd_1d(xs, np.asarray(start, dtype=np.float64), max_iter)
    levels = np.unique(levels.astype(np.float32).astype(np.float64))
    return Codebook(levels, quantize(x, levels).indices)
