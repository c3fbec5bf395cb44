"""Tests of genbound.bounds.compression: code lengths, Kraft, Occam bound, quantization, k-means."""
import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genbound.bounds import code_length_bits, kl_inverse, kmeans_codebook, occam_bound, quantize

index_lists = st.integers(1, 8).flatmap(
    lambda k: st.tuples(st.just(k), st.lists(st.integers(0, k - 1), min_size=1, max_size=300)))


# ---------------------------------------------------------------- code lengths by hand

def test_uniform_scheme_by_hand():
    idx = np.array([0, 1, 2, 3, 0, 1, 2, 3, 0, 1])
    # 64 header + 4 levels * 32 + 10 indices * ceil(log2 4) = 64 + 128 + 20
    assert code_length_bits(idx, 4, scheme="uniform") == 212
    # k = 5 needs 3 bits per index; k = 1 needs none
    assert code_length_bits(idx, 5, scheme="uniform") == 64 + 5 * 32 + 30
    assert code_length_bits(np.zeros(7, dtype=int), 1, scheme="uniform") == 64 + 32


def test_entropy_scheme_by_hand():
    idx = np.array([0] * 5 + [1] * 5)
    # 64 + 2*32 + 2 counts * ceil(log2 11) = 8 + ceil(10 * 1 bit) = 10
    assert code_length_bits(idx, 2, scheme="entropy") == 64 + 64 + 8 + 10
    # skewed: counts (9, 1), n H = 10 log2 10 - 9 log2 9 = 4.6899... -> 5 bits
    idx = np.array([0] * 9 + [1])
    assert code_length_bits(idx, 2, scheme="entropy", header_bits=0, level_bits=0) == 8 + 5


def test_enumerative_scheme_by_hand():
    idx = np.array([0] * 5 + [1] * 5)
    # rank among C(10, 5) = 252 sequences: ceil(log2 252) = 8 bits
    assert code_length_bits(idx, 2, scheme="enumerative") == 64 + 64 + 8 + 8
    # a single symbol: one sequence, 0 bits for the ranks
    assert code_length_bits(np.zeros(6, dtype=int), 3, scheme="enumerative", header_bits=0, level_bits=0) == 3 * 3


@given(index_lists)
@settings(deadline=None)
def test_enumerative_never_longer_than_entropy(case):
    k, idx = case
    assert code_length_bits(idx, k, scheme="enumerative") <= code_length_bits(idx, k, scheme="entropy")


@pytest.mark.parametrize("scheme", ["uniform", "entropy", "enumerative"])
def test_kraft_inequality(scheme):
    # every index sequence of length n over k symbols (n, k fixed: no header, fixed codebook)
    n, k = 6, 3
    total = sum(2.0 ** -code_length_bits(np.array(seq), k, scheme=scheme, header_bits=0, level_bits=0)
                for seq in itertools.product(range(k), repeat=n))
    assert total <= 1.0


# ---------------------------------------------------------------- Occam

def test_occam_by_hand():
    # zero training error: kl form has the closed form 1 - exp(-c)
    c = (100 * math.log(2) + math.log(1 / 0.05)) / 1000
    # kl inverses round up by a relative 1e-12 at most (never below the exact value)
    assert -math.expm1(-c) <= occam_bound(0.0, 100, 1000, 0.05) == pytest.approx(-math.expm1(-c), rel=2e-12)
    assert occam_bound(0.0, 100, 1000, 0.05, form="hoeffding") == pytest.approx(math.sqrt(c / 2), rel=1e-14)
    # bc -l: c = (100*l(2) + l(20))/1000 = .07231045032954852193; 1 - e(-c) = .06975794297468596259
    assert occam_bound(0.0, 100, 1000, 0.05) == pytest.approx(0.0697579429746860, abs=2e-13)
    assert occam_bound(0.1, 3 * 1194, 1437, 0.025) == pytest.approx(
        kl_inverse(0.1, (3 * 1194 * math.log(2) + math.log(40)) / 1437), rel=1e-15)


@given(st.floats(0, 1), st.floats(0, 1e5), st.integers(1, 10**6), st.floats(1e-6, 0.999))
@settings(deadline=None)
def test_occam_kl_tighter_than_hoeffding(emp, bits, m, delta):
    assert occam_bound(emp, bits, m, delta) <= occam_bound(emp, bits, m, delta, form="hoeffding") + 1e-14


@given(st.floats(0, 1), st.floats(0, 1e5), st.floats(0, 1e5), st.integers(1, 10**6), st.floats(1e-6, 0.999))
@settings(deadline=None)
def test_occam_non_decreasing_in_bits(emp, b1, b2, m, delta):
    lo, hi = sorted((b1, b2))
    for form in ("kl", "hoeffding"):
        assert occam_bound(emp, lo, m, delta, form=form) <= occam_bound(emp, hi, m, delta, form=form) + 1e-14


@given(st.floats(0, 1), st.floats(0, 1), st.floats(0, 1e5), st.integers(1, 10**6), st.floats(1e-6, 0.999))
@settings(deadline=None)
def test_occam_non_decreasing_in_error(e1, e2, bits, m, delta):
    lo, hi = sorted((e1, e2))
    for form in ("kl", "hoeffding"):
        assert occam_bound(lo, bits, m, delta, form=form) <= occam_bound(hi, bits, m, delta, form=form) + 1e-14


@given(st.floats(0, 1), st.floats(0, 1e5), st.integers(1, 10**6), st.integers(1, 10**6), st.floats(1e-6, 0.999))
@settings(deadline=None)
def test_occam_non_increasing_in_m(emp, bits, m1, m2, delta):
    lo, hi = sorted((m1, m2))
    for form in ("kl", "hoeffding"):
        assert occam_bound(emp, bits, hi, delta, form=form) <= occam_bound(emp, bits, lo, delta, form=form) + 1e-14


@given(st.floats(0, 1), st.floats(0, 1e5), st.integers(1, 10**6), st.floats(1e-6, 0.999), st.floats(1e-6, 0.999))
@settings(deadline=None)
def test_occam_larger_for_smaller_delta(emp, bits, m, d1, d2):
    lo, hi = sorted((d1, d2))
    for form in ("kl", "hoeffding"):
        assert occam_bound(emp, bits, m, hi, form=form) <= occam_bound(emp, bits, m, lo, form=form) + 1e-14


# ---------------------------------------------------------------- quantization

def test_quantize_nearest_and_ties():
    levels = np.array([1.0, -1.0, 0.0])
    q = quantize([-0.9, -0.5, 0.2, 0.5, 3.0, -7.0], levels)
    np.testing.assert_array_equal(q.indices, [1, 1, 2, 2, 0, 1])  # halfway goes to the smaller level
    np.testing.assert_array_equal(q.quantized, levels[q.indices])


def test_quantize_keeps_shape_and_duplicates_take_first():
    x = np.arange(6.0).reshape(2, 3)
    q = quantize(x, [2.0, 2.0, 5.0])
    assert q.indices.shape == (2, 3) and q.quantized.shape == (2, 3)
    np.testing.assert_array_equal(q.indices, [[0, 0, 0], [0, 2, 2]])


@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=50), st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=10))
def test_quantize_is_nearest(values, levels):
    q = quantize(values, levels)
    dist = np.abs(np.subtract.outer(np.asarray(values), np.asarray(levels)))
    np.testing.assert_array_equal(np.abs(np.asarray(values) - q.quantized), dist.min(axis=1))


# ---------------------------------------------------------------- k-means codebook

def test_kmeans_recovers_clusters():
    rng = np.random.default_rng(0)
    centers = np.array([-2.0, 0.5, 3.0])
    x = np.concatenate([c + 0.01 * rng.standard_normal(500) for c in centers])
    cb = kmeans_codebook(x, 3)
    np.testing.assert_allclose(cb.levels, centers, atol=2e-3)
    np.testing.assert_array_equal(cb.indices, np.repeat([0, 1, 2], 500))


def test_kmeans_deterministic_and_float32_levels():
    x = np.random.default_rng(3).standard_normal(5000)
    a, b = kmeans_codebook(x, 8), kmeans_codebook(x, 8)
    np.testing.assert_array_equal(a.levels, b.levels)
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(a.levels, a.levels.astype(np.float32).astype(np.float64))
    assert np.all(np.diff(a.levels) > 0) and a.levels.size == 8
    r1 = kmeans_codebook(x, 8, seed=5, init="random")
    r2 = kmeans_codebook(x, 8, seed=np.random.default_rng(5), init="random")
    np.testing.assert_array_equal(r1.levels, r2.levels)


def test_kmeans_is_a_lloyd_fixed_point():
    x = np.random.default_rng(4).standard_normal(2000)
    cb = kmeans_codebook(x, 6)
    for j, level in enumerate(cb.levels):
        assert level == pytest.approx(x[cb.indices == j].mean(), abs=1e-6)  # up to float32 rounding
    np.testing.assert_array_equal(cb.indices, quantize(x, cb.levels).indices)


def test_kmeans_few_distinct_values():
    cb = kmeans_codebook([1.0, 1.0, 2.5, 2.5, 2.5], 4)
    np.testing.assert_array_equal(cb.levels, [1.0, 2.5])
    np.testing.assert_array_equal(cb.indices, [0, 0, 1, 1, 1])


def test_kmeans_duplicates_heavy_data_fills_all_levels():
    x = np.concatenate([np.zeros(1000), np.linspace(1, 2, 9)])
    cb = kmeans_codebook(x, 5)
    assert cb.levels.size == 5
    assert np.bincount(cb.indices, minlength=5).min() > 0


# ---------------------------------------------------------------- bad input

def test_code_length_rejects_index_out_of_range():
    with pytest.raises(ValueError, match=r"indices: expected values in \[0, 2\)"):
        code_length_bits([0, 1, 2], 2)


def test_code_length_rejects_zero_k():
    with pytest.raises(ValueError, match="k: expected an int >= 1"):
        code_length_bits([0], 0)


def test_code_length_rejects_unknown_scheme():
    with pytest.raises(ValueError, match="scheme: expected one of"):
        code_length_bits([0, 1], 2, scheme="huffman")


def test_code_length_rejects_float_indices():
    with pytest.raises(TypeError, match="indices: expected integer"):
        code_length_bits([0.5, 1.0], 2)


def test_code_length_rejects_empty():
    with pytest.raises(ValueError, match="indices: expected at least one"):
        code_length_bits(np.array([], dtype=int), 2)


def test_occam_rejects_negative_bits():
    with pytest.raises(ValueError, match="bits: expected a number >= 0"):
        occam_bound(0.1, -1, 100, 0.05)


def test_occam_rejects_zero_m():
    with pytest.raises(ValueError, match="m: expected an int >= 1"):
        occam_bound(0.1, 10, 0, 0.05)


def test_occam_rejects_delta():
    with pytest.raises(ValueError, match=r"delta: expected a number in \(0, 1\)"):
        occam_bound(0.1, 10, 100, 1.0)


def test_occam_rejects_error_outside():
    with pytest.raises(ValueError, match=r"emp_error: expected a number in \[0, 1\]"):
        occam_bound(float("nan"), 10, 100, 0.05)


def test_occam_rejects_unknown_form():
    with pytest.raises(ValueError, match="form: expected"):
        occam_bound(0.1, 10, 100, 0.05, form="chernoff")


def test_quantize_rejects_nan():
    with pytest.raises(ValueError, match="values: expected finite values"):
        quantize([0.0, float("nan")], [0.0, 1.0])


def test_quantize_rejects_empty_levels():
    with pytest.raises(ValueError, match="levels: expected at least one level"):
        quantize([0.0], np.array([]))


def test_kmeans_rejects_zero_k():
    with pytest.raises(ValueError, match="k: expected an int >= 1"):
        kmeans_codebook([0.0, 1.0], 0)


def test_kmeans_rejects_unknown_init():
    with pytest.raises(ValueError, match="init: expected"):
        kmeans_codebook([0.0, 1.0], 2, init="kmeans++")
