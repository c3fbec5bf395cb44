"""Run a declared PAC-Bayes protocol (:class:`genbound.bounds.Protocol`): split, preprocess, train every prior,
optimize every posterior, estimate, bound, and report the minimum with every choice paid for.

``genbound.bounds`` declares a protocol and measures; the training a protocol needs (prior means) happens here.
"""
from __future__ import annotations

import dataclasses
import math
import time

import numpy as np
import pandas as pd

from genbound._checks import check_dataset, check_int, check_model, check_named_entries, check_probability
from genbound._rng import as_generator
from genbound.bounds import (CATONI_GRID, PROTOCOL_COLUMNS, REFINEMENT_COLUMNS, DataDependentPrior, Protocol,
                             ProtocolResult, Refinement, RefinementResult,
                             example_fingerprints, family_bounds, gibbs_error, optimize_posterior, scaling_signature)
from genbound.data import standardize
from genbound.experiments.datasets import data_fingerprint
from genbound.experiments.priors import train_prior_mean_info
from genbound.nn import Sequential, reference_cnn

__all__ = ["split_indices", "prepare_data", "run_protocol", "refine_protocol"]


def split_indices(m, fraction, seed):
    """The prior part and the bound part of ``m`` training examples: one seeded permutation of ``range(m)``
    cut after ``round(fraction * m)`` (at least 1 on each side), each part sorted; the rule of
    :meth:`genbound.data.Dataset.split_train`, which looks only at ``m``."""
    if m < 2:
        raise ValueError(f"m: expected at least 2 training examples to split, got {m}")
    k = min(max(int(round(fraction * m)), 1), m - 1)
    order = as_generator(seed).permutation(m)
    return np.sort(order[:k]), np.sort(order[k:])


def prepare_data(protocol, data, prior_idx):
    """``data`` preprocessed as ``protocol`` declares, with statistics from the training examples ``prior_idx``
    only (their complement, the bound part, never enters them).

    ``"fixed"``: fixed-scaled data as they are; raw data divided by ``protocol.pixel_max``.
    ``"standardize_prior"``: :func:`genbound.data.standardize` with ``fit=prior_idx`` (raw or fixed-scaled data
    give the same images, up to rounding, except on pixels constant over the prior part, which are only centered).
    Data standardized with statistics of the whole training set are refused: they already carry the bound
    part's statistics.

    Returns
    -------
    Dataset
        ``info["scaling"]`` records the preprocessing (``info["scaling_fit"]`` the statistics' indices).
    """
    check_dataset(data)
    scaling = data.info.get("scaling")
    if scaling not in ("raw", "fixed"):
        raise ValueError(f"data: expected raw or fixed-scaled data (info['scaling'] 'raw' or 'fixed'), got "
                         f"{scaling!r}; standardization statistics of the whole training set depend on the bound's "
                         "examples (load with scaling='raw' or 'fixed' and let the protocol preprocess)")
    if protocol.preprocessing == "standardize_prior":
        return standardize(data, fit=np.asarray(prior_idx, dtype=np.int64))
    if scaling == "fixed":
        return data
    if protocol.pixel_max is None:
        raise ValueError("pixel_max: raw data and preprocessing 'fixed' need the protocol's pixel_max (16 for "
                         "digits, 255 for MNIST)")
    info = dict(data.info, scaling="fixed", pixel_max=protocol.pixel_max)
    return dataclasses.replace(data, x_train=data.x_train / protocol.pixel_max, x_test=data.x_test / protocol.pixel_max,
                               info=info)


def _architecture(model_or_name, config, rank, width, dtype):
    """The network a configuration trains its prior from: the given model's parameters (its initialization),
    or the reference network built with the configuration's seed."""
    if isinstance(model_or_name, Sequential):
        return model_or_name.copy()
    if isinstance(model_or_name, str):
        return reference_cnn(model_or_name, rank=rank, seed=config.seed, dtype=dtype, width=width)
    raise TypeError(f"model_or_name: expected a Sequential or a reference network name, got "
                    f"{type(model_or_name).__name__}")


def _derive(seed, k):
    return int(seed) * 1000 + k


def _rows(protocol, config, fit, bounds, upper, C, train_mc, test_err, prepared, *, delta_total, delta_mc,
          delta_mc_row, n_mc, n_test, m_prior, prior_errors, prior_epochs, steps, seconds):
    """One table row per bound family of ``protocol`` for a configuration's fitted posterior (PROTOCOL_COLUMNS)."""
    lam = np.atleast_1d(fit.prior.variance)
    grid_nats = fit.prior.nats
    scaling = str(prepared.info.get("scaling")) + (" (statistics of the prior part)"
                                                   if protocol.preprocessing == "standardize_prior" else "")
    rows = []
    for family in protocol.families:
        value = bounds[family]
        rows.append(dict(
            config=config.name, family=family, bound=f"{family} ({config.name})", value=value,
            bounds_what="error of the Gibbs classifier Q", m=fit.m, m_prior=m_prior, fraction=config.fraction,
            kl=fit.kl, grid_nats=grid_nats, grid=config.grid.describe(), prior_j=str(fit.prior.j),
            prior_variance=" ".join(f"{v:.4g}" for v in lam), variance_groups=config.variance_groups,
            prior_scale=config.prior_scale, n_configs=protocol.n_configs, n_families=protocol.n_families,
            delta_total=delta_total, delta_pac_bayes=protocol.delta_pac_bayes, delta_row=protocol.delta_per_bound,
            delta_mc=delta_mc, delta_mc_row=delta_mc_row, n_mc=n_mc, train_error_mc=train_mc.error,
            train_upper=upper, test_error_mc=test_err, n_test_mc=n_test,
            ratio_to_test=value / test_err if test_err and np.isfinite(test_err) else np.nan,
            catoni_C=C if family == "catoni" else np.nan, catoni_grid_size=len(CATONI_GRID), scaling=scaling,
            prior_train_error=prior_errors[0], prior_test_error=prior_errors[1], prior_epochs_used=prior_epochs,
            posterior_steps=steps, seconds=seconds))
    return rows


def _report(i, n, name, fit, train_mc, upper, test_err, bounds, families, seconds):
    """The progress line of posterior ``i`` of ``n`` (run_protocol's configurations, refine_protocol's
    refinements); the best bound is the smallest of ``families``."""
    best = min(bounds[f] for f in families)
    print(f"[{i + 1}/{n}] {name}: KL {fit.kl:.1f} + {fit.prior.nats:.1f} nats, m {fit.m}, Gibbs train "
          f"{train_mc.error:.4f} (upper {upper:.4f}), test {test_err:.4f}, best bound {best:.4f} "
          f"({seconds:.0f} s)", flush=True)


def run_protocol(protocol, data, model_or_name, *, rank=None, width=1.0, dtype=np.float64, chunk_size=2048,
                 progress=False):
    r"""Run every configuration of ``protocol`` on ``data`` and bound the Gibbs classifier of each.

    For each prior configuration k (K = ``len(protocol.priors)``, all run, in order):

    1. split the training set (:func:`split_indices`, ``protocol.split_seed``, the configuration's fraction);
    2. preprocess (:func:`prepare_data`) with statistics from the prior part only;
    3. train the prior mean on the prior part (:func:`genbound.experiments.train_prior_mean`, from the model's
       parameters or a reference network initialized with the configuration's seed; early stopping on a part of
       the prior part if declared); record the prior's examples as a :class:`genbound.bounds.DataDependentPrior`;
    4. optimize the posterior on the bound part (:func:`genbound.bounds.optimize_posterior`, from the prior mean,
       ``protocol.posterior``, the configuration's variance grid, groups and prior scales; its objective uses
       ``delta_pac_bayes``, so a configuration's posterior does not depend on the length of the list);
    5. estimate its Gibbs error on the bound part (``protocol.n_samples`` draws) and on the test set
       (``protocol.n_test_samples``, reported only);
    6. evaluate every family at :math:`\delta_{PB}/(KF)` with the Monte-Carlo estimate at :math:`\delta_{MC}/K`
       (:func:`genbound.bounds.family_bounds`; KL plus the variance grid's cost).

    With probability at least :math:`1 - \delta_{PB} - \delta_{MC}` every row holds, so the minimum over rows
    (``result.bound``) bounds the Gibbs error of the configuration that attains it.

    Parameters
    ----------
    protocol : genbound.bounds.Protocol
    data : Dataset
        Raw or fixed-scaled (``info["scaling"]``); its test set is measured only.
    model_or_name : genbound.nn.Sequential or str
        The architecture and its initialization, or a reference network name (``"digits_gap"``, ...), built
        with each configuration's seed.
    rank, width, dtype
        For a reference network name (:func:`genbound.nn.reference_cnn`).
    chunk_size : int
        Memory chunk of the Monte-Carlo evaluations.
    progress : bool
        Print one line per configuration.

    Returns
    -------
    genbound.bounds.ProtocolResult
    """
    if not isinstance(protocol, Protocol):
        raise TypeError(f"protocol: expected a genbound.bounds.Protocol, got {type(protocol).__name__}")
    check_dataset(data)
    if isinstance(model_or_name, Sequential):
        check_model(model_or_name, "model_or_name")
    K = protocol.n_configs
    d_row, d_mc = protocol.delta_per_bound, protocol.delta_mc_per_config
    rows, fits, priors = [], {}, {}
    started = time.perf_counter()
    for k, config in enumerate(protocol.priors):
        t0 = time.perf_counter()
        prior_idx, bound_idx = split_indices(data.m, config.fraction, protocol.split_seed)
        prepared = prepare_data(protocol, data, prior_idx)
        part_prior, part_bound = prepared.subset(prior_idx), prepared.subset(bound_idx)
        net = _architecture(model_or_name, config, rank, width, dtype)
        mean, train_info = train_prior_mean_info(net, part_prior, epochs=config.epochs, batch_size=config.batch_size,
                                                 lr=config.lr, momentum=config.momentum, seed=config.seed,
                                                 early_stopping=config.early_stopping)
        prior = DataDependentPrior(mean, part_bound, seen=example_fingerprints(part_prior),
                                   scaling=scaling_signature(part_prior),
                                   description=f"config {config.name!r}: trained on {part_prior.m} held-out examples")
        net.set_flat(mean)
        prior_train_err = net.evaluate(part_prior.x_train, part_prior.y_train)[1]
        prior_test_err = net.evaluate(part_bound.x_test, part_bound.y_test)[1] if part_bound.n_test else np.nan
        post = protocol.posterior
        scale = net.param_scales() if config.prior_scale == "init" else None
        fit = optimize_posterior(net, part_bound, prior, mean_init=mean, prior_scale=scale, std_init=post.std_init,
                                 objective=post.objective, max_iter=post.max_iter, batch_size=post.batch_size,
                                 lr_mean=post.lr_mean, lr_std=post.lr_std, lr_prior=post.lr_prior,
                                 delta=protocol.delta_pac_bayes, grid=config.grid, groups=config.variance_groups,
                                 seed=_derive(post.seed, k), prior_description=prior.description)
        train_mc = gibbs_error(net, part_bound, fit.posterior, protocol.n_samples,
                               seed=_derive(protocol.mc_seed, k), chunk_size=chunk_size)
        test_mc = (gibbs_error(net, (part_bound.x_test, part_bound.y_test), fit.posterior, protocol.n_test_samples,
                               seed=_derive(protocol.mc_seed, k) + 500, chunk_size=chunk_size)
                   if part_bound.n_test else None)
        grid_nats = fit.prior.nats
        bounds, upper, C = family_bounds(train_mc.error, protocol.n_samples, fit.kl + grid_nats, fit.m, d_row, d_mc)
        seconds = time.perf_counter() - t0
        test_err = test_mc.error if test_mc is not None else np.nan
        rows += _rows(protocol, config, fit, bounds, upper, C, train_mc, test_err, prepared,
                      delta_total=protocol.delta, delta_mc=protocol.delta_mc, delta_mc_row=d_mc,
                      n_mc=protocol.n_samples, n_test=protocol.n_test_samples if test_mc is not None else 0,
                      m_prior=part_prior.m, prior_errors=(prior_train_err, prior_test_err),
                      prior_epochs=train_info["epochs_used"], steps=post.max_iter, seconds=seconds)
        fits[config.name], priors[config.name] = fit, prior
        if progress:
            _report(k, K, config.name, fit, train_mc, upper, test_err, bounds, protocol.families, seconds)
    table = pd.DataFrame(rows, columns=PROTOCOL_COLUMNS)
    info = {"data_fingerprint": data_fingerprint(data), "data_scaling": data.info.get("scaling"),
            "data_source": data.info.get("source"), "m": data.m, "n_test": data.n_test,
            "model": model_or_name if isinstance(model_or_name, str) else repr(model_or_name),
            "rank": rank, "width": width, "seconds": time.perf_counter() - started,
            "n_configs_run": K, "finite": bool(np.all(np.isfinite(table["value"])))}
    if not math.isfinite(table["value"].min()):
        raise FloatingPointError("run_protocol: a bound came out non-finite")
    return ProtocolResult(protocol, table, info, fits, priors)


def _fresh(seed, t, use):
    """A generator for a refinement's posterior steps (use 0: ``seed`` its posterior's seed, t its configuration's
    index), its certifying draws (1) and its test draws (2; ``seed`` the call's, t its position): a SeedSequence
    stream of its own, distinct from every stream a protocol run seeds with an integer."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), t, use, 0x7EF1]))


def refine_protocol(result, data, model_or_name, refinements, *, n_samples, delta_mc=0.01, seed=0,
                    n_test_samples=None, rank=None, width=1.0, dtype=np.float64, chunk_size=2048, progress=False):
    r"""Optimize chosen posteriors of a protocol run further, and bound them paying only for new Monte-Carlo draws.

    For each declared :class:`genbound.bounds.Refinement` t = 1..T (its configuration's prior kept):

    1. continue the protocol's posterior of that configuration (its mean, standard deviations and prior
       variance) by :func:`genbound.bounds.optimize_posterior` on the same bound part with the refinement's
       settings (``max_iter=0``: unchanged);
    2. estimate its Gibbs error on the bound part with ``n_samples`` fresh draws (a seed stream of its own,
       never the protocol's) and on the test set (reported only);
    3. evaluate every family of the protocol at the protocol's :math:`\delta_{PB}/(KF)` with the Monte-Carlo
       upper bound at :math:`\delta'/T` (:func:`genbound.bounds.family_bounds`).

    Why this is paid for: each PAC-Bayes statement of the protocol holds for *every* posterior at once (for its
    prior, every grid variance and, for Catoni, every C of its grid), so the event that all K F of them hold
    (probability at least :math:`1-\delta_{PB}`) covers any posterior on those priors, chosen however, after
    looking at the protocol's results and the bound part included. A Monte-Carlo estimate holds only for the
    posterior and the draws it was made with: the refined posteriors get new draws, independent of every choice
    made before them, and the T estimates share :math:`\delta'` (Langford & Caruana 2001). With probability at
    least :math:`1-\delta_{PB}-\delta'` (``RefinementResult.confidence``) every refined row holds; the minimum
    over the refined rows and the protocol's own rows holds with probability at least
    :math:`1-\delta_{PB}-\delta_{MC}-\delta'`. Choose refinements by anything except their certifying draws
    (the posterior objective, or a scouting estimate with draws of another seed); declare them all here, so
    that T is the number actually certified.

    Parameters
    ----------
    result : genbound.bounds.ProtocolResult
        A protocol run of this process (its fitted posteriors and priors are kept in memory, not on disk).
    data : Dataset
        The data the protocol ran on (checked by fingerprint).
    model_or_name : genbound.nn.Sequential or str
        The architecture the protocol ran with (checked against ``result.info``).
    refinements : sequence of genbound.bounds.Refinement
        T >= 1, distinct names, each naming a configuration of the protocol.
    n_samples : int
        Fresh Monte-Carlo draws of each refined posterior on its bound part, >= 1.
    delta_mc : float
        :math:`\delta'`, the failure probability of the T new estimates together; with the protocol's
        ``delta_pac_bayes`` below 1.
    seed : int
        Root of the Monte-Carlo draws' seed streams, >= 0 (a refinement's posterior steps are seeded by its
        ``posterior.seed``, so a scouting call with another ``seed`` estimates the same posteriors with other
        draws).
    n_test_samples : int, optional
        Draws for the Gibbs test error (default: the protocol's).
    rank, width, dtype
        As for :func:`run_protocol` (they must be the ones it ran with).
    chunk_size : int
        Memory chunk of the Monte-Carlo evaluations.
    progress : bool
        Print one line per refinement.

    Returns
    -------
    genbound.bounds.RefinementResult

    References
    ----------
    J. Langford, R. Caruana, "(Not) bounding the true error", NIPS 2001 (the Monte-Carlo bound); D. McAllester,
    "PAC-Bayesian model averaging", COLT 1999 and A. Maurer, "A note on the PAC Bayesian theorem", 2004 (bounds
    uniform over posteriors); G. K. Dziugaite, D. M. Roy, UAI 2017.
    """
    if not isinstance(result, ProtocolResult):
        raise TypeError(f"result: expected a genbound.bounds.ProtocolResult, got {type(result).__name__}")
    protocol = result.protocol
    if isinstance(refinements, Refinement):
        refinements = (refinements,)
    refinements = check_named_entries(refinements, Refinement, "refinements")
    configs = {p.name: k for k, p in enumerate(protocol.priors)}
    for r in refinements:
        if r.config not in configs:
            raise ValueError(f"refinements: configuration {r.config!r} is not in the protocol's list "
                             f"{list(configs)}")
        if r.config not in result.fits or r.config not in result.priors:
            raise ValueError(f"result: carries no fitted posterior for {r.config!r} (fits live in memory only); "
                             "rerun run_protocol in this process")
    n_samples = check_int(n_samples, "n_samples", minimum=1)
    delta_mc = check_probability(delta_mc, "delta_mc")
    if protocol.delta_pac_bayes + delta_mc >= 1:
        raise ValueError(f"delta_mc: expected delta_pac_bayes + delta_mc < 1, got {protocol.delta_pac_bayes!r} + "
                         f"{delta_mc!r}")
    seed = check_int(seed, "seed", minimum=0)
    n_test = protocol.n_test_samples if n_test_samples is None else check_int(n_test_samples, "n_test_samples",
                                                                               minimum=1)
    check_dataset(data)
    if data_fingerprint(data) != result.info.get("data_fingerprint"):
        raise ValueError("data: not the data the protocol ran on (its fingerprint differs from "
                         "result.info['data_fingerprint'])")
    if isinstance(model_or_name, Sequential):
        check_model(model_or_name, "model_or_name")
    model_desc = model_or_name if isinstance(model_or_name, str) else repr(model_or_name)
    ran = (result.info.get("model"), result.info.get("rank"), result.info.get("width"))
    if (model_desc, rank, width) != ran:
        raise ValueError(f"model_or_name: expected the architecture the protocol ran with {ran}, got "
                         f"{(model_desc, rank, width)}")
    T = len(refinements)
    d_mc_row = delta_mc / T
    rows, fits = [], {}
    started = time.perf_counter()
    for t, ref in enumerate(refinements):
        t0 = time.perf_counter()
        config = protocol.priors[configs[ref.config]]
        prior_idx, bound_idx = split_indices(data.m, config.fraction, protocol.split_seed)
        prepared = prepare_data(protocol, data, prior_idx)
        part_bound = prepared.subset(bound_idx)
        net = _architecture(model_or_name, config, rank, width, dtype)
        old, prior = result.fits[config.name], result.priors[config.name]
        post = ref.posterior
        scale = net.param_scales() if config.prior_scale == "init" else None
        fit = optimize_posterior(net, part_bound, prior, mean_init=old.posterior.mean, std_init=old.posterior.std,
                                 prior_j_init=old.prior.j, prior_scale=scale, objective=post.objective,
                                 max_iter=post.max_iter, batch_size=post.batch_size, lr_mean=post.lr_mean,
                                 lr_std=post.lr_std, lr_prior=post.lr_prior, delta=protocol.delta_pac_bayes,
                                 grid=config.grid, groups=config.variance_groups,
                                 seed=_fresh(post.seed, configs[ref.config], 0),
                                 prior_description=prior.description)
        train_mc = gibbs_error(net, part_bound, fit.posterior, n_samples, seed=_fresh(seed, t, 1),
                               chunk_size=chunk_size)
        test_err = (gibbs_error(net, (part_bound.x_test, part_bound.y_test), fit.posterior, n_test,
                                seed=_fresh(seed, t, 2), chunk_size=chunk_size).error
                    if part_bound.n_test else np.nan)
        bounds, upper, C = family_bounds(train_mc.error, n_samples, fit.kl + fit.prior.nats, fit.m,
                                         protocol.delta_per_bound, d_mc_row)
        base = result.table[result.table["config"] == config.name].iloc[0]
        seconds = time.perf_counter() - t0
        for row in _rows(protocol, config, fit, bounds, upper, C, train_mc, test_err, prepared,
                         delta_total=protocol.delta_pac_bayes + delta_mc, delta_mc=delta_mc, delta_mc_row=d_mc_row,
                         n_mc=n_samples, n_test=n_test if part_bound.n_test else 0, m_prior=int(base["m_prior"]),
                         prior_errors=(base["prior_train_error"], base["prior_test_error"]),
                         prior_epochs=base["prior_epochs_used"], steps=int(base["posterior_steps"]) + post.max_iter,
                         seconds=seconds):
            rows.append(dict(row, refinement=ref.name, n_refinements=T, bound=f"{row['family']} ({ref.name})"))
        fits[ref.name] = fit
        if progress:
            _report(t, T, ref.name, fit, train_mc, upper, test_err, bounds, protocol.families, seconds)
    table = pd.DataFrame(rows, columns=REFINEMENT_COLUMNS)
    if not math.isfinite(table["value"].min()):
        raise FloatingPointError("refine_protocol: a bound came out non-finite")
    info = dict(result.info, seconds=time.perf_counter() - started, n_refinements=T, seed=seed,
                protocol_seconds=result.info.get("seconds"))
    return RefinementResult(protocol, refinements, delta_mc, table, info, fits)
