"""The full convolution's columns: the stacked, shifted form (same-size geometries) against the tap-map
gather and against columns cut from an explicitly zero-padded image, bit for bit; and their adjoints."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from genbound._kernels import conv as kconv
from genbound._kernels.geometry import Geometry
from genbound.testing.strategies import normal_array, seeds


def _padded_columns(x, k, p):
    """cols[(c*k + j)*k + l, a*w + b] = x_padded[c, a + j, b + l] for one image x (C, H, W), stride 1."""
    c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (p, p), (p, p)))
    return np.stack([xp[ci, j:j + h, l:l + w].ravel() for ci in range(c) for j in range(k) for l in range(k)])


@st.composite
def same_size_cases(draw):
    k = draw(st.sampled_from([1, 3, 5]))
    return dict(k=k, h=draw(st.integers(1, 9)), w=draw(st.integers(1, 9)), c=draw(st.integers(1, 3)),
                gn=draw(st.integers(1, 5)), dtype=draw(st.sampled_from([np.float32, np.float64])),
                seed=draw(seeds()))


def _columns(x, geo, stacked):
    gn, c = x.shape[:2]
    cols = np.full((c * geo.kh * geo.kw, gn * geo.ho * geo.wo), np.nan, x.dtype)
    kconv.im2col(x, 0, gn, geo, stacked, kconv.tap_map(geo), kconv.tap_masks(geo), np.empty(x.size, x.dtype), cols)
    return cols


def _adjoint(cols, geo, stacked, shape):
    dx = np.full(shape, np.nan, cols.dtype)
    kconv.col2im(cols.copy(), 0, shape[0], geo, stacked, kconv.tap_map(geo), kconv.tap_masks(geo),
                 np.empty(dx.size, dx.dtype), dx)
    return dx


@given(same_size_cases())
def test_stacked_columns_equal_gathered_and_padded_columns(case):
    k, h, w, c, gn, dt = case["k"], case["h"], case["w"], case["c"], case["gn"], case["dtype"]
    p = (k - 1) // 2
    geo = Geometry(h, w, k, k, 1, p, h, w, gn, 1)
    x = normal_array(case["seed"], (gn, c, h * w)).astype(dt)
    stacked, gathered = _columns(x, geo, True), _columns(x, geo, False)
    padded = np.concatenate([_padded_columns(x[g].reshape(c, h, w), k, p) for g in range(gn)], axis=1)
    assert np.array_equal(stacked, gathered)
    assert np.array_equal(stacked, padded)


@given(same_size_cases())
def test_stacked_adjoint_equals_gathered_adjoint_and_transpose(case):
    k, h, w, c, gn, dt = case["k"], case["h"], case["w"], case["c"], case["gn"], case["dtype"]
    p = (k - 1) // 2
    geo = Geometry(h, w, k, k, 1, p, h, w, gn, 1)
    cols = normal_array(case["seed"], (c * k * k, gn * h * w)).astype(dt)
    dx = _adjoint(cols, geo, True, (gn, c, h * w))
    assert np.array_equal(dx, _adjoint(cols, geo, False, (gn, c, h * w)))
    # the adjoint: <cols, im2col(x)> = <col2im(cols), x> (float64 sums of the same products)
    x = normal_array(case["seed"] + 1, (gn, c, h * w)).astype(dt)
    lhs = np.sum(cols.astype(np.float64) * _columns(x, geo, True))
    rhs = np.sum(dx.astype(np.float64) * x)
    assert abs(lhs - rhs) <= 1e-5 * (1 + abs(lhs))


@pytest.mark.parametrize("k, h, w, gn", [(5, 1, 1, 1), (5, 1, 2, 1), (5, 2, 1, 3), (3, 1, 1, 1), (5, 1, 1, 4)])
def test_kernels_wider_than_the_stack_stay_inside_their_buffers(k, h, w, gn):
    """Shifts longer than the whole stack: nothing is written outside cols and dx (guard values around)."""
    p, c = (k - 1) // 2, 2
    geo = Geometry(h, w, k, k, 1, p, h, w, gn, 1)
    x = normal_array(0, (gn, c, h * w))
    big = np.full((c * k * k + 1, gn * h * w + 3), -7.0)
    cols = big[:-1, :gn * h * w]
    kconv.im2col(x, 0, gn, geo, True, kconv.tap_map(geo), kconv.tap_masks(geo), np.empty(x.size), cols)
    assert (big[-1] == -7.0).all() and (big[:, gn * h * w:] == -7.0).all()
    padded = np.concatenate([_padded_columns(x[g].reshape(c, h, w), k, p) for g in range(gn)], axis=1)
    assert np.array_equal(cols, padded)
    dx_big = np.full((gn + 1, c, h * w), -7.0)
    kconv.col2im(np.ascontiguousarray(cols), 0, gn, geo, True, kconv.tap_map(geo), kconv.tap_masks(geo),
                 np.empty(x.size), dx_big[:gn])
    assert (dx_big[gn] == -7.0).all()
    assert np.array_equal(dx_big[:gn], _adjoint(np.ascontiguousarray(cols), geo, False, x.shape))


def test_masks_only_for_same_size_geometries():
    assert kconv.tap_masks(Geometry(6, 6, 3, 3, 2, 1, 3, 3, 4, 1)).shape == (9, 0)
    assert kconv.tap_masks(Geometry(6, 6, 3, 3, 1, 0, 4, 4, 4, 1)).shape == (9, 0)
    m = kconv.tap_masks(Geometry(2, 3, 3, 3, 1, 1, 2, 3, 2, 1))
    assert m.shape == (9, 12)
    # tap (0, 0) reads the pixel up-left: inside only for a >= 1 and b >= 1, in both stacked planes
    assert m[0].tolist() == [0, 0, 0, 0, 1, 1] * 2
