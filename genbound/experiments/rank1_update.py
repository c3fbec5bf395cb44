r"""Experiment 5: the rank-1 (CP) update in practice.

A factor-space SGD step on a CP filter W = sum_r p (x) q (x) t moves the filter to

.. math:: w'' = (p - \alpha g_p)(q - \alpha g_q)(t - \alpha g_t) = w' + \underbrace{-\alpha (J J^\top - I) G}_{
          \text{first order}} + \alpha^2 (\dots) - \alpha^3 g_p g_q g_t

with w' = W - alpha G the plain step (Lee & Lee, Eqs. 2-3 with the corrected term; J the Jacobian of the CP
map). The departure w'' - w' is therefore first order in alpha (J J^T G differs from G), and what remains
after the first-order term is of order alpha^2: on a log-log plot against alpha, ||w'' - w'|| has slope 1 and
the residual ||w'' - w' - first|| slope 2. The experiment measures both on the real CP layers of a network
at states sampled along a training run, fits the slopes (:func:`fit_loglog_slope`), and compares training in
factor space with training the full filter and projecting back to rank R after every step
(``genbound.nn.SGD(cp_update="project")``): accuracy and time.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from genbound._checks import check_int, check_positive
from genbound.experiments.cells import (COLORS, DataOptions, cell_data, check_config, check_data_options, claim,
                                        config_dict, data_label, data_spec, default_network, experiment_arguments,
                                        make_cells, plain_log_axis, run_cells, setting_label)
from genbound.experiments.results import ExperimentResult, seed_summary
from genbound.factor import departure
from genbound.nn import SGD, reference_cnn, train

__all__ = ["LogLogFit", "fit_loglog_slope", "Rank1UpdateConfig", "rank1_update_experiment", "rank1_departure_cell",
           "rank1_training_cell", "rank1_update_cell", "grid_cells", "departure_slopes", "CELL_VERSION"]


@dataclass(frozen=True)
class LogLogFit:
    """Least-squares line through (log x, log y): y ~ exp(intercept) * x**slope.

    Attributes
    ----------
    slope, intercept : float
    stderr : float
        Standard error of the slope (NaN with two points).
    r2 : float
        Coefficient of determination of the fit in log-log space.
    n : int
        Number of points.
    """

    slope: float
    intercept: float
    stderr: float
    r2: float
    n: int


def fit_loglog_slope(x, y):
    r"""Fit log y = intercept + slope * log x by least squares (natural logarithms).

    .. math:: \hat s = \frac{\sum_i (u_i - \bar u)(v_i - \bar v)}{\sum_i (u_i - \bar u)^2}, \quad
              u = \log x, \ v = \log y,

    with the standard error sqrt(sum residual^2 / (n - 2) / sum (u - u_bar)^2).

    Parameters
    ----------
    x, y : array_like, positive and finite, same length >= 2; x not all equal

    Returns
    -------
    LogLogFit
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 1 or y.shape != x.shape:
        raise ValueError(f"x, y: expected two 1-d arrays of the same length, got shapes {x.shape} and {y.shape}")
    if x.size < 2:
        raise ValueError(f"x: expected at least 2 points, got {x.size}")
    for name, v in (("x", x), ("y", y)):
        if not np.all(np.isfinite(v)) or np.any(v <= 0):
            raise ValueError(f"{name}: expected positive finite values (a log-log fit)")
    u, v = np.log(x), np.log(y)
    du = u - u.mean()
    sxx = float(du @ du)
    if sxx == 0:
        raise ValueError("x: expected at least two distinct values")
    slope = float(du @ (v - v.mean())) / sxx
    intercept = float(v.mean() - slope * u.mean())
    resid = v - (intercept + slope * u)
    ss_res, ss_tot = float(resid @ resid), float(((v - v.mean()) ** 2).sum())
    stderr = float(np.sqrt(ss_res / (x.size - 2) / sxx)) if x.size > 2 else float("nan")
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else 1.0
    return LogLogFit(slope=slope, intercept=intercept, stderr=stderr, r2=r2, n=int(x.size))


@dataclass(frozen=True)
class Rank1UpdateConfig(DataOptions):
    """Options of :func:`rank1_update_experiment`; the defaults are the full run on the 8x8 digits, :meth:`quick`
    the quick one, :meth:`mnist` the full run on 28x28 images (:meth:`for_data` picks by data).
    The data fields (``network``: None is ``"digits"`` on digits, ``"mnist_gap"`` on 28x28 images;
    ``scaling``, ``data_seed``, ``n_train``, ``n_test``) are those of
    :class:`genbound.experiments.cells.DataOptions`.

    Attributes
    ----------
    rank : int
        CP rank of every convolution (default 1).
    epochs, batch_size, lr : training of the accuracy-and-time comparison (default 30 epochs, batch 64,
        lr 0.05), the same for factor-space and projected training.
    project_iters : int
        ALS sweeps of the projection after every full-filter step (default 5).
    alphas : tuple of float
        The step sizes of the departure sweep (default 1e-4 .. 1e-1, two per decade).
    fit_max_alpha : float
        Slopes are fitted on the alphas <= this value, where the lowest order dominates (default 1e-2); the
        figure shows every alpha.
    departure_epochs : int
        Length of the factor-space SGD run along which states are sampled (default 2).
    sample_steps : int
        Number of states (steps, evenly spaced from the first) at which the departure is swept over alpha,
        each with the batch gradient of that step (default 5).
    """

    rank: int = 1
    epochs: int = 30
    batch_size: int = 64
    lr: float = 0.05
    project_iters: int = 5
    alphas: tuple = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)
    fit_max_alpha: float = 1e-2
    departure_epochs: int = 2
    sample_steps: int = 5

    def __post_init__(self):
        check_data_options(self)
        for name in ("rank", "epochs", "batch_size", "project_iters", "departure_epochs", "sample_steps"):
            check_int(getattr(self, name), name, 1)
        for name in ("lr", "fit_max_alpha"):
            check_positive(getattr(self, name), name)
        alphas = tuple(sorted({check_positive(a, "alphas") for a in self.alphas}))
        if sum(a <= self.fit_max_alpha for a in alphas) < 2:
            raise ValueError(f"alphas: expected at least two values <= fit_max_alpha = {self.fit_max_alpha:g}, "
                             f"got {alphas}")
        object.__setattr__(self, "alphas", alphas)

    @classmethod
    def quick(cls):
        """The quick setting: 10 training epochs, 3 sampled states along one epoch."""
        return cls(epochs=10, departure_epochs=1, sample_steps=3)

    @classmethod
    def mnist(cls):
        """The full run on 28x28 images (``mnist_gap``, every training image): the departure sweep as on the
        digits, and the factor-space against full-filter-and-project comparison over 10 epochs instead of 30
        (630 SGD steps on the 4,000 images of the MNIST subset)."""
        return cls(epochs=10)


class _DepartureSweep:
    """``step_callback`` of :func:`genbound.train`: at the chosen steps, the departure of every CP layer for
    every alpha, from the layer's factors and the batch's weight-space gradient."""

    needs_weight_grads = True

    def __init__(self, steps, alphas):
        self.steps, self.alphas, self.rows = set(steps), list(alphas), []

    def __call__(self, model, step, grads, weight_grads):
        if step not in self.steps:
            return
        for i, layer in enumerate(model.layers):
            if not hasattr(layer, "rank"):
                continue
            for alpha in self.alphas:
                dep = departure(layer.p, layer.q, layer.t, weight_grads[i], alpha)
                self.rows.append({"step": int(step), "layer": i, "alpha": float(alpha), "grad_norm": dep.grad_norm,
                                  "total": float(np.linalg.norm(dep.total)),
                                  "first": float(np.linalg.norm(dep.first)),
                                  "residual": float(np.linalg.norm(dep.total - dep.first)),
                                  "order_2": float(np.linalg.norm(dep.second)),
                                  "order_3": float(np.linalg.norm(dep.third))})


def rank1_departure_cell(data, data_seed, scaling, n_train, n_test, network, rank, seed, departure_epochs,
                         batch_size, lr, alphas, sample_steps):
    """One departure cell of experiment 5: factor-space SGD (lr ``lr``) from ``seed`` for ``departure_epochs``
    epochs; at ``sample_steps`` evenly spaced steps, for every CP layer and every alpha, the norms of
    w'' - w' (``total``), of its first-order part (``first``), of the rest (``residual`` = ||total - first||,
    measured from the two steps, not from the formula) and of the order-2 and order-3 parts.

    Returns
    -------
    pandas.DataFrame
        One row per (step, layer, alpha).
    """
    d = cell_data(data, data_seed, scaling, n_train, n_test)
    model = reference_cnn(network, rank=rank, seed=seed)
    n_steps = departure_epochs * -(-d.m // batch_size)
    steps = sorted({int(s) for s in np.linspace(0, n_steps - 1, min(sample_steps, n_steps))})
    sweep_cb = _DepartureSweep(steps, alphas)
    train(model, d, epochs=departure_epochs, batch_size=batch_size, optimizer=SGD(lr=lr), seed=seed,
          progress=False, step_callback=sweep_cb)
    return pd.DataFrame(sweep_cb.rows)


def rank1_training_cell(data, data_seed, scaling, n_train, n_test, network, rank, seed, epochs, batch_size, lr,
                        project_iters):
    """One training cell of experiment 5: the same network, seed and batch order trained twice in this process,
    by factor-space SGD (``cp_update="factor"``) and by full-filter SGD projected back to rank R after every
    step (``cp_update="project"``, ``project_iters`` ALS sweeps), one after the other so that their times are
    comparable.

    Returns
    -------
    pandas.DataFrame
        One row per (method, epoch): the training history and ``elapsed`` (seconds since the start of that
        run, evaluation included).
    """
    d = cell_data(data, data_seed, scaling, n_train, n_test)
    frames = []
    for method in ("factor", "project"):
        model = reference_cnn(network, rank=rank, seed=seed)
        stamps = []
        t0 = time.perf_counter()
        hist = train(model, d, epochs=epochs, batch_size=batch_size, seed=seed, progress=False,
                     optimizer=SGD(lr=lr, cp_update=method, project_iters=project_iters),
                     callback=lambda mdl, row: stamps.append(time.perf_counter() - t0))
        frames.append(hist.assign(method=method, elapsed=stamps))
    return pd.concat(frames, ignore_index=True)[["method", "epoch", "step", "train_loss", "train_error",
                                                 "test_loss", "test_error", "elapsed"]]


def rank1_update_cell(data, data_seed, scaling, n_train, n_test, network, rank, seed, batch_size, lr,
                      departure_epochs, alphas, sample_steps, epochs, project_iters):
    """One cell of experiment 5 (one seed): :func:`rank1_departure_cell` then :func:`rank1_training_cell`, their
    rows stacked with a column ``part`` ("departure" or "training")."""
    common = dict(data=data, data_seed=data_seed, scaling=scaling, n_train=n_train, n_test=n_test, network=network,
                  rank=rank, seed=seed, batch_size=batch_size, lr=lr)
    dep = rank1_departure_cell(**common, departure_epochs=departure_epochs, alphas=alphas, sample_steps=sample_steps)
    trn = rank1_training_cell(**common, epochs=epochs, project_iters=project_iters)
    return pd.concat([dep.assign(part="departure"), trn.assign(part="training")], ignore_index=True)


#: Part of every cell key: raise it when the cell function's results change, so stored cells are recomputed.
CELL_VERSION = 1


def grid_cells(data="digits", grid=None, *, quick=False, config=None):
    """The cells of :func:`rank1_update_cell` over ``grid`` and the ``key_extra`` of their sweep
    (:func:`genbound.experiments.cells.make_cells`); every parameter not in ``grid`` from ``config`` (default
    :meth:`Rank1UpdateConfig.for_data` of ``data``, the quick setting with ``quick``) by name, with seed 0."""
    cfg = check_config(config, Rank1UpdateConfig, quick, data_spec(data))
    network = cfg.network or default_network(data_spec(data), "digits")
    return make_cells(rank1_update_cell, cfg, data, grid, CELL_VERSION, network=network, seed=0)


def departure_slopes(departures, fit_max_alpha):
    """Log-log slopes against alpha, per (seed, step, layer) of a departure table: of ``residual``
    (expected 2) and of ``total`` (expected 1), fitted on the alphas <= ``fit_max_alpha``."""
    rows = []
    keys = [k for k in ("seed", "step", "layer") if k in departures.columns]
    for key, grp in departures[departures["alpha"] <= fit_max_alpha].groupby(keys):
        res = fit_loglog_slope(grp["alpha"], grp["residual"])
        tot = fit_loglog_slope(grp["alpha"], grp["total"])
        rows.append({**dict(zip(keys, key)), "residual_slope": res.slope, "residual_slope_stderr": res.stderr,
                     "residual_r2": res.r2, "total_slope": tot.slope, "total_r2": tot.r2, "n_alphas": res.n,
                     "grad_norm": float(grp["grad_norm"].iloc[0])})
    return pd.DataFrame(rows)


def rank1_update_experiment(data="digits", *, seeds=5, quick=False, out=None, backend="local", scheduler=None,
                            workers=None, progress=True, config=None) -> ExperimentResult:
    """Experiment 5: the rank-1 update in practice: the departure w'' - w' of the factored step against alpha
    (slope 1, and slope 2 for the part beyond first order), and factor-space training against full-filter
    training projected back to rank R (accuracy and time).

    The parameters are those of :func:`genbound.experiments.batch_claims.batch_landscape_experiment`, with
    ``config`` a :class:`Rank1UpdateConfig`. One cell per seed (:func:`rank1_update_cell`) runs through
    :func:`genbound.experiments.sweep`.

    Returns
    -------
    ExperimentResult
        Tables ``runs`` (training histories, one row per seed, method and epoch), ``summary`` (final test and
        training error and time per method, statistics over seeds), ``departures`` (per seed, step, layer and
        alpha), ``slopes`` (fitted slopes per seed, step and layer); figure ``rank1_update``; claims.
    """
    setting = setting_label(config, quick, data)
    cfg, seeds, spec = experiment_arguments(config, Rank1UpdateConfig, quick, seeds, data, backend, scheduler,
                                            workers)
    cells, key_extra = grid_cells(spec, {"seed": seeds}, config=cfg)
    network = cells[0]["network"]
    table = run_cells(rank1_update_cell, cells, out=out, key_extra=key_extra, backend=backend, scheduler=scheduler,
                      workers=workers, progress=progress)
    departures = table[table["part"] == "departure"][["seed", "step", "layer", "alpha", "grad_norm", "total", "first",
                                                      "residual", "order_2", "order_3"]].reset_index(drop=True)
    departures[["step", "layer"]] = departures[["step", "layer"]].astype(int)
    runs = table[table["part"] == "training"][["seed", "method", "epoch", "step", "train_loss", "train_error",
                                                "test_loss", "test_error", "elapsed"]].reset_index(drop=True)
    final = runs[runs["epoch"] == runs.groupby(["seed", "method"])["epoch"].transform("max")].copy()
    final["seconds_per_epoch"] = final["elapsed"] / final["epoch"]
    summary = seed_summary(final, ["method"], ["train_error", "test_error", "elapsed", "seconds_per_epoch"])

    slopes = departure_slopes(departures, cfg.fit_max_alpha)
    per_seed = slopes.assign(residual_dev=(slopes["residual_slope"] - 2).abs(),
                             total_dev=(slopes["total_slope"] - 1).abs()).groupby("seed")
    res_dev, tot_dev = per_seed["residual_dev"].max(), per_seed["total_dev"].max()
    wide = final.pivot(index="seed", columns="method", values=["test_error", "elapsed"])
    claims = [
        claim("Beyond first order, the factored step departs from the plain step as alpha^2: the log-log slope "
               "of ||w'' - w' - first-order part|| against alpha is 2 (largest deviation over the sampled steps "
               f"and layers below 0.05, alpha <= {cfg.fit_max_alpha:g})", res_dev, 0.05, "below",
               "largest |slope - 2| per seed"),
        claim("The departure ||w'' - w'|| itself is first order in alpha (slope 1: J J^T G differs from G; largest "
               "deviation below 0.05)", tot_dev, 0.05, "below", "largest |slope - 1| per seed"),
        claim("Training in factor space is faster than training the full filter and projecting to rank "
               f"{cfg.rank} after every step (time ratio project / factor above 1)",
               wide["elapsed"]["project"] / wide["elapsed"]["factor"], 1.0, "above",
               f"training time ratio project / factor over {cfg.epochs} epochs"),
        claim("Factor-space training is not less accurate than full-filter-and-project training (final test "
               "error of factor minus project below 0.01)",
               wide["test_error"]["factor"] - wide["test_error"]["project"], 0.01, "below",
               "final test error, factor minus project"),
    ]
    description = (
        f"The rank-{cfg.rank} update in practice (Lee & Lee, Eqs. 2-3). A factor-space SGD step moves a CP filter "
        "to w'' = (p - a g_p)(q - a g_q)(t - a g_t); the plain step gives w' = W - a G. Their difference is first "
        "order in the step size a (the first-order part -a (J J^T - I) G, J the Jacobian of the CP map), and "
        "what remains after it is of order a^2. On the CP layers of the "
        f"{network} network, at {cfg.sample_steps} states sampled along {cfg.departure_epochs} epoch(s) of "
        f"factor-space SGD (each with the batch gradient of its step), we sweep a over {list(cfg.alphas)} and fit "
        f"log-log slopes on a <= {cfg.fit_max_alpha:g}: ||w'' - w'|| should have slope 1 and the residual "
        "||w'' - w' - first-order part|| slope 2 (both measured from the two steps). Then the same network, seed "
        f"and batch order are trained for {cfg.epochs} epochs (batch {cfg.batch_size}, lr {cfg.lr:g}) in factor "
        f"space and by full-filter steps projected back to rank {cfg.rank} after every step ({cfg.project_iters} "
        "ALS sweeps warm-started from the current factors), one after the other in the same process: final "
        "test error and training time.")
    fig = plot_rank1_update(departures, runs, cfg)
    title = f"Experiment 5: the rank-{cfg.rank} update in practice ({data_label(spec)} data, {network} network)"
    return ExperimentResult(name="rank1_update", title=title,
                            description=description,
                            tables={"runs": runs, "summary": summary, "departures": departures, "slopes": slopes},
                            figures={"rank1_update": fig}, claims=claims,
                            config={**config_dict(cfg), "data": spec, "network": network, "seeds": seeds,
                                    "setting": setting})


def plot_rank1_update(departures, runs, config):
    """The figure of experiment 5: (a) ||w'' - w'|| and its part beyond first order against alpha (log-log,
    one thin line per sampled state and layer, with slope-1 and slope-2 guides), (b) test error and (c)
    training time along the epochs for factor-space and projected training (thin: seeds, thick: mean)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(15, 4.8))
    axes = fig.subplots(1, 3)
    ax = axes[0]
    for _, grp in departures.groupby(["seed", "step", "layer"]):
        ax.plot(grp["alpha"], grp["total"], "-", color=COLORS[0], lw=0.7, alpha=0.5)
        ax.plot(grp["alpha"], grp["residual"], "-", color=COLORS[1], lw=0.7, alpha=0.5)
    med = departures.groupby("alpha")[["total", "residual"]].median()
    a = med.index.to_numpy()
    a0 = a[0]
    ax.plot(a, med["total"], "o-", color=COLORS[0], lw=2, label=r"$\|w'' - w'\|$ (median)")
    ax.plot(a, med["residual"], "s-", color=COLORS[1], lw=2, label=r"$\|w'' - w' - \mathrm{first}\|$ (median)")
    ax.plot(a, med["total"].iloc[0] * (a / a0), "k:", lw=1.2, label="slope 1")
    ax.plot(a, med["residual"].iloc[0] * (a / a0) ** 2, "k--", lw=1.2, label="slope 2")
    ax.axvline(config.fit_max_alpha, color="gray", lw=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(r"step size $\alpha$ (fit on $\alpha \leq$" + f" {config.fit_max_alpha:g}, grey line)")
    ax.set_ylabel("Frobenius norm over a CP layer")
    ax.set_title("(a) departure of the factored step from the plain step", fontsize=10)
    ax.legend(fontsize=8)
    for ax, col, ylabel, title in ((axes[1], "test_error", "test error", "(b) test error"),
                                   (axes[2], "elapsed", "seconds since the start", "(c) training time")):
        for i, (method, r) in enumerate(runs.groupby("method", sort=False)):
            c = COLORS[2 + i]
            for _, rs in r.groupby("seed"):
                ax.plot(rs["epoch"], rs[col], "-", color=c, lw=0.7, alpha=0.45)
            mean = r.groupby("epoch")[col].mean()
            name = "factor space" if method == "factor" else f"full filter + projection ({config.project_iters} ALS)"
            ax.plot(mean.index, mean.to_numpy(), "-", color=c, lw=2, label=name)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8)
    plain_log_axis(axes[1])
    fig.suptitle(f"The rank-{config.rank} update in practice (batch {config.batch_size}, lr {config.lr:g}); "
                 "thin lines: seeds or sampled states")
    fig.tight_layout()
    return fig
