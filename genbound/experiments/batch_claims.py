"""Experiments 3 and 4: the per-batch landscape along SGD, and whether SGD escapes a bad minimum that GD does not.

Lee & Lee claim that the landscape SGD descends "changes with every batch", that this lets SGD escape bad
minima, and that iterated updates settle in "a minimum common to all batches". Experiment 3
(:func:`batch_landscape_experiment`) follows the batch landscapes along SGD runs and applies a stated
common-minimum test at checkpoints and at the end. Experiment 4 (:func:`escape_experiment`) trains from the
initialization and from a bad start (a model first fitted to partly random labels) by SGD at several batch
sizes and by full-batch GD at several learning rates, and compares where they end. Every (configuration,
seed) is one cell of :func:`genbound.experiments.sweep`; verdicts come from Student-t intervals over seeds.

The common-minimum test (:func:`batch_minimum_test`, built on :func:`genbound.landscape.common_minimum_test`):
a loss f passes at w when

.. math:: \\frac{\\lVert \\nabla f(w) \\rVert}{\\lVert \\nabla f(w_0) \\rVert} \\le \\text{grad\\_tol}
          \\quad\\text{and}\\quad
          \\frac{\\lambda_{\\min}(\\nabla^2 f(w))}{\\lambda_{\\max}(\\nabla^2 f(w))} \\ge -\\text{curvature\\_tol},

with w_0 the start of the run; it is applied to every mini-batch loss L_b (batches of the SGD batch size).

References
----------
Lee & Lee, "Effect of local search with real data on generalization in deep learning".
N. S. Keskar et al., "On large-batch training for deep learning: generalization gap and sharp minima", ICLR 2017.
L. Wu, Z. Zhu, W. E, "Towards understanding generalization of deep learning: perspective of loss landscapes",
2017 (bad minima reached through corrupted labels).
"""
from __future__ import annotations

import dataclasses
import time
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from genbound._checks import check_dataset, check_int, check_model, check_positive, check_probability
from genbound.experiments.cells import (COLORS, DataOptions, cell_data, check_config, check_data_options,
                                        check_ranks, claim, config_dict, data_label, data_spec, default_network,
                                        example_sample, experiment_arguments, filters_label, make_cells,
                                        plain_log_axis, run_cells, setting_label)
from genbound.experiments.results import ExperimentResult, seed_summary
from genbound.landscape import (BatchLandscapeConfig, batch_landscape, batch_partition, common_minimum_test,
                                sharpness, top_eigenvalues)
from genbound.nn import GD, SGD, reference_cnn, train

__all__ = ["batch_minimum_test", "BatchLandscapeExperimentConfig", "batch_landscape_experiment",
           "batch_landscape_cell", "batch_landscape_grid_cells", "EscapeConfig", "escape_experiment", "escape_cell",
           "escape_grid_cells", "CELL_VERSION", "STARTS"]

# --------------------------------------------------------------------------------------------------------
# The common-minimum test on (a sample of) the batches
# --------------------------------------------------------------------------------------------------------


def batch_minimum_test(model, data, batch_size=64, seed=0, *, n_batches=None, grad_tol=0.1, curvature_tol=0.05,
                       reference=None, config=None):
    """Is the model's point a minimum of every mini-batch loss? :func:`genbound.landscape.common_minimum_test`
    on all batches of one epoch, or on a sample of ``n_batches`` of them.

    A loss f passes when ||grad f(w)|| / ||grad f(w_0)|| <= ``grad_tol`` (w_0 = ``reference``; without one,
    ||grad f(w)|| <= ``grad_tol``) and lambda_min / lambda_max of its Hessian >= -``curvature_tol``.

    With ``n_batches`` None (or at least the number of batches) the test runs on every batch of
    :func:`genbound.landscape.batch_partition` ``(data, batch_size, seed)`` and its ``full`` entry is the
    training loss. Otherwise the examples of the first ``n_batches`` batches of that partition (a uniform
    sample of ``n_batches * batch_size`` training examples) are re-cut into ``n_batches`` batches of
    ``batch_size`` by the same seed, each is tested, and ``full`` refers to the union of those batches, not to
    the whole training set (the cheap setting for long sweeps: each tested batch costs one Lanczos run on
    ``batch_size`` examples).

    Parameters
    ----------
    model : genbound.nn.Sequential (unchanged)
    data : Dataset
        The training set.
    batch_size : int >= 1
    seed : int
        The partition and the Lanczos start vectors.
    n_batches : int >= 1, optional
    grad_tol : float > 0
    curvature_tol : float >= 0
    reference : array_like (n_params,), optional
        Weights at which the gradient norms are taken as reference (e.g. the start of the run).
    config : genbound.landscape.BatchLandscapeConfig, optional
        Lanczos settings (default ``BatchLandscapeConfig(hessian=True, per_sample=False)``).

    Returns
    -------
    genbound.landscape.CommonMinimumResult
        ``table`` per tested batch, ``full``, ``verdict``, ``fraction_passing``.
    """
    check_model(model)
    check_dataset(data)
    batch_size = check_int(batch_size, "batch_size", 1)
    if n_batches is not None:
        n_batches = check_int(n_batches, "n_batches", 1)
    partition = batch_partition(data, batch_size, seed)
    if n_batches is not None and n_batches < len(partition):
        chosen = np.concatenate(partition[:n_batches])
        data = (data.x_train[chosen], data.y_train[chosen])
    return common_minimum_test(model, data, batch_size, seed, grad_tol, curvature_tol, reference, config=config)


def _curvature(model, data, *, batch_size, seed, n_batches, reference, grad_tol, curvature_tol, eig_tol,
               eig_max_iter, eig_sample=None):
    """The top Hessian eigenvalue of the training loss and the common-minimum test at the model's point.

    With ``n_batches`` (a sample of batches tested) the top eigenvalue is computed on its own: on every training
    example, or with ``eig_sample`` (indices) on the loss over those examples only."""
    config = BatchLandscapeConfig(hessian=True, per_sample=False, eig_tol=eig_tol, eig_max_iter=eig_max_iter,
                                  eig_seed=seed)
    cm = batch_minimum_test(model, data, batch_size, seed, n_batches=n_batches, grad_tol=grad_tol,
                            curvature_tol=curvature_tol, reference=reference, config=config)
    whole = n_batches is None or cm.table.shape[0] >= len(batch_partition(data, batch_size, seed))
    if whole:
        top, top_ok = cm.full["top_eig"], bool(cm.table.attrs.get("full_eig_converged", True))
    else:
        on = data if eig_sample is None else (data.x_train[eig_sample], data.y_train[eig_sample])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # convergence is recorded instead
            eig = top_eigenvalues(model, on, tol=eig_tol, max_iter=eig_max_iter, seed=seed)
        top, top_ok = eig.value, bool(eig.converged[0])
    t = cm.table
    return {"full_top_eig": float(top), "full_top_eig_converged": top_ok,
            "batch_top_eig_median": float(t["top_eig"].median()), "batch_top_eig_min": float(t["top_eig"].min()),
            "batch_top_eig_max": float(t["top_eig"].max()), "batch_min_eig_min": float(t["min_eig"].min()),
            "batch_grad_ratio_max": float(t["grad_ratio"].max()),
            "batch_curvature_ratio_min": float(t["curvature_ratio"].min()),
            "batch_eig_converged": float(t["eig_converged"].mean()),
            "fraction_stationary": float(t["stationary"].mean()),
            "fraction_no_negative_curvature": float(t["no_negative_curvature"].mean()),
            "fraction_passing": float(cm.fraction_passing), "tested_batches": int(t.shape[0]),
            "union_passes": bool(cm.full["passes"]), "verdict": cm.verdict}


def _divergence(exc):
    """True for the engine's refusal of non-finite gradients (a diverged run), else re-raise."""
    if isinstance(exc, (ValueError, FloatingPointError)) and "finite" in str(exc):
        return True
    raise exc


# --------------------------------------------------------------------------------------------------------
# The cells of both experiments over any grid (``genbound sweep batch_landscape|escape``)
# --------------------------------------------------------------------------------------------------------

#: Part of every cell key: raise it when a cell function's results change, so stored cells are recomputed.
CELL_VERSION = 1

#: The starts of an escape cell: the initialization, and the bad minimum fitted to corrupted labels.
STARTS = ("init", "bad")


def _grid_cells(fn, cfg, data, grid, **fixed):
    network = cfg.network or default_network(data_spec(data), "digits")
    return make_cells(fn, cfg, data, grid, CELL_VERSION, network=network, rank=cfg.ranks[0], seed=0, **fixed)


def batch_landscape_grid_cells(data="digits", grid=None, *, quick=False, config=None):
    """The cells of :func:`batch_landscape_cell` over ``grid`` (e.g. ``{"rank": [None, 1], "lr": [0.05, 0.2]}``)
    and the ``key_extra`` of their sweep (:func:`genbound.experiments.cells.make_cells`); every parameter not in
    ``grid`` from ``config`` (default: :meth:`BatchLandscapeExperimentConfig.for_data` of ``data``, the quick
    setting with ``quick``): its first rank, seed 0, the rest by name."""
    cfg = check_config(config, BatchLandscapeExperimentConfig, quick, data_spec(data))
    return _grid_cells(batch_landscape_cell, cfg, data, grid)


def escape_grid_cells(data="digits", grid=None, *, quick=False, config=None):
    """The cells of :func:`escape_cell` over a grid, and the ``key_extra`` of their sweep.

    As :func:`batch_landscape_grid_cells`, with ``config`` an :class:`EscapeConfig` and ``start`` "init" unless
    the grid says otherwise. A single number given for ``sgd_batch_sizes`` or ``gd_lrs`` (as ``genbound sweep
    escape --grid sgd_batch_sizes=16,64,256`` gives) makes one cell per value, each running that one SGD batch
    size or GD learning rate.
    """
    cfg = check_config(config, EscapeConfig, quick, data_spec(data))
    cells, key_extra = _grid_cells(escape_cell, cfg, data, grid, start=STARTS[0])
    for cell in cells:
        if cell["start"] not in STARTS:
            raise ValueError(f"grid['start']: expected values in {STARTS}, got {cell['start']!r}")
        for name in ("sgd_batch_sizes", "gd_lrs"):
            if not isinstance(cell[name], (list, tuple)):
                cell[name] = [cell[name]]
    return cells, key_extra


# --------------------------------------------------------------------------------------------------------
# Experiment 3: per-batch landscapes along SGD
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchLandscapeExperimentConfig(DataOptions):
    """Options of :func:`batch_landscape_experiment` (defaults: the full run on the 8x8 digits; :meth:`quick`:
    the quick one; :meth:`mnist`: the full run on 28x28 images; :meth:`for_data` picks by data).

    Attributes
    ----------
    network : str or None
        Reference network; None: ``"digits"`` on digits (the net of ``docs/landscape.md``), ``"mnist_gap"``
        on 28x28 images.
    ranks : tuple of (int or None)
        CP ranks compared; None is full filters. Default (None, 1).
    epochs, batch_size, lr : SGD training (default 30 epochs of batches of 64 at lr 0.05).
    checkpoints : int >= 2
        Number of measured points, evenly spaced in epochs from the initialization to the end (default 6).
    hessian_batches : int or None
        Batches whose Hessians are measured (the common-minimum test): None (default) every batch of the
        epoch; k: a sample of k batches (:func:`batch_minimum_test`; the first k batches of the seed's
        partition, the same batches at every checkpoint).
    full_eig_examples : int or None
        With ``hessian_batches``, the top eigenvalue of the training-loss Hessian is taken on a fixed sample of
        this many training examples (:func:`~genbound.experiments.cells.example_sample`, drawn from
        ``data_seed``); None (default): on every training example.
    eig_tol, eig_max_iter : Lanczos relative residual tolerance and step limit (default 1e-3, 100).
    grad_tol, curvature_tol : thresholds of the common-minimum test (default 0.1 and 0.05; gradients relative
        to the initialization).
    per_sample : bool
        Also Yin et al.'s per-sample gradient diversity (m backward passes per checkpoint; default True).
    scaling : {"standardize", "fixed", "raw"}
        Input scaling (default "standardize", as in ``docs/landscape.md``).
    data_seed : int
        Seed of the train/test split (fixed across training seeds; default 0).
    n_train, n_test : int or None
        Use only the first ``n_train`` training / ``n_test`` test examples (None: all; for tests).
    """

    ranks: tuple = (None, 1)
    epochs: int = 30
    batch_size: int = 64
    lr: float = 0.05
    checkpoints: int = 6
    hessian_batches: int | None = None
    eig_tol: float = 1e-3
    eig_max_iter: int = 100
    grad_tol: float = 0.1
    curvature_tol: float = 0.05
    per_sample: bool = True
    full_eig_examples: int | None = None

    def __post_init__(self):
        check_data_options(self)
        object.__setattr__(self, "ranks", check_ranks(self.ranks))
        for name in ("epochs", "batch_size", "eig_max_iter"):
            check_int(getattr(self, name), name, 1)
        check_int(self.checkpoints, "checkpoints", 2)
        for name in ("hessian_batches", "full_eig_examples"):
            if getattr(self, name) is not None:
                check_int(getattr(self, name), name, 1)
        for name in ("lr", "eig_tol", "grad_tol"):
            check_positive(getattr(self, name), name)
        check_positive(self.curvature_tol, "curvature_tol", allow_zero=True)
        if not isinstance(self.per_sample, bool):
            raise TypeError(f"per_sample: expected a bool, got {self.per_sample!r}")

    @classmethod
    def quick(cls):
        """The quick setting: 20 epochs, 3 checkpoints, Hessians of 4 sampled batches, Lanczos to 1e-2 in at
        most 20 steps, no per-sample diversity."""
        return cls(epochs=20, checkpoints=3, hessian_batches=4, eig_tol=1e-2, eig_max_iter=20, per_sample=False)

    @classmethod
    def mnist(cls):
        """The full run on 28x28 images (``mnist_gap``): every training image, 10 epochs (630 SGD steps on the
        4,000 images of the MNIST subset, against 690 in the digits' 30 epochs), 3 checkpoints (epochs 0, 5,
        10), the common-minimum test on 4 sampled batches of 64 (the same batches at every checkpoint), the top
        eigenvalue of the training-loss Hessian on a fixed sample of 1,000 training examples; Lanczos
        tolerance and step limit, thresholds and the per-sample gradient diversity as on the digits."""
        return cls(epochs=10, checkpoints=3, hessian_batches=4, full_eig_examples=1000)


def _checkpoint_epochs(epochs, checkpoints):
    return sorted({int(round(e)) for e in np.linspace(0, epochs, checkpoints)})


def batch_landscape_cell(data, data_seed, scaling, n_train, n_test, network, rank, seed, epochs, batch_size, lr,
                         checkpoints, hessian_batches, eig_tol, eig_max_iter, grad_tol, curvature_tol, per_sample,
                         full_eig_examples=None):
    """One cell of experiment 3: train one network by SGD from ``seed`` and measure the batch landscapes at
    the checkpoints (module-level so that sweep workers import it).

    At each checkpoint (the weights are kept during training and measured afterwards): on the partition of
    the training set into the batches of SGD's first epoch, the batch losses (spread), gradient coherence and
    diversity (:func:`genbound.landscape.batch_landscape`); the top eigenvalue of the training-loss Hessian;
    and :func:`batch_minimum_test` (batch Hessians, fraction of batches passing) relative to the
    initialization. With ``hessian_batches`` and ``full_eig_examples``, the top eigenvalue is that of the loss
    over a fixed sample of the training examples (:func:`~genbound.experiments.cells.example_sample` from
    ``data_seed``).

    Returns
    -------
    pandas.DataFrame
        One row per checkpoint.
    """
    d = cell_data(data, data_seed, scaling, n_train, n_test)
    model = reference_cnn(network, rank=rank, seed=seed)
    w0 = model.get_flat()
    marks = set(_checkpoint_epochs(epochs, checkpoints))
    snaps = []

    def keep(mdl, row):
        if float(row["epoch"]).is_integer() and int(row["epoch"]) in marks:
            snaps.append((mdl.get_flat(), dict(row)))

    t0 = time.perf_counter()
    train(model, d, epochs=epochs, batch_size=batch_size, optimizer=SGD(lr=lr), seed=seed, progress=False,
          callback=keep)
    train_seconds = time.perf_counter() - t0
    probe = model.copy()
    eig_sample = example_sample(d.m, full_eig_examples, data_seed)
    rows, ref_grad = [], None
    for w, hist in snaps:
        t0 = time.perf_counter()
        probe.set_flat(w)
        bl = batch_landscape(probe, d, batch_size, seed, BatchLandscapeConfig(per_sample=per_sample))
        a = bl.attrs
        ref_grad = a["full_grad_norm"] if ref_grad is None else ref_grad  # the first checkpoint is epoch 0
        losses = bl["loss"].to_numpy()
        row = {"epoch": int(hist["epoch"]), "step": int(hist["step"]), "train_loss": hist["train_loss"],
               "train_error": hist["train_error"], "test_loss": hist["test_loss"], "test_error": hist["test_error"],
               "full_loss": a["full_loss"], "min_loss": a["min_loss"], "max_loss": a["max_loss"],
               "loss_std": a["loss_std"], "loss_cv": float(losses.std() / losses.mean()),
               "full_grad_norm": a["full_grad_norm"], "full_grad_ratio": a["full_grad_norm"] / ref_grad,
               "mean_grad_norm": a["mean_grad_norm"], "coherence": a["coherence"],
               "batch_gradient_diversity": a["batch_gradient_diversity"],
               "gradient_diversity": a["gradient_diversity"], "n_batches": a["n_batches"]}
        row.update(_curvature(probe, d, batch_size=batch_size, seed=seed, n_batches=hessian_batches, reference=w0,
                              grad_tol=grad_tol, curvature_tol=curvature_tol, eig_tol=eig_tol,
                              eig_max_iter=eig_max_iter, eig_sample=eig_sample))
        row["full_stationary"] = bool(row["full_grad_ratio"] <= grad_tol)
        row["measure_seconds"] = time.perf_counter() - t0
        row["train_seconds"] = train_seconds
        rows.append(row)
    return pd.DataFrame(rows)


_EXP3_VALUES = ["train_error", "test_error", "full_loss", "min_loss", "max_loss", "loss_std", "loss_cv",
                "full_grad_ratio", "coherence", "batch_gradient_diversity", "gradient_diversity", "full_top_eig",
                "batch_top_eig_median", "batch_top_eig_min", "batch_top_eig_max", "batch_min_eig_min",
                "fraction_stationary", "fraction_no_negative_curvature", "fraction_passing"]


def batch_landscape_experiment(data="digits", *, seeds=5, quick=False, out=None, backend="local", scheduler=None,
                               workers=None, progress=True, config=None) -> ExperimentResult:
    """Experiment 3: per-batch landscapes along SGD trajectories, and a stated test of "a minimum common to
    all batches" at the end.

    For each filter type (full, rank R) and seed, :func:`batch_landscape_cell` trains the network by SGD and
    measures at evenly spaced checkpoints: the spread of the batch losses, gradient coherence
    ||mean_b g_b||^2 / mean_b ||g_b||^2 and batch gradient diversity, the top eigenvalue of the full and of
    each batch Hessian, and the common-minimum test (each batch's gradient norm relative to the initialization
    <= ``grad_tol`` and lambda_min / lambda_max of its Hessian >= -``curvature_tol``), reported as the
    fraction of batches passing, per seed.

    Parameters
    ----------
    data : {"digits", "mnist-subset"} or path of a folder of MNIST IDX files
    seeds : int or list of int
        k: seeds 0..k-1 (initialization and batch order); default 5.
    quick : bool
        Use :meth:`BatchLandscapeExperimentConfig.quick` (when ``config`` is None).
    out : path, optional
        Folder of the sweep's cell records (resumable); None: a temporary folder.
    backend, scheduler, workers : passed to :func:`genbound.experiments.sweep`.
    progress : bool
        Progress bar over cells.
    config : BatchLandscapeExperimentConfig, optional

    Returns
    -------
    ExperimentResult
        Tables ``runs`` (one row per filter type, seed and checkpoint) and ``summary`` (mean, std and 95 %
        t-interval over seeds per filter type and checkpoint); figure ``batch_landscape``; claims.
    """
    setting = setting_label(config, quick, data)
    cfg, seeds, spec = experiment_arguments(config, BatchLandscapeExperimentConfig, quick, seeds, data, backend,
                                            scheduler, workers)
    cells, key_extra = batch_landscape_grid_cells(spec, {"rank": list(cfg.ranks), "seed": seeds}, config=cfg)
    network = cells[0]["network"]
    table = run_cells(batch_landscape_cell, cells, out=out, key_extra=key_extra, backend=backend,
                      scheduler=scheduler, workers=workers, progress=progress)
    table.insert(0, "filters", [filters_label(r) for r in table["rank"]])
    keep = ["filters", "rank", "seed", "epoch", "step", "train_loss", "test_loss", *_EXP3_VALUES, "full_grad_norm",
            "mean_grad_norm", "n_batches", "tested_batches", "batch_grad_ratio_max", "batch_curvature_ratio_min",
            "batch_eig_converged", "full_top_eig_converged", "full_stationary", "union_passes", "verdict",
            "measure_seconds", "train_seconds"]
    runs = table[keep].reset_index(drop=True)
    summary = seed_summary(runs, ["filters", "epoch"], _EXP3_VALUES)
    end = runs[runs["epoch"] == runs["epoch"].max()]

    claims = []
    for filters, grp in end.groupby("filters", sort=False):
        claims.append(claim(
            f"{filters} filters: the landscape changes from batch to batch at SGD's end point (the batch losses' "
            "coefficient of variation std_b L_b / mean_b L_b is above 0.1)",
            grp["loss_cv"], 0.1, "above", "coefficient of variation of the batch losses at the end"))
        claims.append(claim(
            f"{filters} filters: SGD ends at a minimum common to all batches (every tested batch passes the "
            f"common-minimum test: gradient ratio <= {cfg.grad_tol:g}, lambda_min/lambda_max >= "
            f"-{cfg.curvature_tol:g}; fraction passing above 0.99)",
            grp["fraction_passing"], 0.99, "above", "fraction of batches passing at the end"))
        claims.append(claim(
            f"{filters} filters: SGD's end point is stationary for the full training loss "
            f"(||grad L(w)|| / ||grad L(w_0)|| below {cfg.grad_tol:g})",
            grp["full_grad_ratio"], cfg.grad_tol, "below", "full-gradient ratio at the end"))

    tested = "every batch of the epoch" if cfg.hessian_batches is None else f"{cfg.hessian_batches} sampled batches"
    m = int(cell_data(spec, cfg.data_seed, cfg.scaling, cfg.n_train, cfg.n_test).m)
    full_on = (f"on a fixed sample of {cfg.full_eig_examples} of the {m} training examples"
               if cfg.hessian_batches is not None and cfg.full_eig_examples is not None and cfg.full_eig_examples < m
               else f"on all {m} training examples")
    description = (
        "Per-batch landscapes along SGD (Lee & Lee: the landscape 'changes with every batch' and iterated updates "
        f"reach 'a minimum common to all batches'). The {network} network (full and CP filters) is trained by "
        f"SGD (batch {cfg.batch_size}, lr {cfg.lr:g}, {cfg.epochs} epochs, {m} training examples) from each of "
        f"{len(seeds)} seeds. At "
        f"{cfg.checkpoints} checkpoints the training set is cut into the batches of SGD's first epoch and we "
        "measure the spread of the batch losses L_b, the gradient coherence ||mean_b g_b||^2 / mean_b ||g_b||^2 "
        "(1 when all batch gradients agree), the batch gradient diversity, the top eigenvalue of the training-loss "
        f"Hessian ({full_on}) and of the batch Hessians ({tested}). **The common-minimum test**: a batch passes "
        f"when its gradient norm has fallen to at most {cfg.grad_tol:g} of its value at the initialization and the "
        f"smallest eigenvalue of its Hessian is at least -{cfg.curvature_tol:g} times the largest (Lanczos to a "
        f"relative residual {cfg.eig_tol:g}); we report the fraction of batches passing, per seed. "
        "Cross-entropy has no finite minimizer, so 'minimum' means these stated thresholds.")
    fig = plot_batch_landscape_experiment(runs, cfg)
    title = f"Experiment 3: per-batch landscapes along SGD ({data_label(spec)} data, {network} network)"
    return ExperimentResult(name="batch_landscape", title=title,
                            description=description, tables={"runs": runs, "summary": summary},
                            figures={"batch_landscape": fig}, claims=claims,
                            config={**config_dict(cfg), "data": spec, "network": network, "seeds": seeds,
                                    "setting": setting})


def _seed_lines(ax, runs, x, col, color, label, ls="-"):
    """One thin line per seed and the mean over seeds (thick, labelled)."""
    for _, r in runs.groupby("seed"):
        ax.plot(r[x], r[col], ls, color=color, lw=0.7, alpha=0.45)
    mean = runs.groupby(x, sort=True)[col].mean()
    ax.plot(mean.index, mean.to_numpy(), ls, color=color, lw=2, marker="o", ms=4, label=label)


def plot_batch_landscape_experiment(runs, config):
    """The figure of experiment 3 from its ``runs`` table: (a) full loss and the range of batch losses,
    (b) gradient coherence, (c) top Hessian eigenvalue of the full loss and of the batches, (d) fraction of
    batches passing the common-minimum test, each against the epoch (thin: one line per seed; thick: mean)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 8.5))
    axes = fig.subplots(2, 2)
    for i, (filters, r) in enumerate(runs.groupby("filters", sort=False)):
        c = COLORS[i % len(COLORS)]
        _seed_lines(axes[0, 0], r, "epoch", "full_loss", c, f"{filters}: full loss L")
        band = r.groupby("epoch")[["min_loss", "max_loss"]].mean()
        axes[0, 0].fill_between(band.index, band["min_loss"], band["max_loss"], color=c, alpha=0.2, lw=0,
                                label=f"{filters}: min$_b$..max$_b$ $L_b$ (mean over seeds)")
        _seed_lines(axes[0, 1], r, "epoch", "coherence", c, f"{filters}: coherence")
        _seed_lines(axes[1, 0], r, "epoch", "full_top_eig", c, rf"{filters}: $\lambda_{{max}}$ of the full Hessian")
        _seed_lines(axes[1, 0], r, "epoch", "batch_top_eig_median", c,
                    rf"{filters}: median$_b$ $\lambda_{{max}}(H_b)$", ls="--")
        band = r.groupby("epoch")[["batch_top_eig_min", "batch_top_eig_max"]].mean()
        axes[1, 0].fill_between(band.index, band["batch_top_eig_min"], band["batch_top_eig_max"], color=c,
                                alpha=0.15, lw=0, label=rf"{filters}: min$_b$..max$_b$ $\lambda_{{max}}(H_b)$")
        _seed_lines(axes[1, 1], r, "epoch", "fraction_passing", c, f"{filters}: batches passing")
        _seed_lines(axes[1, 1], r, "epoch", "fraction_stationary", c, f"{filters}: batches with small gradient",
                    ls=":")
    plain_log_axis(axes[0, 0])
    axes[0, 0].set_ylabel("loss")
    axes[0, 0].set_title("(a) full loss and the range of batch losses")
    axes[0, 1].set_ylim(0, 1.02)
    axes[0, 1].set_ylabel(r"coherence $\|\bar g\|^2 / \overline{\|g_b\|^2}$")
    axes[0, 1].set_title("(b) gradient coherence over the batches")
    plain_log_axis(axes[1, 0])
    axes[1, 0].set_ylabel("top Hessian eigenvalue")
    axes[1, 0].set_title("(c) curvature of the full loss and of the batch losses")
    axes[1, 1].set_ylim(-0.02, 1.02)
    axes[1, 1].set_ylabel("fraction of tested batches")
    axes[1, 1].set_title(f"(d) common-minimum test (grad ratio <= {config.grad_tol:g}, "
                         rf"$\lambda_{{min}}/\lambda_{{max}} \geq -{config.curvature_tol:g}$)")
    for ax in axes.flat:
        ax.set_xlabel("epoch")
        ax.legend(fontsize=7)
    fig.suptitle(f"Per-batch landscapes along SGD (batch {config.batch_size}, lr {config.lr:g}); thin lines: "
                 "seeds, thick: mean over seeds")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------------------
# Experiment 4: escape from a bad minimum, SGD versus full-batch GD
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EscapeConfig(DataOptions):
    """Options of :func:`escape_experiment`: the defaults are the full run on the 8x8 digits, :meth:`quick` the
    quick one, :meth:`mnist` the full run on 28x28 images (:meth:`for_data` picks by data).
    ``network``, ``scaling``, ``data_seed``, ``n_train``, ``n_test``: as in
    :class:`BatchLandscapeExperimentConfig`.

    Attributes
    ----------
    ranks : tuple of (int or None)
        Default (None, 1).
    corruption : float in (0, 1]
        The bad start: a model fitted to labels of which each is replaced, with this probability, by a
        uniformly random class (Zhang et al.'s partial corruption; test labels stay clean). Default 0.8.
    bad_epochs, bad_batch_size, bad_lr : SGD fit to the corrupted labels (default 30 epochs, batch 32, lr 0.1).
    epochs : int
        SGD epochs on the clean labels (default 30).
    sgd_lr : float
        SGD learning rate (default 0.05).
    sgd_batch_sizes : tuple of int
        Default (16, 64, 256).
    gd_lrs : tuple of float
        Full-batch GD learning rates (default (0.05, 0.2)).
    gd_max_steps : int
        GD step limit (one step = one pass over the training set; default 300).
    match_loss : bool
        Stop each GD run at the first step whose training loss is at most the largest final training loss of
        the SGD runs from the same start, so that the end points are compared at comparable training loss
        (default True); False: always ``gd_max_steps`` steps.
    test_batch_size : int
        Batch size of the common-minimum test at the end points (default 64).
    hessian_batches : int or None
        Batches tested (None, default: every batch; k: a sample of k, :func:`batch_minimum_test`).
    eig_tol, eig_max_iter : Lanczos settings (default 1e-3, 100).
    sharpness_eps, sharpness_max_iter : Keskar's sharpness (default eps 1e-3, 10 L-BFGS-B iterations).
    grad_tol, curvature_tol : thresholds of the common-minimum test, gradients relative to the run's start
        (default 0.1, 0.05).
    """

    ranks: tuple = (None, 1)
    corruption: float = 0.8
    bad_epochs: int = 30
    bad_batch_size: int = 32
    bad_lr: float = 0.1
    epochs: int = 30
    sgd_lr: float = 0.05
    sgd_batch_sizes: tuple = (16, 64, 256)
    gd_lrs: tuple = (0.05, 0.2)
    gd_max_steps: int = 300
    match_loss: bool = True
    test_batch_size: int = 64
    hessian_batches: int | None = None
    eig_tol: float = 1e-3
    eig_max_iter: int = 100
    sharpness_eps: float = 1e-3
    sharpness_max_iter: int = 10
    grad_tol: float = 0.1
    curvature_tol: float = 0.05

    def __post_init__(self):
        check_data_options(self)
        object.__setattr__(self, "ranks", check_ranks(self.ranks))
        check_probability(self.corruption, "corruption", open_interval=False)
        if self.corruption == 0:
            raise ValueError("corruption: expected a fraction in (0, 1], got 0 (that start is not bad)")
        for name in ("bad_epochs", "bad_batch_size", "epochs", "gd_max_steps", "test_batch_size", "eig_max_iter",
                     "sharpness_max_iter"):
            check_int(getattr(self, name), name, 1)
        if self.hessian_batches is not None:
            check_int(self.hessian_batches, "hessian_batches", 1)
        for name in ("bad_lr", "sgd_lr", "eig_tol", "sharpness_eps", "grad_tol"):
            check_positive(getattr(self, name), name)
        check_positive(self.curvature_tol, "curvature_tol", allow_zero=True)
        bss = tuple(check_int(b, "sgd_batch_sizes", 1) for b in self.sgd_batch_sizes)
        lrs = tuple(check_positive(lr, "gd_lrs") for lr in self.gd_lrs)
        if not bss or not lrs:
            raise ValueError("sgd_batch_sizes, gd_lrs: expected at least one SGD batch size and one GD learning rate")
        object.__setattr__(self, "sgd_batch_sizes", bss)
        object.__setattr__(self, "gd_lrs", lrs)
        if not isinstance(self.match_loss, bool):
            raise TypeError(f"match_loss: expected a bool, got {self.match_loss!r}")

    @classmethod
    def quick(cls):
        """The quick setting: rank-1 filters only (the paper's object; the full run adds full filters), 15
        epochs of corrupted-label fit and of clean training, SGD at batch 32 and 128, GD at lr 0.1 and 0.3 for
        at most 40 steps (usually short of the SGD runs' training loss: see ``reached_target``), 4 tested
        batches, Lanczos to 1e-2 in at most 20 steps, 2 sharpness iterations."""
        return cls(ranks=(1,), bad_epochs=15, epochs=15, sgd_batch_sizes=(32, 128), gd_lrs=(0.1, 0.3),
                   gd_max_steps=40, hessian_batches=4, eig_tol=1e-2, eig_max_iter=20, sharpness_max_iter=2)

    @classmethod
    def mnist(cls):
        """The full run on 28x28 images (``mnist_gap``): rank-1 filters only (the paper's object; the digits run
        has both), the first 1,000 training images (every full-batch GD step is a pass over them; the test set
        whole), 20 epochs of corrupted-label fit and of clean training (SGD at batch 16, 64 and 256 as on the
        digits), GD at lr 0.1 and 0.3 for at most 60 steps (stopped earlier at the SGD runs' training loss;
        ``reached_target`` says whether it got there), the common-minimum test on 4 sampled batches with Lanczos
        limited to 50 steps (tolerance 1e-3 as on the digits), 5 sharpness iterations."""
        return cls(ranks=(1,), n_train=1000, bad_epochs=20, epochs=20, gd_lrs=(0.1, 0.3), gd_max_steps=60,
                   hessian_batches=4, eig_max_iter=50, sharpness_max_iter=5)


def _train_run(model, data, *, epochs, batch_size, optimizer, seed, target=None):
    """Train in place; stop when the training loss is non-finite or (with ``target``) at most ``target``.
    Returns (history, seconds, diverged)."""
    def stop(mdl, row):
        if not np.isfinite(row["train_loss"]):
            return True
        return target is not None and row["epoch"] > 0 and row["train_loss"] <= target

    t0 = time.perf_counter()
    try:
        hist = train(model, data, epochs=epochs, batch_size=batch_size, optimizer=optimizer, seed=seed,
                     progress=False, callback=stop)
    except (ValueError, FloatingPointError) as exc:
        _divergence(exc)
        return None, time.perf_counter() - t0, True
    diverged = not np.isfinite(hist["train_loss"].iloc[-1])
    return hist, time.perf_counter() - t0, diverged


def escape_cell(data, data_seed, scaling, n_train, n_test, network, rank, seed, start, corruption, bad_epochs,
                bad_batch_size, bad_lr, epochs, sgd_lr, sgd_batch_sizes, gd_lrs, gd_max_steps, match_loss,
                test_batch_size, hessian_batches, eig_tol, eig_max_iter, sharpness_eps, sharpness_max_iter,
                grad_tol, curvature_tol):
    """One cell of experiment 4: from one start (``"init"`` or ``"bad"``) of one network and seed, SGD at every
    batch size and GD at every learning rate on the clean labels, each end point measured (module-level so
    that sweep workers import it).

    The bad start is the initialization after ``bad_epochs`` of SGD on labels corrupted with probability
    ``corruption`` (:func:`genbound.data.randomize` ``"partial_labels"``, seed ``seed``). Each end point:
    training loss and error, test error, top Hessian eigenvalue of the training loss, Keskar sharpness,
    :func:`batch_minimum_test` relative to the start, distance ||w - w_start||.

    Returns
    -------
    pandas.DataFrame
        One row per optimizer run.
    """
    from genbound.data import randomize

    d = cell_data(data, data_seed, scaling, n_train, n_test)
    model = reference_cnn(network, rank=rank, seed=seed)
    start_info = {}
    if start == "bad":
        noisy = randomize(d, "partial_labels", corruption, seed=seed)
        hist, secs, diverged = _train_run(model, noisy, epochs=bad_epochs, batch_size=bad_batch_size,
                                          optimizer=SGD(lr=bad_lr), seed=seed)
        if diverged:
            raise RuntimeError(f"the fit to corrupted labels diverged (rank {rank}, seed {seed}); lower bad_lr")
        start_info = {"start_noisy_train_error": float(hist["train_error"].iloc[-1]), "start_seconds": secs}
    elif start != "init":
        raise ValueError(f"start: expected 'init' or 'bad', got {start!r}")
    w_start = model.get_flat()
    s_loss, s_err = model.evaluate(d.x_train, d.y_train)
    start_info.update(start_train_loss=float(s_loss), start_train_error=float(s_err),
                      start_test_error=float(model.evaluate(d.x_test, d.y_test)[1]))

    plan = [("SGD", f"SGD b={bs}", bs, sgd_lr, SGD(lr=sgd_lr), epochs) for bs in sgd_batch_sizes]
    plan += [("GD", f"GD lr={lr:g}", d.m, lr, GD(lr=lr), gd_max_steps) for lr in gd_lrs]
    rows, target = [], None
    for kind, label, bs, lr, opt, n_epochs in plan:
        if kind == "GD" and match_loss and target is None:
            finals = [r["train_loss"] for r in rows if np.isfinite(r["train_loss"])]
            target = max(finals) if finals else None
        run = model.copy()
        run.set_flat(w_start)
        hist, secs, diverged = _train_run(run, d, epochs=n_epochs, batch_size=bs, optimizer=opt, seed=seed,
                                          target=target if kind == "GD" else None)
        row = {"optimizer": kind, "label": label, "batch_size": int(bs), "lr": float(lr), "diverged": diverged,
               "seconds": secs, **start_info}
        if diverged:
            row.update(train_loss=np.nan, train_error=np.nan, test_error=np.nan, steps=np.nan, epochs_run=np.nan)
            rows.append(row)
            continue
        last = hist.iloc[-1]
        row.update(train_loss=float(last["train_loss"]), train_error=float(last["train_error"]),
                   test_error=float(last["test_error"]), steps=int(last["step"]), epochs_run=float(last["epoch"]),
                   reached_target=bool(target is not None and last["train_loss"] <= target) if kind == "GD" else True,
                   distance=float(np.linalg.norm(run.get_flat() - w_start)))
        t0 = time.perf_counter()
        row.update(_curvature(run, d, batch_size=test_batch_size, seed=seed, n_batches=hessian_batches,
                              reference=w_start, grad_tol=grad_tol, curvature_tol=curvature_tol, eig_tol=eig_tol,
                              eig_max_iter=eig_max_iter))
        row["sharpness"] = sharpness(run, d, eps=sharpness_eps, seed=seed, max_iter=sharpness_max_iter).value
        row["measure_seconds"] = time.perf_counter() - t0
        rows.append(row)
    return pd.DataFrame(rows)


_EXP4_VALUES = ["train_loss", "train_error", "test_error", "full_top_eig", "sharpness", "fraction_passing",
                "distance", "steps", "seconds"]


def _per_seed(runs, filters, start, column):
    """Per seed: mean of ``column`` over the SGD runs and over the GD runs (NaN-aware), as two Series."""
    sel = runs[(runs["filters"] == filters) & (runs["start"] == start)]
    piv = sel.groupby(["seed", "optimizer"])[column].mean().unstack("optimizer")
    return piv.get("SGD"), piv.get("GD")


def escape_experiment(data="digits", *, seeds=5, quick=False, out=None, backend="local", scheduler=None,
                      workers=None, progress=True, config=None) -> ExperimentResult:
    """Experiment 4: does SGD's changing batch landscape help it escape a bad minimum that full-batch GD keeps?

    For each filter type and seed, two starts: the initialization, and a bad minimum (the initialization
    fitted by SGD to partly random labels). From each, :func:`escape_cell` trains on the clean labels by SGD at
    several batch sizes and by full-batch GD at several learning rates (GD stopped at the SGD runs' training
    loss, see :class:`EscapeConfig`), and measures each end point: test error, top Hessian eigenvalue, Keskar
    sharpness, fraction of batches for which the end point passes the common-minimum test. Claims compare, per
    seed, the mean over the SGD runs with the mean over the GD runs, judged by t-intervals over seeds.

    The parameters are those of :func:`batch_landscape_experiment`, with ``config`` an :class:`EscapeConfig`.

    Returns
    -------
    ExperimentResult
        Tables ``runs`` (one row per filter type, seed, start and optimizer run), ``summary`` (statistics over
        seeds per filter type, start and run) and ``differences`` (per seed, SGD mean minus GD mean); figure
        ``escape``; claims.
    """
    setting = setting_label(config, quick, data)
    cfg, seeds, spec = experiment_arguments(config, EscapeConfig, quick, seeds, data, backend, scheduler, workers)
    cells, key_extra = escape_grid_cells(spec, {"rank": list(cfg.ranks), "seed": seeds, "start": list(STARTS)},
                                         config=cfg)
    network, params = cells[0]["network"], config_dict(cfg)
    table = run_cells(escape_cell, cells, out=out, key_extra=key_extra, backend=backend, scheduler=scheduler,
                      workers=workers, progress=progress)
    table.insert(0, "filters", [filters_label(r) for r in table["rank"]])
    keep = ["filters", "rank", "seed", "start", "optimizer", "label", "batch_size", "lr", "diverged",
            "reached_target", *_EXP4_VALUES, "epochs_run", "full_top_eig_converged", "fraction_stationary",
            "fraction_no_negative_curvature", "batch_top_eig_median", "batch_min_eig_min", "tested_batches",
            "verdict", "start_train_error", "start_test_error", "start_noisy_train_error", "measure_seconds"]
    runs = table[[c for c in keep if c in table.columns]].reset_index(drop=True)
    summary = seed_summary(runs, ["filters", "start", "label"], _EXP4_VALUES)

    diffs, claims = [], []
    for filters in runs["filters"].unique():
        per = {}
        for start in ("init", "bad"):
            for col in ("test_error", "full_top_eig", "fraction_passing"):
                sgd, gd = _per_seed(runs, filters, start, col)
                per[(start, col)] = (sgd, gd)
                diffs.append(pd.DataFrame({"filters": filters, "start": start, "measure": col,
                                           "seed": sgd.index, "sgd": sgd.to_numpy(), "gd": gd.to_numpy(),
                                           "sgd_minus_gd": (sgd - gd).to_numpy()}))
        sgd_b, gd_b = per[("bad", "test_error")]
        sgd_i, gd_i = per[("init", "test_error")]
        claims.append(claim(f"{filters} filters: from the bad minimum, SGD ends at lower test error than "
                             "full-batch GD (mean over the SGD batch sizes minus mean over the GD learning rates)",
                             sgd_b - gd_b, 0.0, "below", "test error, SGD minus GD, from the bad minimum"))
        claims.append(claim(f"{filters} filters: SGD escapes the bad minimum better than GD (the test-error "
                             "penalty of starting from the bad minimum instead of the initialization is smaller "
                             "for SGD)", (sgd_b - sgd_i) - (gd_b - gd_i), 0.0, "below",
                             "penalty (bad minus init test error), SGD minus GD"))
        claims.append(claim(f"{filters} filters: from the same initialization, SGD ends at lower test error "
                             "than full-batch GD", sgd_i - gd_i, 0.0, "below",
                             "test error, SGD minus GD, from the initialization"))
        sgd, gd = per[("bad", "full_top_eig")]
        claims.append(claim(f"{filters} filters: from the bad minimum, SGD ends flatter than GD (lower top "
                             "Hessian eigenvalue of the training loss)", sgd - gd, 0.0, "below",
                             "top Hessian eigenvalue, SGD minus GD, from the bad minimum"))
        sgd, gd = per[("bad", "fraction_passing")]
        claims.append(claim(f"{filters} filters: from the bad minimum, SGD's end point is a minimum for more "
                             "batches than GD's (fraction of batches passing the common-minimum test)",
                             sgd - gd, 0.0, "above", "fraction of batches passing, SGD minus GD, from the bad "
                             "minimum"))
    differences = pd.concat(diffs, ignore_index=True)
    gd = runs[runs["optimizer"] == "GD"]
    if len(gd):
        hit = gd["reached_target"].map(lambda x: isinstance(x, (bool, np.bool_)) and bool(x))
        reached = hit.groupby(gd["start"]).apply(lambda v: f"{int(v.sum())} of {len(v)}")
        note = ("; GD runs that reached the SGD runs' training loss: "
                + ", ".join(f"from {'the initialization' if k == 'init' else 'the bad minimum'} {v}"
                            for k, v in reached.items()) + " (the others stopped at the step limit)")
        claims = [dataclasses.replace(c, evidence=c.evidence + note) for c in claims]

    gd_rule = ("each GD run stops at the first step whose training loss is at most the largest final training "
               f"loss of the SGD runs from the same start (at most {cfg.gd_max_steps} steps)" if cfg.match_loss
               else f"GD runs {cfg.gd_max_steps} steps")
    tested = "every batch" if cfg.hessian_batches is None else f"{cfg.hessian_batches} sampled batches"
    m = int(cell_data(spec, cfg.data_seed, cfg.scaling, cfg.n_train, cfg.n_test).m)
    description = (
        "Escape from a bad minimum (Lee & Lee: SGD's landscape changes with every batch, which lets it escape "
        f"bad minima). Two starts for the {network} network ({' and '.join(filters_label(r) for r in cfg.ranks)} "
        f"filters, {m} training examples) and each of {len(seeds)} seeds: "
        f"the initialization, and a **bad minimum**: the initialization fitted by SGD ({cfg.bad_epochs} epochs, "
        f"batch {cfg.bad_batch_size}, lr {cfg.bad_lr:g}) to training labels of which each was replaced with "
        f"probability {cfg.corruption:g} by a random class. From each start, on the clean labels: SGD (lr "
        f"{cfg.sgd_lr:g}, {cfg.epochs} epochs) at batch sizes {list(cfg.sgd_batch_sizes)}, and full-batch GD at "
        f"learning rates {list(cfg.gd_lrs)}; {gd_rule}. At every end point: test error, top eigenvalue of the "
        f"training-loss Hessian (Lanczos, relative residual {cfg.eig_tol:g}), Keskar sharpness (eps "
        f"{cfg.sharpness_eps:g}), and the common-minimum test on {tested} of {cfg.test_batch_size} examples "
        f"(gradient at most {cfg.grad_tol:g} of its value at the run's start, lambda_min/lambda_max >= "
        f"-{cfg.curvature_tol:g}). Claims compare, per seed, the mean over the SGD runs with the mean over the "
        "GD runs; the table `differences` holds these per-seed differences.")
    fig = plot_escape_experiment(runs, cfg)
    title = (f"Experiment 4: escaping a bad minimum, SGD versus full-batch GD ({data_label(spec)} data, {network} "
             "network)")
    return ExperimentResult(name="escape", title=title,
                            description=description,
                            tables={"runs": runs, "summary": summary, "differences": differences},
                            figures={"escape": fig}, claims=claims,
                            config={**params, "data": spec, "network": network, "seeds": seeds, "setting": setting})


def plot_escape_experiment(runs, config):
    """The figure of experiment 4 from its ``runs`` table: per optimizer run, (a) test error, (b) top Hessian
    eigenvalue, (c) Keskar sharpness, (d) fraction of batches passing the common-minimum test; filled markers
    from the initialization, open ones from the bad minimum; small markers: seeds, large: mean over seeds."""
    from matplotlib.figure import Figure

    labels = list(dict.fromkeys(runs["label"]))
    pos = {lab: i for i, lab in enumerate(labels)}
    groups = list(runs.groupby(["filters", "start"], sort=False))
    filters_list = list(dict.fromkeys(runs["filters"]))
    fig = Figure(figsize=(13, 8.5))
    axes = fig.subplots(2, 2)
    panels = [("test_error", "test error", "(a) final test error", False),
              ("full_top_eig", "top Hessian eigenvalue", "(b) curvature: top eigenvalue of the training loss", True),
              ("sharpness", f"Keskar sharpness (eps {config.sharpness_eps:g})", "(c) sharpness", True),
              ("fraction_passing", "fraction of tested batches", "(d) end point passes the common-minimum test",
               False)]
    width = 0.8 / max(len(groups), 1)
    for ax, (col, ylabel, title, log) in zip(axes.flat, panels):
        for j, ((filters, start), r) in enumerate(groups):
            c = COLORS[filters_list.index(filters) % len(COLORS)]
            x = r["label"].map(pos).to_numpy() - 0.4 + width * (j + 0.5)
            marker, face = ("o", c) if start == "init" else ("s", "white")
            ax.plot(x, r[col], marker, color=c, mfc=face, ms=3.5, alpha=0.6, ls="none")
            mean = r.groupby("label", sort=False)[col].mean()
            xm = np.array([pos[lab] for lab in mean.index]) - 0.4 + width * (j + 0.5)
            where = "the initialization" if start == "init" else "the bad minimum"
            ax.plot(xm, mean.to_numpy(), marker, color=c, mfc=face, ms=9, mew=1.8, ls="none",
                    label=f"{filters}, from {where}")
        ax.set_xticks(range(len(labels)))
        ax.set_xticklabels(labels, fontsize=8)
        ax.set_xlabel("optimizer run")
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=10)
        if log:
            plain_log_axis(ax)
        ax.legend(fontsize=7)
    fig.suptitle(f"Escape from a bad minimum (fit to labels with corruption {config.corruption:g}): SGD at several "
                 "batch sizes vs full-batch GD; small markers: seeds, large: mean")
    fig.tight_layout()
    return fig
