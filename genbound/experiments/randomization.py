"""Experiment 2, randomization tests (Zhang et al. 2017): can the networks fit corrupted labels and inputs,
how much longer does it take, and what do the gap and the bounds do meanwhile?

Each network (full filters and rank-1 CP filters) is trained on the clean data, on labels of which a fraction
0.2 ... 1.0 is replaced by uniform random classes, and on corrupted inputs (one fixed pixel permutation, a
permutation per image, Gaussian noise with the data's per-pixel mean and standard deviation); training stops
as soon as the training error is 0, or after ``max_epochs``. The test set stays clean (except the fixed pixel
permutation, which is a change of representation applied to it too, see :func:`genbound.data.randomize`).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from genbound._checks import check_int, check_positive, check_probability
from genbound.bounds import ReportConfig
from genbound.data import RANDOMIZATIONS
from genbound.experiments.cells import (DataOptions, cell_data, check_config, check_data_options, check_ranks,
                                        config_dict, data_label, data_spec, experiment_arguments, filters_label,
                                        fmt_interval, interval_text, legend_below, make_cells, run_cells,
                                        setting_label, slug)
from genbound.experiments.results import Claim, ExperimentResult, seed_summary, t_interval, verdict

__all__ = ["CONDITIONS", "RandomizationConfig", "randomization_experiment", "randomization_cell", "grid_cells",
           "randomization_claims", "plot_randomization"]

#: The randomizations of Zhang et al. (2017): (label, kind of :func:`genbound.data.randomize`, fraction).
CONDITIONS = (
    ("true labels", "partial_labels", 0.0),
    ("labels 0.2", "partial_labels", 0.2),
    ("labels 0.5", "partial_labels", 0.5),
    ("labels 0.8", "partial_labels", 0.8),
    ("labels 1.0", "partial_labels", 1.0),
    ("shuffled pixels", "shuffled_pixels", 1.0),
    ("random pixels", "random_pixels", 1.0),
    ("gaussian", "gaussian", 1.0),
)
TRUE, RANDOM = "true labels", "labels 1.0"


@dataclass(frozen=True)
class RandomizationConfig(DataOptions):
    """Options of :func:`randomization_experiment`.

    Attributes
    ----------
    network : str or None
        Reference network; None: ``"digits"`` on 8x8 images, ``"mnist"`` on 28x28 (the networks with a
        dense head on the flattened feature map: enough capacity to memorize).
    width : float or None
        Channel multiplier; None: 2.0 on 8x8 images (so that random labels can be fitted), 1.0 on 28x28.
    ranks : tuple of (int or None)
        None is full filters. Default (None, 1).
    conditions : tuple of (label, kind, fraction)
        The randomizations, default :data:`CONDITIONS`. Label ``"true labels"`` is the reference of the
        time ratios and ``"labels 1.0"`` the random-label condition of the claims.
    max_epochs : int
        Cap on training; a run stops earlier once its training error is 0. Default 150.
    batch_size, lr :
        Adam with learning rate ``lr`` on mini-batches (Adam fits random labels in far fewer epochs than
        plain SGD on these networks). Defaults 32, 3e-3.
    scaling : {"fixed", "standardize", "raw"}
    data_seed : int
        Seed of the train/test split. Default 0.
    n_train, n_test : int or None
        Use only the first ``n_train`` training / ``n_test`` test examples (None: all).
    report : genbound.bounds.ReportConfig
        Bounds measured at the end of each run. Default: Eq. 1, VC and Occam rows, and PAC-Bayes with the
        prior at the initialization.

    The defaults are the full run on the 8x8 digits; :meth:`quick` is ``--quick`` and :meth:`mnist` the full
    run on 28x28 images (:meth:`~genbound.experiments.cells.DataOptions.for_data` picks by data).
    """

    width: float | None = None
    ranks: tuple = (None, 1)
    conditions: tuple = CONDITIONS
    max_epochs: int = 150
    batch_size: int = 32
    lr: float = 3e-3
    scaling: str = "fixed"
    report: ReportConfig = ReportConfig()

    def __post_init__(self):
        check_data_options(self)
        object.__setattr__(self, "ranks", check_ranks(self.ranks))
        conditions = tuple(tuple(c) for c in self.conditions)
        if not conditions:
            raise ValueError("conditions: expected at least one condition")
        for c in conditions:
            if len(c) != 3 or not isinstance(c[0], str) or c[1] not in RANDOMIZATIONS:
                raise ValueError(f"conditions: expected (label, kind in {RANDOMIZATIONS}, fraction), got {c!r}")
            check_probability(c[2], "conditions fraction", open_interval=False)
        if len({c[0] for c in conditions}) != len(conditions):
            raise ValueError("conditions: expected distinct labels")
        object.__setattr__(self, "conditions", conditions)
        if self.width is not None:
            check_positive(self.width, "width")
        check_int(self.max_epochs, "max_epochs", minimum=1)
        check_int(self.batch_size, "batch_size", minimum=1)
        check_positive(self.lr, "lr")
        if not isinstance(self.report, ReportConfig):
            raise TypeError(f"report: expected a genbound.bounds.ReportConfig, got {type(self.report).__name__}")

    @classmethod
    def quick(cls):
        """The ``--quick`` setting: at most 30 epochs on the first 500 training images, no PAC-Bayes rows."""
        return cls(max_epochs=30, n_train=500, report=ReportConfig(pac_bayes=False))

    @classmethod
    def mnist(cls):
        """The full run on 28x28 images (the ``mnist`` network, width 1): every condition, both filter types, on
        the first 1,000 training images (the test set whole), at most 100 epochs (full filters fitted random
        labels on these 1,000 images in 32 epochs of Adam, seed 0), and no PAC-Bayes rows, as in the quick
        setting (the posterior fit and its Monte-Carlo passes would cost more than the training; the Eq. 1, VC
        and Occam rows remain)."""
        return cls(max_epochs=100, n_train=1000, report=ReportConfig(pac_bayes=False))


def randomization_cell(data, data_seed, scaling, n_train, n_test, network, rank, width, condition, kind,
                       fraction, seed, max_epochs, batch_size, lr, report):
    """Train one network on one randomization of the data, from ``seed``, until its training error is 0.

    The training set is corrupted by ``randomize(data, kind, fraction, seed)``; the network
    ``reference_cnn(network, rank, seed, width=width)`` is trained by Adam (``lr``, ``batch_size``, batch
    order from ``seed``) and stopped by the training callback at the first epoch whose training error is 0
    (or after ``max_epochs``); the trained network is measured by :func:`genbound.bounds.report` on the
    corrupted training set, with the PAC-Bayes prior at its initialization.

    Returns one row per evaluated epoch (``epoch``, ``step``, ``train_loss``, ``train_error``,
    ``test_loss``, ``test_error``) with, repeated, the run's results: ``reached_zero``, ``steps_to_fit`` and
    ``epochs_to_fit`` (NaN when the cap came first), ``best_train_error``, ``final_train_error``,
    ``final_test_error``, ``final_gap`` (test error on clean data minus training error on the corrupted
    data), ``min_error_bound`` (the tightest error bound of the report, ``tightest_bound`` its name),
    ``min_bound_slack`` (the smallest, over the report's rows, error bound minus the measured test error of
    what that row bounds: negative means a bound failed) and ``bound_<name>`` for each row of the report
    (its ``error_bound``).
    """
    import genbound as gb

    clean = cell_data(data, data_seed, scaling, n_train, n_test)
    d = gb.data.randomize(clean, kind, fraction, seed=seed)
    model = gb.nn.reference_cnn(network, rank=rank, seed=seed, width=width)
    w0 = model.get_flat()
    t0 = time.perf_counter()
    hist = gb.train(model, d, epochs=max_epochs, batch_size=batch_size, optimizer=gb.nn.Adam(lr=lr), seed=seed,
                    progress=False, callback=lambda _model, row: row["train_error"] == 0.0)
    t1 = time.perf_counter()
    table = gb.bounds.report(model, d, w0=w0, config=ReportConfig(**report), seed=seed)
    t2 = time.perf_counter()
    last = hist.iloc[-1]
    reached = bool(last["train_error"] == 0.0)
    run = dict(filters=filters_label(rank), n_params=int(model.n_params), m=int(d.m), chance=1.0 - 1.0 / d.classes,
               reached_zero=reached, steps_to_fit=float(last["step"]) if reached else np.nan,
               epochs_to_fit=float(last["epoch"]) if reached else np.nan,
               best_train_error=float(hist["train_error"].min()), final_train_error=float(last["train_error"]),
               final_test_error=float(last["test_error"]), final_gap=float(last["test_error"] - last["train_error"]),
               min_error_bound=float(table["error_bound"].min()),
               min_bound_slack=float((table["error_bound"] - table["test_error"]).min()),
               tightest_bound=str(table.loc[table["error_bound"].idxmin(), "bound"]),
               train_seconds=t1 - t0, report_seconds=t2 - t1)
    run.update({f"bound_{slug(b)}": float(v) for b, v in zip(table["bound"], table["error_bound"])})
    rows = hist[["epoch", "step", "train_loss", "train_error", "test_loss", "test_error"]].astype(float)
    return rows.assign(**run)


#: Part of every cell key: raise it when the cell function's results change, so stored cells are recomputed.
CELL_VERSION = 1

GROUP = ["data", "network", "filters", "condition"]
RUN_VALUES = ["reached_zero", "steps_to_fit", "epochs_to_fit", "best_train_error", "final_train_error",
              "final_test_error", "final_gap", "min_error_bound", "min_bound_slack", "train_seconds"]


def _ratios(runs):
    """Per (filters, seed): each condition's steps to fit divided by those of the true labels."""
    ref = runs[runs["condition"] == TRUE].set_index(["filters", "seed"])["steps_to_fit"]
    key = pd.MultiIndex.from_frame(runs[["filters", "seed"]])
    return runs.assign(time_ratio=runs["steps_to_fit"].to_numpy() / ref.reindex(key).to_numpy())


def randomization_claims(runs, config):
    """The claims of experiment 2 judged from ``runs`` (one row per filters, condition and seed, with
    ``time_ratio``) and the experiment's config dict (``conditions``, ``max_epochs``): per filter type, random
    labels fitted, test error at chance, time ratio below 5, the gap growing with corruption, every bound
    holding. Each verdict comes from :func:`verdict` on a 95 % t-interval over seeds."""
    claims = []
    labels = {c[0] for c in config["conditions"]}
    for filters in dict.fromkeys(runs["filters"]):
        sel = runs[runs["filters"] == filters]
        rnd = sel[sel["condition"] == RANDOM]
        true = sel[sel["condition"] == TRUE]
        if RANDOM in labels:
            mean, _, lo, hi, n = t_interval(rnd["best_train_error"])
            fitted = f"{int(rnd['reached_zero'].sum())} of {len(rnd)} seeds reached exactly 0"
            claims.append(Claim(
                f"Networks with {filters} filters fit random labels (training error reaches 0; judged: below 1 %)",
                verdict(lo, hi, 0.01, "below"), f"{fitted} within {config['max_epochs']} epochs (m = "
                f"{int(rnd['m'].iloc[0])}); lowest training error {fmt_interval(mean, lo, hi)}"))
            chance = float(rnd["chance"].iloc[0])
            mean, _, lo, hi, n = t_interval(rnd["final_test_error"])
            claims.append(Claim(
                f"With random labels the test error of {filters} filters goes to chance ({chance:.2f}; judged: "
                f"above {chance - 0.05:.2f})",
                verdict(lo, hi, chance - 0.05, "above"),
                f"test error {fmt_interval(mean, lo, hi)} over {n} seeds, vs {interval_text(true['final_test_error'])} "
                "with true labels"))
        if RANDOM in labels and TRUE in labels:
            mean, _, lo, hi, n = t_interval(rnd["time_ratio"])
            capped = rnd[rnd["steps_to_fit"].isna()]
            note = ""
            if len(capped):
                floor = (capped["step"] / true["steps_to_fit"].mean()).min()
                note = (f"; {len(capped)} of {len(rnd)} random-label runs hit the cap of {config['max_epochs']} "
                        f"epochs without fitting: their ratio is unknown, at least {floor:.2f}")
            claims.append(Claim(
                f"Fitting random labels takes longer than true labels only by a small factor (< 5x; {filters} "
                "filters)",
                verdict(lo, hi, 5.0, "below"),
                f"steps to zero training error: {interval_text(true['steps_to_fit'])} (true labels) vs "
                f"{interval_text(rnd['steps_to_fit'])} (random labels); ratio {fmt_interval(mean, lo, hi)} over "
                f"{n} seeds{note}"))
            diff = (rnd.set_index("seed")["final_gap"] - true.set_index("seed")["final_gap"]).dropna()
            mean, _, lo, hi, n = t_interval(diff)
            eq1 = sel["bound_eq_1_n_parameters"] - sel["final_train_error"] if "bound_eq_1_n_parameters" in sel \
                else pd.Series(dtype=float)
            claims.append(Claim(
                f"The gap grows with label corruption while sqrt(N/m) stays put ({filters} filters)",
                verdict(lo, hi, 0.0, "above"),
                f"gap {interval_text(true['final_gap'])} (true labels) vs {interval_text(rnd['final_gap'])} "
                f"(random labels), paired difference {fmt_interval(mean, lo, hi)}; sqrt(N/m) = "
                f"{eq1.mean():.3g} for every condition (N = {int(sel['n_params'].iloc[0])})"))
            mean, _, lo, hi, n = t_interval(rnd["min_bound_slack"])
            claims.append(Claim(
                f"Every bound of the report holds with random labels: above the test error of what it bounds "
                f"({filters} filters)",
                verdict(lo, hi, 0.0, "above"),
                f"smallest error bound minus measured test error over the report's rows "
                f"{fmt_interval(mean, lo, hi)} over {n} seeds; tightest error bound "
                f"{interval_text(rnd['min_error_bound'])} ({', '.join(rnd['tightest_bound'].unique())}) vs "
                f"{interval_text(true['min_error_bound'])} with true labels "
                f"({', '.join(true['tightest_bound'].unique())})"))
    return claims


def plot_randomization(curves, conditions):
    """Figure: training curves per corruption; training error (top) and test error (bottom) against SGD steps,
    one column per filter type, one line per condition (mean over seeds; a run that stopped at zero training
    error is held at its last value)."""
    from matplotlib.figure import Figure

    filters = list(dict.fromkeys(curves["filters"]))
    fig = Figure(figsize=(5.4 * len(filters), 7.0), layout="constrained")
    axes = fig.subplots(2, len(filters), squeeze=False, sharex="col")
    colors = {c: f"C{i % 10}" for i, c in enumerate(conditions)}
    for j, f in enumerate(filters):
        sel = curves[curves["filters"] == f]
        for cond in conditions:
            c = sel[sel["condition"] == cond]
            if not len(c):
                continue
            for i, col in enumerate(("train_error", "test_error")):
                wide = c.pivot_table(index="step", columns="seed", values=col, aggfunc="first").sort_index().ffill()
                axes[i, j].plot(wide.index, wide.mean(axis=1), color=colors[cond], label=cond, lw=1.5)
        for i, what in enumerate(("training error (corrupted training set)", "test error (clean test set)")):
            axes[i, j].set_ylabel(what)
            axes[i, j].set_ylim(-0.02, 1.0)
            axes[i, j].grid(alpha=0.3)
        axes[0, j].set_title(f"{f} filters")
        axes[1, j].set_xlabel("optimizer steps")
    return legend_below(fig, axes[0, 0], "Randomization tests: training curves per corruption (mean over seeds)")


def grid_cells(data="digits", grid=None, *, quick=False, config=None):
    """The cells of :func:`randomization_cell` over ``grid`` and the ``key_extra`` of their sweep
    (:func:`genbound.experiments.cells.make_cells`).

    Every parameter not in ``grid`` comes from ``config`` (default: :meth:`RandomizationConfig.for_data` of
    ``data``, the quick setting with ``quick``): its first rank and condition, seed 0, the training and report
    settings.
    A ``condition`` given by its label (one of ``config.conditions``, e.g. ``"labels 0.5"``) sets ``kind``
    and ``fraction``; ``kind`` and ``fraction`` given directly name the condition ``"<kind> <fraction>"``.
    """
    spec = data_spec(data)
    config = check_config(config, RandomizationConfig, quick, spec)
    mnist_like = cell_data(spec, config.data_seed, config.scaling).input_shape[-1] >= 28
    label, kind, fraction = config.conditions[0]
    grid = dict(grid or {})
    cells, key_extra = make_cells(randomization_cell, config, spec, grid, CELL_VERSION, seed=0, rank=config.ranks[0],
                                  network=config.network or ("mnist" if mnist_like else "digits"),
                                  width=config.width or (1.0 if mnist_like else 2.0), condition=label, kind=kind,
                                  fraction=fraction)
    known = {c[0]: c for c in (*config.conditions, *CONDITIONS)}
    for cell in cells:
        if "condition" in grid:
            if cell["condition"] not in known:
                raise ValueError(f"grid['condition']: unknown condition {cell['condition']!r}; expected one of "
                                 f"{sorted(known)} (or give kind and fraction)")
            _, cell["kind"], cell["fraction"] = known[cell["condition"]]
        elif "kind" in grid or "fraction" in grid:
            cell["condition"] = f"{cell['kind']} {cell['fraction']:g}"
        if cell["kind"] not in RANDOMIZATIONS:
            raise ValueError(f"grid['kind']: expected one of {RANDOMIZATIONS}, got {cell['kind']!r}")
    return cells, key_extra


DESCRIPTION = " ".join("""
Zhang et al. (2017) showed that networks fit random labels and random inputs, so the parameter count alone
cannot explain why they generalize on real data. Each network (full and rank-1 CP filters) is trained by Adam on
the true labels, on labels of which a fraction 0.2, 0.5, 0.8, 1.0 is replaced by uniform random classes, and on
shuffled pixels (one permutation for all images), random pixels (a permutation per image) and Gaussian inputs;
training stops at the first epoch with zero training error, or at the epoch cap. Reported: whether and when the
training error reached 0 (optimizer steps), the clean test error, the gap and the bounds of
`genbound.bounds.report` at the end.
""".split())


def randomization_experiment(data="digits", *, seeds=5, quick=False, out=None, backend="local", scheduler=None,
                             workers=None, progress=True, config=None):
    """Experiment 2: randomization tests of Zhang et al. (2017) on full and rank-1 CP networks.

    One sweep cell per (filters, condition, seed) (:func:`randomization_cell`). Statistics over seeds are
    95 % Student-t intervals; claims are judged by :func:`verdict` on them.

    The parameters are those of :func:`genbound.experiments.compression_experiment`, with ``config`` a
    :class:`RandomizationConfig` (``quick``: :meth:`RandomizationConfig.quick`; otherwise the data's full run,
    :meth:`RandomizationConfig.for_data`); the seeds also drive the corruptions.

    Returns
    -------
    ExperimentResult
        Tables ``runs`` (one row per filters, condition and seed), ``summary`` (over seeds, with the time
        ratio to the true labels), ``curves`` (the training histories); figure ``training_curves``; claims.

    References
    ----------
    C. Zhang, S. Bengio, M. Hardt, B. Recht, O. Vinyals, "Understanding deep learning requires rethinking
    generalization", ICLR 2017.
    """
    setting = setting_label(config, quick, data)
    config, seeds, spec = experiment_arguments(config, RandomizationConfig, quick, seeds, data, backend, scheduler,
                                               workers)
    cells, key_extra = grid_cells(spec, {"rank": list(config.ranks), "condition": [c[0] for c in config.conditions],
                                         "seed": seeds}, config=config)
    network, width = cells[0]["network"], cells[0]["width"]
    curves = run_cells(randomization_cell, cells, out=out, key_extra=key_extra, backend=backend, scheduler=scheduler,
                       workers=workers, progress=progress)
    curves = curves.drop(columns=["report", "status"]).assign(data=data_label(spec))
    order = {label: i for i, (label, _, _) in enumerate(config.conditions)}
    last = curves.groupby(GROUP + ["seed"], sort=False).tail(1)
    runs = last.drop(columns=["epoch", "train_loss", "train_error", "test_loss", "test_error"])
    runs = _ratios(runs.reset_index(drop=True))
    runs = runs.sort_values(["filters", "condition", "seed"], key=lambda s: s.map(order) if s.name == "condition"
                            else s, kind="stable").reset_index(drop=True)
    bounds = [c for c in runs if c.startswith("bound_")]
    summary = seed_summary(runs, GROUP, RUN_VALUES + ["time_ratio"] + bounds)
    cfg = {**config_dict(config), "network": network, "width": width, "data": spec, "seeds": seeds,
           "quick": bool(quick), "setting": setting, "data_fingerprint": key_extra["data_fingerprint"],
           "backend": backend}
    return ExperimentResult(
        name="randomization",
        title=f"Experiment 2: randomization tests ({data_label(spec)} data, {network} network, width {width:g})",
        description=DESCRIPTION + (f" This run: {int(runs['m'].iloc[0])} training examples, at most "
                                   f"{config.max_epochs} epochs (Adam, lr {config.lr:g}, batch {config.batch_size}); "
                                   + ("PAC-Bayes rows included." if config.report.pac_bayes else
                                      "no PAC-Bayes rows.")),
        tables={"runs": runs, "summary": summary, "curves": curves},
        figures={"training_curves": plot_randomization(curves, [c[0] for c in config.conditions])},
        claims=randomization_claims(runs, cfg), config=cfg)
