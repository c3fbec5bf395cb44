"""Experiment 5 (the rank-1 update in practice): the log-log slope fit on synthetic data and on a real rank-1
layer, and the experiment with a tiny configuration checked against independent runs."""
from __future__ import annotations

import json

import numpy as np
import pytest

import genbound as gb
from genbound.experiments import load_data
from genbound.experiments.rank1_update import (Rank1UpdateConfig, departure_slopes, fit_loglog_slope,
                                               rank1_update_experiment)
from genbound.experiments.results import VERDICTS
from genbound.factor import departure


def test_slope_of_an_exact_power_law():
    x = np.logspace(-4, -1, 7)
    fit = fit_loglog_slope(x, 3.0 * x ** 2)
    assert fit.slope == pytest.approx(2.0, abs=1e-12)
    assert fit.intercept == pytest.approx(np.log(3.0), abs=1e-10)
    assert fit.r2 == pytest.approx(1.0) and fit.n == 7


def test_slope_with_noise_matches_numpy_polyfit():
    rng = np.random.default_rng(0)
    x = np.logspace(-3, 0, 12)
    y = 0.5 * x ** 2 * np.exp(0.05 * rng.standard_normal(x.size))
    fit = fit_loglog_slope(x, y)
    slope, intercept = np.polyfit(np.log(x), np.log(y), 1)
    assert fit.slope == pytest.approx(slope, rel=1e-12) and fit.intercept == pytest.approx(intercept, rel=1e-12)
    assert abs(fit.slope - 2.0) < 4 * fit.stderr + 1e-3 and 0 < fit.stderr < 0.05


def test_slope_of_a_real_rank1_layer():
    """The part of w'' - w' beyond first order, measured from the two steps, scales as alpha^2 on the CP layers
    of the rank-1 digits net with a real batch gradient; w'' - w' itself as alpha."""
    data = load_data("digits", 0)
    model = gb.nn.reference_cnn("digits", rank=1, seed=0)
    _, _, wg = model.loss_and_grad(data.x_train[:64], data.y_train[:64], weight_grads=True)
    alphas = np.logspace(-4, -2, 5)
    layers = [i for i, layer in enumerate(model.layers) if hasattr(layer, "rank")]
    assert layers
    for i in layers:
        layer = model.layers[i]
        residual, total = [], []
        for a in alphas:
            # independent of genbound.factor: the factored and the plain step written out with einsum
            p, q, t, G = layer.p, layer.q, layer.t, wg[i]
            cp = "orc,orj,ork->ocjk"
            gp = np.einsum("ocjk,orj,ork->orc", G, q, t)
            gq = np.einsum("ocjk,orc,ork->orj", G, p, t)
            gt = np.einsum("ocjk,orc,orj->ork", G, p, q)
            w2 = np.einsum(cp, p - a * gp, q - a * gq, t - a * gt)
            w1 = np.einsum(cp, p, q, t) - a * G
            dep = departure(p, q, t, G, a)
            np.testing.assert_allclose(dep.total, w2 - w1, rtol=1e-9, atol=1e-14)
            residual.append(np.linalg.norm(dep.total - dep.first))
            total.append(np.linalg.norm(dep.total))
        assert fit_loglog_slope(alphas, residual).slope == pytest.approx(2.0, abs=0.01)
        assert fit_loglog_slope(alphas, total).slope == pytest.approx(1.0, abs=0.01)


@pytest.mark.parametrize("x, y, match", [
    ([1.0], [1.0], "at least 2"),
    ([1.0, 2.0], [1.0, -1.0], "y: expected positive"),
    ([0.0, 2.0], [1.0, 1.0], "x: expected positive"),
    ([2.0, 2.0], [1.0, 3.0], "distinct"),
    ([1.0, 2.0, 3.0], [1.0, 2.0], "same length"),
])
def test_slope_fit_errors(x, y, match):
    with pytest.raises(ValueError, match=match):
        fit_loglog_slope(x, y)


def test_rank1_update_experiment_tiny(tmp_path):
    cfg = Rank1UpdateConfig(epochs=2, batch_size=32, departure_epochs=1, sample_steps=2, n_train=96, n_test=48,
                            alphas=(1e-4, 1e-3, 1e-2, 1e-1))
    res = rank1_update_experiment("digits", seeds=2, workers=1, progress=False, config=cfg, out=tmp_path)
    assert res.name == "rank1_update" and {"runs", "summary", "departures", "slopes"} <= set(res.tables)
    assert all(c.verdict in VERDICTS for c in res.claims) and len(res.claims) == 4
    json.dumps(res.config)
    for ax in res.figures["rank1_update"].axes:
        assert ax.get_xlabel() and ax.get_ylabel() and ax.get_legend() is not None
    dep = res.tables["departures"]
    assert len(dep) == 2 * 2 * 2 * 4  # seeds x sampled steps x CP layers x alphas
    assert sorted(dep["step"].unique()) == [0, 2]  # 3 steps in one epoch of 96 / 32: first and last
    slopes = res.tables["slopes"]
    assert (slopes["n_alphas"] == 3).all()  # alphas <= fit_max_alpha = 1e-2
    np.testing.assert_allclose(slopes["residual_slope"], 2.0, atol=0.01)
    np.testing.assert_allclose(slopes["total_slope"], 1.0, atol=0.01)
    assert res.claims[0].verdict == "supported" and res.claims[1].verdict == "supported"
    # the slopes table is the fit of the departures table
    again = departure_slopes(dep, cfg.fit_max_alpha)
    np.testing.assert_allclose(again["residual_slope"], slopes["residual_slope"])
    # independent: the factor-space and projected runs, trained again here
    runs = res.tables["runs"]
    data = load_data("digits", 0).subset(np.arange(96), np.arange(48))
    for method in ("factor", "project"):
        model = gb.nn.reference_cnn("digits", rank=1, seed=1)
        gb.train(model, data, epochs=2, batch_size=32, optimizer=gb.nn.SGD(lr=0.05, cp_update=method), seed=1,
                 progress=False)
        row = runs[(runs["seed"] == 1) & (runs["method"] == method) & (runs["epoch"] == 2)].iloc[0]
        assert row["test_error"] == pytest.approx(model.error(data.x_test, data.y_test))
        assert row["train_error"] == pytest.approx(model.error(data.x_train, data.y_train))
    summary = res.tables["summary"].set_index("method")
    final = runs[runs["epoch"] == 2]
    assert summary.loc["project", "test_error_mean"] == pytest.approx(
        final[final["method"] == "project"]["test_error"].mean())


@pytest.mark.parametrize("kwargs, error", [
    ({"alphas": (1e-1, 1.0)}, ValueError),  # fewer than two alphas to fit on
    ({"alphas": (0.0, 1e-3, 1e-2)}, ValueError),
    ({"rank": 0}, ValueError),
    ({"sample_steps": 0}, ValueError),
    ({"scaling": "none"}, ValueError),
])
def test_config_validation(kwargs, error):
    with pytest.raises(error):
        Rank1UpdateConfig(**kwargs)


def test_experiment_argument_errors():
    with pytest.raises(ValueError, match="seeds"):
        rank1_update_experiment(seeds=0, progress=False)
    with pytest.raises(TypeError, match="config"):
        rank1_update_experiment(config=object(), progress=False)
