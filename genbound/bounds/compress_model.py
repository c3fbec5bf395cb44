"""Model-level compression bound: quantize a trained network, count its bits, measure it, bound it.

Each parameter tensor of the network (CP factors p, q, t, full filters, biases, dense weights) gets its own
codebook of at most ``k`` levels (1-d k-means, :func:`genbound.bounds.kmeans_codebook`); every value is
replaced by its nearest level. The quantized network is a new model whose training and test errors are
*measured* (the quantized weights are set into a copy of the model and evaluated), and whose description
length gives an Occam bound (:func:`genbound.bounds.occam_bound`) on its own error.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from genbound._checks import check_int, check_model, check_probability
from genbound.bounds._data import test_pair, training_pair
from genbound.bounds.compression import code_length_bits, kmeans_codebook, occam_bound

__all__ = ["QuantizedModel", "CompressionResult", "quantize_model", "compression_bound"]

_SCHEMES = ("entropy", "uniform", "enumerative")


@dataclass
class QuantizedModel:
    """Result of :func:`quantize_model`.

    Attributes
    ----------
    model : genbound.nn.Sequential
        A copy of the network carrying the quantized weights (the input model is not changed).
    k : int
        Maximum number of levels per tensor.
    bits : int
        Total code length in bits (see :func:`quantize_model`).
    per_tensor : pandas.DataFrame
        ``tensor``, ``size``, ``levels`` (levels actually used), ``bits``, ``rms_change``.
    scheme : str
    """

    model: object
    k: int
    bits: int
    per_tensor: pd.DataFrame
    scheme: str

    @property
    def bits_per_param(self):
        """Total bits over the parameter count."""
        return self.bits / self.model.n_params


def quantize_model(model, k=4, *, scheme="entropy", level_bits=32):
    r"""Quantize every parameter tensor of a network to at most ``k`` levels and count the bits.

    Coding scheme (prefix-free given the architecture, which the decoder knows in advance: the tensor
    names, shapes and their order are part of the prior, so no header is sent). For each tensor in the
    order of ``model.params``:

    1. its number of levels :math:`k_t \le k` in :math:`\lceil\log_2 k\rceil` bits (k-means may return
       fewer levels when the tensor has fewer distinct values);
    2. the :math:`k_t` levels as float32 (``level_bits`` bits each) and the indices, by
       :func:`genbound.bounds.code_length_bits` with ``header_bits=0`` and ``scheme`` (default
       ``"entropy"``: :math:`k_t\lceil\log_2(n_t+1)\rceil` bits of counts, then :math:`\lceil n_t H_t\rceil`
       bits of indices).

    .. math::

        \mathrm{bits} = \sum_t \Bigl(\lceil\log_2 k\rceil + k_t\, b_\ell + k_t\lceil\log_2(n_t+1)\rceil
                        + \lceil n_t H_t\rceil\Bigr)

    Parameters
    ----------
    model : genbound.nn.Sequential
    k : int
        Maximum levels per tensor, >= 1.
    scheme : {"entropy", "uniform", "enumerative"}
        Index code, see :func:`genbound.bounds.code_length_bits`.
    level_bits : int
        Bits per level (32: float32 levels, as produced by :func:`genbound.bounds.kmeans_codebook`).

    Returns
    -------
    QuantizedModel
    """
    check_model(model)
    k = check_int(k, "k", minimum=1)
    if scheme not in _SCHEMES:
        raise ValueError(f"scheme: expected one of {_SCHEMES}, got {scheme!r}")
    level_bits = check_int(level_bits, "level_bits", minimum=0)
    k_bits = (k - 1).bit_length()  # ceil(log2 k)
    qmodel = model.copy()
    rows, total = [], 0
    for name, value in model.params.items():
        values = np.asarray(value, dtype=np.float64)
        book = kmeans_codebook(values, k)
        levels = book.levels
        bits = k_bits + code_length_bits(book.indices, levels.size, scheme=scheme, level_bits=level_bits,
                                         header_bits=0)
        quantized = levels[book.indices]
        qmodel.params[name][...] = quantized
        rms = float(np.sqrt(np.mean((quantized - values) ** 2)))
        rows.append(dict(tensor=name, size=values.size, levels=int(levels.size), bits=int(bits), rms_change=rms))
        total += bits
    per_tensor = pd.DataFrame(rows, columns=["tensor", "size", "levels", "bits", "rms_change"])
    return QuantizedModel(qmodel, k, int(total), per_tensor, scheme)


@dataclass
class CompressionResult:
    """Result of :func:`compression_bound`.

    Attributes
    ----------
    bound : float
        Occam bound on the 0-1 error of the quantized network (kl form), at the chosen k.
    k : int
        The chosen number of levels per tensor.
    bits : int
        Code length of the quantized network, including the ``choice_bits`` that name k.
    choice_bits : int
        :math:`\\lceil\\log_2 |K|\\rceil` bits naming k in the grid K (0 for a single k).
    train_error, test_error : float
        Measured 0-1 errors of the quantized network (a copy of the model with the quantized weights).
    m : int
    delta : float
    quantized : QuantizedModel
        The chosen quantized network.
    table : pandas.DataFrame
        One row per k of the grid: ``k``, ``bits``, ``bits_per_param``, ``train_error``, ``test_error``,
        ``bound``.
    """

    bound: float
    k: int
    bits: int
    choice_bits: int
    train_error: float
    test_error: float
    m: int
    delta: float
    quantized: QuantizedModel
    table: pd.DataFrame = field(repr=False, default=None)


def compression_bound(model, data, k=(2, 3, 4, 8, 16), *, scheme="entropy", delta=0.025, level_bits=32,
                      chunk_size=1024):
    r"""Occam bound on the error of the network quantized by :func:`quantize_model`.

    For each k in the grid K the network is quantized, its training and test errors are measured on
    ``data`` and its code length counted; the grid is named by a prefix of
    :math:`\lceil\log_2|K|\rceil` bits, so that the prior :math:`2^{-\mathrm{bits}}` is over the union
    of all quantized networks of all k in K, and the smallest bound is reported. With probability at least
    :math:`1-\delta` (Occam's razor bound in its kl form):

    .. math::

        R(h_q) \le \mathrm{kl}^{-1}\Bigl(\hat R_S(h_q),\ \frac{\mathrm{bits}(h_q)\ln 2 + \ln(1/\delta)}{m}\Bigr)

    where :math:`h_q` is the quantized network (not the original one) and :math:`\hat R_S(h_q)` its
    measured training error on the m examples of ``data``.

    Parameters
    ----------
    model : genbound.nn.Sequential
        Trained network (not changed).
    data : Dataset or (x, y)
        The m training examples of the bound's sample; a Dataset's test set is measured and reported only
        (``test_error`` is NaN for a pair or an empty test set).
    k : int or sequence of int
        Levels per tensor, or a grid of them (each >= 1).
    scheme : {"entropy", "uniform", "enumerative"}
    delta : float
        Failure probability in (0, 1).
    level_bits : int
    chunk_size : int
        Memory chunk of the error evaluations (not an SGD batch).

    Returns
    -------
    CompressionResult

    References
    ----------
    J. Langford, "Tutorial on practical prediction theory for classification", JMLR 6, 2005 (Occam bound);
    W. Zhou, V. Veitch, M. Austern, R. P. Adams, P. Orbanz, "Non-vacuous generalization bounds at the
    ImageNet scale: a PAC-Bayesian compression approach", ICLR 2019.
    """
    check_model(model)
    x, y = model.check_xy(*training_pair(data))
    test = test_pair(data)
    delta = check_probability(delta, "delta")
    grid = [k] if np.ndim(k) == 0 else list(k)
    if not grid:
        raise ValueError("k: expected at least one number of levels, got an empty grid")
    grid = [check_int(v, "k", minimum=1) for v in grid]
    choice_bits = (len(grid) - 1).bit_length()
    chunk_size = check_int(chunk_size, "chunk_size", minimum=1)
    m = x.shape[0]
    rows, best = [], None
    for kk in grid:
        q = quantize_model(model, kk, scheme=scheme, level_bits=level_bits)
        bits = q.bits + choice_bits
        train_error = q.model.evaluate(x, y, chunk_size)[1]
        test_error = math.nan if test is None else q.model.evaluate(*test, chunk_size)[1]
        bound = occam_bound(train_error, bits, m, delta)
        rows.append(dict(k=kk, bits=bits, bits_per_param=bits / model.n_params, train_error=train_error,
                         test_error=test_error, bound=bound))
        if best is None or bound < best[0]:
            best = (bound, kk, bits, train_error, test_error, q)
    table = pd.DataFrame(rows, columns=["k", "bits", "bits_per_param", "train_error", "test_error", "bound"])
    bound, kk, bits, train_error, test_error, q = best
    return CompressionResult(bound, kk, bits, choice_bits, train_error, test_error, m, delta, q, table)
