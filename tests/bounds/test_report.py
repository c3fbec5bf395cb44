"""Tests of genbound.bounds.report: columns, consistency of every row with the formulas it reports."""
import dataclasses
import json
import math

import numpy as np
import pandas as pd
import pytest

import genbound as gb
from genbound.bounds import (REPORT_COLUMNS, DataDependentPrior, ReportConfig, dziugaite_roy_bound, effective_capacity,
                             example_fingerprints, family_bounds, occam_bound, report, scaling_signature,
                             sqrt_gap_bound, vc_bound)
from genbound.bounds import PriorConfig
from genbound.experiments import bounds_report, data_dependent_prior

FAST = ReportConfig(max_iter=40, n_samples=12, n_test_samples=5, compression_k=(2, 8))
FAST_PRIOR = PriorConfig("fast", epochs=3)


@pytest.fixture(scope="module")
def problem(trained_tiny_cnn):
    model, w0, data = trained_tiny_cnn
    return model, w0, data


@pytest.fixture(scope="module")
def table(problem):
    model, w0, data = problem
    before = model.get_flat()
    out = bounds_report(model, data, w0=w0, config=FAST, prior=FAST_PRIOR)
    assert np.array_equal(model.get_flat(), before)
    return out


def test_columns_and_rows(table):
    assert list(table.columns) == REPORT_COLUMNS
    names = list(table["bound"])
    for expected in ["Eq. 1, N = parameters", "Eq. 1, N = manifold dimension", "VC, d = parameters",
                     "VC, d = BHLM bound", "McAllester", "Langford-Seeger", "Catoni",
                     "Dziugaite-Roy", "Dziugaite-Roy (data-dependent prior)", "Occam, quantized net"]:
        assert expected in names
    assert len(names) == len(set(names)) == 2 + 2 + 4 + 4 + 1
    assert set(table["bounds_what"]) == {"gap of the deterministic net", "error of the deterministic net",
                                         "error of the Gibbs classifier Q", "error of the quantized net"}


def test_flags_consistent_with_values(table):
    assert (table["vacuous"] == (table["error_bound"] >= 1)).all()
    assert (table["worse_than_chance"] == (table["error_bound"] >= 0.9)).all()
    gap_rows = table["bounds_what"] == "gap of the deterministic net"
    assert np.allclose(table.loc[gap_rows, "error_bound"], table.loc[gap_rows, "train_error"]
                       + table.loc[gap_rows, "value"])
    assert np.array_equal(table.loc[~gap_rows, "error_bound"], table.loc[~gap_rows, "value"])
    assert np.allclose(table["gap"], table["test_error"] - table["train_error"])


def test_deterministic_rows_recompute(problem, table):
    model, _, data = problem
    rows = table.set_index("bound")
    train, test = model.evaluate(data.x_train, data.y_train)[1], model.evaluate(data.x_test, data.y_test)[1]
    for name in ("Eq. 1, N = parameters", "VC, d = parameters"):
        assert rows.loc[name, "train_error"] == train and rows.loc[name, "test_error"] == test
    assert rows.loc["Eq. 1, N = parameters", "N"] == model.n_params
    assert rows.loc["Eq. 1, N = manifold dimension", "N"] == effective_capacity(model, method="manifold").total
    for name in ("Eq. 1, N = parameters", "Eq. 1, N = manifold dimension"):
        assert rows.loc[name, "value"] == sqrt_gap_bound(rows.loc[name, "N"], data.m)
        assert rows.loc[name, "m"] == data.m
    for name in ("VC, d = parameters", "VC, d = BHLM bound"):
        assert rows.loc[name, "value"] == vc_bound(rows.loc[name, "N"], data.m, 0.025, train_error=train)


def test_gibbs_rows_recompute_from_their_ingredients(problem, table):
    _, _, data = problem
    gibbs = table[table["bounds_what"] == "error of the Gibbs classifier Q"]
    assert len(gibbs) == 8
    families = {"McAllester": "mcallester", "Langford-Seeger": "langford_seeger", "Catoni": "catoni",
                "Dziugaite-Roy": "dziugaite_roy"}
    for _, row in gibbs.iterrows():
        j = int(row["prior_j"])
        # every family is charged the prior-variance grid (Dziugaite & Roy's weights), nothing else
        assert row["extra_nats"] == pytest.approx(2 * math.log(j) + math.log(math.pi ** 2 / 6), rel=1e-14)
        values, upper, _ = family_bounds(row["train_error"], int(row["n_mc"]), row["kl"] + row["extra_nats"],
                                         int(row["m"]), row["delta"], row["delta_mc"])
        family = families[row["bound"].split(" (")[0]]
        assert row["value"] == pytest.approx(values[family], rel=1e-12)
        assert row["train_upper"] == upper >= row["train_error"]
        assert row["n_mc"] == 12 and row["n_configs"] == 1
        assert row["value"] >= row["train_error"]
    dr = gibbs[gibbs["bound"].str.startswith("Dziugaite-Roy")]
    for _, row in dr.iterrows():  # Dziugaite & Roy's own formula with their grid term
        value = dziugaite_roy_bound(row["train_error"], row["kl"], int(row["m"]), row["delta"],
                                    prior_grid_j=int(row["prior_j"]), n_samples=int(row["n_mc"]),
                                    delta_prime=row["delta_mc"])
        assert row["value"] == pytest.approx(value, rel=1e-12)
    independent, dependent = dr.iloc[0], dr.iloc[1]
    assert independent["m"] == data.m
    assert dependent["m"] == data.m - round(0.5 * data.m)  # the prior's half is removed from m
    assert "data-dependent" in dependent["prior"] and "data-independent" in independent["prior"]


def test_rows_say_which_scaling(problem, table):
    # the fixture's data are a subset of digits standardized with statistics of all 1437 training images
    assert table["scaling"].str.startswith("standardize (statistics of all 1437 training images, this sample").all()
    fixed = gb.data.load_digits(seed=0, scaling="fixed").subset(np.arange(50), np.arange(10))
    model, _, _ = problem
    out = report(model, fixed, config=ReportConfig(pac_bayes=False, compression=False))
    assert (out["scaling"] == "fixed").all()


def test_occam_row_is_the_measured_quantized_net(problem, table):
    model, _, data = problem
    row = table.set_index("bound").loc["Occam, quantized net"]
    q = gb.bounds.compression_bound(model, data, k=(2, 8))
    assert row["train_error"] == q.train_error == q.quantized.model.error(data.x_train, data.y_train)
    assert row["test_error"] == q.quantized.model.error(data.x_test, data.y_test)
    assert row["value"] == occam_bound(row["train_error"], row["bits"], data.m, 0.025)
    assert row["kl"] == pytest.approx(row["bits"] * math.log(2))


def test_cheap_report_skips_expensive_rows(problem):
    model, w0, data = problem
    out = report(model, data, w0=w0, config=ReportConfig(pac_bayes=False, compression=False))
    assert list(out["bound"]) == ["Eq. 1, N = parameters", "Eq. 1, N = manifold dimension", "VC, d = parameters",
                                  "VC, d = BHLM bound"]


def test_hessian_row(problem):
    model, _, data = problem
    small = data.subset(np.arange(100))
    config = ReportConfig(pac_bayes=False, compression=False, hessian=True, z=0.5, hessian_k=6, hessian_dense_max=0)
    out = report(model, small, config=config).set_index("bound")
    row = out.loc["Eq. 1, N = Hessian eff. dim. (z=0.5, heuristic)"]
    cap = effective_capacity(model, small, method="hessian", z=0.5, k=6, dense_max=0)
    assert row["N"] == pytest.approx(cap.total, rel=1e-6)
    assert row["value"] == sqrt_gap_bound(row["N"], 100)
    assert row["N"] == cap.info["upper"] >= cap.info["lower"] > 0  # the pessimistic end of the bracket
    assert "Lanczos" in row["detail"] and "heuristic" in row["detail"]


def test_hessian_row_on_a_sample_of_the_training_examples(problem):
    """``hessian_sample``: N from the Hessian of the loss on those examples, sqrt(N/m) with the whole m."""
    model, _, data = problem
    small = data.subset(np.arange(100))
    config = ReportConfig(pac_bayes=False, compression=False, hessian=True, z=0.5, hessian_k=6, hessian_dense_max=0)
    name = "Eq. 1, N = Hessian eff. dim. (z=0.5, heuristic)"
    sample = np.arange(10, 70, 2)
    row = report(model, small, config=config, hessian_sample=sample).set_index("bound").loc[name]
    cap = effective_capacity(model, (small.x_train[sample], small.y_train[sample]), method="hessian", z=0.5, k=6,
                             dense_max=0)
    assert row["N"] == pytest.approx(cap.total, rel=1e-6) and row["m"] == 100
    assert row["value"] == sqrt_gap_bound(row["N"], 100)
    assert "a sample of 30 of the 100 training examples" in row["detail"]
    whole = report(model, small, config=config).set_index("bound").loc[name]
    every = report(model, small, config=config, hessian_sample=np.arange(100)).set_index("bound").loc[name]
    assert every["N"] == whole["N"] and "sample" not in whole["detail"]
    for bad in ([], [0, 0], [100], [-1], [0.5]):
        with pytest.raises(ValueError, match="hessian_sample"):
            report(model, small, config=config, hessian_sample=np.asarray(bad))


def test_report_without_w0_uses_a_zero_mean_prior(problem):
    model, _, data = problem
    out = report(model, data, config=dataclasses.replace(FAST, compression=False))
    gibbs = out[out["bounds_what"] == "error of the Gibbs classifier Q"]
    assert len(gibbs) == 4 and gibbs["prior"].str.contains("N\\(0, lambda I\\)").all()


def test_bad_input(problem):
    model, w0, data = problem
    with pytest.raises(TypeError, match="^model"):
        report("digits_gap", data)
    with pytest.raises(TypeError, match="^data"):
        report(model, (data.x_train, data.y_train))
    with pytest.raises(ValueError, match="^w0"):
        report(model, data, w0=w0[:-1])
    with pytest.raises(ValueError, match="^delta"):
        ReportConfig(delta=0.0)
    with pytest.raises(ValueError, match="^n_samples"):
        ReportConfig(n_samples=0)
    with pytest.raises(ValueError, match="^fraction"):
        PriorConfig("x", fraction=1.0)
    with pytest.raises(TypeError, match="^config"):
        report(model, data, config={"delta": 0.025})
    with pytest.raises(TypeError, match="^prior"):
        report(model, data, prior=w0)
    part_prior, part_bound = data.split_train(0.5, seed=0)
    short = DataDependentPrior(w0[:-1], part_bound, seen=example_fingerprints(part_prior),
                               scaling=scaling_signature(part_prior))
    with pytest.raises(ValueError, match="^prior.mean"):
        report(model, data, prior=short)

    class Empty:
        x_train = y_train = x_test = y_test = np.zeros(0)
        m = 0

    with pytest.raises(ValueError, match="^data"):
        report(model, Empty())


def test_report_config_is_printable_comparable_and_json_ready():
    config = ReportConfig(n_samples=40, compression_k=[2, 8])
    assert config == ReportConfig(n_samples=40, compression_k=(2, 8)) != ReportConfig()
    assert "n_samples=40" in repr(config)
    assert json.loads(json.dumps(dataclasses.asdict(config)))["compression_k"] == [2, 8]
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.delta = 0.1


def test_report_takes_the_trained_prior_and_accepts_a_generator(problem, table):
    model, w0, data = problem
    prior = data_dependent_prior(model, data, w0=w0, prior=FAST_PRIOR)
    assert prior.data.m == data.m - round(0.5 * data.m) and "held-out" in prior.description
    again = report(model, data, w0=w0, prior=prior, config=FAST, seed=0)
    pd.testing.assert_frame_equal(again, table)
    drawn = report(model, data, w0=w0, prior=prior, config=FAST, seed=np.random.default_rng(0))
    assert list(drawn["bound"]) == list(table["bound"])
    assert np.isfinite(drawn["value"]).all()
