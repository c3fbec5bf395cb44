"""scikit-learn's bundled handwritten digits (8x8), split and scaled without leaking test statistics."""
from __future__ import annotations

import numpy as np

from genbound.data.scaling import check_loader_arguments, stratified_split


def load_digits(seed=0, test_fraction=0.2, *, scaling="standardize", dtype=np.float64):
    """Load scikit-learn's handwritten digits as a stratified, scaled train/test :class:`Dataset`.

    The 1,797 real 8x8 grey-level images (values 0-16, ten classes, bundled with scikit-learn; no
    download) are split into train and test parts with the same class proportions (stratified split), then
    scaled (see :mod:`genbound.data.scaling`). With the default ``"standardize"`` each pixel is standardized
    with the mean and standard deviation of the *training* part only; the test part is transformed with
    those same statistics, never re-standardized; pixels constant on the training part are only centered.
    A bound evaluated on this training set must not use those statistics: load with ``scaling="fixed"``
    (pixels / 16, data-independent) or standardize from a held-out part (:func:`genbound.data.standardize`).

    Parameters
    ----------
    seed : int or numpy.random.Generator
        Seed of the split: the same seed gives the same split. Default 0.
    test_fraction : float in (0, 1)
        Fraction of the images in the test part (the count is rounded up, as scikit-learn does): 0.2 gives
        1,437 training and 360 test images.
    scaling : {"standardize", "fixed", "raw"}
        ``"standardize"`` (default, statistics of the training part), ``"fixed"`` (pixels / 16, in [0, 1]) or
        ``"raw"`` (values 0-16).
    dtype : {numpy.float64, numpy.float32}
        Dtype of the images.

    Returns
    -------
    Dataset
        ``x_train`` (m, 1, 8, 8), ``x_test`` (n, 1, 8, 8), int64 labels, ``classes=10``. ``info`` holds
        ``"source"``, the row indices ``"train_index"`` and ``"test_index"`` into
        ``sklearn.datasets.load_digits()``, ``"scaling"``, and the statistics ``"mean"`` and ``"scale"``
        (shape (1, 8, 8); ``None`` without standardization).

    References
    ----------
    Alpaydin & Kaynak (1998), Optical Recognition of Handwritten Digits, UCI Machine Learning Repository;
    scikit-learn ``sklearn.datasets.load_digits``.
    """
    check_loader_arguments(seed, test_fraction, scaling, dtype)
    from sklearn.datasets import load_digits as _sk_load_digits

    bunch = _sk_load_digits()
    images = np.asarray(bunch.images, dtype=np.float64)[:, None, :, :]
    target = np.asarray(bunch.target, dtype=np.int64)
    return stratified_split(images, target, seed, test_fraction, scaling, 16.0, "sklearn.datasets.load_digits",
                            dtype)
