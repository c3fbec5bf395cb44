"""Experiment data by name, IDX folders, and fingerprints."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from genbound.data import write_idx
from genbound.experiments.datasets import data_fingerprint, load_data


def test_names_load_the_real_sets():
    d = load_data("digits", seed=0)
    assert d.m == 1437 and d.input_shape == (1, 8, 8)
    m = load_data("mnist-subset", seed=0, scaling="fixed")
    assert m.m == 4000 and m.input_shape == (1, 28, 28)


def test_idx_folder(tmp_path):
    rng = np.random.default_rng(0)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (12, 4, 4), dtype=np.uint8))
    write_idx(tmp_path / "train-labels-idx1-ubyte", rng.integers(0, 10, 12).astype(np.uint8))
    write_idx(tmp_path / "t10k-images-idx3-ubyte", rng.integers(0, 256, (5, 4, 4), dtype=np.uint8))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", rng.integers(0, 10, 5).astype(np.uint8))
    d = load_data(tmp_path, scaling="fixed")
    assert d.m == 12 and d.n_test == 5 and d.x_train.max() <= 1.0
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte"):
        load_data(tmp_path)


def test_unknown_name():
    with pytest.raises(ValueError, match="data: expected one of"):
        load_data("cifar")


def test_fingerprint_changes_with_any_array():
    d = load_data("digits", seed=0)
    f = data_fingerprint(d)
    assert f == data_fingerprint(load_data("digits", seed=0))
    assert f != data_fingerprint(load_data("digits", seed=1))
    y = d.y_train.copy()
    y[0] = (y[0] + 1) % 10
    assert f != data_fingerprint(dataclasses.replace(d, y_train=y))
    assert f != data_fingerprint(d.astype(np.float32))
