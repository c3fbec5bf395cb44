"""randomize: the defining property of each of Zhang et al.'s randomization tests."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genbound.data import RANDOMIZATIONS, Dataset, load_digits, randomize


def synthetic(m=300, n=80, shape=(2, 3, 4), classes=10, seed=0, dtype=np.float64):
    """Images with all-distinct pixel values, so that permutations can be read off the data."""
    gen = np.random.default_rng(seed)
    scale = np.linspace(0.5, 3.0, int(np.prod(shape))).reshape(shape)
    offset = np.linspace(-2.0, 5.0, int(np.prod(shape))).reshape(shape)
    x_train = offset + scale * gen.uniform(-1, 1, (m, *shape))
    x_test = offset + scale * gen.uniform(-1, 1, (n, *shape))
    return Dataset(x_train.astype(dtype), gen.integers(0, classes, m), x_test.astype(dtype),
                   gen.integers(0, classes, n), classes=classes)


@pytest.fixture(scope="module")
def digits():
    return load_digits(seed=0)


def snapshot(d):
    return [a.copy() for a in (d.x_train, d.y_train, d.x_test, d.y_test)]


def same(d, arrays):
    return all(np.array_equal(a, b) for a, b in zip((d.x_train, d.y_train, d.x_test, d.y_test), arrays))


def read_permutation(before, after):
    """The permutation ``perm`` with after == before[perm] for one image of distinct values."""
    where = {v: i for i, v in enumerate(before.ravel())}
    return np.array([where[v] for v in after.ravel()])


# ---------------------------------------------------------------- labels

@pytest.mark.parametrize("p", [0.0, 0.1, 0.5, 0.9, 1.0])
@pytest.mark.parametrize("seed", [0, 7])
def test_partial_labels_changes_about_p_times_1_minus_1_over_K(p, seed):
    classes, m = 10, 20000
    y = np.arange(m) % classes
    d = Dataset(np.zeros((m, 1, 1, 1)), y, np.zeros((5, 1, 1, 1)), np.arange(5), classes=classes)
    out = randomize(d, "partial_labels", fraction=p, seed=seed)
    changed = int(np.sum(out.y_train != y))
    q = p * (1 - 1 / classes)
    sd = np.sqrt(m * q * (1 - q))
    assert abs(changed - m * q) <= 5 * sd + 1e-9
    assert out.y_train.min() >= 0 and out.y_train.max() < classes
    np.testing.assert_array_equal(out.y_test, d.y_test)
    np.testing.assert_array_equal(out.x_train, d.x_train)


def test_partial_labels_on_digits(digits):
    out = randomize(digits, "partial_labels", fraction=0.5, seed=3)
    q = 0.5 * 0.9
    changed = np.sum(out.y_train != digits.y_train)
    assert abs(changed - digits.m * q) <= 5 * np.sqrt(digits.m * q * (1 - q))
    assert out.info["randomization"] == {"kind": "partial_labels", "fraction": 0.5, "corrupt_test": False}


def test_random_labels_uniform_and_independent_of_truth():
    classes, m = 10, 20000
    y = np.zeros(m, dtype=np.int64)
    d = Dataset(np.zeros((m, 1, 1, 1)), y, np.zeros((1, 1, 1, 1)), [0], classes=classes)
    out = randomize(d, "random_labels", seed=1)
    counts = np.bincount(out.y_train, minlength=classes)
    assert np.all(np.abs(counts - m / classes) <= 5 * np.sqrt(m * 0.1 * 0.9))
    same_as_true = np.mean(out.y_train == y)
    assert abs(same_as_true - 0.1) <= 5 * np.sqrt(0.1 * 0.9 / m)
    # random_labels is partial_labels at fraction 1
    np.testing.assert_array_equal(out.y_train, randomize(d, "partial_labels", 1.0, seed=1).y_train)


def test_labels_of_unseen_classes_can_be_drawn():
    d = Dataset(np.zeros((4000, 1, 1, 1)), np.zeros(4000, int), np.zeros((1, 1, 1, 1)), [0], classes=4)
    assert set(randomize(d, "random_labels", seed=0).y_train) == {0, 1, 2, 3}


def test_corrupt_test_labels():
    d = synthetic(m=2000, n=2000)
    out = randomize(d, "random_labels", seed=0, corrupt_test=True)
    frac = np.mean(out.y_test != d.y_test)
    assert abs(frac - 0.9) < 0.05
    assert not np.array_equal(out.y_test, out.y_train)  # own draws
    np.testing.assert_array_equal(out.x_test, d.x_test)


# ---------------------------------------------------------------- pixels

@pytest.mark.parametrize("corrupt_test", [False, True])
def test_shuffled_pixels_one_permutation_for_all_images_train_and_test(corrupt_test):
    d = synthetic()
    out = randomize(d, "shuffled_pixels", seed=4, corrupt_test=corrupt_test)
    perm = read_permutation(d.x_train[0], out.x_train[0])
    np.testing.assert_array_equal(np.sort(perm), np.arange(24))
    assert not np.array_equal(perm, np.arange(24))
    np.testing.assert_array_equal(out.x_train.reshape(d.m, -1), d.x_train.reshape(d.m, -1)[:, perm])
    np.testing.assert_array_equal(out.x_test.reshape(d.n_test, -1), d.x_test.reshape(d.n_test, -1)[:, perm])
    np.testing.assert_array_equal(out.info["pixel_permutation"], perm)
    np.testing.assert_array_equal(out.y_train, d.y_train)
    np.testing.assert_array_equal(out.y_test, d.y_test)
    assert out.x_train.shape == d.x_train.shape


def test_shuffled_pixels_preserve_sorted_values_on_digits(digits):
    out = randomize(digits, "shuffled_pixels", seed=0)
    for a, b in ((digits.x_train, out.x_train), (digits.x_test, out.x_test)):
        flat_a, flat_b = a.reshape(len(a), -1), b.reshape(len(b), -1)
        np.testing.assert_array_equal(np.sort(flat_a, axis=1), np.sort(flat_b, axis=1))
        assert not np.array_equal(flat_a, flat_b)
    # one mapping of positions: a pixel that is constant over the training set stays constant
    const_before = np.ptp(digits.x_train.reshape(digits.m, -1), axis=0) == 0
    const_after = np.ptp(out.x_train.reshape(digits.m, -1), axis=0) == 0
    assert const_before.sum() == const_after.sum() > 0


def test_random_pixels_permutes_each_image_differently():
    d = synthetic()
    out = randomize(d, "random_pixels", seed=2)
    perms = {tuple(read_permutation(a, b)) for a, b in zip(d.x_train, out.x_train)}
    assert len(perms) > 0.99 * d.m  # 24! permutations: collisions are essentially impossible
    np.testing.assert_array_equal(np.sort(out.x_train.reshape(d.m, -1), axis=1),
                                  np.sort(d.x_train.reshape(d.m, -1), axis=1))
    np.testing.assert_array_equal(out.x_test, d.x_test)  # clean by default
    np.testing.assert_array_equal(out.y_train, d.y_train)


def test_random_pixels_corrupt_test():
    d = synthetic()
    out = randomize(d, "random_pixels", seed=2, corrupt_test=True)
    flat_a, flat_b = d.x_test.reshape(d.n_test, -1), out.x_test.reshape(d.n_test, -1)
    np.testing.assert_array_equal(np.sort(flat_a, axis=1), np.sort(flat_b, axis=1))
    assert np.mean(np.any(flat_a != flat_b, axis=1)) > 0.99


@settings(max_examples=40, deadline=None)
@given(m=st.integers(1, 12), n=st.integers(0, 5), c=st.integers(1, 3), h=st.integers(1, 4),
       seed=st.integers(0, 2**32), corrupt_test=st.booleans())
def test_pixel_kinds_preserve_each_images_multiset(m, n, c, h, seed, corrupt_test):
    gen = np.random.default_rng(seed)
    d = Dataset(gen.integers(-3, 4, (m, c, h, 3)).astype(float), gen.integers(0, 3, m),
                gen.integers(-3, 4, (n, c, h, 3)).astype(float), gen.integers(0, 3, n), classes=3)
    before = snapshot(d)
    for kind in ("shuffled_pixels", "random_pixels"):
        out = randomize(d, kind, seed=seed, corrupt_test=corrupt_test)
        for a, b in ((d.x_train, out.x_train), (d.x_test, out.x_test)):
            k = c * h * 3
            np.testing.assert_array_equal(np.sort(a.reshape(len(a), k), axis=1),
                                          np.sort(b.reshape(len(b), k), axis=1))
        assert out.x_train.shape == d.x_train.shape and out.x_test.shape == d.x_test.shape
    assert same(d, before)


# ---------------------------------------------------------------- gaussian

def test_gaussian_matches_per_pixel_mean_and_variance():
    d = synthetic(m=6000, n=50, shape=(1, 2, 3))
    out = randomize(d, "gaussian", seed=5)
    flat_old, flat_new = d.x_train.reshape(d.m, -1), out.x_train.reshape(d.m, -1)
    mean, std = flat_old.mean(axis=0), flat_old.std(axis=0)
    assert np.all(np.abs(flat_new.mean(axis=0) - mean) <= 5 * std / np.sqrt(d.m))
    assert np.all(np.abs(flat_new.var(axis=0) / std**2 - 1) <= 5 * np.sqrt(2 / d.m))
    # Gaussian, not the original (uniform) distribution: excess kurtosis near 0, not -1.2
    z = (flat_new - flat_new.mean(axis=0)) / flat_new.std(axis=0)
    assert np.all(np.abs((z**4).mean(axis=0) - 3) < 0.3)
    np.testing.assert_array_equal(out.x_test, d.x_test)
    np.testing.assert_array_equal(out.y_train, d.y_train)


def test_gaussian_corrupt_test_draws_from_training_gaussian():
    d = synthetic(m=4000, n=4000, shape=(1, 1, 2))
    out = randomize(d, "gaussian", seed=5, corrupt_test=True)
    flat = d.x_train.reshape(d.m, -1)
    new_test = out.x_test.reshape(d.n_test, -1)
    assert np.all(np.abs(new_test.mean(axis=0) - flat.mean(axis=0)) <= 5 * flat.std(axis=0) / np.sqrt(d.n_test))
    assert not np.allclose(out.x_test[: d.m], out.x_train[: d.n_test])  # own draws


def test_gaussian_on_digits_keeps_constant_pixels_constant(digits):
    out = randomize(digits, "gaussian", seed=0)
    const = np.ptp(digits.x_train.reshape(digits.m, -1), axis=0) == 0
    assert np.all(np.ptp(out.x_train.reshape(digits.m, -1), axis=0)[const] == 0)
    assert np.all(np.isfinite(out.x_train))


def test_gaussian_keeps_float32():
    d = synthetic(dtype=np.float32)
    for kind in RANDOMIZATIONS:
        assert randomize(d, kind, seed=0, corrupt_test=True).dtype == np.float32


# ---------------------------------------------------------------- every kind

@pytest.mark.parametrize("kind", RANDOMIZATIONS)
@pytest.mark.parametrize("corrupt_test", [False, True])
def test_input_never_mutated_and_reproducible(digits, kind, corrupt_test):
    before = snapshot(digits)
    a = randomize(digits, kind, seed=11, corrupt_test=corrupt_test)
    assert same(digits, before)
    b = randomize(digits, kind, seed=11, corrupt_test=corrupt_test)
    assert same(a, snapshot(b))
    c = randomize(digits, kind, seed=np.random.default_rng(11), corrupt_test=corrupt_test)
    assert same(a, snapshot(c))
    other = randomize(digits, kind, seed=12, corrupt_test=corrupt_test)
    assert not same(a, snapshot(other))
    assert a.classes == digits.classes and a.input_shape == digits.input_shape
    assert a.info["randomization"]["kind"] == kind
    assert a.info["train_index"] is digits.info["train_index"]  # provenance carried over
    assert not same(a, before)


@pytest.mark.parametrize("kind", RANDOMIZATIONS)
def test_test_part_clean_by_default_corrupted_on_request(digits, kind):
    clean = randomize(digits, kind, seed=0)
    dirty = randomize(digits, kind, seed=0, corrupt_test=True)
    test_clean = np.array_equal(clean.x_test, digits.x_test) and np.array_equal(clean.y_test, digits.y_test)
    test_dirty = np.array_equal(dirty.x_test, digits.x_test) and np.array_equal(dirty.y_test, digits.y_test)
    if kind == "shuffled_pixels":  # a change of representation: always applied to the test images
        assert not test_clean and not test_dirty
        np.testing.assert_array_equal(clean.x_test, dirty.x_test)
    else:
        assert test_clean and not test_dirty


def test_zero_fraction_changes_nothing(digits):
    out = randomize(digits, "partial_labels", fraction=0.0, seed=0, corrupt_test=True)
    np.testing.assert_array_equal(out.y_train, digits.y_train)
    np.testing.assert_array_equal(out.y_test, digits.y_test)


def test_errors(digits):
    with pytest.raises(ValueError, match=r"kind: expected one of 'partial_labels', 'random_labels', "
                                         r"'shuffled_pixels', 'random_pixels', 'gaussian', got 'labels'"):
        randomize(digits, "labels")
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match=r"fraction: expected a number in \[0, 1\]"):
            randomize(digits, "partial_labels", fraction=bad)
    with pytest.raises(TypeError, match="fraction"):
        randomize(digits, "partial_labels", fraction="0.5")
    for kind in RANDOMIZATIONS[1:]:
        with pytest.raises(ValueError, match=r"fraction: only kind='partial_labels' takes a fraction below 1"):
            randomize(digits, kind, fraction=0.5)
    with pytest.raises(TypeError, match="data: expected a genbound.data.Dataset, got tuple"):
        randomize((digits.x_train, digits.y_train), "random_labels")
    with pytest.raises(ValueError, match="seed"):
        randomize(digits, "random_labels", seed=-3)


def test_randomizations_tuple():
    assert RANDOMIZATIONS == ("partial_labels", "random_labels", "shuffled_pixels", "random_pixels", "gaussian")


@pytest.mark.parametrize("kind", RANDOMIZATIONS)
def test_empty_test_set(kind):
    d = Dataset(np.arange(24.0).reshape(2, 1, 3, 4), [0, 1], np.zeros((0, 1, 3, 4)), np.zeros(0, int))
    out = randomize(d, kind, seed=0, corrupt_test=True)
    assert out.n_test == 0 and out.m == 2 and out.x_test.shape == (0, 1, 3, 4)
