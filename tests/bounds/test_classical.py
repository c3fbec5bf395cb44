"""Tests of genbound.bounds.classical: Eq. 1, growth function, VC bound, VC dimension of ReLU nets."""
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genbound.bounds import log_growth_bound, samples_needed, sqrt_gap_bound, vc_bound, vc_dimension_relu

caps = st.floats(0.0, 1e7, allow_nan=False)
sizes = st.integers(1, 10**7)
deltas = st.floats(1e-6, 0.999, allow_nan=False)


# ---------------------------------------------------------------- Eq. 1

def test_sqrt_gap_bound_design_numbers():
    # DESIGN.md: digits_gap, m = 1437: 5,130 parameters -> 1.89, 1,194 (rank 1) -> 0.91
    assert sqrt_gap_bound(5130, 1437) == pytest.approx(1.8894, abs=1e-4)
    assert sqrt_gap_bound(1194, 1437) == pytest.approx(0.9115, abs=1e-4)
    assert sqrt_gap_bound(0, 10) == 0.0
    assert sqrt_gap_bound(25, 100) == 0.5


def test_samples_needed_examples():
    assert samples_needed(2, 0.1) == 200
    assert samples_needed(0, 0.5) == 1
    assert samples_needed(1194, 0.05) == math.ceil(1194 / 0.0025)
    assert samples_needed(3, 2.0) == 1


@given(caps, st.floats(1e-3, 10.0, allow_nan=False))
@settings(deadline=None)
def test_samples_needed_is_smallest(N, eps):
    m = samples_needed(N, eps)
    assert sqrt_gap_bound(N, m) <= eps
    assert m == 1 or sqrt_gap_bound(N, m - 1) > eps


@given(caps, caps, sizes)
def test_sqrt_gap_non_decreasing_in_N(n1, n2, m):
    lo, hi = sorted((n1, n2))
    assert sqrt_gap_bound(lo, m) <= sqrt_gap_bound(hi, m)


@given(caps, sizes, sizes)
def test_sqrt_gap_non_increasing_in_m(N, m1, m2):
    lo, hi = sorted((m1, m2))
    assert sqrt_gap_bound(N, hi) <= sqrt_gap_bound(N, lo)


# ---------------------------------------------------------------- growth function

@pytest.mark.parametrize("d, m", [(0, 5), (1, 1), (3, 10), (5, 5), (4, 30), (10, 7)])
def test_log_growth_sum_is_sauer_sum(d, m):
    exact = math.log(sum(math.comb(m, i) for i in range(min(d, m) + 1)))
    assert log_growth_bound(d, m, form="sum") == pytest.approx(exact, rel=1e-12, abs=1e-15)


def test_log_growth_forms():
    assert log_growth_bound(10, 1000, form="sauer") == pytest.approx(10 * (1 + math.log(100)), rel=1e-15)
    assert log_growth_bound(10, 1000, form="trivial") == pytest.approx(1000 * math.log(2), rel=1e-15)
    assert log_growth_bound(10, 1000) == pytest.approx(10 * (1 + math.log(100)), rel=1e-15)
    # below d only the trivial form is valid; at m = d the trivial form is the smaller one
    assert log_growth_bound(50, 20) == pytest.approx(20 * math.log(2), rel=1e-15)
    assert log_growth_bound(20, 20) == pytest.approx(20 * math.log(2), rel=1e-15)
    assert log_growth_bound(0, 100) == 0.0


@given(st.integers(0, 300), st.integers(1, 3000))
@settings(deadline=None)
def test_log_growth_sum_below_min(d, m):
    assert log_growth_bound(d, m, form="sum") <= log_growth_bound(d, m) * (1 + 1e-12) + 1e-12


# ---------------------------------------------------------------- VC bound

def test_vc_bound_by_hand():
    # d = 10, m = 1000, delta = 0.05: ln Pi <= 10 ln(e 1000/10) = 10 (1 + ln 100)
    log_pi = 10 * (1 + math.log(100))
    gap = math.sqrt(2 * log_pi / 1000) + math.sqrt(math.log(20) / 2000)
    assert vc_bound(10, 1000, 0.05) == pytest.approx(gap, rel=1e-14)
    assert vc_bound(10, 1000, 0.05, train_error=0.1) == pytest.approx(0.1 + gap, rel=1e-14)
    # evaluated with bc -l: sqrt(2*10*(1+l(100))/1000) + sqrt(l(20)/2000) = 0.37352073942948214574
    assert vc_bound(10, 1000, 0.05) == pytest.approx(0.373520739429482, abs=1e-14)


def test_vc_bound_parameter_count_vacuous():
    # the digits network's parameter count as d: far beyond 1 (vacuous), as expected
    assert vc_bound(5130, 1437, 0.05) > 1.0


@given(caps, caps, sizes, deltas)
@settings(deadline=None)
def test_vc_bound_non_decreasing_in_d(d1, d2, m, delta):
    lo, hi = sorted((d1, d2))
    assert vc_bound(lo, m, delta) <= vc_bound(hi, m, delta) + 1e-12


@given(caps, sizes, sizes, deltas)
@settings(deadline=None)
def test_vc_bound_non_increasing_in_m(d, m1, m2, delta):
    lo, hi = sorted((m1, m2))
    assert vc_bound(d, hi, delta) <= vc_bound(d, lo, delta) + 1e-12


@given(caps, sizes, deltas, deltas)
@settings(deadline=None)
def test_vc_bound_larger_for_smaller_delta(d, m, d1, d2):
    lo, hi = sorted((d1, d2))
    assert vc_bound(d, m, hi) <= vc_bound(d, m, lo)


@given(caps, sizes, deltas, st.floats(0, 1), st.floats(0, 1))
@settings(deadline=None)
def test_vc_bound_non_decreasing_in_train_error(d, m, delta, e1, e2):
    lo, hi = sorted((e1, e2))
    assert vc_bound(d, m, delta, train_error=lo) <= vc_bound(d, m, delta, train_error=hi)


# ---------------------------------------------------------------- VC dimension of ReLU networks

def test_vc_dimension_relu_architecture_by_hand():
    # 3 inputs -> 5 ReLU units (15 weights + 5 biases) -> 1 output (5 + 1): W = 26, L = 2.
    # Cumulative W_1 = 20, W_2 = 26, L_bar = 46/26; R = 1*5 + 2*1 = 7; ReLU: p = 1.
    expected = 2 + 46 * math.log2(4 * math.e * 7 * math.log2(2 * math.e * 7))
    got = vc_dimension_relu(26, 2, layer_params=[20, 6], layer_units=[5, 1])
    assert got == pytest.approx(expected, rel=1e-14)


def test_vc_dimension_relu_worst_case_dominates():
    exact = vc_dimension_relu(26, 2, layer_params=[20, 6], layer_units=[5, 1])
    worst = vc_dimension_relu(26, 2)
    assert worst == pytest.approx(2 + 2 * 26 * math.log2(4 * math.e * 52 * math.log2(2 * math.e * 52)), rel=1e-14)
    assert worst >= exact


def test_vc_dimension_relu_params_is_labelled_count():
    assert vc_dimension_relu(471_601, 3, method="params") == 471_601.0


@given(st.integers(1, 10**7), st.integers(1, 10**7), st.integers(1, 50))
def test_vc_dimension_relu_monotone(w1, w2, L):
    lo, hi = sorted((w1, w2))
    assert vc_dimension_relu(lo, L) <= vc_dimension_relu(hi, L)
    assert vc_dimension_relu(lo, L) >= lo  # at least the parameter count (O(W L log W))


# ---------------------------------------------------------------- bad input

def test_sqrt_gap_rejects_negative_N():
    with pytest.raises(ValueError, match="N: expected a number >= 0"):
        sqrt_gap_bound(-1.0, 10)


def test_sqrt_gap_rejects_nan_N():
    with pytest.raises(ValueError, match="N: expected a finite number"):
        sqrt_gap_bound(float("nan"), 10)


def test_sqrt_gap_rejects_zero_m():
    with pytest.raises(ValueError, match="m: expected an int >= 1"):
        sqrt_gap_bound(10, 0)


def test_sqrt_gap_rejects_float_m():
    with pytest.raises(TypeError, match="m: expected an int"):
        sqrt_gap_bound(10, 10.5)


def test_samples_needed_rejects_zero_eps():
    with pytest.raises(ValueError, match="eps: expected a number > 0"):
        samples_needed(10, 0.0)


def test_sauer_form_rejects_m_below_d():
    with pytest.raises(ValueError, match="m: Sauer's form .* needs m >= d"):
        log_growth_bound(50, 20, form="sauer")


def test_log_growth_rejects_unknown_form():
    with pytest.raises(ValueError, match="form: expected one of"):
        log_growth_bound(5, 20, form="vapnik")


def test_log_growth_sum_rejects_fractional_d():
    with pytest.raises(ValueError, match="d: expected an integer"):
        log_growth_bound(2.5, 20, form="sum")


def test_vc_bound_rejects_negative_d():
    with pytest.raises(ValueError, match="d: expected a number >= 0"):
        vc_bound(-1, 100, 0.05)


@pytest.mark.parametrize("delta", [0.0, 1.0, float("nan")])
def test_vc_bound_rejects_delta(delta):
    with pytest.raises(ValueError, match=r"delta: expected a number in \(0, 1\)"):
        vc_bound(10, 100, delta)


def test_vc_bound_rejects_train_error_outside():
    with pytest.raises(ValueError, match=r"train_error: expected a number in \[0, 1\]"):
        vc_bound(10, 100, 0.05, train_error=1.5)


def test_vc_dimension_rejects_mismatched_layers():
    with pytest.raises(ValueError, match="layer_params: expected entries summing to W"):
        vc_dimension_relu(30, 2, layer_params=[20, 6], layer_units=[5, 1])


def test_vc_dimension_rejects_wrong_layer_count():
    with pytest.raises(ValueError, match="expected 3 entries each"):
        vc_dimension_relu(26, 3, layer_params=[20, 6], layer_units=[5, 1])


def test_vc_dimension_rejects_one_piece():
    with pytest.raises(ValueError, match="pieces: expected an int >= 2"):
        vc_dimension_relu(26, 2, pieces=1)


def test_vc_dimension_rejects_zero_W():
    with pytest.raises(ValueError, match="W: expected an int >= 1"):
        vc_dimension_relu(0, 2)
