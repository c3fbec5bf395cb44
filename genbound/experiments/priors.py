"""Data-dependent PAC-Bayes priors: train a prior mean on part of the training set, then report the bounds.

:func:`genbound.bounds.report` measures a trained network and never trains; this module does the training a
data-dependent prior needs (Parrado-Hernández et al. 2012; Pérez-Ortiz et al. 2021): the training set is
split at random, a copy of the network is trained from its initialization on one part, and the bounds are
computed on the other part only.
"""
from __future__ import annotations

import numpy as np

from genbound._checks import check_dataset, check_int, check_model, check_positive, check_probability
from genbound._rng import as_generator
from genbound.bounds import (DataDependentPrior, PriorConfig, ReportConfig, example_fingerprints, report,
                             scaling_signature)
from genbound.data import Dataset
from genbound.nn.optim import SGD
from genbound.nn.train import train

__all__ = ["train_prior_mean", "train_prior_mean_info", "data_dependent_prior", "bounds_report"]


def train_prior_mean(model, data, *, epochs=40, batch_size=64, lr=0.05, momentum=0.9, seed=0, early_stopping=None):
    """Train a copy of ``model`` on ``data`` (the held-out part) and return its flat parameters.

    The copy starts from ``model``'s current parameters (pass the initialization) and is trained by
    :func:`genbound.train` with SGD on examples that the bound will not use. ``model`` itself is not changed.
    With ``early_stopping`` (a fraction in (0, 1)), that part of ``data``'s training examples (a seeded split) is
    kept out of SGD and the parameters after the epoch with the smallest 0-1 error on it are returned (the first
    such epoch on ties); both parts belong to the prior's examples.

    Returns
    -------
    numpy.ndarray (n_params,)
        float64. With early stopping, :func:`train_prior_mean_info` also gives the epoch kept.
    """
    return train_prior_mean_info(model, data, epochs=epochs, batch_size=batch_size, lr=lr, momentum=momentum,
                                 seed=seed, early_stopping=early_stopping)[0]


def train_prior_mean_info(model, data, *, epochs=40, batch_size=64, lr=0.05, momentum=0.9, seed=0,
                          early_stopping=None):
    """:func:`train_prior_mean` and a dict with ``"epochs_used"`` and the SGD history."""
    check_model(model)
    clone = model.copy()
    x, y = (data.x_train, data.y_train) if isinstance(data, Dataset) else data
    if early_stopping is None:
        hist = train(clone, data, epochs=epochs, batch_size=batch_size, optimizer=SGD(lr=lr, momentum=momentum),
                     seed=seed, progress=False)
        return clone.get_flat().astype(np.float64), {"epochs_used": epochs, "history": hist}
    check_probability(early_stopping, "early_stopping")
    m = len(y)
    order = as_generator(seed).permutation(m)
    k = min(max(int(round(early_stopping * m)), 1), m - 1)
    val, fit = np.sort(order[:k]), np.sort(order[k:])
    classes = getattr(data, "classes", None) or int(np.max(y)) + 1
    split = Dataset(x[fit], y[fit], x[val], y[val], classes=classes)
    best = {"error": np.inf, "flat": clone.get_flat().astype(np.float64), "epoch": 0}

    def keep_best(net, row):
        if row["test_error"] < best["error"]:
            best.update(error=row["test_error"], flat=net.get_flat().astype(np.float64), epoch=row["epoch"])

    hist = train(clone, split, epochs=epochs, batch_size=batch_size, optimizer=SGD(lr=lr, momentum=momentum),
                 seed=seed, progress=False, callback=keep_best)
    return best["flat"], {"epochs_used": best["epoch"], "validation_error": best["error"], "history": hist}


def _fresh_init(model, seed):
    """A copy of ``model`` re-initialized from ``seed`` by each layer's own initializer."""
    clone = model.copy()
    rng = as_generator(seed)
    for i, layer in enumerate(clone.layers):
        for name, value in layer.init_params(rng, clone.dtype).items():
            clone.params[f"{i}.{name}"][...] = value
    return clone


def data_dependent_prior(model, data, *, w0=None, prior=None):
    """Split the training set, train a prior mean on one part, and keep the other part for the bound.

    How is described by a :class:`genbound.bounds.PriorConfig`, the same description a
    :class:`genbound.bounds.Protocol` lists: ``prior.fraction`` of the training set (a split drawn from
    ``prior.seed``) trains the mean by SGD (``epochs``, ``batch_size``, ``lr``, ``momentum``, optional
    ``early_stopping`` inside the prior part) from ``w0``, or with None from a fresh initialization drawn from
    ``prior.seed``. The prior variances of the config (``prior_scale``, ``variance_groups``, ``grid``) are the
    protocol's business; :func:`genbound.bounds.report` uses its own grid. One prior, no union over
    configurations: to compare several, declare them in a Protocol (:func:`genbound.experiments.run_protocol`).

    Parameters
    ----------
    model : genbound.nn.Sequential
        The architecture; its parameters are not used (and not changed).
    data : Dataset
    w0 : array_like (n_params,) or Sequential, optional
        The initialization the network was trained from: the start of the prior's training.
    prior : genbound.bounds.PriorConfig, optional
        Default ``PriorConfig("default")``.

    Returns
    -------
    genbound.bounds.DataDependentPrior
        The mean, the bound's part of ``data`` (sharing its test set) and a description for the table.
    """
    check_model(model)
    check_dataset(data)
    prior = PriorConfig("default") if prior is None else prior
    if not isinstance(prior, PriorConfig):
        raise TypeError(f"prior: expected a genbound.bounds.PriorConfig, got {type(prior).__name__}")
    part_prior, part_bound = data.split_train(prior.fraction, seed=prior.seed)
    if w0 is None:
        start = _fresh_init(model, prior.seed)
    else:
        start = model.copy()
        start.set_flat(w0.get_flat() if hasattr(w0, "get_flat") else w0)
    mean = train_prior_mean(start, part_prior, epochs=prior.epochs, batch_size=prior.batch_size, lr=prior.lr,
                            momentum=prior.momentum, seed=prior.seed, early_stopping=prior.early_stopping)
    description = f"trained on {part_prior.m} held-out examples ({prior.fraction:g} of m, removed from m)"
    return DataDependentPrior(mean, part_bound, seen=example_fingerprints(part_prior),
                              scaling=scaling_signature(part_prior), description=description)


def bounds_report(model, data, *, w0=None, config=None, prior=None, data_dependent=True, seed=0):
    """:func:`genbound.bounds.report` of a trained network, with a data-dependent prior trained first.

    With ``data_dependent`` (and ``config.pac_bayes``) the prior is trained by :func:`data_dependent_prior`
    (from ``w0``, or a fresh initialization when ``w0`` is None) and its four rows join the table.

    Parameters
    ----------
    model : genbound.nn.Sequential
        The trained network.
    data : Dataset
        The training set it was trained on and a test set.
    w0 : array_like (n_params,) or Sequential, optional
        Its initialization (the data-independent prior mean, and the start of the prior's training).
    config : genbound.bounds.ReportConfig, optional
    prior : genbound.bounds.PriorConfig, optional
        How the data-dependent prior is trained (:func:`data_dependent_prior`; its own ``seed``).
    data_dependent : bool
        Train the data-dependent prior and add its rows.
    seed : int, numpy.random.Generator or None
        Seed of the report (Monte-Carlo draws, eigenvalue starts).

    Returns
    -------
    pandas.DataFrame
        The columns of :data:`genbound.bounds.REPORT_COLUMNS`.
    """
    config = ReportConfig() if config is None else config
    trained = None
    if data_dependent and isinstance(config, ReportConfig) and config.pac_bayes:
        trained = data_dependent_prior(model, data, w0=w0, prior=prior)
    return report(model, data, w0=w0, prior=trained, config=config, seed=seed)
