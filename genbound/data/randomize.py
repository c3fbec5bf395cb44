"""Randomization tests of Zhang et al. (2017): corrupt the labels or the inputs of a :class:`Dataset`."""
from __future__ import annotations

import dataclasses

import numpy as np

from genbound._checks import check_probability
from genbound._rng import as_generator
from genbound.data.dataset import Dataset

#: The kinds accepted by :func:`randomize`.
RANDOMIZATIONS = ("partial_labels", "random_labels", "shuffled_pixels", "random_pixels", "gaussian")


def _relabel(y, classes, fraction, gen):
    """Replace each label, with probability ``fraction``, by a uniform draw from ``range(classes)``."""
    n = y.shape[0]
    replace = gen.random(n) < fraction
    drawn = gen.integers(0, classes, size=n, dtype=np.int64)
    return np.where(replace, drawn, y)


def _flat(x):
    return x.reshape(x.shape[0], int(np.prod(x.shape[1:])))


def randomize(data, kind, fraction=1.0, seed=0, corrupt_test=False) -> Dataset:
    """Return a copy of ``data`` with labels or inputs randomized, as in the tests of Zhang et al. (2017).

    The input dataset is never modified. Unless said otherwise below, only the training part is
    corrupted and the test part is returned clean (the same arrays), so that test error still measures
    the clean task; ``corrupt_test=True`` applies the same corruption to the test part, with its own
    random draws. The kinds:

    ``"partial_labels"``
        Each training label is, independently with probability ``fraction``, replaced by a class drawn
        uniformly from all ``data.classes`` classes. The drawn class may coincide with the true one, so
        the expected fraction of labels that actually change is ``fraction * (1 - 1/classes)``.
    ``"random_labels"``
        Every training label replaced by a uniform random class: ``"partial_labels"`` with
        ``fraction=1``. ``fraction`` must be 1 (the default); use ``"partial_labels"`` for less.
    ``"shuffled_pixels"``
        One random permutation of the C*H*W pixel positions, drawn once and applied to every image. It is
        applied to the test images too, always (``corrupt_test`` makes no difference): a fixed permutation
        is a change of representation of the inputs, not a corruption, and a model trained on shuffled
        images can only be evaluated on images shuffled the same way.
    ``"random_pixels"``
        Each image gets its own random permutation of its C*H*W pixel values (its multiset of values is
        kept, any spatial structure is lost).
    ``"gaussian"``
        Each image replaced by an independent draw from a Gaussian whose mean and standard deviation are,
        pixel by pixel, those of the clean training images (independent pixels). Test images, when
        corrupted, are drawn from the same (training) Gaussian.

    Parameters
    ----------
    data : Dataset
        The clean dataset.
    kind : {"partial_labels", "random_labels", "shuffled_pixels", "random_pixels", "gaussian"}
        Which randomization (see :data:`RANDOMIZATIONS`).
    fraction : float in [0, 1]
        Probability with which each label is replaced (``"partial_labels"``); must be 1 for every other
        kind.
    seed : int or numpy.random.Generator
        Seed: the same seed gives the same result. Default 0.
    corrupt_test : bool
        Also corrupt the test part (default False; see ``"shuffled_pixels"`` for its exception).

    Returns
    -------
    Dataset
        Same ``classes``, shapes and dtype; ``info`` gains ``"randomization"`` (kind, fraction,
        corrupt_test) and, for ``"shuffled_pixels"``, ``"pixel_permutation"``: the permutation ``perm``
        with ``new.reshape(n, -1) == old.reshape(n, -1)[:, perm]``.

    Raises
    ------
    TypeError
        ``data`` not a Dataset.
    ValueError
        Unknown ``kind`` (the allowed kinds are listed), ``fraction`` outside [0, 1], or ``fraction != 1``
        for a kind other than ``"partial_labels"``.

    References
    ----------
    Zhang, Bengio, Hardt, Recht & Vinyals (2017), Understanding deep learning requires rethinking
    generalization, ICLR.
    """
    if not isinstance(data, Dataset):
        raise TypeError(f"data: expected a genbound.data.Dataset, got {type(data).__name__}")
    if kind not in RANDOMIZATIONS:
        raise ValueError(f"kind: expected one of {', '.join(map(repr, RANDOMIZATIONS))}, got {kind!r}")
    fraction = check_probability(fraction, "fraction", open_interval=False)
    if kind != "partial_labels" and fraction != 1.0:
        raise ValueError(f"fraction: only kind='partial_labels' takes a fraction below 1; kind={kind!r} "
                         f"corrupts every training example, got fraction={fraction}")
    corrupt_test = bool(corrupt_test)
    gen = as_generator(seed)
    x_train, y_train, x_test, y_test = data.x_train, data.y_train, data.x_test, data.y_test
    info = dict(data.info, randomization={"kind": kind, "fraction": fraction, "corrupt_test": corrupt_test})

    if kind in ("partial_labels", "random_labels"):
        y_train = _relabel(y_train, data.classes, fraction, gen)
        if corrupt_test:
            y_test = _relabel(y_test, data.classes, fraction, gen)
    elif kind == "shuffled_pixels":
        perm = gen.permutation(int(np.prod(data.input_shape)))
        x_train = _flat(x_train)[:, perm].reshape(x_train.shape)
        x_test = _flat(x_test)[:, perm].reshape(x_test.shape)
        info["pixel_permutation"] = perm
    elif kind == "random_pixels":
        x_train = gen.permuted(_flat(x_train), axis=1).reshape(x_train.shape)
        if corrupt_test:
            x_test = gen.permuted(_flat(x_test), axis=1).reshape(x_test.shape)
    else:  # gaussian
        clean = x_train.astype(np.float64, copy=False)
        mean, std = clean.mean(axis=0), clean.std(axis=0)
        x_train = (mean + std * gen.standard_normal(x_train.shape)).astype(data.dtype, copy=False)
        if corrupt_test:
            x_test = (mean + std * gen.standard_normal(x_test.shape)).astype(data.dtype, copy=False)
    return dataclasses.replace(data, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
                               info=info)
