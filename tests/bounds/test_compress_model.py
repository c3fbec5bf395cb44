"""Tests of genbound.bounds.compress_model: quantized networks, their code length and measured errors."""
import math

import numpy as np
import pytest

import genbound as gb
from genbound.bounds import (code_length_bits, compression_bound, kmeans_codebook, occam_bound, quantize,
                             quantize_model)


@pytest.fixture(scope="module")
def problem(trained_tiny_cnn):
    model, w0, data = trained_tiny_cnn
    return model, data


def _independent_quantization(model, k):
    """Quantize each tensor with kmeans_codebook + quantize, set into a fresh copy."""
    clone = model.copy()
    bits = 0
    for name, value in model.params.items():
        book = kmeans_codebook(np.asarray(value), k)
        q = quantize(np.asarray(value), book.levels)
        clone.params[name][...] = q.quantized
        bits += (k - 1).bit_length() + code_length_bits(q.indices, book.levels.size, header_bits=0)
    return clone, bits


@pytest.mark.parametrize("k", [2, 4, 16])
def test_reported_errors_equal_direct_evaluation(problem, k):
    model, data = problem
    before = model.get_flat()
    res = compression_bound(model, data, k=k)
    assert np.array_equal(model.get_flat(), before)  # the input network is untouched
    clone, bits = _independent_quantization(model, k)
    assert res.train_error == clone.error(data.x_train, data.y_train)
    assert res.test_error == clone.error(data.x_test, data.y_test)
    assert np.array_equal(res.quantized.model.get_flat(), clone.get_flat())
    assert res.bits == bits and res.choice_bits == 0
    assert res.bound == occam_bound(res.train_error, bits, data.m, 0.025)
    # at most k distinct values per tensor
    for name, value in res.quantized.model.params.items():
        assert np.unique(value).size <= k


def test_grid_pays_for_the_choice_and_picks_the_best(problem):
    model, data = problem
    res = compression_bound(model, data, k=(2, 4, 8))
    assert res.choice_bits == 2
    assert list(res.table["k"]) == [2, 4, 8]
    assert res.bound == res.table["bound"].min()
    row = res.table.set_index("k").loc[res.k]
    assert row["bits"] == res.bits == quantize_model(model, res.k).bits + 2
    assert row["train_error"] == res.train_error


def test_enough_levels_reproduce_the_network(problem):
    model, data = problem
    q = quantize_model(model, 10_000)
    assert np.allclose(q.model.get_flat(), model.get_flat().astype(np.float32), rtol=0, atol=1e-6)
    assert q.model.error(data.x_train, data.y_train) == model.error(data.x_train, data.y_train)
    assert q.per_tensor["bits"].sum() == q.bits
    assert q.bits_per_param == q.bits / model.n_params


def test_per_tensor_table(problem):
    model, _ = problem
    q = quantize_model(model, 4, scheme="uniform")
    assert list(q.per_tensor["tensor"]) == list(model.params)
    assert list(q.per_tensor["size"]) == [v.size for v in model.params.values()]
    assert (q.per_tensor["levels"] <= 4).all()
    sizes = q.per_tensor["size"].to_numpy()
    levels = q.per_tensor["levels"].to_numpy()
    assert q.bits == int(np.sum(2 + 32 * levels + sizes * np.array([(int(v) - 1).bit_length() for v in levels])))


def test_bad_input(problem):
    model, data = problem
    with pytest.raises(TypeError, match="^model"):
        quantize_model(object(), 4)
    with pytest.raises(ValueError, match="^k"):
        quantize_model(model, 0)
    with pytest.raises(ValueError, match="^scheme"):
        quantize_model(model, 4, scheme="huffman")
    with pytest.raises(TypeError, match="^data"):
        compression_bound(model, "digits")
    with pytest.raises(ValueError, match="^k"):
        compression_bound(model, data, k=[])
    with pytest.raises(ValueError, match="^delta"):
        compression_bound(model, data, delta=1.5)
    assert math.isfinite(compression_bound(model, data, k=3).bound)


def test_an_xy_pair_is_the_training_set_without_test_error(problem):
    model, data = problem
    full = compression_bound(model, data, k=(2, 8))
    pair = compression_bound(model, (data.x_train, data.y_train), k=(2, 8))
    assert (pair.bound, pair.k, pair.bits, pair.train_error, pair.m) == (full.bound, full.k, full.bits,
                                                                       full.train_error, full.m)
    assert math.isnan(pair.test_error)
