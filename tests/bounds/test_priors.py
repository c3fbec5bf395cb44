"""Tests of genbound.experiments.priors: the training of data-dependent prior means for the bounds."""
import dataclasses

import numpy as np
import pytest

from genbound.bounds import DataDependentPrior, PriorConfig
from genbound.experiments import data_dependent_prior, train_prior_mean


@pytest.fixture(scope="module")
def problem(trained_tiny_cnn):
    return trained_tiny_cnn


def test_train_prior_mean_leaves_model_alone(problem):
    model, w0, data = problem
    start = model.copy()
    start.set_flat(w0)
    part, _ = data.split_train(0.5, seed=0)
    wp = train_prior_mean(start, part, epochs=2, seed=0)
    assert np.array_equal(start.get_flat(), w0)
    assert wp.shape == w0.shape and not np.array_equal(wp, w0)
    assert np.array_equal(wp, train_prior_mean(start, part, epochs=2, seed=0))


def test_data_dependent_prior_trains_on_the_held_out_part_only(problem):
    model, w0, data = problem
    before = model.get_flat()
    config = PriorConfig("quarter", fraction=0.25, epochs=2)
    prior = data_dependent_prior(model, data, w0=w0, prior=config)
    assert isinstance(prior, DataDependentPrior) and np.array_equal(model.get_flat(), before)
    part_prior, part_bound = data.split_train(0.25, seed=0)
    start = model.copy()
    start.set_flat(w0)
    assert np.array_equal(prior.mean, train_prior_mean(start, part_prior, epochs=2, seed=0))
    assert np.array_equal(prior.data.x_train, part_bound.x_train)
    assert np.array_equal(prior.data.x_test, data.x_test)
    assert prior.description == f"trained on {part_prior.m} held-out examples (0.25 of m, removed from m)"


def test_without_w0_the_prior_starts_from_a_fresh_initialization(problem):
    model, _, data = problem
    config = PriorConfig("fresh", epochs=1, seed=3)
    prior = data_dependent_prior(model, data, prior=config)
    assert not np.array_equal(prior.mean, model.get_flat())
    assert np.array_equal(prior.mean, data_dependent_prior(model, data, prior=config).mean)


def test_prior_config_and_bad_input(problem):
    model, _, data = problem
    fields = dataclasses.asdict(PriorConfig("default"))
    assert {k: fields[k] for k in ("fraction", "epochs", "batch_size", "lr", "momentum", "seed")} == dict(
        fraction=0.5, epochs=40, batch_size=64, lr=0.05, momentum=0.9, seed=0)
    with pytest.raises(ValueError, match="^lr"):
        PriorConfig("x", lr=0.0)
    with pytest.raises(TypeError, match="^prior"):
        data_dependent_prior(model, data, prior={"epochs": 1})
    with pytest.raises(TypeError, match="^data"):
        data_dependent_prior(model, (data.x_train, data.y_train))
