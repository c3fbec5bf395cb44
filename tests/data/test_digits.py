"""load_digits: shapes, stratified split, standardization with training statistics only."""
import numpy as np
import pytest
import sklearn.datasets

from genbound.data import load_digits


@pytest.fixture(scope="module")
def digits():
    return load_digits(seed=0)


@pytest.fixture(scope="module")
def raw():
    bunch = sklearn.datasets.load_digits()
    return bunch.images.astype(np.float64), bunch.target


def test_shapes_and_dtypes(digits):
    assert digits.m == 1437 and digits.n_test == 360
    assert digits.x_train.shape == (1437, 1, 8, 8) and digits.x_test.shape == (360, 1, 8, 8)
    assert digits.x_train.dtype == np.float64 and digits.x_test.dtype == np.float64
    assert digits.y_train.dtype == np.int64 and digits.y_test.dtype == np.int64
    assert digits.classes == 10 and digits.input_shape == (1, 8, 8)


def test_stratified(digits, raw):
    _, target = raw
    total = np.bincount(target, minlength=10)
    test_counts = digits.class_counts("test")
    train_counts = digits.class_counts("train")
    np.testing.assert_array_equal(train_counts + test_counts, total)
    assert np.all(np.abs(test_counts - total * 360 / 1797) <= 1)
    assert np.all(np.abs(train_counts - total * 1437 / 1797) <= 1)


def test_split_is_a_partition_of_the_real_data(digits, raw):
    _, target = raw
    tr, te = digits.info["train_index"], digits.info["test_index"]
    np.testing.assert_array_equal(np.sort(np.concatenate([tr, te])), np.arange(1797))
    np.testing.assert_array_equal(digits.y_train, target[tr])
    np.testing.assert_array_equal(digits.y_test, target[te])


def test_standardized_with_training_statistics_only(digits, raw):
    images, _ = raw
    tr, te = digits.info["train_index"], digits.info["test_index"]
    # independent computation from scikit-learn's raw pixels
    raw_train, raw_test = images[tr].reshape(-1, 64), images[te].reshape(-1, 64)
    mean, std = raw_train.mean(axis=0), raw_train.std(axis=0)
    constant = std == 0
    assert constant.any()  # digits has pixels that are 0 in every training image
    scale = np.where(constant, 1.0, std)
    np.testing.assert_allclose(digits.x_train.reshape(-1, 64), (raw_train - mean) / scale, rtol=0, atol=1e-12)
    np.testing.assert_allclose(digits.x_test.reshape(-1, 64), (raw_test - mean) / scale, rtol=0, atol=1e-12)

    xt = digits.x_train.reshape(-1, 64)
    np.testing.assert_allclose(xt.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(xt.std(axis=0)[~constant], 1, rtol=1e-12)
    assert np.all(xt[:, constant] == 0)
    assert np.all(np.isfinite(digits.x_test))
    # the test part is not re-standardized with its own statistics
    assert np.abs(digits.x_test.reshape(-1, 64).mean(axis=0)).max() > 1e-3


def test_same_seed_same_split_different_seed_different_split(digits):
    again = load_digits(seed=0)
    np.testing.assert_array_equal(again.x_train, digits.x_train)
    np.testing.assert_array_equal(again.y_test, digits.y_test)
    other = load_digits(seed=1)
    assert not np.array_equal(other.info["test_index"], digits.info["test_index"])
    assert other.m == 1437
    from_rng = load_digits(seed=np.random.default_rng(0))
    np.testing.assert_array_equal(from_rng.info["test_index"], digits.info["test_index"])


def test_options():
    d = load_digits(seed=3, test_fraction=0.5, scaling="raw", dtype=np.float32)
    assert d.m + d.n_test == 1797 and abs(d.n_test - 898.5) <= 0.5
    assert d.dtype == np.float32
    assert d.x_train.min() == 0 and d.x_train.max() == 16
    assert d.info["mean"] is None


@pytest.mark.parametrize("bad", [0, 1, -0.2, 1.5, float("nan")])
def test_test_fraction_validated(bad):
    with pytest.raises(ValueError, match=r"test_fraction: expected a number in \(0, 1\)"):
        load_digits(test_fraction=bad)


def test_test_fraction_type_and_too_small():
    with pytest.raises(TypeError, match="test_fraction"):
        load_digits(test_fraction="0.2")
    with pytest.raises(ValueError, match="test_fraction"):
        load_digits(test_fraction=0.001)  # 2 test images cannot hold 10 classes
