"""How pixel values are scaled before training, and where the statistics of a scaling come from.

A scaling is part of the hypothesis a bound speaks about: a per-pixel standardization whose mean and standard
deviation are computed from the training set makes the classifier depend on those images. Three kinds:

``"fixed"``
    Divide by the format's largest pixel value (16 for scikit-learn's digits, 255 for MNIST): values in
    [0, 1], data-independent. The choice wherever a bound is computed on the same data.
``"standardize"``
    Per-pixel ``(x - mean) / std`` with statistics from training images only (all of them, or the subset
    ``fit``, e.g. the part a data-dependent prior is trained on); test images use the same statistics.
``"raw"``
    The stored values as they are.
"""
from __future__ import annotations

import dataclasses

import numpy as np

SCALINGS = ("fixed", "standardize", "raw")


def check_scaling(scaling, name="scaling"):
    """Return ``scaling`` if it is one of :data:`SCALINGS`, else raise a ValueError naming it."""
    if not isinstance(scaling, str) or scaling not in SCALINGS:
        raise ValueError(f"{name}: expected one of {SCALINGS}, got {scaling!r}")
    return scaling


def standardize_per_pixel(x_train, x_test, fit=None):
    """Standardize each pixel with the mean and standard deviation of (some of) the training images only.

    .. math:: x' = (x - \\mu) / s, \\qquad \\mu = \\mathrm{mean}_{i \\in F} x_i,\\quad
              s = \\mathrm{std}_{i \\in F} x_i \\ (1 \\text{ where it is } 0)

    Pixels whose standard deviation over the fitting images is zero are only centered (divided by 1).

    Parameters
    ----------
    x_train : numpy.ndarray, shape (m, ...)
    x_test : numpy.ndarray, shape (n, ...)
    fit : array_like of int, optional
        Indices of the training images the statistics come from, ``F`` above (default: all of them).

    Returns
    -------
    x_train, x_test : numpy.ndarray
        The standardized arrays (new arrays, float64).
    mean, scale : numpy.ndarray, shape x_train.shape[1:]
        The statistics used.
    """
    x_train = np.asarray(x_train, dtype=np.float64)
    x_test = np.asarray(x_test, dtype=np.float64)
    ref = x_train if fit is None else x_train[np.asarray(fit)]
    if ref.shape[0] == 0:
        raise ValueError("fit: expected at least one training image to take statistics from, got none")
    mean = ref.mean(axis=0)
    std = ref.std(axis=0)
    scale = np.where(std > 0, std, 1.0)
    return (x_train - mean) / scale, (x_test - mean) / scale, mean, scale


def standardize(data, fit=None):
    """A copy of ``data`` standardized per pixel with statistics from the training images ``fit`` only.

    Use it after a raw or fixed-scaled load to take the statistics from the part of the training set a
    prior is trained on (never from the images a bound is evaluated on). ``info["scaling"]`` records
    ``"standardize"``, ``info["scaling_fit"]`` the indices (None: all training images), and ``info["mean"]``,
    ``info["scale"]`` the statistics.

    Parameters
    ----------
    data : Dataset
    fit : array_like of int, optional
        Training indices the statistics come from (default: all training images).

    Returns
    -------
    Dataset
    """
    from genbound._checks import check_dataset

    check_dataset(data)
    if fit is not None:
        from genbound._checks import as_array

        fit = as_array(fit, "fit")
        if fit.size == 0:
            raise ValueError("fit: expected at least one training index to take statistics from, got none")
        if fit.dtype.kind not in "iu" or fit.ndim != 1:
            raise TypeError(f"fit: expected a 1-d array of training indices, got dtype {fit.dtype}, "
                            f"shape {fit.shape}")
        if fit.size and (fit.min() < 0 or fit.max() >= data.m):
            raise ValueError(f"fit: expected indices in [0, {data.m}), got values in [{fit.min()}, {fit.max()}]")
        fit = np.unique(fit)
    x_train, x_test, mean, scale = standardize_per_pixel(data.x_train, data.x_test, fit)
    info = dict(data.info, scaling="standardize", scaling_fit=fit, mean=mean, scale=scale)
    return dataclasses.replace(data, x_train=x_train.astype(data.dtype, copy=False),
                               x_test=x_test.astype(data.dtype, copy=False), info=info)


def check_loader_arguments(seed, test_fraction, scaling, dtype):
    """Check a loader's arguments before anything is loaded (a bad one fails fast, naming itself)."""
    from genbound._checks import check_dtype, check_probability
    from genbound._rng import as_generator

    as_generator(seed)
    check_probability(test_fraction, "test_fraction")
    check_scaling(scaling)
    check_dtype(dtype)


def stratified_split(images, target, seed, test_fraction, scaling, max_value, source, dtype):
    """The loaders' common path: a seeded stratified train/test split, then the scaling, as a Dataset.

    ``max_value`` is the format's largest pixel value (the ``"fixed"`` divisor); ``info`` records the source,
    the row indices of each part, the scaling and its statistics.
    """
    from sklearn.model_selection import train_test_split

    from genbound._checks import check_dtype, check_probability
    from genbound._rng import as_generator
    from genbound.data.dataset import Dataset

    test_fraction = check_probability(test_fraction, "test_fraction")
    dt = check_dtype(dtype)
    scaling = check_scaling(scaling)
    gen = as_generator(seed)
    classes = int(target.max()) + 1
    index = np.arange(target.shape[0])
    random_state = np.random.RandomState(int(gen.integers(2**31 - 1)))
    try:
        train_index, test_index = train_test_split(index, test_size=test_fraction, stratify=target,
                                                   random_state=random_state)
    except ValueError as exc:  # a test part too small (or too large) to hold every class
        raise ValueError(f"test_fraction: {test_fraction} cannot give a stratified split of "
                         f"{target.shape[0]} images into {classes} classes ({exc})") from exc
    train_index, test_index = np.sort(train_index), np.sort(test_index)
    x_train, x_test = images[train_index], images[test_index]
    mean = scale = None
    if scaling == "standardize":
        x_train, x_test, mean, scale = standardize_per_pixel(x_train, x_test)
    elif scaling == "fixed":
        x_train, x_test = x_train / max_value, x_test / max_value
    info = {"source": source, "train_index": train_index, "test_index": test_index,
            "scaling": scaling, "mean": mean, "scale": scale}
    return Dataset(x_train.astype(dt, copy=False), target[train_index], x_test.astype(dt, copy=False),
                   target[test_index], classes=classes, info=info)
