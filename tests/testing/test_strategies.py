"""The strategies draw only valid objects (checked by using them) and shrink to the simplest ones."""
import math

import numpy as np
import pytest
from hypothesis import find, given, settings
from hypothesis import strategies as st

import genbound as gb
from genbound.testing.strategies import (BoundArguments, ConvGeometry, bound_arguments, conv_geometries,
                                         cp_factors, cp_steps, datasets, directions, parameter_vectors, small_cnns)


@given(conv_geometries(max_size=5, max_kernel=5, max_stride=3))
def test_conv_geometries_give_an_output(geo):
    assert geo.out_height >= 1 and geo.out_width >= 1
    layer = gb.nn.Conv2d(1, 1, geo.kernel_size, geo.stride, geo.padding).initialize(0)
    y, _ = layer.forward(np.ones((1, 1, geo.height, geo.width)))
    assert y.shape == (1, 1, geo.out_height, geo.out_width)  # the engine agrees with the geometry


def test_conv_geometries_with_a_kernel_larger_than_the_image():
    geos = [find(conv_geometries(max_size=1, max_kernel=5), lambda g, k=k: g.kernel_size == k) for k in (3, 5)]
    assert [g.padding for g in geos] == [1, 2] and all(g.out_height >= 1 for g in geos)


@given(cp_factors())
def test_cp_factors_share_output_and_rank_axes(factors):
    assert len({f.shape[:2] for f in factors}) == 1 and 1 <= len(factors) <= 4
    w = gb.factor.reconstruct(factors=factors)
    assert w.shape == (factors[0].shape[0], *(f.shape[2] for f in factors))


@given(cp_factors(rank=2, order=3, dtype=np.float32))
def test_cp_factors_of_a_given_rank_and_order(factors):
    assert len(factors) == 3 and all(f.shape[1] == 2 and f.dtype == np.float32 for f in factors)


@given(cp_steps(max_lr=0.5))
def test_cp_steps_are_arguments_of_delta(step):
    factors, grads, lr = step
    assert abs(lr) <= 0.5 and [g.shape for g in grads] == [f.shape for f in factors]
    gb.factor.delta(factors=factors, grads=grads, lr=lr)


@settings(max_examples=10)
@given(small_cnns(filters="full", dtype=np.float32), small_cnns(filters="cp", rank=2))
def test_small_cnns_full_and_cp(full, cp):
    convs = [layer for layer in full.layers if isinstance(layer, (gb.nn.Conv2d, gb.nn.CPConv2d))]
    assert all(isinstance(layer, gb.nn.Conv2d) for layer in convs) and full.dtype == np.float32
    assert all(isinstance(layer, gb.nn.CPConv2d) and layer.rank == 2 for layer in cp.layers
               if isinstance(layer, (gb.nn.Conv2d, gb.nn.CPConv2d)))
    x = np.random.default_rng(0).normal(size=(2, 1, 6, 6))
    assert full.forward(x).shape == cp.forward(x).shape == (2, 4)


@settings(max_examples=10)
@given(small_cnns(), datasets(corrupted=None))
def test_datasets_fit_small_cnns(model, data):
    loss, grads = model.loss_and_grad(data.x_train, data.y_train)
    assert np.isfinite(loss) and set(grads) == set(model.params)
    assert data.classes == 4 and data.m >= 4


@settings(max_examples=10)
@given(datasets(corrupted=True))
def test_corrupted_datasets_record_their_randomization(data):
    assert data.info["randomization"]["kind"] in gb.data.RANDOMIZATIONS


@settings(max_examples=5)
@given(st.data())
def test_parameter_vectors_and_directions(draw):
    model = draw.draw(small_cnns(dtype=np.float32))
    w = draw.draw(parameter_vectors(model))
    v = draw.draw(directions(model))
    assert w.shape == v.shape == (model.n_params,) and w.dtype == np.float32
    assert math.isclose(np.linalg.norm(v), 1.0)
    model.set_flat(w)
    assert np.all(np.isfinite(model.forward(np.ones((1, 1, 6, 6)))))


@given(bound_arguments(min_m=8))
def test_bound_arguments_are_accepted_by_the_bounds(args):
    assert isinstance(args, BoundArguments)
    assert gb.bounds.sqrt_gap_bound(args.N, args.m) >= 0
    b = gb.bounds.langford_seeger_bound(args.emp_error, args.kl, args.m, args.delta)
    assert args.emp_error - 1e-12 <= b <= 1
    assert gb.bounds.mcallester_bound(args.emp_error, args.kl, args.m, args.delta) >= args.emp_error


def test_strategies_shrink_to_the_simplest_objects():
    assert find(conv_geometries(), lambda g: True) == ConvGeometry(1, 1, 1, 1, 0)
    assert find(bound_arguments(), lambda a: True) == BoundArguments(1, 1, 0.5, 0.0, 0.0)
    smallest = find(cp_factors(), lambda f: True)
    assert [f.shape for f in smallest] == [(1, 1, 1)]
    assert find(cp_steps(), lambda s: True)[2] == 0.0


def test_strategy_arguments_are_checked():
    with pytest.raises(ValueError, match="filters"):
        find(small_cnns(filters="dense"), lambda m: True)
    with pytest.raises(ValueError, match="rank"):
        find(small_cnns(filters="full", rank=1), lambda m: True)
    with pytest.raises(ValueError, match="min_delta"):
        bound_arguments(min_delta=1.0)
    with pytest.raises(ValueError, match="max_m"):
        bound_arguments(min_m=10, max_m=5)
