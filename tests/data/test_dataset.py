"""Dataset: validation, derived datasets, and seeded mini-batches."""
import dataclasses
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genbound.data import Dataset


def make(m=10, n=4, shape=(1, 3, 3), classes=None, seed=0, dtype=np.float64):
    gen = np.random.default_rng(seed)
    return Dataset(gen.standard_normal((m, *shape)).astype(dtype), gen.integers(0, 3, m),
                   gen.standard_normal((n, *shape)).astype(dtype), gen.integers(0, 3, n), classes=classes)


def test_basic_properties():
    d = Dataset(np.zeros((5, 2, 3, 4)), [0, 1, 2, 1, 0], np.ones((2, 2, 3, 4)), np.array([4, 0], np.uint8))
    assert d.m == 5 and d.n_test == 2
    assert d.input_shape == (2, 3, 4)
    assert d.classes == 5  # inferred over train and test
    assert d.x_train.dtype == np.float64 and d.y_train.dtype == np.int64 and d.y_test.dtype == np.int64
    assert d.train[0] is d.x_train and d.test[1] is d.y_test
    assert "m=5" in repr(d) and "classes=5" in repr(d)
    np.testing.assert_array_equal(d.class_counts(), [2, 2, 1, 0, 0])
    np.testing.assert_array_equal(d.class_counts("test"), [1, 0, 0, 0, 1])


def test_explicit_classes_and_integer_input_conversion():
    d = Dataset(np.zeros((3, 1, 2, 2), dtype=np.int32), [0, 1, 1], np.zeros((0, 1, 2, 2)), np.zeros(0, int),
                classes=10)
    assert d.classes == 10 and d.n_test == 0 and d.x_train.dtype == np.float64
    assert d.class_counts().shape == (10,)


def test_float32_kept_and_astype():
    d = make(dtype=np.float32)
    assert d.dtype == np.float32
    d64 = d.astype(np.float64)
    assert d64.dtype == np.float64 and d64.x_test.dtype == np.float64
    np.testing.assert_array_equal(d64.x_train, d.x_train.astype(np.float64))
    assert d.astype(np.float32) is d
    with pytest.raises(TypeError, match="dtype"):
        d.astype(np.int64)


def test_mixed_float_dtypes_become_float64():
    d = Dataset(np.zeros((2, 1, 2, 2), np.float32), [0, 1], np.zeros((1, 1, 2, 2)), [0])
    assert d.dtype == np.float64 and d.x_test.dtype == np.float64


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(x_train=np.zeros((3, 4, 4))), ValueError, r"x_train: expected a 4-d .*got shape \(3, 4, 4\)"),
    (dict(x_test=np.zeros((2, 1, 4))), ValueError, r"x_test: expected a 4-d"),
    (dict(x_train=np.full((3, 1, 2, 2), np.nan)), ValueError, r"x_train: expected finite"),
    (dict(x_test=np.full((2, 1, 2, 2), np.inf)), ValueError, r"x_test: expected finite"),
    (dict(x_train=np.zeros((3, 1, 2, 2), complex)), TypeError, r"x_train"),
    (dict(x_train=np.array([[[["a"]]]])), TypeError, r"x_train"),
    (dict(y_train=np.array([0.0, 1.0, 1.0])), TypeError, r"y_train: expected integer class labels, got dtype float64"),
    (dict(y_train=np.array([True, False, True])), TypeError, r"y_train: expected integer"),
    (dict(y_test=np.zeros((2, 1), int)), ValueError, r"y_test: expected a 1-d array .*got shape \(2, 1\)"),
    (dict(y_train=[0, 1]), ValueError, r"y_train: expected 3 labels to match x_train, got 2"),
    (dict(y_test=[0, 1, 1]), ValueError, r"y_test: expected 2 labels to match x_test, got 3"),
    (dict(y_train=[0, -1, 1]), ValueError, r"y_train: expected non-negative labels"),
    (dict(x_test=np.zeros((2, 1, 3, 2))), ValueError, r"x_test: expected images of shape \(1, 2, 2\)"),
    (dict(x_train=np.zeros((0, 1, 2, 2)), y_train=np.zeros(0, int)), ValueError, r"x_train: expected at least one"),
    (dict(classes=2), ValueError, r"y_train: expected labels in \[0, 2\).*got a label 2"),
    (dict(classes=2.0), TypeError, r"classes: expected an int"),
    (dict(classes=0), ValueError, r"classes: expected an int >= 1"),
    (dict(info=[1, 2]), TypeError, r"info: expected a mapping"),
])
def test_constructor_errors(kwargs, exc, match):
    args = dict(x_train=np.zeros((3, 1, 2, 2)), y_train=[0, 1, 2], x_test=np.zeros((2, 1, 2, 2)), y_test=[1, 0])
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        Dataset(**args)


def test_frozen_and_info_read_only():
    d = make()
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.classes = 4
    d2 = Dataset(d.x_train, d.y_train, d.x_test, d.y_test, info={"a": 1})
    with pytest.raises(TypeError):
        d2.info["a"] = 2


def test_replace_revalidates():
    d = make()
    with pytest.raises(ValueError, match="y_train"):
        dataclasses.replace(d, y_train=d.y_train[:-1])


def test_subset():
    d = make(m=10, n=6, classes=7)
    s = d.subset([3, 1, 1])
    np.testing.assert_array_equal(s.x_train, d.x_train[[3, 1, 1]])
    np.testing.assert_array_equal(s.y_train, d.y_train[[3, 1, 1]])
    assert s.x_test is d.x_test and s.classes == 7
    mask = np.arange(10) % 2 == 0
    s2 = d.subset(mask, test_idx=[0, 5])
    assert s2.m == 5 and s2.n_test == 2
    np.testing.assert_array_equal(s2.info["train_subset"], [0, 2, 4, 6, 8])
    with pytest.raises(ValueError, match=r"train_idx: expected indices in \[-10, 10\)"):
        d.subset([10])
    with pytest.raises(ValueError, match=r"train_idx: expected a boolean mask of shape \(10,\)"):
        d.subset(np.ones(3, bool))
    with pytest.raises(TypeError, match="train_idx"):
        d.subset([0.5])
    with pytest.raises(ValueError, match="x_train: expected at least one"):
        d.subset([])


def test_split_train():
    d = make(m=11)
    a, b = d.split_train(0.3, seed=1)
    assert a.m == 3 and b.m == 8
    together = np.concatenate([a.info["train_subset"], b.info["train_subset"]])
    np.testing.assert_array_equal(np.sort(together), np.arange(11))
    a2, _ = d.split_train(0.3, seed=1)
    np.testing.assert_array_equal(a.x_train, a2.x_train)
    with pytest.raises(ValueError, match="fraction"):
        d.split_train(1.0)


@settings(max_examples=60, deadline=None)
@given(m=st.integers(1, 40), batch_size=st.integers(1, 50), seed=st.integers(0, 2**32))
def test_batches_cover_each_index_once(m, batch_size, seed):
    d = make(m=m, n=1)
    idx = d.batch_indices(batch_size, seed=seed)
    flat = np.concatenate(idx)
    np.testing.assert_array_equal(np.sort(flat), np.arange(m))
    assert all(len(b) == batch_size for b in idx[:-1]) and 1 <= len(idx[-1]) <= batch_size
    assert len(idx) == -(-m // batch_size)
    again = d.batch_indices(batch_size, seed=seed)
    assert all(np.array_equal(a, b) for a, b in zip(idx, again, strict=True))
    dropped = d.batch_indices(batch_size, seed=seed, drop_last=True)
    assert len(dropped) == m // batch_size and all(len(b) == batch_size for b in dropped)


def test_batches_seed_and_generator():
    d = make(m=50)
    a = np.concatenate(d.batch_indices(8, seed=1))
    b = np.concatenate(d.batch_indices(8, seed=2))
    assert not np.array_equal(a, b)
    c = np.concatenate(d.batch_indices(8, seed=np.random.default_rng(1)))
    np.testing.assert_array_equal(a, c)
    gen = np.random.default_rng(5)
    e1 = np.concatenate(d.batch_indices(8, seed=gen))
    e2 = np.concatenate(d.batch_indices(8, seed=gen))
    assert not np.array_equal(e1, e2)  # a Generator advances: a fresh order each epoch
    np.testing.assert_array_equal(np.concatenate(d.batch_indices(8)), np.concatenate(d.batch_indices(8)))


def test_batch_errors():
    d = make()
    with pytest.raises(ValueError, match="batch_size: expected an int >= 1"):
        d.batch_indices(0)
    with pytest.raises(TypeError, match="batch_size"):
        d.batch_indices(2.5)
    with pytest.raises(ValueError, match="seed"):
        d.batch_indices(2, seed=-1)
    with pytest.raises(TypeError, match="seed"):
        d.batch_indices(2, seed="3")


def test_pickle_round_trip():
    d = Dataset(np.ones((3, 1, 2, 2), np.float32), [0, 1, 2], np.zeros((1, 1, 2, 2), np.float32), [1],
                classes=5, info={"source": "x", "idx": np.arange(3)})
    back = pickle.loads(pickle.dumps(d))
    assert back.classes == 5 and back.dtype == np.float32 and back.info["source"] == "x"
    np.testing.assert_array_equal(back.x_train, d.x_train)
    np.testing.assert_array_equal(back.info["idx"], np.arange(3))
