"""The :class:`Dataset` container: a train/test split of images in NCHW layout with integer labels."""
from __future__ import annotations

import dataclasses
import types
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from genbound._checks import as_array, as_float_array, check_dtype, check_int, check_probability
from genbound._rng import as_generator, permutation_batches


def _as_labels(y, name):
    """Return ``y`` as a 1-d int64 array of non-negative labels, refusing anything but integer dtypes."""
    arr = as_array(y, name)
    if arr.size == 0 and arr.dtype.kind in "fb":  # an empty list: no labels (e.g. zero test images)
        arr = arr.astype(np.int64)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name}: expected integer class labels, got dtype {arr.dtype}")
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-d array of labels, got shape {arr.shape}")
    if arr.size and arr.min() < 0:
        raise ValueError(f"{name}: expected non-negative labels, got minimum {arr.min()}")
    return np.ascontiguousarray(arr, dtype=np.int64)


def _as_images(x, name, dtype):
    arr = as_float_array(x, name, dtype=dtype)
    if arr.ndim != 4:
        raise ValueError(f"{name}: expected a 4-d array (n, C, H, W), got shape {arr.shape}")
    return arr


def _as_index(idx, n, name):
    """Return ``idx`` as an int64 index array into ``range(n)`` (a boolean mask of length n is accepted)."""
    arr = as_array(idx, name)
    if arr.dtype.kind == "b":
        if arr.shape != (n,):
            raise ValueError(f"{name}: expected a boolean mask of shape ({n},), got shape {arr.shape}")
        return np.flatnonzero(arr)
    if arr.size == 0:
        arr = arr.astype(np.int64)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name}: expected integer indices or a boolean mask, got dtype {arr.dtype}")
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-d array of indices, got shape {arr.shape}")
    if arr.size and (arr.min() < -n or arr.max() >= n):
        raise ValueError(f"{name}: expected indices in [-{n}, {n}), got values in [{arr.min()}, {arr.max()}]")
    return arr.astype(np.int64)


@dataclass(frozen=True, eq=False, repr=False)
class Dataset:
    """A train/test split of images with integer class labels.

    Images are float arrays in NCHW layout (float64 by default, float32 when both parts are float32);
    labels are int64. The arrays are validated and converted on construction but not copied when they
    already have the right dtype and layout: treat them as read-only, and build a new Dataset (e.g. with
    :func:`dataclasses.replace`, :meth:`subset` or :func:`genbound.data.randomize`) instead of writing
    into them.

    Parameters
    ----------
    x_train : array_like, shape (m, C, H, W)
        Training images, finite.
    y_train : array_like of int, shape (m,)
        Training labels in ``[0, classes)``.
    x_test : array_like, shape (n_test, C, H, W)
        Test images with the same (C, H, W) as the training images; ``n_test`` may be 0.
    y_test : array_like of int, shape (n_test,)
        Test labels in ``[0, classes)``.
    classes : int, optional
        Number of classes. Default: the largest label over train and test, plus one. Give it explicitly
        when a class may be missing from the data (e.g. 10 for digits).
    info : mapping, optional
        Free-form provenance (source, split indices, scaling and its statistics, randomization). Not
        validated; stored as a read-only mapping.

    Raises
    ------
    TypeError
        Non-numeric or complex images, non-integer labels, non-int ``classes``.
    ValueError
        Wrong number of dimensions, mismatched lengths or image shapes, non-finite images, negative
        labels, labels ``>= classes``, an empty training set.

    A dataset without test images (``n_test = 0``, e.g. ``x_test=np.zeros((0, C, H, W))``, ``y_test=[]``) is
    allowed: everything that measures the training set works on it, and test measurements are NaN.

    Examples
    --------
    >>> import numpy as np
    >>> d = Dataset(np.zeros((4, 1, 2, 2)), [0, 1, 0, 1], np.zeros((2, 1, 2, 2)), [1, 0])
    >>> d.m, d.classes, d.input_shape
    (4, 2, (1, 2, 2))
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: int | None = None
    info: Mapping = field(default_factory=dict)

    def __post_init__(self):
        both32 = all(as_array(a, name).dtype == np.float32 for a, name in ((self.x_train, "x_train"),
                                                                            (self.x_test, "x_test")))
        dtype = np.float32 if both32 else np.float64
        x_train = _as_images(self.x_train, "x_train", dtype)
        x_test = _as_images(self.x_test, "x_test", dtype)
        y_train = _as_labels(self.y_train, "y_train")
        y_test = _as_labels(self.y_test, "y_test")
        if x_train.shape[0] == 0:
            raise ValueError("x_train: expected at least one training image, got shape "
                             f"{x_train.shape}")
        if y_train.shape[0] != x_train.shape[0]:
            raise ValueError(f"y_train: expected {x_train.shape[0]} labels to match x_train, "
                             f"got {y_train.shape[0]}")
        if y_test.shape[0] != x_test.shape[0]:
            raise ValueError(f"y_test: expected {x_test.shape[0]} labels to match x_test, "
                             f"got {y_test.shape[0]}")
        if x_test.shape[1:] != x_train.shape[1:]:
            raise ValueError(f"x_test: expected images of shape {x_train.shape[1:]} (C, H, W) as in "
                             f"x_train, got {x_test.shape[1:]}")
        top = max(int(y_train.max()), int(y_test.max()) if y_test.size else 0)
        if self.classes is None:
            classes = top + 1
        else:
            classes = check_int(self.classes, "classes", minimum=1)
            for name, y in (("y_train", y_train), ("y_test", y_test)):
                if y.size and y.max() >= classes:
                    raise ValueError(f"{name}: expected labels in [0, {classes}) (classes={classes}), "
                                     f"got a label {int(y.max())}")
        if not isinstance(self.info, Mapping):
            raise TypeError(f"info: expected a mapping, got {type(self.info).__name__}")
        set_ = object.__setattr__
        set_(self, "x_train", x_train)
        set_(self, "y_train", y_train)
        set_(self, "x_test", x_test)
        set_(self, "y_test", y_test)
        set_(self, "classes", classes)
        set_(self, "info", types.MappingProxyType(dict(self.info)))

    def __reduce__(self):
        # the read-only ``info`` view cannot be pickled: rebuild from a plain dict (e.g. for worker pools)
        return (Dataset, (self.x_train, self.y_train, self.x_test, self.y_test, self.classes, dict(self.info)))

    # ------------------------------------------------------------------ sizes and shapes
    @property
    def m(self) -> int:
        """Number of training examples."""
        return int(self.x_train.shape[0])

    @property
    def n_test(self) -> int:
        """Number of test examples."""
        return int(self.x_test.shape[0])

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """Shape (C, H, W) of one image."""
        return tuple(int(s) for s in self.x_train.shape[1:])

    @property
    def dtype(self) -> np.dtype:
        """Float dtype of the images (float64 or float32)."""
        return self.x_train.dtype

    @property
    def train(self) -> tuple[np.ndarray, np.ndarray]:
        """The pair ``(x_train, y_train)``."""
        return self.x_train, self.y_train

    @property
    def test(self) -> tuple[np.ndarray, np.ndarray]:
        """The pair ``(x_test, y_test)``."""
        return self.x_test, self.y_test

    def __repr__(self):
        return (f"Dataset(m={self.m}, n_test={self.n_test}, input_shape={self.input_shape}, "
                f"classes={self.classes}, dtype={self.dtype})")

    # ------------------------------------------------------------------ mini-batches
    def batch_indices(self, batch_size, seed=None, drop_last=False) -> list[np.ndarray]:
        """Index arrays of the mini-batches of one epoch over the training set.

        The training indices ``0 .. m-1`` are shuffled by one random permutation and cut into consecutive
        chunks of ``batch_size`` (:func:`genbound.train` draws its epochs the same way). Without
        ``drop_last``, every index appears in exactly one batch and the last batch may be smaller.

        Parameters
        ----------
        batch_size : int
            Batch size, ``>= 1``; larger than ``m`` gives a single batch.
        seed : int or numpy.random.Generator, optional
            Seed of the shuffle: the same int seed gives the same batches. A Generator is advanced, so
            passing the same Generator epoch after epoch gives a fresh order each epoch. Default 0.
        drop_last : bool
            Drop the last batch when it is smaller than ``batch_size``.

        Returns
        -------
        list of numpy.ndarray of int64
        """
        batch_size = check_int(batch_size, "batch_size", minimum=1)
        return permutation_batches(self.m, batch_size, seed, drop_last=drop_last)

    # ------------------------------------------------------------------ derived datasets
    def astype(self, dtype) -> "Dataset":
        """Return the dataset with images converted to ``dtype`` (float32 or float64); labels unchanged."""
        dt = check_dtype(dtype)
        if dt == self.dtype:
            return self
        return dataclasses.replace(self, x_train=self.x_train.astype(dt), x_test=self.x_test.astype(dt))

    def subset(self, train_idx, test_idx=None) -> "Dataset":
        """Return a dataset restricted to some training (and optionally test) examples.

        Parameters
        ----------
        train_idx : array_like of int or bool
            Indices into the training set, or a boolean mask of length ``m``; at least one example.
        test_idx : array_like of int or bool, optional
            Indices into the test set (or a mask of length ``n_test``); default keeps the whole test set.

        Returns
        -------
        Dataset
            Same ``classes``; ``info`` gains ``"train_subset"`` (and ``"test_subset"``) with the indices.
        """
        tr = _as_index(train_idx, self.m, "train_idx")
        info = dict(self.info, train_subset=tr)
        x_test, y_test = self.x_test, self.y_test
        if test_idx is not None:
            te = _as_index(test_idx, self.n_test, "test_idx")
            x_test, y_test = x_test[te], y_test[te]
            info["test_subset"] = te
        return Dataset(self.x_train[tr], self.y_train[tr], x_test, y_test, classes=self.classes, info=info)

    def split_train(self, fraction, seed=None) -> tuple["Dataset", "Dataset"]:
        """Split the training set at random into two datasets sharing the same test set.

        Useful for data-dependent priors (fit a prior on one part, evaluate a bound on the other).

        Parameters
        ----------
        fraction : float in (0, 1)
            Fraction of the training examples in the first part (rounded to an int, each part non-empty).
        seed : int or numpy.random.Generator, optional
            Seed of the split (see :meth:`batch_indices`).

        Returns
        -------
        (Dataset, Dataset)
        """
        fraction = check_probability(fraction, "fraction")
        if self.m < 2:
            raise ValueError(f"split_train: expected at least 2 training examples, got m={self.m}")
        k = min(max(int(round(fraction * self.m)), 1), self.m - 1)
        order = as_generator(seed).permutation(self.m)
        return self.subset(np.sort(order[:k])), self.subset(np.sort(order[k:]))

    def class_counts(self, part="train") -> np.ndarray:
        """Number of examples of each class in ``part`` ("train" or "test"), shape (classes,)."""
        if part not in ("train", "test"):
            raise ValueError(f"part: expected 'train' or 'test', got {part!r}")
        y = self.y_train if part == "train" else self.y_test
        return np.bincount(y, minlength=self.classes)
