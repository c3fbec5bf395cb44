"""The report table: every generalization bound of the library for one trained network, side by side.

One row per bound, with what it bounds (the gap of the deterministic network, the error of a Gibbs
classifier Q around it, the error of its quantized copy), the measured errors of that object, the capacity
(N, KL or bits) and sample size it used, and whether it is vacuous.

The report measures the given network and never trains: a data-dependent prior arrives already trained, as
a :class:`DataDependentPrior` (see :func:`genbound.experiments.bounds_report`, which trains it).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from genbound._checks import (check_dataset, check_int, check_model, check_positive, check_probability,
                              check_vector)
from genbound.bounds._data import training_pair
from genbound.bounds.capacity import effective_capacity
from genbound.bounds.classical import sqrt_gap_bound, vc_bound, vc_dimension_relu
from genbound.bounds.compress_model import compression_bound
from genbound.bounds.heldout import DataDependentPrior
from genbound.bounds.posterior import OBJECTIVES, pac_bayes_bounds
from genbound.bounds.protocol import ProtocolResult

__all__ = ["REPORT_COLUMNS", "ReportConfig", "report", "scaling_text"]

#: Columns of :func:`report`, in order.
REPORT_COLUMNS = [
    "bound", "bounds_what", "prior", "train_error", "test_error", "gap", "value", "error_bound", "N", "kl",
    "extra_nats", "bits", "m", "delta", "delta_mc", "n_mc", "prior_j", "train_upper", "n_configs", "scaling",
    "vacuous", "worse_than_chance", "detail",
]

GAP_DET = "gap of the deterministic net"
ERR_DET = "error of the deterministic net"
ERR_GIBBS = "error of the Gibbs classifier Q"
ERR_QUANT = "error of the quantized net"


@dataclass(frozen=True)
class ReportConfig:
    r"""What :func:`report` computes and with which settings (printable, comparable, ``asdict``-able).

    Attributes
    ----------
    delta : float
        Failure probability of every bound, in (0, 1). Default 0.025.
    delta_mc : float
        Failure probability of the Monte-Carlo estimates of Gibbs errors, in (0, 1). Default 0.01.
    pac_bayes, hessian, compression : bool
        Which groups of rows to compute besides Eq. 1 and VC (PAC-Bayes and the Hessian are the expensive
        ones). Defaults True, False, True.
    n_samples : int
        Monte-Carlo weight draws for the Gibbs training error (each a pass over the training set).
        Default 150.
    n_test_samples : int or None
        Draws for the Gibbs test error (None: ``max(1, n_samples // 4)``).
    max_iter : int
        Steps of the posterior optimization (:func:`optimize_posterior`). Default 400.
    objective : {"quad", "kl", "sqrt"}
        Its objective. Default "quad".
    std_init : float
        Its initial posterior standard deviation. Default 0.01.
    batch_size : int
        Its mini-batch size. Default 128.
    z : float
        Scale of the Hessian effective dimension. Default 1.
    hessian_k : int or None
        Lanczos eigenvalues of the Hessian row (None: see :func:`effective_capacity`).
    hessian_dense_max : int
        Largest parameter count for a dense Hessian. Default 600.
    compression_k : tuple of int
        Levels per tensor of the Occam row (a grid is paid for with :math:`\lceil\log_2|K|\rceil` bits).
        Default (2, 3, 4, 8, 16).
    manifold_at : {"generic", "model"}
        Where the CP Jacobian's rank is counted. Default "generic".
    """

    delta: float = 0.025
    delta_mc: float = 0.01
    pac_bayes: bool = True
    hessian: bool = False
    compression: bool = True
    n_samples: int = 150
    n_test_samples: int | None = None
    max_iter: int = 400
    objective: str = "quad"
    std_init: float = 0.01
    batch_size: int = 128
    z: float = 1.0
    hessian_k: int | None = None
    hessian_dense_max: int = 600
    compression_k: tuple = (2, 3, 4, 8, 16)
    manifold_at: str = "generic"

    def __post_init__(self):
        check_probability(self.delta, "delta")
        check_probability(self.delta_mc, "delta_mc")
        check_int(self.n_samples, "n_samples", minimum=1)
        if self.n_test_samples is not None:
            check_int(self.n_test_samples, "n_test_samples", minimum=1)
        check_int(self.max_iter, "max_iter", minimum=0)
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective: expected one of {OBJECTIVES}, got {self.objective!r}")
        check_positive(self.std_init, "std_init")
        check_int(self.batch_size, "batch_size", minimum=1)
        check_positive(self.z, "z")
        if self.hessian_k is not None:
            check_int(self.hessian_k, "hessian_k", minimum=1)
        check_int(self.hessian_dense_max, "hessian_dense_max", minimum=0)
        levels = (self.compression_k,) if np.ndim(self.compression_k) == 0 else tuple(self.compression_k)
        object.__setattr__(self, "compression_k", tuple(check_int(k, "compression_k", minimum=1) for k in levels))
        if self.manifold_at not in ("generic", "model"):
            raise ValueError(f"manifold_at: expected 'generic' or 'model', got {self.manifold_at!r}")


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


def scaling_text(data):
    """How the images of ``data`` were scaled, from ``data.info``: ``"fixed"``, ``"raw"``, ``"standardize
    (statistics of all 1437 training images, this sample's included)"`` (the statistics depend on the sample: the
    hypothesis is then h o T_S), ``"standardize (statistics of 718 chosen training images)"``, or
    ``"unrecorded"``."""
    info = getattr(data, "info", None) or {}
    scaling = info.get("scaling")
    if scaling is None:
        return "unrecorded"
    if scaling != "standardize":
        return str(scaling)
    fit = info.get("scaling_fit")
    if fit is None:
        n_fit = len(info.get("train_index", data.y_train))
        return f"standardize (statistics of all {n_fit} training images, this sample's included)"
    return f"standardize (statistics of {len(fit)} chosen training images)"


def _pac_rows(res, prior_text, what_suffix, n_params, scaling):
    names = [("McAllester", "mcallester"), ("Langford-Seeger", "langford_seeger"), ("Catoni", "catoni"),
             ("Dziugaite-Roy", "dziugaite_roy")]
    test = res.test.error if res.test is not None else np.nan
    rows = []
    lam = np.atleast_1d(res.fit.prior.variance)
    for label, key in names:
        detail = (f"Q = N(mu, diag sigma^2) over {n_params} params, posterior optimized "
                  f"({res.fit.settings['objective']}, {res.fit.settings['max_iter']} steps); "
                  f"lambda = {', '.join(f'{v:.3g}' for v in lam)}; Gibbs error from {res.train.n_samples} draws; "
                  f"extra_nats = the prior-variance grid's cost ({res.fit.settings['grid']}); a separate "
                  "statement at 1 - delta - delta_mc (the minimum over rows is not)")
        if key != "dziugaite_roy":
            detail += f"; empirical risk replaced by its MC upper bound {res.train_upper:.4f}"
        if key == "catoni":
            detail += f"; C = {res.catoni_C:.3g} (grid of 41, union bound)"
        value = res.bounds[key]
        rows.append(_row(bound=f"{label}{what_suffix}", bounds_what=ERR_GIBBS, prior=prior_text,
                         train_error=res.train.error, test_error=test, gap=test - res.train.error, value=value,
                         error_bound=value, kl=res.kl, extra_nats=res.prior_nats, m=res.m, delta=res.delta,
                         delta_mc=res.delta_mc, n_mc=res.train.n_samples, prior_j=str(res.prior_j),
                         train_upper=res.train_upper, n_configs=1, scaling=scaling, detail=detail))
    return rows


def report(model, data, *, w0=None, prior=None, config=None, seed=0, hessian_sample=None):
    r"""Every bound of the library for one trained network: one row per bound.

    Rows (each bound at confidence :math:`1-\delta`, Gibbs rows :math:`1-\delta-\delta_{mc}`):

    - **Eq. 1** :math:`\sqrt{N/m}` with N = parameter count, N = manifold dimension
      (:func:`effective_capacity`), and with ``config.hessian`` N = Hessian effective dimension at
      ``config.z``: a bound on the gap of the deterministic network (no confidence level; see
      :func:`sqrt_gap_bound`).
    - **VC** (:func:`vc_bound`) with d = parameter count (a heuristic stand-in) and d = the
      Bartlett-Harvey-Liaw-Mehrabian bound (:func:`vc_dimension_relu`, with per-layer parameters and units;
      convolutions are outside its statement): error of the deterministic network.
    - **PAC-Bayes** (``config.pac_bayes``): a Gaussian posterior Q around the trained network is optimized
      against the prior :math:`\mathcal N(w_0, \lambda I)` (:func:`pac_bayes_bounds`), and McAllester,
      Langford-Seeger, Catoni and Dziugaite-Roy bound the **error of the Gibbs classifier Q** (a network
      drawn from Q for every prediction), not of the trained network. Each is a separate statement at
      :math:`1-\delta-\delta_{mc}`; their minimum is not (that takes a :class:`Protocol`, which divides delta).
      ``prior`` adds data-dependent rows: a :class:`DataDependentPrior` (trained beforehand on part of the
      training set; four rows, Q starts at :math:`w_{prior}` and is optimized on the :math:`m'` examples of
      ``prior.data``, which must not overlap the examples the prior saw), or a :class:`ProtocolResult` (from
      :func:`genbound.experiments.run_protocol`; per family the best declared configuration, every choice and
      the division of delta already paid for).
    - **Occam** (``config.compression``): the network quantized per tensor (:func:`compression_bound`);
      bounds the error of the quantized network, whose errors are measured.

    Column ``value`` is the bound on what ``bounds_what`` names; ``error_bound`` the implied bound on the
    0-1 error of that object (``train_error + value`` for the gap rows); ``vacuous`` is
    ``error_bound >= 1`` and ``worse_than_chance`` is ``error_bound >= 1 - 1/classes``. ``N`` is the
    capacity (Eq. 1, VC), ``kl`` KL(Q || P) in nats, ``extra_nats`` the union-bound nats added to KL
    (the prior-variance grid's cost), ``bits`` the code length (Occam), ``m`` the sample size the bound uses,
    ``n_mc`` the Monte-Carlo draws behind a Gibbs training error, ``train_upper`` its Monte-Carlo upper bound,
    ``prior_j`` the prior-variance grid index (:math:`\lambda = 0.1 e^{-j/100}` by default), ``n_configs``
    the configurations its delta was divided among, ``scaling`` the preprocessing of the images the row
    speaks about (:func:`scaling_text`; it is part of the hypothesis). Every Gibbs row satisfies
    ``value == family_bounds(train_error, n_mc, kl + extra_nats, m, delta, delta_mc)[0][family]``.

    Parameters
    ----------
    model : genbound.nn.Sequential
        The trained network (its parameters are restored on return).
    data : Dataset
        The training set it was trained on (the bounds' sample) and a test set (measured errors only).
    w0 : array_like (n_params,) or Sequential, optional
        The initialization the network was trained from: the prior mean of the data-independent PAC-Bayes
        rows. If None, that prior is centred at 0.
    prior : DataDependentPrior or ProtocolResult, optional
        A prior mean trained on held-out training examples and the examples left for the bound, or the
        result of a protocol run; None: no data-dependent rows.
    config : ReportConfig, optional
        Which rows, and their settings (default ``ReportConfig()``).
    seed : int, numpy.random.Generator or None
        Seed of the posterior optimizations (their Monte Carlo uses ``seed + 1``, see
        :func:`pac_bayes_bounds`) and of the Lanczos start vector of the Hessian row.
    hessian_sample : array_like of int, optional
        Indices of training examples: the Hessian row's effective dimension is taken on the loss over these
        examples only (a cheaper estimate of the training-loss Hessian; its ``m`` stays the whole training
        set's, and its ``detail`` says how many examples). None (default): every training example.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`REPORT_COLUMNS`.

    Raises
    ------
    TypeError
        ``model`` is not a Sequential, ``data`` not a Dataset, ``config`` not a ReportConfig, ``prior``
        neither a DataDependentPrior nor a ProtocolResult.
    ValueError
        An empty training set, a ``w0`` or prior mean of the wrong length, a prior whose bound data overlaps
        the examples it was trained on.
    """
    check_model(model)
    check_dataset(data)
    if len(data.y_train) == 0:
        raise ValueError("data: expected at least one training example, got m = 0")
    config = ReportConfig() if config is None else config
    if not isinstance(config, ReportConfig):
        raise TypeError(f"config: expected a ReportConfig, got {type(config).__name__}")
    if prior is not None and not isinstance(prior, (DataDependentPrior, ProtocolResult)):
        raise TypeError(f"prior: expected a DataDependentPrior or a ProtocolResult, got {type(prior).__name__}")
    if isinstance(prior, DataDependentPrior):
        prior.check_bound_data(prior.data, "prior.data")
    n = model.n_params
    if w0 is not None:
        w0 = check_vector(w0.get_flat() if hasattr(w0, "get_flat") else w0, n, "w0")
    x, y = model.check_xy(*training_pair(data))
    m = x.shape[0]
    chance = 1.0 - 1.0 / data.classes
    train_err = model.evaluate(x, y)[1]
    test_err = model.evaluate(data.x_test, data.y_test)[1] if data.n_test else np.nan
    gap = test_err - train_err
    delta = config.delta
    scaling = scaling_text(data)
    rows = []

    # -- Eq. 1 ------------------------------------------------------------------------------------
    caps = [effective_capacity(model, method="params"),
            effective_capacity(model, method="manifold", at=config.manifold_at)]
    if config.hessian:
        hess_data = data
        if hessian_sample is not None:
            idx = np.asarray(hessian_sample)
            if idx.ndim != 1 or idx.size == 0 or not np.issubdtype(idx.dtype, np.integer) or idx.min() < 0 \
                    or idx.max() >= m or np.unique(idx).size != idx.size:
                raise ValueError(f"hessian_sample: expected distinct indices of training examples in [0, {m}), "
                                 f"got {hessian_sample!r}")
            hess_data = (x[idx], y[idx])
        caps.append(effective_capacity(model, hess_data, method="hessian", z=config.z, k=config.hessian_k,
                                       seed=seed, dense_max=config.hessian_dense_max))
    labels = {"params": "parameters", "manifold": "manifold dimension",
              "hessian": f"Hessian eff. dim. (z={config.z:g}, heuristic)"}
    for cap in caps:
        value = sqrt_gap_bound(cap.total, m)
        detail = "sqrt(N/m), no confidence level (Lee & Lee, Eq. 1)"
        if cap.method == "manifold":
            detail += f"; numerical rank tol <= {cap.tol:.2g} ({cap.info['tol_rule']}), at {cap.info['at']} point"
        if cap.method == "hessian":
            detail += (f"; heuristic: positive part of the loss-Hessian spectrum, {cap.info['how']}; "
                       + (f"Hessian of the loss on a sample of {len(hessian_sample)} of the {m} training examples; "
                          if hessian_sample is not None else "")
                       + f"N in [{cap.info['lower']:.1f}, {cap.info['upper']:.1f}], the upper end reported")
        rows.append(_row(bound=f"Eq. 1, N = {labels[cap.method]}", bounds_what=GAP_DET, train_error=train_err,
                         test_error=test_err, gap=gap, value=value, error_bound=train_err + value, N=cap.total,
                         m=m, detail=detail))

    # -- VC ---------------------------------------------------------------------------------------
    layer_params = [sl.stop - sl.start for sl in model.layer_slices().values()]
    layer_units = _units_per_layer(model, model.input_shape or data.input_shape)
    d_bhlm = vc_dimension_relu(n, len(layer_params), layer_params=layer_params, layer_units=layer_units)
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
    if config.pac_bayes:
        opt = dict(max_iter=config.max_iter, objective=config.objective, std_init=config.std_init,
                   batch_size=config.batch_size, seed=seed, n_samples=config.n_samples,
                   n_test_samples=config.n_test_samples, delta=delta, delta_mc=config.delta_mc)
        prior_text = ("N(w0, lambda I), w0 = initialization" if w0 is not None else
                      "N(0, lambda I) (initialization not given)") + "; data-independent"
        res = pac_bayes_bounds(model, data, w0 if w0 is not None else np.zeros(n), **opt)
        rows += _pac_rows(res, prior_text, "", n, scaling)
        if isinstance(prior, DataDependentPrior):
            prior.checked_mean(n)
            prior_text = f"N(w_prior, lambda I), w_prior {prior.description}; data-dependent"
            res = pac_bayes_bounds(model, prior.data, prior, mean_init=prior.mean, **opt)
            rows += _pac_rows(res, prior_text, " (data-dependent prior)", n, scaling_text(prior.data))
    if isinstance(prior, ProtocolResult):
        rows += [_row(**r) for r in prior.report_rows()]

    # -- Occam ------------------------------------------------------------------------------------
    if config.compression:
        comp = compression_bound(model, data, k=config.compression_k, delta=delta)
        q = comp.quantized
        detail = (f"per-tensor k-means codebooks, k = {comp.k} levels max ({q.bits_per_param:.2f} bits/param), "
                  f"float32 levels, entropy-coded indices; {comp.choice_bits} bits name k in the grid "
                  f"{list(comp.table['k'])}; errors measured on the quantized copy")
        rows.append(_row(bound="Occam, quantized net", bounds_what=ERR_QUANT, prior="2^-bits (prefix code)",
                         train_error=comp.train_error, test_error=comp.test_error,
                         gap=comp.test_error - comp.train_error, value=comp.bound, error_bound=comp.bound,
                         kl=comp.bits * math.log(2.0), bits=float(comp.bits), m=m, delta=delta, detail=detail))

    table = pd.DataFrame(rows, columns=REPORT_COLUMNS)
    table["scaling"] = table["scaling"].astype(object).where(table["scaling"].notna(), scaling)
    table["vacuous"] = table["error_bound"] >= 1.0
    table["worse_than_chance"] = table["error_bound"] >= chance
    return table
