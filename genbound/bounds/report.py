"""The report table: every generalization bound of the library for one trained network, side by side.

One row per bound, with what it bounds (the gap of the deterministic network, the error of a Gibbs
classifier Q around it, the error of its quantized copy), the measured errors of that object, the capacity
(N, KL or bits) and sample size it used, and whether it is vacuous.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from genbound._checks import check_int, check_positive, check_probability

__all__ = ["REPORT_COLUMNS", "report"]

#: Columns of :func:`report`, in order.
REPORT_COLUMNS = [
    "bound", "bounds_what", "prior", "train_error", "test_error", "gap", "value", "error_bound", "N", "kl",
    "extra_nats", "bits", "m", "delta", "delta_mc", "n_mc", "prior_j", "vacuous", "worse_than_chance", "detail",
]

GAP_DET = "gap of the deterministic net"
ERR_DET = "error of the deterministic net"
ERR_GIBBS = "error of the Gibbs classifier Q"
ERR_QUANT = "error of the quantized net"


def _check_model(model):
    from genbound.nn.model import Sequential

    if not isinstance(model, Sequential):
        raise TypeError(f"model: expected a genbound.nn.Sequential, got {type(model).__name__}")
    return model


def _check_data(data):
    for attr in ("x_train", "y_train", "x_test", "y_test", "m"):
        if not hasattr(data, attr):
            raise TypeError(f"data: expected a genbound.data.Dataset, got {type(data).__name__}")
    if data.m <= 0:
        raise ValueError(f"data: expected at least one training example, got m = {data.m}")
    return data


def _row(**kw):
    row = {c: np.nan for c in REPORT_COLUMNS}
    row.update(bound="", bounds_what="", prior="", detail="", extra_nats=0.0)
    row.update(kw)
    return row


def _units_per_layer(model, input_shape):
    """Units (output scalars) of each layer with parameters, for the VC-dimension formula."""
    shape, units = tuple(input_shape), []
    for i, layer in enumerate(model.layers):
        shape = layer.output_shape(shape)
        if model.layer_params(i):
            units.append(int(np.prod(shape)))
    return units


def _fresh_init(model, seed):
    """A copy of ``model`` re-initialized from ``seed`` by each layer's own initializer."""
    from genbound._rng import as_generator

    clone = model.copy()
    rng = as_generator(seed)
    for i, layer in enumerate(clone.layers):
        for name, value in layer.init_params(rng, clone.dtype).items():
            clone.params[f"{i}.{name}"][...] = value
    return clone


def _pac_rows(res, prior_text, what_suffix, n_params):
    names = [("McAllester", "mcallester"), ("Langford-Seeger", "langford_seeger"), ("Catoni", "catoni"),
             ("Dziugaite-Roy", "dziugaite_roy")]
    test = res.test.error if res.test is not None else np.nan
    rows = []
    for label, key in names:
        own_grid = key == "dziugaite_roy"
        extra = res.extra_nats if own_grid else res.extra_nats + res.prior_nats
        detail = (f"Q = N(mu, diag sigma^2) over {n_params} params, posterior optimized "
                  f"({res.fit.settings['objective']}, {res.fit.settings['steps']} steps); "
                  f"lambda = {res.fit.prior.variance:.3g}; Gibbs error from {res.train.n} draws")
        if own_grid:
            detail += "; grid term 2 ln j + ln(pi^2/6) inside the formula"
        else:
            detail += (f"; empirical risk replaced by its MC upper bound {res.train_upper:.4f}; "
                       f"extra_nats = 2 ln j + ln(pi^2/6) + ln K")
        if key == "catoni":
            detail += f"; C = {res.catoni_C:.3g} (grid of 41, union bound)"
        value = res.bounds[key]
        rows.append(_row(bound=f"{label}{what_suffix}", bounds_what=ERR_GIBBS, prior=prior_text,
                         train_error=res.train.error, test_error=test, gap=test - res.train.error, value=value,
                         error_bound=value, kl=res.kl, extra_nats=extra, m=res.m, delta=res.delta,
                         delta_mc=res.delta_mc, n_mc=res.train.n, prior_j=res.prior_j, detail=detail))
    return rows


def report(model, data, *, w0=None, delta=0.025, delta_mc=0.01, pac_bayes=True, data_dependent=True,
           hessian=False, compression=True, n_mc=150, n_mc_test=None, steps=400, objective="quad",
           std_init=0.01, batch_size=128, prior_fraction=0.5, prior_epochs=40, prior_lr=0.05,
           prior_momentum=0.9, n_configs=1, z=1.0, hessian_k=None, hessian_dense_max=600,
           compression_k=(2, 3, 4, 8, 16),
           manifold_at="generic", seed=0):
    r"""Every bound of the library for one trained network: one row per bound.

    Rows (each bound at confidence :math:`1-\delta`, Gibbs rows :math:`1-\delta-\delta_{mc}`):

    - **Eq. 1** :math:`\sqrt{N/m}` with N = parameter count, N = manifold dimension
      (:func:`effective_capacity`), and with ``hessian=True`` N = Hessian effective dimension at ``z``:
      a bound on the gap of the deterministic network (no confidence level; see
      :func:`sqrt_gap_bound`).
    - **VC** (:func:`vc_bound`) with d = parameter count (a heuristic stand-in) and d = the
      Bartlett-Harvey-Liaw-Mehrabian bound (:func:`vc_dimension_relu`, with per-layer parameters and units;
      convolutions are outside its statement): error of the deterministic network.
    - **PAC-Bayes** (``pac_bayes=True``): a Gaussian posterior Q around the trained network is optimized
      against the prior :math:`\mathcal N(w_0, \lambda I)` (:func:`pac_bayes_bounds`), and McAllester,
      Langford-Seeger, Catoni and Dziugaite-Roy bound the **error of the Gibbs classifier Q** (a network
      drawn from Q for every prediction), not of the trained network. With ``data_dependent=True`` four
      more rows use a data-dependent prior: a fraction ``prior_fraction`` of the training set (drawn with
      ``seed``) trains the prior mean from ``w0``; Q starts at that mean and is optimized on the other
      :math:`m'` examples, and every quantity of those rows uses :math:`m'` in place of m.
    - **Occam** (``compression=True``): the network quantized per tensor (:func:`compression_bound`);
      bounds the error of the quantized network, whose errors are measured.

    Column ``value`` is the bound on what ``bounds_what`` names; ``error_bound`` the implied bound on the
    0-1 error of that object (``train_error + value`` for the gap rows); ``vacuous`` is
    ``error_bound >= 1`` and ``worse_than_chance`` is ``error_bound >= 1 - 1/classes``. ``N`` is the
    capacity (Eq. 1, VC), ``kl`` KL(Q || P) in nats, ``extra_nats`` the union-bound nats added to KL beyond
    the row's own formula, ``bits`` the code length (Occam), ``m`` the sample size the bound uses,
    ``n_mc`` the Monte-Carlo draws behind a Gibbs training error, ``prior_j`` the prior-variance grid index
    (:math:`\lambda = 0.1 e^{-j/100}`). The Dziugaite-Roy row satisfies
    ``value == dziugaite_roy_bound(train_error, kl + extra_nats, m, delta, prior_grid_j=prior_j,
    n_mc=n_mc, delta_prime=delta_mc)``.

    Parameters
    ----------
    model : genbound.nn.Sequential
        The trained network (its parameters are restored on return).
    data : Dataset
        The training set it was trained on (the bounds' sample) and a test set (measured errors only).
    w0 : array_like (n_params,) or Sequential, optional
        The initialization the network was trained from (the prior mean of the data-independent PAC-Bayes
        rows, and the start of the data-dependent prior's training). If None, the data-independent prior
        is centred at 0 and the data-dependent prior mean is trained from a fresh initialization (``seed``).
    delta, delta_mc : float
        Failure probabilities of the bounds and of the Monte-Carlo estimates.
    pac_bayes, data_dependent, hessian, compression : bool
        Which groups of rows to compute (PAC-Bayes and the Hessian are the expensive ones).
    n_mc : int
        Monte-Carlo weight draws for the Gibbs training error (each a pass over the training set).
    n_mc_test : int, optional
        Draws for the Gibbs test error (default ``max(1, n_mc // 4)``).
    steps, objective, std_init, batch_size
        Posterior optimization (:func:`optimize_posterior`).
    prior_fraction : float
        Part of the training set used by the data-dependent prior, in (0, 1).
    prior_epochs, prior_lr, prior_momentum : training of the data-dependent prior mean (SGD).
    n_configs : int
        Number of prior configurations searched by the caller (union bound: ln K nats on every PAC-Bayes
        row, and :math:`\delta_{mc}/K`).
    z : float
        Scale of the Hessian effective dimension.
    hessian_k, hessian_dense_max : int, optional
        Lanczos eigenvalues, and the largest parameter count for a dense Hessian, of the Hessian row (see
        :func:`effective_capacity`).
    compression_k : int or sequence of int
        Levels per tensor (a grid is paid for with :math:`\lceil\log_2|K|\rceil` bits).
    manifold_at : {"generic", "model"}
        Where the CP Jacobian's rank is counted.
    seed : int
        Seed of the posterior optimization, Monte Carlo and data split.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`REPORT_COLUMNS`.

    Raises
    ------
    TypeError
        ``model`` is not a Sequential, ``data`` not a Dataset.
    ValueError
        An empty training set, bad probabilities or counts (the message names the argument).
    """
    from genbound.bounds.capacity import _param_layers, effective_capacity
    from genbound.bounds.classical import sqrt_gap_bound, vc_bound, vc_dimension_relu
    from genbound.bounds.compress_model import compression_bound
    from genbound.bounds.posterior import pac_bayes_bounds, train_prior_mean

    _check_model(model)
    _check_data(data)
    delta = check_probability(delta, "delta")
    delta_mc = check_probability(delta_mc, "delta_mc")
    n_mc = check_int(n_mc, "n_mc", minimum=1)
    steps = check_int(steps, "steps", minimum=0)
    n_configs = check_int(n_configs, "n_configs", minimum=1)
    prior_fraction = check_probability(prior_fraction, "prior_fraction")
    z = check_positive(z, "z")
    seed = check_int(seed, "seed", minimum=0)
    n = model.n_params
    if w0 is not None:
        if hasattr(w0, "get_flat"):
            w0 = w0.get_flat()
        w0 = np.asarray(w0, dtype=np.float64)
        if w0.shape != (n,):
            raise ValueError(f"w0: expected a vector of length n_params = {n}, got shape {w0.shape}")
    m = data.m
    classes = data.classes
    chance = 1.0 - 1.0 / classes
    train_err = model.evaluate(data.x_train, data.y_train)[1]
    test_err = model.evaluate(data.x_test, data.y_test)[1] if data.n_test else np.nan
    gap = test_err - train_err
    rows = []

    # -- Eq. 1 ------------------------------------------------------------------------------------
    caps = [effective_capacity(model, "params"), effective_capacity(model, "manifold", at=manifold_at)]
    if hessian:
        caps.append(effective_capacity(model, "hessian", data=data, z=z, k=hessian_k, seed=seed,
                                       dense_max=hessian_dense_max))
    labels = {"params": "parameters", "manifold": "manifold dimension", "hessian": f"Hessian eff. dim. (z={z:g})"}
    for cap in caps:
        value = sqrt_gap_bound(cap.total, m)
        detail = "sqrt(N/m), no confidence level (Lee & Lee, Eq. 1)"
        if cap.method == "manifold":
            detail += f"; numerical rank tol <= {cap.tol:.2g} ({cap.info['tol_rule']}), at {cap.info['at']} point"
        if cap.method == "hessian":
            detail += (f"; positive part of the loss-Hessian spectrum, {cap.info['how']}; "
                       f"N in [{cap.info['lower']:.1f}, {cap.info['upper']:.1f}]")
        rows.append(_row(bound=f"Eq. 1, N = {labels[cap.method]}", bounds_what=GAP_DET, train_error=train_err,
                         test_error=test_err, gap=gap, value=value, error_bound=train_err + value, N=cap.total,
                         m=m, detail=detail))

    # -- VC ---------------------------------------------------------------------------------------
    layers = _param_layers(model)
    layer_params = [c for _, _, _, c in layers]
    input_shape = model.input_shape or data.input_shape
    layer_units = _units_per_layer(model, input_shape)
    d_bhlm = vc_dimension_relu(n, len(layers), layer_params=layer_params, layer_units=layer_units)
    for label, d, detail in [
        ("VC, d = parameters", float(n), "parameter count as d (heuristic, not a VC dimension)"),
        ("VC, d = BHLM bound", d_bhlm, f"Bartlett et al. 2019 Thm 7 with per-layer params {layer_params} and "
                                       f"units {layer_units} (convolutions outside its statement)"),
    ]:
        value = vc_bound(d, m, delta, train_error=train_err)
        if m < d:
            detail += f"; m = {m} < d, so only ln Pi(m) <= m ln 2 applies"
        rows.append(_row(bound=label, bounds_what=ERR_DET, train_error=train_err, test_error=test_err, gap=gap,
                         value=value, error_bound=value, N=d, m=m, delta=delta,
                         detail=detail + "; binary-label growth-function bound applied to the 0-1 error"))

    # -- PAC-Bayes --------------------------------------------------------------------------------
    if pac_bayes:
        opt = dict(steps=steps, objective=objective, std_init=std_init, batch_size=batch_size, seed=seed)
        prior_mean = w0 if w0 is not None else np.zeros(n)
        prior_text = ("N(w0, lambda I), w0 = initialization" if w0 is not None else
                      "N(0, lambda I) (initialization not given)") + "; data-independent"
        res = pac_bayes_bounds(model, data.x_train, data.y_train, prior_mean, x_test=data.x_test,
                               y_test=data.y_test, n_mc=n_mc, n_mc_test=n_mc_test, delta=delta, delta_mc=delta_mc,
                               n_configs=n_configs, **opt)
        rows += _pac_rows(res, prior_text, "", n)
        if data_dependent:
            part_prior, part_bound = data.split_train(prior_fraction, seed=seed)
            start = model.copy()
            if w0 is not None:
                start.set_flat(w0)
            else:
                start = _fresh_init(model, seed)
            wp = train_prior_mean(start, part_prior, epochs=prior_epochs, lr=prior_lr, momentum=prior_momentum,
                                  seed=seed)
            prior_text = (f"N(w_prior, lambda I), w_prior trained on {part_prior.m} held-out examples "
                          f"({prior_fraction:g} of m, removed from m); data-dependent")
            res = pac_bayes_bounds(model, part_bound.x_train, part_bound.y_train, wp, x_test=data.x_test,
                                   y_test=data.y_test, n_mc=n_mc, n_mc_test=n_mc_test, delta=delta,
                                   delta_mc=delta_mc, n_configs=n_configs, mean_init=wp, **opt)
            rows += _pac_rows(res, prior_text, " (data-dependent prior)", n)

    # -- Occam ------------------------------------------------------------------------------------
    if compression:
        comp = compression_bound(model, data, k=compression_k, delta=delta)
        q = comp.quantized
        detail = (f"per-tensor k-means codebooks, k = {comp.k} levels max ({q.bits_per_param:.2f} bits/param), "
                  f"float32 levels, entropy-coded indices; {comp.choice_bits} bits name k in the grid "
                  f"{list(comp.table['k'])}; errors measured on the quantized copy")
        rows.append(_row(bound="Occam, quantized net", bounds_what=ERR_QUANT, prior="2^-bits (prefix code)",
                         train_error=comp.train_error, test_error=comp.test_error,
                         gap=comp.test_error - comp.train_error, value=comp.bound, error_bound=comp.bound,
                         kl=comp.bits * math.log(2.0), bits=float(comp.bits), m=m, delta=delta, detail=detail))

    table = pd.DataFrame(rows, columns=REPORT_COLUMNS)
    table["vacuous"] = table["error_bound"] >= 1.0
    table["worse_than_chance"] = table["error_bound"] >= chance
    return table
