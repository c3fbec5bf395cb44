"""Experiment 1, compression and the bound: does a rank-1 CP network lower the capacity N and the Eq. 1
bound sqrt(N/m), and do N and the library's bounds rank a family of networks by their measured gap?

Every network of the family (full filters and CP rank R, at several widths) is trained by SGD from several
seeds; each trained network is measured by :func:`genbound.bounds.report` (Eq. 1 with N by every capacity
method, VC, PAC-Bayes around the initialization, Occam on a quantized copy). Beyond the paper, the Kendall
rank correlation between each capacity measure or bound and the measured gap across the family is reported,
as Jiang et al. (2019) measure generalization measures.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from genbound._checks import check_int, check_positive
from genbound.bounds import ReportConfig
from genbound.experiments.cells import (DataOptions, cell_data, check_config, check_data_options, check_ranks,
                                        config_dict, data_label, data_spec, default_network, example_sample,
                                        make_cells, experiment_arguments, setting_label, filters_label,
                                        fmt_interval, interval_text, legend_below, run_cells, slug)
from genbound.experiments.results import Claim, ExperimentResult, seed_summary, t_interval, verdict

__all__ = ["CompressionConfig", "compression_experiment", "compression_cell", "grid_cells", "kendall_table",
           "compression_claims", "plot_compression"]

# ------------------------------------------------------------------------------------------------------
# configuration
# ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CompressionConfig(DataOptions):
    """Options of :func:`compression_experiment`.

    Attributes
    ----------
    network : str or None
        Reference network (:func:`genbound.nn.reference_cnn`); None: ``"digits_gap"`` on 8x8 digits,
        ``"mnist_gap"`` on 28x28 images (networks whose parameters sit in the convolutions).
    ranks : tuple of (int or None)
        CP ranks of the family; None is full filters. Default (None, 1, 2, 4).
    widths : tuple of float
        Channel multipliers of the family. Default (0.5, 1.0).
    epochs, batch_size, lr, momentum :
        SGD training of every network. Defaults 40, 64, 0.1, 0.9.
    scaling : {"fixed", "standardize", "raw"}
        Input scaling (``"fixed"``, the default, uses no statistic of the training set).
    data_seed : int
        Seed of the train/test split (fixed across training seeds). Default 0.
    n_train, n_test : int or None
        Use only the first ``n_train`` training / ``n_test`` test examples (None: all; for tests).
    report : genbound.bounds.ReportConfig
        The bounds measured on each trained network. Default: every data-independent row, with the
        Hessian effective dimension (``hessian=True``, 20 Lanczos eigenvalues).
    hessian_examples : int or None
        The Hessian effective dimension is taken on the loss over a fixed sample of this many training
        examples (:func:`~genbound.experiments.cells.example_sample`, drawn from ``data_seed``: the same
        examples for every network and seed); sqrt(N/m) keeps the whole training set's m. None (default): every
        training example.

    The defaults are the full run on the 8x8 digits; :meth:`quick` is ``--quick`` and :meth:`mnist` the full
    run on 28x28 images (:meth:`~genbound.experiments.cells.DataOptions.for_data` picks by data).
    """

    ranks: tuple = (None, 1, 2, 4)
    widths: tuple = (0.5, 1.0)
    epochs: int = 40
    batch_size: int = 64
    lr: float = 0.1
    momentum: float = 0.9
    scaling: str = "fixed"
    report: ReportConfig = ReportConfig(hessian=True, hessian_k=20)
    hessian_examples: int | None = None

    def __post_init__(self):
        check_data_options(self)
        if self.hessian_examples is not None:
            check_int(self.hessian_examples, "hessian_examples", minimum=1)
        widths = tuple(check_positive(w, "widths") for w in self.widths)
        if not widths:
            raise ValueError("widths: expected at least one width")
        object.__setattr__(self, "ranks", check_ranks(self.ranks))
        object.__setattr__(self, "widths", widths)
        check_int(self.epochs, "epochs", minimum=1)
        check_int(self.batch_size, "batch_size", minimum=1)
        check_positive(self.lr, "lr")
        check_positive(self.momentum, "momentum", allow_zero=True)
        if not isinstance(self.report, ReportConfig):
            raise TypeError(f"report: expected a genbound.bounds.ReportConfig, got {type(self.report).__name__}")

    @classmethod
    def quick(cls):
        """The ``--quick`` setting: full and rank-1 filters, width 1, 30 epochs, no Hessian effective
        dimension, a short PAC-Bayes posterior fit (100 steps, 20 Monte-Carlo draws)."""
        return cls(ranks=(None, 1), widths=(1.0,), epochs=30,
                   report=ReportConfig(hessian=False, n_samples=20, max_iter=100))

    @classmethod
    def mnist(cls):
        """The full run on 28x28 images (``mnist_gap``; about 25x the work per example of the digits net): the
        same family of 8 networks trained on every training image, but for 8 epochs instead of 40 (500 SGD
        steps on the 4,000 images of the MNIST subset, against 920 on the digits); the Hessian effective
        dimension (20 Lanczos eigenvalues) on a fixed sample of 500 training examples; the PAC-Bayes posterior
        fitted in 200 steps instead of 400, its Gibbs error estimated from 50 draws instead of 150 (each draw is
        a pass over the training set; the Monte-Carlo term of the bound is looser accordingly)."""
        return cls(epochs=8, hessian_examples=500,
                   report=ReportConfig(hessian=True, hessian_k=20, max_iter=200, n_samples=50))


# ------------------------------------------------------------------------------------------------------
# one cell: train one network from one seed and measure every bound
# ------------------------------------------------------------------------------------------------------

RUN_COLUMNS = ["n_params", "m", "train_loss", "train_error", "test_error", "gap", "N_params", "N_manifold",
               "N_hessian", "eq1_params", "eq1_manifold", "eq1_hessian", "train_seconds", "report_seconds"]


def compression_cell(data, data_seed, scaling, n_train, n_test, network, rank, width, seed, epochs, batch_size,
                     lr, momentum, report, hessian_examples=None):
    """Train one network of the family from ``seed`` and measure it: one row per bound of the report.

    The network ``reference_cnn(network, rank, seed, width=width)`` is trained by SGD (``lr``,
    ``momentum``, ``batch_size``, ``epochs``; batch order from ``seed``) and measured by
    :func:`genbound.bounds.report` with ``ReportConfig(**report)``, the PAC-Bayes prior centred at its
    initialization (with ``hessian_examples``, the Hessian row on that fixed sample of the training examples,
    :func:`~genbound.experiments.cells.example_sample` from ``data_seed``). Each row holds the report's
    columns for one bound (``bound``, ``bounds_what``, ``value``, ``error_bound``, ``bound_train_error``,
    ``vacuous``, ``delta`` (NaN for Eq. 1, which has no confidence level), ``N``, ``kl``, ``bits``) and,
    repeated, the run's measurements (:data:`RUN_COLUMNS`): errors, measured gap, N by each capacity method and
    :math:`\\sqrt{N/m}` with each.
    """
    import genbound as gb

    d = cell_data(data, data_seed, scaling, n_train, n_test)
    model = gb.nn.reference_cnn(network, rank=rank, seed=seed, width=width)
    w0 = model.get_flat()
    t0 = time.perf_counter()
    gb.train(model, d, epochs=epochs, batch_size=batch_size, optimizer=gb.nn.SGD(lr=lr, momentum=momentum),
             seed=seed, progress=False)
    t1 = time.perf_counter()
    table = gb.bounds.report(model, d, w0=w0, config=ReportConfig(**report), seed=seed,
                             hessian_sample=example_sample(d.m, hessian_examples, data_seed))
    t2 = time.perf_counter()
    train_loss = model.evaluate(d.x_train, d.y_train)[0]
    eq1 = {}
    for method, prefix in (("params", "Eq. 1, N = parameters"), ("manifold", "Eq. 1, N = manifold"),
                           ("hessian", "Eq. 1, N = Hessian")):
        row = table[table["bound"].str.startswith(prefix)]
        eq1[method] = (float(row["N"].iloc[0]), float(row["value"].iloc[0])) if len(row) else (np.nan, np.nan)
    first = table.iloc[0]
    run = dict(filters=filters_label(rank), n_params=int(model.n_params), m=int(first["m"]),
               train_loss=float(train_loss), train_error=float(first["train_error"]),
               test_error=float(first["test_error"]), gap=float(first["gap"]),
               N_params=eq1["params"][0], N_manifold=eq1["manifold"][0], N_hessian=eq1["hessian"][0],
               eq1_params=eq1["params"][1], eq1_manifold=eq1["manifold"][1], eq1_hessian=eq1["hessian"][1],
               train_seconds=t1 - t0, report_seconds=t2 - t1)
    rows = []
    for _, r in table.iterrows():
        rows.append({**run, "bound": r["bound"], "bounds_what": r["bounds_what"], "value": float(r["value"]),
                     "error_bound": float(r["error_bound"]), "bound_train_error": float(r["train_error"]),
                     "vacuous": bool(r["vacuous"]), "delta": float(r["delta"]), "N": float(r["N"]), "kl": float(r["kl"]),
                     "bits": float(r["bits"])})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------------------
# analysis
# ------------------------------------------------------------------------------------------------------

#: Part of every cell key: raise it when the cell function's results change, so stored cells are recomputed.
CELL_VERSION = 2

GROUP = ["data", "network", "filters", "width"]


def _runs_table(long):
    """One row per (network, seed): the run's columns and ``bound_<slug>`` = each bound's value."""
    keys = GROUP + ["rank", "seed"]
    base = long.drop_duplicates(subset=GROUP + ["seed"])[keys + RUN_COLUMNS].reset_index(drop=True)
    wide = long.pivot_table(index=GROUP + ["seed"], columns="bound", values="value", aggfunc="first")
    wide.columns = [f"bound_{slug(c)}" for c in wide.columns]
    runs = base.merge(wide.reset_index(), on=GROUP + ["seed"], how="left")
    return runs.sort_values(["data", "network", "width", "n_params", "seed"], kind="stable").reset_index(drop=True)


def kendall_table(runs, measures):
    """Kendall's tau between each measure and the measured gap across the family of networks.

    Two readings: ``tau`` pools every (network, seed) run (with scipy's p-value of tau = 0); ``tau_mean``,
    ``tau_lo``, ``tau_hi`` are the mean and 95 % t-interval over seeds of the tau computed across the networks
    of each seed. A measure that does not vary (or has missing values) gives NaN.

    .. math:: \\tau = \\frac{(\\text{concordant}) - (\\text{discordant pairs})}
              {\\sqrt{(n_0 - n_1)(n_0 - n_2)}} \\quad (\\tau_b, \\text{ties corrected})

    References
    ----------
    Y. Jiang, B. Neyshabur, H. Mobahi, D. Krishnan, S. Bengio, "Fantastic generalization measures and where
    to find them", ICLR 2020 (arXiv:1912.02178, 2019).
    """
    from scipy.stats import kendalltau

    def tau(x, y):
        ok = np.isfinite(x) & np.isfinite(y)
        x, y = np.asarray(x)[ok], np.asarray(y)[ok]
        if x.size < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
            return np.nan, np.nan
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = kendalltau(x, y)
        return float(res.statistic), float(res.pvalue)

    rows = []
    for measure in measures:
        if measure not in runs or not np.isfinite(runs[measure].to_numpy(dtype=float)).any():
            continue
        t, p = tau(runs[measure].to_numpy(dtype=float), runs["gap"].to_numpy(dtype=float))
        per_seed = [tau(g[measure].to_numpy(dtype=float), g["gap"].to_numpy(dtype=float))[0]
                    for _, g in runs.groupby("seed")]
        mean, _, lo, hi, n = t_interval(per_seed)
        rows.append(dict(measure=measure, tau=t, p_value=p, n_runs=int(len(runs)), tau_mean=mean, tau_lo=lo,
                         tau_hi=hi, n_seeds=n, n_networks=int(runs.groupby(GROUP).ngroups)))
    return pd.DataFrame(rows, columns=["measure", "tau", "p_value", "n_runs", "tau_mean", "tau_lo", "tau_hi",
                                       "n_seeds", "n_networks"])


def _paired(runs, width, a, b, column):
    """Per seed, ``column`` of filters ``a`` minus that of filters ``b`` at ``width``."""
    sel = runs[runs["width"] == width]
    pa = sel[sel["filters"] == a].set_index("seed")[column]
    pb = sel[sel["filters"] == b].set_index("seed")[column]
    return (pa - pb).dropna()


def compression_claims(runs, long, kendall):
    """The claims of experiment 1 judged from ``runs`` (one row per network and seed), ``long`` (one row per
    bound) and the Kendall table, each verdict from :func:`verdict` on a 95 % t-interval over seeds."""
    claims = []
    widths = sorted(runs["width"].unique())
    have = set(runs["filters"])
    for width in widths:
        if not {"full", "rank 1"} <= have:
            break
        sel = runs[runs["width"] == width]
        full, r1 = sel[sel["filters"] == "full"], sel[sel["filters"] == "rank 1"]
        diff = _paired(runs, width, "full", "rank 1", "eq1_params")
        mean, _, lo, hi, n = t_interval(diff)
        claims.append(Claim(
            f"Rank-1 filters lower N and the Eq. 1 bound sqrt(N/m) (width {width:g})",
            verdict(lo, hi, 0.0, "above"),
            f"N = {full['N_params'].mean():.0f} (full) vs {r1['N_params'].mean():.0f} (rank 1), m = "
            f"{int(sel['m'].iloc[0])}; sqrt(N/m) = {full['eq1_params'].mean():.3f} vs {r1['eq1_params'].mean():.3f}; "
            f"difference {fmt_interval(mean, lo, hi)} over {n} seeds"))
        diff = _paired(runs, width, "full", "rank 1", "gap")
        mean, _, lo, hi, n = t_interval(diff)
        claims.append(Claim(
            f"Rank-1 filters lower the measured gap (width {width:g})",
            verdict(lo, hi, 0.0, "above"),
            f"gap {interval_text(full['gap'])} (full) vs {interval_text(r1['gap'])} (rank 1); paired "
            f"difference full - rank 1 {fmt_interval(mean, lo, hi)} over {n} seeds; test error "
            f"{interval_text(full['test_error'])} vs {interval_text(r1['test_error'])}"))
    slack = runs.assign(slack=runs["eq1_params"] - runs["gap"]).groupby("seed")["slack"].min()
    mean, _, lo, hi, n = t_interval(slack)
    claims.append(Claim(
        "The measured gap is below sqrt(N/m) (N = parameters) for every network of the family",
        verdict(lo, hi, 0.0, "above"),
        f"smallest sqrt(N/m) - gap over the {runs.groupby(GROUP).ngroups} networks, per seed: "
        f"{fmt_interval(mean, lo, hi)} over {n} seeds; largest gap {runs['gap'].max():.3f}"))
    if "full" in have:
        top = runs[(runs["filters"] == "full") & (runs["width"] == widths[-1])]
        mean, _, lo, hi, n = t_interval(top["eq1_params"])
        claims.append(Claim(
            f"sqrt(N/m) is vacuous (> 1) for full filters (width {widths[-1]:g})",
            verdict(lo, hi, 1.0, "above"),
            f"sqrt(N/m) = {fmt_interval(mean, lo, hi)} with N = {top['N_params'].mean():.0f}, "
            f"m = {int(top['m'].iloc[0])}"))
    if "rank 1" in have:
        sel = runs[(runs["filters"] == "rank 1") & (runs["width"] == widths[-1])]
        mean, _, lo, hi, n = t_interval(sel["eq1_params"])
        claims.append(Claim(
            f"sqrt(N/m) is non-vacuous (< 1) for rank-1 filters (width {widths[-1]:g})",
            verdict(lo, hi, 1.0, "below"),
            f"sqrt(N/m) = {fmt_interval(mean, lo, hi)} with N = {sel['N_params'].mean():.0f}, "
            f"m = {int(sel['m'].iloc[0])}; with the train error added (a bound on the test error): "
            f"{interval_text(sel['train_error'] + sel['eq1_params'])}"))
        r1 = long[(long["filters"] == "rank 1") & (long["width"] == widths[-1]) & np.isfinite(long["delta"])]
        if len(r1):
            best = r1.groupby("seed")["error_bound"].min()
            which = r1.loc[r1.groupby("seed")["error_bound"].idxmin(), "bound"].unique()
            mean, _, lo, hi, n = t_interval(best)
            # the minimum of k bounds, each holding with probability 1 - delta_i, holds with probability
            # 1 - sum_i delta_i (a union bound): the claim states that confidence, computed from the rows
            k = int(r1.groupby("seed").size().max())
            total_delta = float(r1.groupby("seed")["delta"].sum().max())
            # a bound at 1 (a kl-inverse's ceiling) on every seed is vacuous, whatever its zero-width interval
            judged = "not supported" if np.isfinite(lo) and lo >= 1.0 else verdict(lo, hi, 1.0, "below")
            claims.append(Claim(
                f"The tightest bound with a confidence level (VC, PAC-Bayes, Occam) is non-vacuous (< 1) for "
                f"rank-1 filters (width {widths[-1]:g})",
                judged,
                f"smallest such error bound {fmt_interval(mean, lo, hi)} over {n} seeds ({', '.join(which)}); "
                f"the minimum of these {k} bounds holds with probability at least {1 - total_delta:.3g} (union "
                f"bound over their deltas); measured test error {interval_text(sel['test_error'])}"))
    row = kendall[kendall["measure"] == "bound_eq_1_n_parameters"]
    if len(row):
        r = row.iloc[0]
        claims.append(Claim(
            "Eq. 1 (N = parameters) ranks the networks by their measured gap (Kendall tau > 0)",
            verdict(r["tau_lo"], r["tau_hi"], 0.0, "above"),
            f"tau across the {int(r['n_networks'])} networks of each seed: {fmt_interval(r['tau_mean'], r['tau_lo'], r['tau_hi'])} "
            f"over {int(r['n_seeds'])} seeds; pooled over all {int(r['n_runs'])} runs tau = {r['tau']:.3f} "
            f"(p = {r['p_value']:.3g})"))
    return claims


def plot_compression(runs, long):
    """Figure: the measured gap and every bound on it against N, one panel per capacity measure.

    Each bound is drawn as the bound it implies on the gap, ``error_bound - train_error`` of its row (for
    Eq. 1 rows this is sqrt(N/m) itself), at the network's N by the panel's measure; points are means over
    seeds, error bars the 95 % t-interval of the measured gap. Log x; symmetric-log y (gaps may be negative).
    """
    from matplotlib.figure import Figure

    measures = [(c, label) for c, label in (("N_params", "N = parameter count"),
                                             ("N_manifold", "N = manifold dimension"),
                                             ("N_hessian", "N = Hessian effective dimension"))
                if c in runs and np.isfinite(runs[c].to_numpy(dtype=float)).any()]
    from matplotlib.ticker import FuncFormatter, NullFormatter

    fig = Figure(figsize=(5.2 * len(measures), 5.4), layout="constrained")
    axes = fig.subplots(1, len(measures), squeeze=False)[0]
    long = long.assign(gap_bound=long["error_bound"] - long["bound_train_error"])
    bounds = list(dict.fromkeys(long["bound"]))
    markers = "os^vD<>pP*hX"
    for ax, (col, label) in zip(axes, measures):
        g = runs.groupby(GROUP, sort=False)
        x = g[col].mean().to_numpy()
        stats = [t_interval(v) for _, v in g["gap"]]
        mean = np.array([s[0] for s in stats])
        lo = np.array([s[2] if np.isfinite(s[2]) else s[0] for s in stats])
        hi = np.array([s[3] if np.isfinite(s[3]) else s[0] for s in stats])
        order = np.argsort(x)
        for i, b in enumerate(bounds):
            gb_ = long[long["bound"] == b].groupby(GROUP, sort=False)["gap_bound"].mean()
            gb_ = gb_.reindex(g[col].mean().index).to_numpy()
            ax.plot(x[order], gb_[order], marker=markers[i % len(markers)], lw=1, ms=4, alpha=0.8, label=b)
        ax.errorbar(x[order], mean[order], yerr=[mean[order] - lo[order], hi[order] - mean[order]], fmt="ko-",
                    lw=2, ms=6, capsize=3, label="measured gap (test - train error)", zorder=5)
        for xi, yi, name in zip(x, mean, [f"{k[2]}, w={k[3]:g}" for k in g[col].mean().index]):
            ax.annotate(name, (xi, yi), fontsize=7, xytext=(3, -10), textcoords="offset points")
        ax.margins(x=0.12)  # room for the labels of the outermost networks
        ax.axhline(1.0, color="grey", ls="--", lw=1)
        ax.set_xscale("log")
        finite = x[np.isfinite(x) & (x > 0)]
        if finite.size and finite.max() / finite.min() >= 10:
            ax.xaxis.set_minor_formatter(NullFormatter())
        else:  # less than a decade: label the minor ticks plainly
            ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:.0f}" if v >= 100 else f"{v:.3g}"))
            ax.tick_params(axis="x", which="minor", labelrotation=45, labelsize=7)
        ax.set_yscale("symlog", linthresh=1e-2)
        ax.set_xlabel(label)
        ax.set_ylabel("gap, and the bound on it")
        ax.set_title(label)
    return legend_below(fig, axes[0], "Measured gap and bounds against the capacity N (points: means over seeds)")


# ------------------------------------------------------------------------------------------------------
# the experiment
# ------------------------------------------------------------------------------------------------------

def grid_cells(data="digits", grid=None, *, quick=False, config=None):
    """The cells of :func:`compression_cell` over ``grid`` (e.g. ``{"rank": [None, 1], "seed": [0, 1]}``)
    and the ``key_extra`` of their sweep (:func:`genbound.experiments.cells.make_cells`).

    Every parameter not in ``grid`` comes from ``config`` (default: :meth:`CompressionConfig.for_data` of
    ``data``, the quick setting with ``quick``): its first rank and width, seed 0, the training and report
    settings.
    """
    config = check_config(config, CompressionConfig, quick, data_spec(data))
    return make_cells(compression_cell, config, data, grid, CELL_VERSION, seed=0, rank=config.ranks[0],
                      width=config.widths[0], network=config.network or default_network(data_spec(data)))


DESCRIPTION = (
    "Lee & Lee's Eq. 1 bounds the generalization gap by sqrt(N/m), N the effective capacity, and rank-1 CP "
    "filters lower N. A family of networks (full filters and CP rank R, at several widths) is trained by SGD "
    "from each seed; each trained network is measured by `genbound.bounds.report`: Eq. 1 with N by every "
    "capacity method (parameter count, dimension of the reachable weights, and outside quick mode the Hessian "
    "effective dimension), VC bounds, PAC-Bayes bounds with the prior centred at the initialization (bounding "
    "a Gibbs classifier around the network) and an Occam bound on a quantized copy. Beyond the paper, Kendall's "
    "tau between each capacity measure or bound and the measured gap across the family says whether the "
    "measure ranks the networks the way their gaps do (Jiang et al. 2019).")


def compression_experiment(data="digits", *, seeds=5, quick=False, out=None, backend="local", scheduler=None,
                           workers=None, progress=True, config=None):
    """Experiment 1: compression (CP rank, width) against the capacity N, the bounds and the measured gap.

    One sweep cell per (rank, width, seed) (:func:`compression_cell`): train, then
    :func:`genbound.bounds.report`. Statistics over seeds are 95 % Student-t intervals
    (:func:`seed_summary`); claims are judged by :func:`verdict` on them.

    Parameters
    ----------
    data : {"digits", "mnist-subset"} or path
        Data set (:func:`genbound.experiments.load_data`); a folder of MNIST IDX files for full MNIST.
    seeds : int or list of int
        Training seeds (an int k: 0..k-1). Default 5.
    quick : bool
        Use :meth:`CompressionConfig.quick` when ``config`` is None; otherwise the default is the data's full
        run (:meth:`CompressionConfig.for_data`: ``CompressionConfig()`` on digits, :meth:`CompressionConfig.mnist`
        on 28x28 images).
    out : str or path, optional
        Folder of the sweep's cell records (resumable); None: a temporary folder.
    backend, scheduler, workers :
        Passed to :func:`genbound.experiments.sweep`.
    progress : bool
        tqdm bar over cells.
    config : CompressionConfig, optional

    Returns
    -------
    ExperimentResult
        Tables ``runs`` (one row per network and seed: errors, gap, N by each method, sqrt(N/m), every bound's
        value as ``bound_<name>``), ``bounds`` (one row per network, seed and bound), ``summary`` (over seeds),
        ``kendall`` (:func:`kendall_table`); figure ``gap_vs_capacity`` (:func:`plot_compression`); claims.

    References
    ----------
    Lee & Lee, Eq. 1; Jiang et al., "Fantastic generalization measures and where to find them", 2019.
    """
    setting = setting_label(config, quick, data)
    config, seeds, spec = experiment_arguments(config, CompressionConfig, quick, seeds, data, backend, scheduler,
                                               workers)
    cells, key_extra = grid_cells(spec, {"width": list(config.widths), "rank": list(config.ranks), "seed": seeds},
                                  config=config)
    network = cells[0]["network"]
    long = run_cells(compression_cell, cells, out=out, key_extra=key_extra, backend=backend, scheduler=scheduler,
                     workers=workers, progress=progress)
    long = long.drop(columns=["report", "status"]).assign(data=data_label(spec))
    runs = _runs_table(long)
    values = ["train_error", "test_error", "gap", "N_params", "N_manifold", "N_hessian", "eq1_params",
              "eq1_manifold", "eq1_hessian"] + [c for c in runs if c.startswith("bound_")]
    summary = seed_summary(runs, GROUP, values)
    measures = ["N_params", "N_manifold", "N_hessian"] + [c for c in runs if c.startswith("bound_")]
    kendall = kendall_table(runs, measures)
    figure = plot_compression(runs, long)
    return ExperimentResult(
        name="compression", title=f"Experiment 1: compression and the bound ({data_label(spec)} data, {network} network)",
        description=DESCRIPTION + " " + _setting_text(config, network, int(runs["m"].iloc[0])),
        tables={"runs": runs, "summary": summary, "bounds": long, "kendall": kendall},
        figures={"gap_vs_capacity": figure}, claims=compression_claims(runs, long, kendall),
        config={**config_dict(config), "network": network, "data": spec, "seeds": seeds, "quick": bool(quick),
                "setting": setting, "data_fingerprint": key_extra["data_fingerprint"], "backend": backend})


def _setting_text(config, network, m):
    """The run's training and measurement settings, in one sentence of the report."""
    r = config.report
    hessian = ("no Hessian effective dimension" if not r.hessian else
               f"Hessian effective dimension from {r.hessian_k or 'the default number of'} Lanczos eigenvalues of "
               + (f"the loss on a fixed sample of {config.hessian_examples} of the {m} training examples"
                  if config.hessian_examples is not None and config.hessian_examples < m else
                  f"the loss on all {m} training examples"))
    pac = (f"PAC-Bayes posterior fitted in {r.max_iter} steps, Gibbs error from {r.n_samples} draws" if r.pac_bayes
           else "no PAC-Bayes rows")
    return (f"This run: the {network} network, SGD for {config.epochs} epochs (batch {config.batch_size}, lr "
            f"{config.lr:g}, momentum {config.momentum:g}) on {m} training examples; {hessian}; {pac}.")
