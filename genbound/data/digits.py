"""scikit-learn's bundled handwritten digits (8x8), split and standardized without leaking test statistics."""
from __future__ import annotations

import numpy as np

from genbound._checks import check_dtype, check_probability
from genbound._rng import as_generator
from genbound.data.dataset import Dataset


def standardize_per_pixel(x_train, x_test):
    """Standardize each pixel with the mean and standard deviation of the training images only.

    Pixels whose training standard deviation is zero are only centered (divided by 1, never by 0).

    Parameters
    ----------
    x_train : numpy.ndarray, shape (m, ...)
    x_test : numpy.ndarray, shape (n, ...)

    Returns
    -------
    x_train, x_test : numpy.ndarray
        The standardized arrays (new arrays, float64).
    mean, scale : numpy.ndarray, shape x_train.shape[1:]
        The statistics used: ``x' = (x - mean) / scale`` with ``scale`` the training std, or 1 where it is 0.
    """
    x_train = np.asarray(x_train, dtype=np.float64)
    x_test = np.asarray(x_test, dtype=np.float64)
    mean = x_train.mean(axis=0)
    std = x_train.std(axis=0)
    scale = np.where(std > 0, std, 1.0)
    return (x_train - mean) / scale, (x_test - mean) / scale, mean, scale


def load_digits(seed=0, test_fraction=0.2, *, rng=None, standardize=True, dtype=np.float64):
    """Load scikit-learn's handwritten digits as a stratified, standardized train/test :class:`Dataset`.

    The 1,797 real 8x8 grey-level images (values 0-16, ten classes, bundled with scikit-learn; no
    download) are split into train and test parts with the same class proportions (stratified split), then
    standardized per pixel with the mean and standard deviation of the *training* part only; the test part
    is transformed with those same statistics, never re-standardized. Pixels that are constant on the
    training part are only centered.

    Parameters
    ----------
    seed : int or numpy.random.Generator
        Seed of the split: the same seed gives the same split. Default 0.
    test_fraction : float in (0, 1)
        Fraction of the images in the test part (the count is rounded up, as scikit-learn does): 0.2 gives
        1,437 training and 360 test images.
    rng : numpy.random.Generator, optional
        Explicit Generator; takes precedence over ``seed``.
    standardize : bool
        Standardize as described (default). If False, the raw pixel values 0-16 are kept.
    dtype : {numpy.float64, numpy.float32}
        Dtype of the images.

    Returns
    -------
    Dataset
        ``x_train`` (m, 1, 8, 8), ``x_test`` (n, 1, 8, 8), int64 labels, ``classes=10``. ``info`` holds
        ``"source"``, the row indices ``"train_index"`` and ``"test_index"`` into
        ``sklearn.datasets.load_digits()``, and the statistics ``"mean"`` and ``"scale"`` (shape (1, 8, 8);
        ``None`` without standardization).

    References
    ----------
    Alpaydin & Kaynak (1998), Optical Recognition of Handwritten Digits, UCI Machine Learning Repository;
    scikit-learn ``sklearn.datasets.load_digits``.
    """
    test_fraction = check_probability(test_fraction, "test_fraction")
    dt = check_dtype(dtype)
    gen = as_generator(seed, rng, name="seed")
    from sklearn.datasets import load_digits as _sk_load_digits
    from sklearn.model_selection import train_test_split

    bunch = _sk_load_digits()
    images = np.asarray(bunch.images, dtype=np.float64)[:, None, :, :]
    target = np.asarray(bunch.target, dtype=np.int64)
    index = np.arange(target.shape[0])
    random_state = np.random.RandomState(int(gen.integers(2**31 - 1)))
    try:
        train_index, test_index = train_test_split(index, test_size=test_fraction, stratify=target,
                                                   random_state=random_state)
    except ValueError as exc:  # a test part too small (or too large) to hold every class
        raise ValueError(f"test_fraction: {test_fraction} cannot give a stratified split of "
                         f"{target.shape[0]} images into 10 classes ({exc})") from exc
    train_index, test_index = np.sort(train_index), np.sort(test_index)
    x_train, x_test = images[train_index], images[test_index]
    mean = scale = None
    if standardize:
        x_train, x_test, mean, scale = standardize_per_pixel(x_train, x_test)
    info = {"source": "sklearn.datasets.load_digits", "train_index": train_index, "test_index": test_index,
            "mean": mean, "scale": scale}
    return Dataset(x_train.astype(dt, copy=False), target[train_index], x_test.astype(dt, copy=False),
                   target[test_index], classes=10, info=info)
