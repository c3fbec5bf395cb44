"""Data for the experiments: real images, IDX files, and the randomization tests of Zhang et al. (2017).

- :class:`Dataset`: a train/test split of NCHW float images with int64 labels, with seeded mini-batches.
- :func:`load_digits`: scikit-learn's bundled 8x8 handwritten digits, stratified split, standardized with
  training statistics only.
- :func:`read_idx`, :func:`write_idx`, :func:`load_mnist_idx`: the MNIST IDX format, raw or gzip.
- :func:`randomize` and :data:`RANDOMIZATIONS`: partially or fully random labels, shuffled or random
  pixels, Gaussian inputs.
"""
from __future__ import annotations

from genbound.data.dataset import Dataset
from genbound.data.digits import load_digits
from genbound.data.idx import load_mnist_idx, read_idx, write_idx
from genbound.data.randomize import RANDOMIZATIONS, randomize

__all__ = ["Dataset", "load_digits", "read_idx", "write_idx", "load_mnist_idx", "randomize", "RANDOMIZATIONS"]
