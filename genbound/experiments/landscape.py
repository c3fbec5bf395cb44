"""Per-batch landscapes along training runs: trajectories, SGD versus full-batch GD from the same start, and
the digits study of ``docs/landscape.md`` (its tables and its figure).

Everything here trains; the measurements themselves are :mod:`genbound.landscape`'s.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from genbound._checks import check_dataset, check_int, check_model, check_positive
from genbound.landscape import (BatchLandscapeConfig, batch_landscape, batch_partition, common_minimum_test,
                                sharpness, slice_1d, top_eigenvalues)
from genbound.nn import GD, SGD, train

__all__ = ["trajectory_landscape", "TrajectoryLandscape", "sgd_vs_gd_batch_losses", "BatchComparison",
           "BatchLandscapeStudyConfig", "BatchLandscapeStudy", "batch_landscape_study", "plot_batch_landscape_study"]


def _landscape_config(config, default):
    if config is None:
        return default
    if not isinstance(config, BatchLandscapeConfig):
        raise TypeError(f"config: expected a genbound.landscape.BatchLandscapeConfig, got {type(config).__name__}")
    return config


# --------------------------------------------------------------------------------------------------------
# Along a training run
# --------------------------------------------------------------------------------------------------------


@dataclass
class TrajectoryLandscape:
    """Per-batch landscapes measured along a training run.

    Attributes
    ----------
    batches : pandas.DataFrame
        One row per (checkpoint, batch): ``epoch``, ``step`` and the columns of
        :func:`genbound.landscape.batch_landscape`.
    summary : pandas.DataFrame
        One row per checkpoint: ``epoch``, ``step``, train/test loss and error, and the summaries of
        :func:`genbound.landscape.batch_landscape` (full_loss, max_loss, loss_std, loss_range, coherence,
        diversities, ...).
    history : pandas.DataFrame
        The training history of :func:`genbound.train`.
    """

    batches: pd.DataFrame
    summary: pd.DataFrame
    history: pd.DataFrame


def trajectory_landscape(model, data, epochs=30, batch_size=64, optimizer=None, seed=0, every=1, *, config=None,
                         landscape_batch_size=None, landscape_seed=None, progress=False):
    """Train ``model`` (in place, with :func:`genbound.train`) and measure the per-batch landscape at
    checkpoints: at initialization, every ``every`` epochs, and at the end.

    The landscape is measured on one fixed partition of the training set,
    :func:`genbound.landscape.batch_partition` ``(data, landscape_batch_size, landscape_seed)``; with the
    defaults (same batch size, ``landscape_seed = seed``) these are exactly the batches of the first training
    epoch, so the same functions L_b are followed through the run. Shifting landscapes show as the per-batch
    losses and gradient directions moving relative to each other; convergence to a common minimum as
    max_b L_b and all ||g_b|| falling together (and ``coherence`` staying high) rather than the batch
    gradients cancelling. Measuring does not disturb training.

    Parameters
    ----------
    model : genbound.nn.Sequential (trained in place)
    data : Dataset
    epochs, batch_size, optimizer, seed, progress : as in :func:`genbound.train` (default optimizer
        SGD(lr=0.05))
    every : int >= 1
        Checkpoint spacing in epochs.
    config : genbound.landscape.BatchLandscapeConfig, optional
        What is measured at each checkpoint (default ``BatchLandscapeConfig()``).
    landscape_batch_size : int, optional (default ``batch_size``)
    landscape_seed : int or numpy.random.Generator, optional (default ``seed``)
        The partition, and the Lanczos start vectors unless ``config.eig_seed`` is set.

    Returns
    -------
    TrajectoryLandscape
        ``batches`` (long table with ``epoch``, ``step``, ``batch``), ``summary`` (one row per checkpoint),
        ``history``.
    """
    check_model(model)
    check_dataset(data)
    config = _landscape_config(config, BatchLandscapeConfig())
    epochs = check_int(epochs, "epochs", 1)
    batch_size = check_int(batch_size, "batch_size", 1)
    every = check_int(every, "every", 1)
    lb = batch_size if landscape_batch_size is None else check_int(landscape_batch_size, "landscape_batch_size", 1)
    ls = seed if landscape_seed is None else landscape_seed
    optimizer = SGD(lr=0.05) if optimizer is None else optimizer
    partition = batch_partition(data, lb, ls)
    tables, summary = [], []

    def measure(mdl, row):
        epoch = row["epoch"]
        if float(epoch).is_integer() and (int(epoch) % every == 0 or int(epoch) == epochs):
            df = batch_landscape(mdl, data, lb, ls, config, batches=partition)
            df.insert(0, "step", row["step"])
            df.insert(0, "epoch", int(epoch))
            tables.append(pd.DataFrame(df))
            summary.append({"epoch": int(epoch), "step": row["step"], "train_loss": row["train_loss"],
                            "train_error": row["train_error"], "test_loss": row["test_loss"],
                            "test_error": row["test_error"],
                            **{k: v for k, v in df.attrs.items() if k not in ("batch_size", "seed", "m")}})

    history = train(model, data, epochs=epochs, batch_size=batch_size, optimizer=optimizer, seed=seed,
                    progress=progress, callback=measure)
    batches = pd.concat(tables, ignore_index=True)
    batches.attrs = {}
    return TrajectoryLandscape(batches=batches, summary=pd.DataFrame(summary), history=history)


# --------------------------------------------------------------------------------------------------------
# SGD versus full-batch GD
# --------------------------------------------------------------------------------------------------------


@dataclass
class BatchComparison:
    """Per-batch landscapes at the end of SGD and at points reached by full-batch GD from the same start.

    Attributes
    ----------
    table : pandas.DataFrame
        The per-batch tables of :func:`genbound.landscape.batch_landscape` at every end point, with a column
        ``optimizer`` ("SGD", and "GD" for one GD learning rate or "GD lr=<lr>" for several).
    summary : pandas.DataFrame
        One row per optimizer: lr, epochs, steps, seconds, train/test loss and error, and the
        :func:`genbound.landscape.batch_landscape` summaries.
    histories : dict of str -> pandas.DataFrame
        Training histories, keyed like ``optimizer``.
    weights : dict of str -> numpy.ndarray
        Start ("init") and end weights (keyed like ``optimizer``) as flat vectors.
    """

    table: pd.DataFrame
    summary: pd.DataFrame
    histories: dict
    weights: dict


def _learning_rates(gd_lr, sgd_lr):
    if gd_lr is None:
        return [sgd_lr]
    if np.ndim(gd_lr) == 0:
        return [check_positive(gd_lr, "gd_lr")]
    lrs = [check_positive(lr, "gd_lr") for lr in gd_lr]
    if not lrs:
        raise ValueError("gd_lr: expected at least one learning rate")
    return lrs


def sgd_vs_gd_batch_losses(model, data, batch_size=64, sgd_lr=0.05, sgd_epochs=30, gd_lr=None, gd_max_epochs=None,
                           seed=0, *, match_loss=True, config=None, progress=False):
    """Train copies of ``model`` by SGD and by full-batch GD from the same start and compare the per-batch
    landscapes at the end points.

    SGD: ``sgd_epochs`` epochs of mini-batches of ``batch_size`` with learning rate ``sgd_lr`` (batch order
    from ``seed``). GD: steps w <- w - lr grad L(w) on the whole training set for each lr in ``gd_lr``
    (default ``sgd_lr``), at most ``gd_max_epochs`` steps (default: as many steps as SGD took), stopped
    through :func:`genbound.train`'s callback as soon as the training loss is at most SGD's final training
    loss when ``match_loss``, so that all end points have comparable training loss. All end points are
    measured on the same partition (:func:`genbound.landscape.batch_partition` ``(data, batch_size, seed)``,
    SGD's first-epoch batches).

    Parameters
    ----------
    model : genbound.nn.Sequential
        The starting point (unchanged; copies are trained).
    data : Dataset
    batch_size, sgd_lr, sgd_epochs, gd_max_epochs, seed, match_loss : see above
    gd_lr : float or sequence of float, optional
        One GD learning rate (end point "GD") or several (end points "GD lr=<lr>").
    config : genbound.landscape.BatchLandscapeConfig, optional
        What is measured at the end points (default ``BatchLandscapeConfig(hessian=True)``).
    progress : bool
        Progress bars of the training runs.

    Returns
    -------
    BatchComparison
    """
    check_model(model)
    check_dataset(data)
    config = _landscape_config(config, BatchLandscapeConfig(hessian=True))
    batch_size = check_int(batch_size, "batch_size", 1)
    sgd_epochs = check_int(sgd_epochs, "sgd_epochs", 1)
    sgd_lr = check_positive(sgd_lr, "sgd_lr")
    gd_lrs = _learning_rates(gd_lr, sgd_lr)
    gd_names = ["GD"] if len(gd_lrs) == 1 else [f"GD lr={lr:g}" for lr in gd_lrs]
    sgd_steps = sgd_epochs * (-(-data.m // batch_size))
    gd_max_epochs = sgd_steps if gd_max_epochs is None else check_int(gd_max_epochs, "gd_max_epochs", 1)
    partition = batch_partition(data, batch_size, seed)
    weights = {"init": model.get_flat()}
    tables, summary, histories, runs = [], [], {}, []

    sgd_model = model.copy()
    t0 = time.perf_counter()
    histories["SGD"] = train(sgd_model, data, epochs=sgd_epochs, batch_size=batch_size, optimizer=SGD(lr=sgd_lr),
                             seed=seed, progress=progress)
    runs.append(("SGD", sgd_model, sgd_lr, time.perf_counter() - t0))
    target = float(histories["SGD"]["train_loss"].iloc[-1])

    def reached_target(mdl, row):
        return match_loss and row["epoch"] > 0 and row["train_loss"] <= target

    for name, lr in zip(gd_names, gd_lrs):
        gd_model = model.copy()
        t0 = time.perf_counter()
        histories[name] = train(gd_model, data, epochs=gd_max_epochs, batch_size=batch_size, optimizer=GD(lr=lr),
                                seed=seed, progress=progress, callback=reached_target)
        runs.append((name, gd_model, lr, time.perf_counter() - t0))

    for name, mdl, lr, secs in runs:
        weights[name] = mdl.get_flat()
        df = batch_landscape(mdl, data, batch_size, seed, config, batches=partition)
        last = histories[name].iloc[-1]
        summary.append({"optimizer": name, "lr": lr, "epochs": float(last["epoch"]), "steps": int(last["step"]),
                        "seconds": secs, "train_loss": float(last["train_loss"]),
                        "train_error": float(last["train_error"]), "test_loss": float(last["test_loss"]),
                        "test_error": float(last["test_error"]),
                        **{k: v for k, v in df.attrs.items() if k != "seed"}})
        df.insert(0, "optimizer", name)
        tables.append(pd.DataFrame(df))
    table = pd.concat(tables, ignore_index=True)
    table.attrs = {}
    return BatchComparison(table=table, summary=pd.DataFrame(summary), histories=histories, weights=weights)


# --------------------------------------------------------------------------------------------------------
# The digits study: SGD versus GD end points, their batch landscapes, trajectories and slices
# --------------------------------------------------------------------------------------------------------

#: Files written by :meth:`BatchLandscapeStudy.save`, by attribute.
STUDY_FILES = {"table": "batch_landscape.csv", "summary": "batch_landscape_summary.csv",
               "trajectory": "batch_landscape_trajectory.csv", "slices": "batch_landscape_slices.csv"}
STUDY_FIGURE = "batch_landscape.png"


@dataclass(frozen=True)
class BatchLandscapeStudyConfig:
    """Settings of :func:`batch_landscape_study` (defaults: the run reported in ``docs/landscape.md``).

    Attributes
    ----------
    batch_size : int
        SGD mini-batch size, also the size of the measured batches (default 64).
    sgd_lr : float
        SGD learning rate (default 0.05).
    sgd_epochs : int
        SGD epochs (default 30).
    gd_lrs : tuple of float
        Full-batch GD learning rates, one end point each (default (0.05, 0.2)).
    gd_max_factor : int
        GD runs stop at SGD's final training loss, or after ``gd_max_factor`` times SGD's step count
        (default 4).
    seed : int
        Batch order of SGD, the measured partition, and the Lanczos start vectors (default 0).
    grad_tol, curvature_tol : float
        Thresholds of :func:`genbound.landscape.common_minimum_test` (default 0.1 and 0.05).
    checkpoints : int
        About this many checkpoints along each run (every ``max(1, epochs // checkpoints)`` epochs;
        default 15).
    slice_radius : float
        The 1-D slices span alpha in [-slice_radius, slice_radius] (default 0.5) ...
    slice_points : int
        ... on this many points (default 41).
    """

    batch_size: int = 64
    sgd_lr: float = 0.05
    sgd_epochs: int = 30
    gd_lrs: tuple = (0.05, 0.2)
    gd_max_factor: int = 4
    seed: int = 0
    grad_tol: float = 0.1
    curvature_tol: float = 0.05
    checkpoints: int = 15
    slice_radius: float = 0.5
    slice_points: int = 41

    def __post_init__(self):
        for name in ("batch_size", "sgd_epochs", "gd_max_factor", "checkpoints"):
            check_int(getattr(self, name), name, 1)
        check_int(self.slice_points, "slice_points", 2)
        check_int(self.seed, "seed", 0)
        for name in ("sgd_lr", "grad_tol", "slice_radius"):
            check_positive(getattr(self, name), name)
        check_positive(self.curvature_tol, "curvature_tol", allow_zero=True)
        object.__setattr__(self, "gd_lrs", tuple(_learning_rates(self.gd_lrs, self.sgd_lr)))

    @property
    def names(self):
        """The end points, in order: "SGD", then "GD lr=<lr>" for every GD learning rate."""
        return ["SGD"] + [f"GD lr={lr:g}" for lr in self.gd_lrs]


@dataclass
class BatchLandscapeStudy:
    """Tables of :func:`batch_landscape_study`.

    Attributes
    ----------
    table : pandas.DataFrame
        Per end point (``optimizer``) and batch: the :func:`genbound.landscape.batch_landscape` columns and the
        common-minimum test's (``top_eig``, ``min_eig``, ``grad_ratio``, ``curvature_ratio``, ``passes``, ...).
    summary : pandas.DataFrame
        One row per end point: training, landscape summaries, full-data eigenvalues, verdict of the
        common-minimum test, Lanczos top eigenvalue and Keskar sharpness (eps 1e-3), timings.
    trajectory : pandas.DataFrame
        Per-checkpoint summaries along every run (:class:`TrajectoryLandscape` ``summary``, with ``optimizer``).
    slices : pandas.DataFrame
        1-D filter-normalized slices through every end point with per-batch losses (:func:`genbound.landscape.
        slice_1d`, with ``optimizer``).
    config : BatchLandscapeStudyConfig
    """

    table: pd.DataFrame
    summary: pd.DataFrame
    trajectory: pd.DataFrame
    slices: pd.DataFrame
    config: BatchLandscapeStudyConfig = field(default_factory=BatchLandscapeStudyConfig)

    def save(self, out):
        """Write the four tables as CSV (6 significant digits) into the folder ``out``; returns the paths."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        paths = []
        for attr, name in STUDY_FILES.items():
            getattr(self, attr).to_csv(out / name, index=False, float_format="%.6g")
            paths.append(out / name)
        return paths

    @classmethod
    def load(cls, out, config=None):
        """Read the tables written by :meth:`save` (``config``: the settings they were made with)."""
        tables = {attr: pd.read_csv(Path(out) / name) for attr, name in STUDY_FILES.items()}
        return cls(**tables, config=BatchLandscapeStudyConfig() if config is None else config)


def batch_landscape_study(model, data, config=None, *, progress=False):
    """SGD versus full-batch GD from the same start, measured batch by batch (the study of ``docs/landscape.md``).

    1. :func:`sgd_vs_gd_batch_losses` trains copies of ``model`` by SGD and by GD (each GD run stopped at
       SGD's final training loss) and tabulates the per-batch landscapes at the end points, on SGD's
       first-epoch batches.
    2. At every end point: :func:`genbound.landscape.common_minimum_test` with the initialization as
       reference, the top Hessian eigenvalue by Lanczos on the whole training set, and Keskar's sharpness
       at eps = 1e-3.
    3. Every run is repeated (deterministically, checked bit for bit) with :func:`trajectory_landscape` to
       follow the same batches along it.
    4. A 1-D filter-normalized slice through every end point, with per-batch losses.

    Parameters
    ----------
    model : genbound.nn.Sequential
        The common initialization (unchanged).
    data : Dataset
    config : BatchLandscapeStudyConfig, optional
    progress : bool
        Progress bars of the training runs.

    Returns
    -------
    BatchLandscapeStudy
        Draw it with :func:`plot_batch_landscape_study`; write it with :meth:`BatchLandscapeStudy.save`.
    """
    check_model(model)
    check_dataset(data)
    config = BatchLandscapeStudyConfig() if config is None else config
    if not isinstance(config, BatchLandscapeStudyConfig):
        raise TypeError(f"config: expected a BatchLandscapeStudyConfig, got {type(config).__name__}")
    bs, seed, names = config.batch_size, config.seed, config.names
    sgd_steps = config.sgd_epochs * -(-data.m // bs)
    w_init = model.get_flat()

    cmp = sgd_vs_gd_batch_losses(model, data, batch_size=bs, sgd_lr=config.sgd_lr, sgd_epochs=config.sgd_epochs,
                                 gd_lr=config.gd_lrs, gd_max_epochs=config.gd_max_factor * sgd_steps, seed=seed,
                                 config=BatchLandscapeConfig(hessian=False), progress=progress)

    probe = model.copy()
    tables, extra = [], []
    for name in names:
        probe.set_flat(cmp.weights[name])
        t0 = time.perf_counter()
        cm = common_minimum_test(probe, data, batch_size=bs, seed=seed, grad_tol=config.grad_tol,
                                 curvature_tol=config.curvature_tol, reference=w_init)
        secs = time.perf_counter() - t0
        cols = ["batch", "top_eig", "min_eig", "eig_steps", "eig_converged", "ref_grad_norm", "grad_ratio",
                "curvature_ratio", "stationary", "no_negative_curvature", "passes"]
        tables.append(cm.table[cols].assign(optimizer=name))
        t0 = time.perf_counter()
        top = top_eigenvalues(probe, data)
        top_secs = time.perf_counter() - t0
        extra.append({"optimizer": name, "full_top_eig": cm.full["top_eig"], "full_min_eig": cm.full["min_eig"],
                      "full_grad_ratio": cm.full["grad_ratio"], "full_curvature_ratio": cm.full["curvature_ratio"],
                      "verdict": cm.verdict, "fraction_batches_passing": cm.fraction_passing,
                      "max_batch_grad_ratio": float(cm.table["grad_ratio"].max()),
                      "min_batch_curvature_ratio": float(cm.table["curvature_ratio"].min()),
                      "top_eig_lanczos": top.value, "top_eig_hvps": top.n_hvp, "top_eig_seconds": top_secs,
                      "sharpness_1e-3": sharpness(probe, data, eps=1e-3).value, "common_minimum_seconds": secs})
    table = cmp.table.merge(pd.concat(tables, ignore_index=True), on=["optimizer", "batch"])
    summary = cmp.summary.merge(pd.DataFrame(extra), on="optimizer")

    steps = cmp.summary.set_index("optimizer")["steps"]
    plan = [("SGD", SGD(lr=config.sgd_lr), config.sgd_epochs)]
    plan += [(name, GD(lr=lr), int(steps[name])) for name, lr in zip(names[1:], config.gd_lrs)]
    runs = []
    for name, optimizer, epochs in plan:
        run = model.copy()
        res = trajectory_landscape(run, data, epochs=epochs, batch_size=bs, optimizer=optimizer, seed=seed,
                                   every=max(1, epochs // config.checkpoints),
                                   config=BatchLandscapeConfig(per_sample=False), progress=progress)
        if not np.array_equal(run.get_flat(), cmp.weights[name]):
            raise RuntimeError(f"the {name} run with checkpoints ended elsewhere than the compared run")
        runs.append(res.summary.assign(optimizer=name))
    trajectory = pd.concat(runs, ignore_index=True)

    alphas = np.linspace(-config.slice_radius, config.slice_radius, config.slice_points)
    slices = []
    for name in names:
        probe.set_flat(cmp.weights[name])
        slices.append(slice_1d(probe, data, alphas=alphas, per_batch=True, batch_size=bs, seed=seed)
                      .assign(optimizer=name))
    return BatchLandscapeStudy(table=table, summary=summary, trajectory=trajectory,
                               slices=pd.concat(slices, ignore_index=True), config=config)


_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")
_MARKERS = ("o", "s", "^", "v", "D", "P")


def _per_batch(ax, study, s, column, full_column, label):
    for i, name in enumerate(study.config.names):
        t = study.table[study.table.optimizer == name]
        ax.plot(t["batch"], t[column], _MARKERS[i], color=_COLORS[i], ms=5, label=label(name))
        ax.axhline(s.loc[name, full_column], color=_COLORS[i], lw=1.2, ls="--")
    ax.set_xlabel(f"batch b (size {study.config.batch_size}: SGD's first-epoch batches)")
    lo, hi = ax.get_ylim()
    ax.set_ylim(lo, hi + 0.45 * (hi - lo))  # room for the legend
    ax.legend(fontsize=7, loc="upper left")


def plot_batch_landscape_study(study, path=None):
    """The 3 x 3 figure of a :class:`BatchLandscapeStudy`: (a-c) per-batch loss, gradient norm and curvature at
    the end points, (d-f) slices through them, (g-h) batch losses and gradient coherence along the runs, (i)
    the common-minimum test. Saved to ``path`` (100 dpi) when given; returns the matplotlib Figure."""
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    from genbound.landscape import plot_slice_1d

    names, table, traj = study.config.names, study.table, study.trajectory
    grad_tol, curvature_tol = study.config.grad_tol, study.config.curvature_tol
    s = study.summary.set_index("optimizer")
    slices = {name: df.drop(columns="optimizer").reset_index(drop=True)
              for name, df in study.slices.groupby("optimizer")}
    fig, axes = plt.subplots(3, 3, figsize=(16, 13))
    # (a) batch losses, (b) batch gradient norms
    _per_batch(axes[0, 0], study, s, "loss", "full_loss",
               lambda n: f"{n}: L={s.loc[n, 'full_loss']:.3f}, max$_b$ L$_b$={s.loc[n, 'max_loss']:.3f}, "
                         f"std={s.loc[n, 'loss_std']:.3f}")
    axes[0, 0].set_ylabel("batch loss $L_b$")
    axes[0, 0].set_title("(a) per-batch loss (dashed: full loss)")
    _per_batch(axes[0, 1], study, s, "grad_norm", "full_grad_norm",
               lambda n: f"{n}: ||g||={s.loc[n, 'full_grad_norm']:.3f}, coherence={s.loc[n, 'coherence']:.3f}, "
                         f"diversity={s.loc[n, 'gradient_diversity']:.2f}")
    axes[0, 1].set_ylabel(r"$\|\nabla L_b\|$")
    axes[0, 1].set_title("(b) per-batch gradient norm (dashed: full gradient)")
    # (c) batch curvature
    ax = axes[0, 2]
    for i, name in enumerate(names):
        t = table[table.optimizer == name]
        ax.plot(t["batch"], t["top_eig"], _MARKERS[i], color=_COLORS[i], ms=5,
                label=rf"{name}: $\lambda_{{max}}(H_b)$; full {s.loc[name, 'full_top_eig']:.1f}")
        ax.plot(t["batch"], -t["min_eig"], _MARKERS[i], color=_COLORS[i], ms=5, mfc="none",
                label=rf"{name}: $-\lambda_{{min}}(H_b)$; full {-s.loc[name, 'full_min_eig']:.3f}")
        ax.axhline(s.loc[name, "full_top_eig"], color=_COLORS[i], lw=1.2, ls="--")
    ax.set_yscale("log")
    ax.set_xlabel("batch b")
    ax.set_ylabel("Hessian eigenvalue of $L_b$")
    ax.set_title("(c) per-batch curvature (dashed: full-data $\\lambda_{max}$)")
    ax.legend(fontsize=6.5, ncol=2, loc="center")
    # (d, e, f) slices
    for ax, name, tag in zip(axes[1], names, "def"):
        plot_slice_1d(slices[name], ax=ax, per_batch=True)
        ax.set_yscale("log")
        ax.set_title(f"({tag}) {name} end point: $L_b$ along a filter-normalized direction", fontsize=10)
        ax.set_xlabel(r"$\alpha$ in $L(\theta + \alpha d)$ (thin: $L_b$, black: full)")
    lo = min(ax.get_ylim()[0] for ax in axes[1])
    hi = max(ax.get_ylim()[1] for ax in axes[1])
    for ax in axes[1]:
        ax.set_ylim(lo, hi)
    # (g) along the runs: full loss and batch-loss band
    ax = axes[2, 0]
    for i, name in enumerate(names):
        t = traj[traj.optimizer == name]
        ax.plot(t["step"], t["full_loss"], "-", color=_COLORS[i], label=f"{name}: full loss")
        ax.fill_between(t["step"], t["min_loss"], t["max_loss"], color=_COLORS[i], alpha=0.2,
                        label=f"{name}: min$_b$..max$_b$ $L_b$")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.legend(fontsize=7)
    ax.set_title("(g) along the runs: full loss and the band of batch losses", fontsize=10)
    # (h) coherence along the runs
    ax = axes[2, 1]
    for i, name in enumerate(names):
        t = traj[traj.optimizer == name]
        ax.plot(t["step"], t["coherence"], "-", marker=_MARKERS[i], ms=3, color=_COLORS[i], label=name)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("step")
    ax.set_ylabel(r"coherence $\|\bar g\|^2 / \overline{\|g_b\|^2}$")
    ax.legend(fontsize=8)
    ax.set_title("(h) gradient coherence over the batches along the runs", fontsize=10)
    # (i) the common-minimum test
    ax = axes[2, 2]
    for i, name in enumerate(names):
        t = table[table.optimizer == name]
        ax.plot(t["grad_ratio"], t["curvature_ratio"], _MARKERS[i], color=_COLORS[i], ms=5, alpha=0.7,
                label=f"{name}: {s.loc[name, 'verdict']} ({s.loc[name, 'fraction_batches_passing']:.0%} of batches)")
        ax.plot(s.loc[name, "full_grad_ratio"], s.loc[name, "full_curvature_ratio"], "*", color=_COLORS[i],
                ms=16, markeredgecolor="black")
    ax.axvline(grad_tol, color="gray", ls=":")
    ax.axhline(-curvature_tol, color="gray", ls=":")
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel(r"$\|\nabla L_b(w)\| / \|\nabla L_b(w_0)\|$  (star: full loss)")
    ax.set_ylabel(r"$\lambda_{min} / \lambda_{max}$ of $H_b$")
    ax.legend(fontsize=7, loc="lower left")
    ax.set_title(f"(i) common-minimum test (pass: left of {grad_tol:g}, above -{curvature_tol:g})", fontsize=10)
    parts = [f"{n} ({int(s.loc[n, 'steps'])} steps): train loss {s.loc[n, 'train_loss']:.3f}, "
             f"test error {s.loc[n, 'test_error']:.3f}" for n in names]
    m = int(s["m"].iloc[0])
    fig.suptitle(f"Digits (m={m}), rank-1 'digits' CNN, same initialization; SGD batch {study.config.batch_size}.\n"
                 + "; ".join(parts), fontsize=11)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=100)
    return fig
