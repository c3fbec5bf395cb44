"""Tests of the PAC-Bayes protocol: declared in genbound.bounds, run by genbound.experiments.run_protocol.

The three guarantees: the union is charged over the list actually run; preprocessing statistics come only from
the prior part; prior data and bound data cannot overlap.
"""
import dataclasses
import inspect
import json
import math

import numpy as np
import pandas as pd
import pytest

import genbound as gb
from genbound.bounds import (DataDependentPrior, PosteriorConfig, PriorConfig, Protocol, ProtocolResult, Refinement,
                             VarianceGrid, example_fingerprints, family_bounds, pac_bayes_bounds, scaling_signature)
from genbound.experiments import prepare_data, refine_protocol, run_protocol, split_indices
from genbound.nn import Conv2d, CPConv2d, Dense, GlobalAvgPool, MaxPool2d, ReLU, Sequential


def tiny_model(seed=0):
    return Sequential([Conv2d(1, 3, 3, padding=1), ReLU(), MaxPool2d(2), CPConv2d(3, 6, 3, rank=1, padding=1),
                       ReLU(), GlobalAvgPool(), Dense(6, 10)], seed=seed, input_shape=(1, 8, 8))


@pytest.fixture(scope="module")
def raw():
    return gb.data.load_digits(seed=0, scaling="raw").subset(np.arange(240), np.arange(60))


def small_protocol(*configs, **kw):
    configs = configs or (PriorConfig("a", epochs=2),)
    kw.setdefault("posterior", PosteriorConfig(max_iter=15, batch_size=32))
    kw.setdefault("n_samples", 20)
    kw.setdefault("n_test_samples", 3)
    kw.setdefault("pixel_max", 16.0)
    return Protocol(priors=configs, **kw)


@pytest.fixture(scope="module")
def two(raw):
    protocol = small_protocol(PriorConfig("a", epochs=20, batch_size=16),
                              PriorConfig("b", epochs=20, batch_size=16, fraction=0.6, variance_groups="layer",
                                          prior_scale="init", grid=VarianceGrid("uniform", b=20, size=100),
                                          early_stopping=0.25),
                              preprocessing="standardize_prior",
                              posterior=PosteriorConfig(max_iter=15, batch_size=32, std_init=0.03))
    return protocol, run_protocol(protocol, raw, tiny_model())


# ---------------------------------------------------------------- the declaration

def test_protocol_json_round_trip_and_defaults(tmp_path):
    p = small_protocol(PriorConfig("a"), PriorConfig("b", grid=VarianceGrid("uniform", b=20, size=240),
                                                     variance_groups="layer", early_stopping=0.2))
    assert Protocol.from_json(p.to_json()) == p
    path = p.save(tmp_path / "p.json")
    assert Protocol.load(path) == p
    d = json.loads(p.to_json())
    assert d["priors"][1]["grid"] == {"kind": "uniform", "b": 20.0, "c": 0.1, "size": 240}
    assert d["format"] == "genbound.bounds.Protocol/1"
    q = Protocol(priors=(PriorConfig("x"),))
    assert (q.preprocessing, q.n_samples, q.delta_pac_bayes, q.delta_mc) == ("fixed", 5000, 0.025, 0.01)
    assert q.families == ("langford_seeger", "catoni", "dziugaite_roy")
    with pytest.raises(dataclasses.FrozenInstanceError):
        q.n_samples = 3


def test_delta_is_divided_over_the_declared_list():
    p = small_protocol(*(PriorConfig(f"c{i}") for i in range(5)), families=("langford_seeger", "catoni"),
                       delta_pac_bayes=0.02, delta_mc=0.01)
    assert (p.n_configs, p.n_families) == (5, 2)
    assert p.delta_per_bound == pytest.approx(0.02 / 10)
    assert p.delta_mc_per_config == pytest.approx(0.01 / 5)
    assert p.delta == pytest.approx(0.03)


def test_protocol_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="^priors"):
        Protocol(priors=())
    with pytest.raises(ValueError, match="^priors"):
        Protocol(priors=(PriorConfig("a"), PriorConfig("a")))
    with pytest.raises(TypeError, match="^priors"):
        Protocol(priors=("a",))
    with pytest.raises(ValueError, match="^families"):
        Protocol(priors=(PriorConfig("a"),), families=("bernstein",))
    with pytest.raises(ValueError, match="^delta_mc"):
        Protocol(priors=(PriorConfig("a"),), delta_pac_bayes=0.6, delta_mc=0.5)
    with pytest.raises(ValueError, match="^preprocessing"):
        Protocol(priors=(PriorConfig("a"),), preprocessing="standardize")
    with pytest.raises(ValueError, match="^fraction"):
        PriorConfig("a", fraction=1.0)
    with pytest.raises(ValueError, match="^variance_groups"):
        PriorConfig("a", variance_groups="tensor")
    with pytest.raises(ValueError, match="^size"):
        VarianceGrid("uniform", size=0)
    with pytest.raises(ValueError, match="^objective"):
        PosteriorConfig(objective="elbo")


def test_no_hand_typed_union_anywhere():
    for fn in (run_protocol, pac_bayes_bounds, gb.bounds.report):
        assert "n_configs" not in inspect.signature(fn).parameters
    assert "n_configs" not in {f.name for f in dataclasses.fields(gb.bounds.ReportConfig)}
    from genbound.cli import build_parser
    with pytest.raises(SystemExit):
        build_parser().parse_args(["bounds", "--n-configs", "8"])


# ---------------------------------------------------------------- the run

def test_union_charged_over_the_list_actually_run(raw, two):
    protocol, res = two
    t = res.table
    assert len(t) == 2 * 3 and set(t["config"]) == {"a", "b"}
    assert (t["n_configs"] == 2).all() and (t["n_families"] == 3).all()
    assert np.allclose(t["delta_row"], 0.025 / 6) and np.allclose(t["delta_mc_row"], 0.01 / 2)
    # the same first configuration run alone is charged K = 1: same posterior, smaller charges, smaller bounds
    alone = run_protocol(dataclasses.replace(protocol, priors=protocol.priors[:1]), raw, tiny_model()).table
    a2 = t[t["config"] == "a"].set_index("family")
    a1 = alone.set_index("family")
    assert (a1["n_configs"] == 1).all() and np.allclose(a1["delta_row"], 0.025 / 3)
    assert np.allclose(a1["kl"], a2["kl"]) and np.allclose(a1["train_error_mc"], a2["train_error_mc"])
    assert (a2["value"] < 1).all() and (a1["value"] < a2["value"]).all()
    # both recompute from their own ingredients
    for table in (t, alone):
        for _, row in table.iterrows():
            values, upper, _ = family_bounds(row["train_error_mc"], int(row["n_mc"]), row["kl"] + row["grid_nats"],
                                             int(row["m"]), row["delta_row"], row["delta_mc_row"])
            assert row["value"] == pytest.approx(values[row["family"]], rel=1e-12)
            assert row["train_upper"] == pytest.approx(upper, rel=1e-12)
            assert row["delta_row"] == pytest.approx(row["delta_pac_bayes"] / (row["n_configs"] * row["n_families"]))
            assert row["delta_mc_row"] == pytest.approx(row["delta_mc"] / row["n_configs"])


def test_result_rows_carry_every_ingredient(raw, two):
    protocol, res = two
    t = res.table
    assert list(t.columns) == gb.bounds.PROTOCOL_COLUMNS
    assert res.bound == t["value"].min() == res.headline["value"]
    b = t[t["config"] == "b"].iloc[0]
    assert b["m_prior"] == round(0.6 * raw.m) and b["m"] == raw.m - b["m_prior"]
    assert b["grid_nats"] == pytest.approx(len(res.fits["b"].prior.js) * math.log(100))
    assert 0 <= b["prior_epochs_used"] <= 20
    a = t[t["config"] == "a"].iloc[0]
    assert a["grid_nats"] == pytest.approx(2 * math.log(int(a["prior_j"])) + math.log(math.pi ** 2 / 6))
    assert (t["scaling"] == "standardize (statistics of the prior part)").all()
    per = res.per_family()
    assert list(per["family"]) == list(protocol.families)


def test_result_saves_beside_and_feeds_the_report(raw, two, tmp_path):
    protocol, res = two
    paths = res.save(tmp_path, stem="run")
    assert Protocol.load(paths["protocol"]) == protocol
    back = pd.read_csv(paths["table"])
    assert np.allclose(back["value"], res.table["value"])
    assert json.loads(open(paths["result"]).read())["bound"] == pytest.approx(res.bound)
    data = prepare_data(protocol, raw, np.arange(raw.m))  # fixed scaling: data-independent
    model = tiny_model()
    table = gb.bounds.report(model, data, prior=res, config=gb.bounds.ReportConfig(pac_bayes=False,
                                                                                     compression=False))
    rows = table[table["bound"].str.contains("protocol")]
    assert len(rows) == 3 and (rows["n_configs"] == 2).all()
    assert rows["value"].min() == pytest.approx(res.bound)


def test_run_is_reproducible(raw, two):
    protocol, res = two
    again = run_protocol(protocol, raw, tiny_model())
    pd.testing.assert_frame_equal(again.table.drop(columns=["seconds"]), res.table.drop(columns=["seconds"]))


# ---------------------------------------------------------------- refining posteriors after the run

@pytest.fixture(scope="module")
def refined(raw, two):
    _, res = two
    refs = (Refinement("a"), Refinement("b", PosteriorConfig(max_iter=10, batch_size=32), name="b-more"))
    return refs, refine_protocol(res, raw, tiny_model(), refs, n_samples=30, delta_mc=0.02, seed=3,
                                 n_test_samples=4)


def test_refinement_pays_only_for_its_fresh_draws(raw, two, refined):
    protocol, res = two
    refs, ref = refined
    t = ref.table
    assert list(t.columns) == gb.bounds.REFINEMENT_COLUMNS
    assert len(t) == 2 * 3 and set(t["refinement"]) == {"a+0 quad", "b-more"}
    # the PAC-Bayes statements are the protocol's (uniform over posteriors): same delta per row; the new
    # Monte-Carlo estimates share delta' = 0.02 over T = 2 refinements
    assert np.allclose(t["delta_row"], protocol.delta_per_bound) and (t["n_configs"] == 2).all()
    assert np.allclose(t["delta_mc_row"], 0.02 / 2) and (t["n_refinements"] == 2).all()
    assert np.allclose(t["delta_total"], 0.025 + 0.02) and ref.confidence == pytest.approx(1 - 0.045)
    assert (t["n_mc"] == 30).all() and (t["n_test_mc"] == 4).all()
    for _, row in t.iterrows():
        values, upper, _ = family_bounds(row["train_error_mc"], int(row["n_mc"]), row["kl"] + row["grid_nats"],
                                         int(row["m"]), row["delta_row"], row["delta_mc_row"])
        assert row["value"] == pytest.approx(values[row["family"]], rel=1e-12)
        assert row["train_upper"] == pytest.approx(upper, rel=1e-12)
    # zero steps: the protocol's posterior and KL, only the estimate is new
    a = t[t["refinement"] == "a+0 quad"].iloc[0]
    pa = res.table[res.table["config"] == "a"].iloc[0]
    assert np.array_equal(ref.fits["a+0 quad"].posterior.mean, res.fits["a"].posterior.mean)
    assert a["kl"] == pytest.approx(pa["kl"], rel=1e-12) and a["prior_j"] == pa["prior_j"]
    assert a["m"] == pa["m"] and a["posterior_steps"] == pa["posterior_steps"]
    # ten more steps from b's posterior, with b's per-layer variances and init scales
    b = t[t["refinement"] == "b-more"].iloc[0]
    assert not np.array_equal(ref.fits["b-more"].posterior.mean, res.fits["b"].posterior.mean)
    assert b["posterior_steps"] == protocol.posterior.max_iter + 10 and b["variance_groups"] == "layer"
    assert ref.bound == t["value"].min()


def test_refinement_draws_are_fresh_and_seeded(raw, two, refined, monkeypatch):
    _, res = two
    refs, ref = refined
    again = refine_protocol(res, raw, tiny_model(), refs, n_samples=30, delta_mc=0.02, seed=3, n_test_samples=4)
    pd.testing.assert_frame_equal(again.table.drop(columns=["seconds"]), ref.table.drop(columns=["seconds"]))
    # another seed: the same posteriors (seeded by their own PosteriorConfig), other draws (a scouting run)
    scout = refine_protocol(res, raw, tiny_model(), refs, n_samples=30, delta_mc=0.02, seed=4, n_test_samples=4)
    for r in refs:
        assert np.array_equal(scout.fits[r.name].posterior.mean, ref.fits[r.name].posterior.mean)
    # record every seed of the Monte-Carlo draws: the refinement's streams are none of the protocol's
    import copy

    import genbound.experiments.protocol as mod

    seeds, real = [], mod.gibbs_error

    def spy(model, data, posterior, n_samples, seed, chunk_size):
        seeds.append(copy.deepcopy(seed))
        return real(model, data, posterior, n_samples, seed=seed, chunk_size=chunk_size)

    monkeypatch.setattr(mod, "gibbs_error", spy)
    run_protocol(res.protocol, raw, tiny_model())
    protocol_seeds, seeds[:] = list(seeds), []
    refine_protocol(res, raw, tiny_model(), refs, n_samples=30, delta_mc=0.02, seed=3, n_test_samples=4)
    first = {tuple(np.random.default_rng(s).standard_normal(4)) for s in protocol_seeds}
    fresh = [tuple(s.standard_normal(4)) for s in seeds]
    assert len(fresh) == 4 and len(set(fresh)) == 4 and not first & set(fresh)


def test_progress_lines_name_each_posterior_and_its_best_bound(raw, two, refined, capsys):
    _, res = two
    refs, ref = refined
    refine_protocol(res, raw, tiny_model(), refs, n_samples=30, delta_mc=0.02, seed=3, n_test_samples=4,
                    progress=True)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(refs)
    for t, (line, r) in enumerate(zip(lines, refs)):
        best = ref.table[ref.table["refinement"] == r.name]["value"].min()  # over the protocol's families only
        assert line.startswith(f"[{t + 1}/{len(refs)}] {r.name}: KL ") and f"best bound {best:.4f}" in line


def test_refinement_refuses_what_it_cannot_pay_for(raw, two, tmp_path):
    _, res = two
    ok = dict(n_samples=5, n_test_samples=2)
    with pytest.raises(ValueError, match="^refinements: configuration 'c' is not in"):
        refine_protocol(res, raw, tiny_model(), [Refinement("c")], **ok)
    with pytest.raises(ValueError, match="^refinements: expected distinct names"):
        refine_protocol(res, raw, tiny_model(), [Refinement("a"), Refinement("a")], **ok)
    with pytest.raises(ValueError, match="^refinements: expected at least one"):
        refine_protocol(res, raw, tiny_model(), [], **ok)
    with pytest.raises(TypeError, match="^refinements: expected Refinement"):
        refine_protocol(res, raw, tiny_model(), ["a"], **ok)
    with pytest.raises(TypeError, match="^result"):
        refine_protocol(res.table, raw, tiny_model(), [Refinement("a")], **ok)
    bare = ProtocolResult(res.protocol, res.table, res.info)
    with pytest.raises(ValueError, match="^result: carries no fitted posterior for 'a'"):
        refine_protocol(bare, raw, tiny_model(), [Refinement("a")], **ok)
    with pytest.raises(ValueError, match="^data: not the data the protocol ran on"):
        refine_protocol(res, raw.subset(np.arange(200), np.arange(60)), tiny_model(), [Refinement("a")], **ok)
    with pytest.raises(ValueError, match="^model_or_name: expected the architecture"):
        refine_protocol(res, raw, tiny_model(), [Refinement("a")], rank=1, **ok)
    with pytest.raises(ValueError, match="^delta_mc: expected delta_pac_bayes"):
        refine_protocol(res, raw, tiny_model(), [Refinement("a")], delta_mc=0.99, **ok)
    with pytest.raises(ValueError, match="^n_samples"):
        refine_protocol(res, raw, tiny_model(), [Refinement("a")], n_samples=0)
    with pytest.raises(TypeError, match="^posterior"):
        Refinement("a", posterior=3)
    with pytest.raises(TypeError, match="^config"):
        Refinement("")


def test_refinement_saves_its_accounting(refined, tmp_path):
    refs, ref = refined
    paths = ref.save(tmp_path, stem="ref")
    declared = json.loads(open(paths["refinements"]).read())
    assert [r["name"] for r in declared["refinements"]] == [r.name for r in refs]
    assert declared["confidence"] == pytest.approx(ref.confidence) and declared["delta_mc"] == 0.02
    assert np.allclose(pd.read_csv(paths["table"])["value"], ref.table["value"])
    assert json.loads(open(paths["result"]).read())["bound"] == pytest.approx(ref.bound)


# ---------------------------------------------------------------- preprocessing from the prior part only

def test_standardization_statistics_come_only_from_the_prior_part(raw):
    protocol = small_protocol(preprocessing="standardize_prior")
    prior_idx, bound_idx = split_indices(raw.m, 0.5, 0)
    base = prepare_data(protocol, raw, prior_idx)
    assert np.array_equal(base.info["scaling_fit"], prior_idx)
    # change a bound-part image: the statistics and every prior-part image stay the same
    x = raw.x_train.copy()
    x[bound_idx[0]] = 16.0 - x[bound_idx[0]]
    x[bound_idx[1]] += 3.0
    moved = prepare_data(protocol, dataclasses.replace(raw, x_train=x), prior_idx)
    assert np.array_equal(moved.info["mean"], base.info["mean"])
    assert np.array_equal(moved.info["scale"], base.info["scale"])
    assert np.array_equal(moved.x_train[prior_idx], base.x_train[prior_idx])
    assert np.array_equal(moved.x_test, base.x_test)
    # change a prior-part image: they move (the check above can fail)
    x = raw.x_train.copy()
    x[prior_idx[0]] += 5.0
    other = prepare_data(protocol, dataclasses.replace(raw, x_train=x), prior_idx)
    assert not np.array_equal(other.info["mean"], base.info["mean"])
    # the statistics are those of the prior part, computed independently
    ref = raw.x_train[prior_idx].astype(np.float64)
    assert np.allclose(base.info["mean"], ref.mean(axis=0))
    std = ref.std(axis=0)
    assert np.allclose(base.info["scale"], np.where(std > 0, std, 1.0))


def test_fixed_scaling_and_refused_inputs(raw):
    fixed = prepare_data(small_protocol(), raw, np.arange(10))
    assert fixed.info["scaling"] == "fixed" and np.allclose(fixed.x_train, raw.x_train / 16.0)
    already = gb.data.load_digits(seed=0, scaling="fixed")
    assert prepare_data(small_protocol(pixel_max=None), already, np.arange(10)) is already
    with pytest.raises(ValueError, match="^pixel_max"):
        prepare_data(small_protocol(pixel_max=None), raw, np.arange(10))
    leaked = gb.data.load_digits(seed=0, scaling="standardize")
    with pytest.raises(ValueError, match="^data"):
        prepare_data(small_protocol(), leaked, np.arange(10))


def test_protocol_run_on_raw_and_fixed_data_agree(raw):
    # standardize_prior from raw or from fixed-scaled pixels: the same standardized images (up to rounding)
    protocol = small_protocol(preprocessing="standardize_prior")
    prior_idx, _ = split_indices(raw.m, 0.5, 0)
    a = prepare_data(protocol, raw, prior_idx)
    fixed = dataclasses.replace(raw, x_train=raw.x_train / 16, x_test=raw.x_test / 16,
                                info=dict(raw.info, scaling="fixed"))
    b = prepare_data(protocol, fixed, prior_idx)
    varying = raw.x_train[prior_idx].std(axis=0) > 0  # pixels constant on the prior part are only centered
    assert np.allclose(a.x_train[:, varying], b.x_train[:, varying], atol=1e-12)
    assert np.allclose(a.x_test[:, varying], b.x_test[:, varying], atol=1e-12)
    assert np.allclose(a.x_train[:, ~varying], 16 * b.x_train[:, ~varying], atol=1e-12)


# ---------------------------------------------------------------- prior data and bound data cannot overlap

def test_prior_and_bound_data_cannot_overlap(raw, two):
    _, res = two
    prior = res.priors["a"]
    data = prepare_data(small_protocol(), raw, np.arange(raw.m))  # fixed scaling
    part_prior, part_bound = data.split_train(0.5, seed=0)
    seen = example_fingerprints(part_prior)
    # building a prior whose bound data are its own training data (or the whole training set) is refused
    with pytest.raises(ValueError, match="^data: .* seen by the data-dependent prior"):
        DataDependentPrior(prior.mean, data, seen=seen, scaling=scaling_signature(part_prior))
    with pytest.raises(ValueError, match="^data: 120 of its 120"):
        DataDependentPrior(prior.mean, part_prior, seen=seen, scaling=scaling_signature(part_prior))
    ok = DataDependentPrior(prior.mean, part_bound, seen=seen, scaling=scaling_signature(part_prior))
    model = tiny_model()
    # and the bound functions refuse overlapping bound data for an existing prior
    with pytest.raises(ValueError, match="^data: .* seen by the data-dependent prior"):
        pac_bayes_bounds(model, data, ok, max_iter=2, n_samples=2)
    with pytest.raises(ValueError, match="^data: .* seen by the data-dependent prior"):
        gb.bounds.optimize_posterior(model, part_prior.subset(np.arange(5)), ok, max_iter=1)
    res_ok = pac_bayes_bounds(model, part_bound, ok, max_iter=2, n_samples=2)
    assert res_ok.m == part_bound.m
    # bound data preprocessed differently cannot be checked, and are refused
    std = gb.data.standardize(data, fit=np.arange(100))
    with pytest.raises(ValueError, match="^data: preprocessed as"):
        pac_bayes_bounds(model, std.subset(np.arange(120, 240)), ok, max_iter=2, n_samples=2)
    # every protocol prior records exactly its prior part
    for name, p in res.priors.items():
        assert not np.isin(example_fingerprints(p.data), p.seen).any()
        assert p.seen.size + p.data.m == raw.m


def test_fingerprints_identify_examples():
    x = np.zeros((3, 1, 2, 2))
    x[1, 0, 0, 0] = 1.0
    fp = example_fingerprints((x, np.array([0, 0, 1])))
    assert fp.dtype == np.uint64 and len(set(fp.tolist())) == 3  # pixels and label both count
    assert example_fingerprints((x.astype(np.float32), np.array([0, 0, 1]))).tolist() == fp.tolist()


# ---------------------------------------------------------------- the command line

def test_cli_bounds_runs_the_protocol(tmp_path, capsys):
    from genbound.cli import main

    path = tmp_path / "bounds.csv"
    assert main(["bounds", "--epochs", "1", "--rank", "1", "--quiet", "--no-compression", "--pac-bayes-samples", "4",
                 "--posterior-steps", "4", "--csv", str(path)]) == 0
    out = capsys.readouterr().out
    assert "protocol minimum" in out and "K = 1" in out and f"wrote {path}" in out
    table = pd.read_csv(path)
    assert list(table.columns) == ["model", *gb.bounds.REPORT_COLUMNS]
    assert table["model"].iloc[0] == "digits_gap rank=1 (1194 params)"
    assert table.set_index("bound").loc["Eq. 1, N = manifold dimension", "N"] == 1098
    assert (table["scaling"] == "fixed").all()
    saved = Protocol.load(tmp_path / "bounds_rank-1_protocol.json")
    assert saved.n_samples == 4 and saved.posterior.max_iter == 4 and saved.priors[0].epochs == 1


# ---------------------------------------------------------------- MNIST subset (slow)

@pytest.mark.slow
def test_mnist_subset_protocol_full_and_rank1():
    """The MNIST-subset protocol of docs/figures/make_bounds_mnist.py at its published settings (1,000 draws,
    at most 4 prior configurations): nonvacuous for the full and the rank-1 mnist_gap network."""
    module, _ = _script("make_bounds_mnist")
    protocol = module.mnist_protocol()
    assert protocol.n_samples == 1000 and protocol.n_configs <= 4
    data = gb.data.load_mnist_subset(seed=0, scaling="raw")
    for rank in (None, 1):
        res = run_protocol(protocol, data, "mnist_gap", rank=rank)
        assert (res.table["n_configs"] == protocol.n_configs).all()
        assert res.bound < 0.9


# ---------------------------------------------------------------- the published digits table

def _script(name):
    import importlib.util
    import os

    path = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "figures", f"{name}.py")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, os.path.dirname(path)


@pytest.mark.parametrize("tag, declare", [("rank1", "digits_protocol"), ("full", "digits_protocol_full")])
def test_published_protocol_tables_recompute(tag, declare):
    import os

    module, folder = _script("make_bounds_table")
    declared = getattr(module, declare)()
    saved = Protocol.load(os.path.join(folder, f"bounds_digits_protocol_{tag}.json"))
    assert saved == declared  # the published run is the declared protocol
    table = pd.read_csv(os.path.join(folder, f"bounds_digits_protocol_{tag}_table.csv"))
    assert len(table) == declared.n_configs * declared.n_families
    assert list(table["config"].unique()) == [p.name for p in declared.priors]
    for _, row in table.iterrows():
        assert row["n_configs"] == declared.n_configs and row["n_families"] == declared.n_families
        assert row["delta_row"] == pytest.approx(declared.delta_per_bound, rel=1e-9)
        assert row["delta_mc_row"] == pytest.approx(declared.delta_mc_per_config, rel=1e-9)
        values, upper, _ = family_bounds(row["train_error_mc"], int(row["n_mc"]), row["kl"] + row["grid_nats"],
                                         int(row["m"]), row["delta_row"], row["delta_mc_row"])
        assert row["value"] == pytest.approx(values[row["family"]], rel=1e-8)
        assert row["train_upper"] == pytest.approx(upper, rel=1e-8)
    report = pd.read_csv(os.path.join(folder, "bounds_digits.csv"))
    rows = report[report["bound"].str.contains("protocol") & report["model"].str.contains(
        "rank-1" if tag == "rank1" else "full")]
    assert rows["value"].min() == pytest.approx(table["value"].min(), rel=1e-9)
    assert (report["scaling"] == "fixed").all()


def test_published_refinement_recomputes_and_pays_for_its_draws():
    import os

    module, folder = _script("make_bounds_refine")
    declared = _script("make_bounds_table")[0].digits_protocol()
    stem = os.path.join(folder, "bounds_digits_refined_rank1")
    assert Protocol.load(stem + "_protocol.json") == declared  # the rerun the refinement relies on
    rerun = pd.read_csv(stem + "_protocol_table.csv")
    accounting = json.loads(open(stem + ".json").read())
    assert Protocol.from_dict(accounting["protocol"]) == declared
    certified = [r["name"] for r in accounting["refinements"]]
    assert len(certified) == 1 and certified[0] in [c.name for c in module.CANDIDATES]
    assert accounting["confidence"] == pytest.approx(1 - declared.delta_pac_bayes - accounting["delta_mc"])
    # the certified candidate is the one with the smallest scouting bound, scouted with other draws
    scouting = pd.read_csv(stem + "_scouting.csv")
    assert scouting.loc[scouting["scouting_bound"].idxmin(), "refinement"] == certified[0]
    assert module.SCOUT_SEED != module.CERTIFY_SEED
    table = pd.read_csv(stem + "_table.csv")
    assert len(table) == declared.n_families and (table["n_refinements"] == 1).all()
    for _, row in table.iterrows():
        assert row["delta_row"] == pytest.approx(declared.delta_per_bound, rel=1e-9)
        assert row["delta_mc_row"] == pytest.approx(accounting["delta_mc"], rel=1e-9)
        assert row["n_mc"] == module.CERTIFY_DRAWS
        values, upper, _ = family_bounds(row["train_error_mc"], int(row["n_mc"]), row["kl"] + row["grid_nats"],
                                         int(row["m"]), row["delta_row"], row["delta_mc_row"])
        assert row["value"] == pytest.approx(values[row["family"]], rel=1e-8)
        assert row["train_upper"] == pytest.approx(upper, rel=1e-8)
        # the refined posterior keeps its configuration's prior part and bound part
        base = rerun[rerun["config"] == row["config"]].iloc[0]
        assert row["m"] == base["m"] and row["m_prior"] == base["m_prior"]
    result = json.loads(open(stem + "_result.json").read())
    assert result["bound"] == pytest.approx(table["value"].min(), rel=1e-9)


def test_refinement_script_runs_end_to_end_at_small_counts(tmp_path):
    module, _ = _script("make_bounds_refine")
    certified = module.run(quick=True, out=str(tmp_path / "x"))
    assert certified.confidence == pytest.approx(0.965)
    assert len(certified.refinements) == 1 and (certified.table["n_refinements"] == 1).all()
    scouting = pd.read_csv(tmp_path / "bounds_digits_refined_rank1_scouting.csv")
    assert certified.refinements[0].name == scouting.loc[scouting["scouting_bound"].idxmin(), "refinement"]
    for stem in ("bounds_digits_refined_rank1", "bounds_digits_refined_rank1_protocol"):
        assert (tmp_path / f"{stem}_table.csv").exists() and (tmp_path / f"{stem}_result.json").exists()
