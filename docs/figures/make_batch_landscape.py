"""Per-batch loss landscapes on digits: the end of SGD versus a point of equal training loss reached by full-batch
gradient descent from the same initialization.

Writes, next to this script (or to --out):
  batch_landscape.png          the figure
  batch_landscape.csv          per-batch tables at both end points (one row per optimizer and batch)
  batch_landscape_summary.csv  one row per optimizer: training, summaries, verdict of the common-minimum test
  batch_landscape_trajectory.csv  per-checkpoint summaries along the runs
  batch_landscape_slices.csv   1-D filter-normalized slices (full and per-batch losses) at the end points

Run from the repository root:  python docs/figures/make_batch_landscape.py  [--quick | --replot]
(about 10-30 minutes on a loaded 2-core machine; --quick is a smoke test on 300 images; --replot redraws
the PNG from the CSVs).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import genbound as gb  # noqa: E402
from genbound import landscape as L  # noqa: E402

SGD_LR, GD_LRS, BATCH = 0.05, (0.05, 0.2), 64
NAMES = ["SGD"] + [f"GD lr={lr:g}" for lr in GD_LRS]
COLORS = dict(zip(NAMES, ["tab:blue", "tab:orange", "tab:green"]))
MARKERS = dict(zip(NAMES, ["o", "s", "^"]))
GRAD_TOL, CURVATURE_TOL = 0.1, 0.05


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    parser.add_argument("--quick", action="store_true", help="smoke test on a subset, few epochs")
    parser.add_argument("--replot", action="store_true", help="redraw the figure from the CSVs in --out")
    args = parser.parse_args()
    t_start = time.perf_counter()
    if args.replot:
        read = {k: pd.read_csv(args.out / f"batch_landscape{k}.csv") for k in ("", "_summary", "_trajectory",
                                                                                 "_slices")}
        slices = {name: df.drop(columns="optimizer").reset_index(drop=True)
                  for name, df in read["_slices"].groupby("optimizer")}
        m = int(read["_summary"]["m"].iloc[0])
        figure(read[""], read["_summary"], read["_trajectory"], slices, args.out / "batch_landscape.png", m)
        return

    data = gb.data.load_digits(seed=0)
    sgd_epochs = 30
    if args.quick:
        data = data.subset(np.arange(300))
        sgd_epochs = 3
    init = gb.nn.reference_cnn("digits", rank=1, seed=0)
    w_init = init.get_flat()
    m = data.m
    sgd_steps = sgd_epochs * -(-m // BATCH)
    print(f"digits m={m}, rank-1 'digits' CNN with {init.n_params} parameters; SGD lr={SGD_LR} batch={BATCH} for "
          f"{sgd_epochs} epochs ({sgd_steps} steps); GD with lr in {GD_LRS} until its training loss matches SGD's")

    # 1. train all from the same start; per-batch tables on SGD's first-epoch batches
    t0 = time.perf_counter()
    cmp = L.sgd_vs_gd_batch_losses(init, data, batch_size=BATCH, sgd_lr=SGD_LR, sgd_epochs=sgd_epochs,
                                   gd_lr=GD_LRS, gd_max_epochs=4 * sgd_steps, seed=0, hessian=False)
    print(f"training and per-batch tables: {time.perf_counter() - t0:.0f} s")
    print(cmp.summary[["optimizer", "steps", "train_loss", "train_error", "test_error", "max_loss", "loss_std",
                       "coherence", "gradient_diversity"]].to_string(index=False))

    # 2. curvature and the common-minimum test at every end point (reference: the initialization)
    model = init.copy()
    tables, extra = [], {}
    for name in NAMES:
        model.set_flat(cmp.weights[name])
        t0 = time.perf_counter()
        cm = L.common_minimum_test(model, data, batch_size=BATCH, seed=0, grad_tol=GRAD_TOL,
                                   curvature_tol=CURVATURE_TOL, reference=w_init)
        secs = time.perf_counter() - t0
        cols = ["batch", "top_eig", "min_eig", "eig_steps", "eig_converged", "ref_grad_norm", "grad_ratio",
                "curvature_ratio", "stationary", "no_negative_curvature", "passes"]
        tables.append(cm.table[cols].assign(optimizer=name))
        t0 = time.perf_counter()
        top = L.top_eigenvalues(model, data=data)
        top_secs = time.perf_counter() - t0
        sharp = L.sharpness(model, data, eps=1e-3)
        extra[name] = {"full_top_eig": cm.full["top_eig"], "full_min_eig": cm.full["min_eig"],
                       "full_grad_ratio": cm.full["grad_ratio"], "full_curvature_ratio": cm.full["curvature_ratio"],
                       "verdict": cm.verdict, "fraction_batches_passing": cm.fraction_passing,
                       "max_batch_grad_ratio": float(cm.table["grad_ratio"].max()),
                       "min_batch_curvature_ratio": float(cm.table["curvature_ratio"].min()),
                       "top_eig_lanczos": top.value, "top_eig_hvps": top.n_hvp, "top_eig_seconds": top_secs,
                       "sharpness_1e-3": sharp.value, "common_minimum_seconds": secs}
        print(f"{name}: verdict '{cm.verdict}' ({cm.fraction_passing:.0%} of batches pass); full lambda_max "
              f"{cm.full['top_eig']:.3f}, lambda_min {cm.full['min_eig']:.4f}; top eigenvalue by Lanczos over "
              f"the whole training set: {top.value:.4f} in {top.n_hvp} HVPs, {top_secs:.1f} s; "
              f"sharpness(1e-3) {sharp.value:.3f}; {secs:.0f} s")
    table = cmp.table.merge(pd.concat(tables, ignore_index=True), on=["optimizer", "batch"])
    summary = cmp.summary.merge(pd.DataFrame([{"optimizer": k, **v} for k, v in extra.items()]), on="optimizer")

    # 3. the same batches followed along every run (re-run deterministically: same init, same seed)
    t0 = time.perf_counter()
    steps = cmp.summary.set_index("optimizer")["steps"]
    plan = [("SGD", gb.nn.SGD(lr=SGD_LR), sgd_epochs)]
    plan += [(name, gb.nn.GD(lr=lr), int(steps[name])) for name, lr in zip(NAMES[1:], GD_LRS)]
    runs = {}
    for name, opt, epochs in plan:
        mdl = init.copy()
        runs[name] = L.trajectory_landscape(mdl, data, epochs=epochs, batch_size=BATCH, optimizer=opt, seed=0,
                                            every=max(1, epochs // 15), per_sample=False)
        assert np.array_equal(mdl.get_flat(), cmp.weights[name]), "re-run differs from the compared run"
    traj = pd.concat([r.summary.assign(optimizer=k) for k, r in runs.items()], ignore_index=True)
    print(f"trajectories: {time.perf_counter() - t0:.0f} s")

    # 4. 1-D filter-normalized slices through each end point, per batch
    slices = {}
    for name in NAMES:
        model.set_flat(cmp.weights[name])
        slices[name] = L.slice_1d(model, data, alphas=np.linspace(-0.5, 0.5, 41), per_batch=True,
                                  batch_size=BATCH, seed=0)

    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / "batch_landscape.csv", index=False, float_format="%.6g")
    summary.to_csv(args.out / "batch_landscape_summary.csv", index=False, float_format="%.6g")
    traj.to_csv(args.out / "batch_landscape_trajectory.csv", index=False, float_format="%.6g")
    pd.concat([df.assign(optimizer=k) for k, df in slices.items()], ignore_index=True).to_csv(
        args.out / "batch_landscape_slices.csv", index=False, float_format="%.6g")
    figure(table, summary, traj, slices, args.out / "batch_landscape.png", m)
    print(f"wrote {args.out}/batch_landscape.png and CSVs in {time.perf_counter() - t_start:.0f} s")


def _per_batch(ax, table, summary, column, full_column, label):
    for name in NAMES:
        t = table[table.optimizer == name]
        ax.plot(t["batch"], t[column], MARKERS[name], color=COLORS[name], ms=5, label=label(name))
        ax.axhline(summary.loc[name, full_column], color=COLORS[name], lw=1.2, ls="--")
    ax.set_xlabel(f"batch b (size {BATCH}: SGD's first-epoch batches)")
    lo, hi = ax.get_ylim()
    ax.set_ylim(lo, hi + 0.45 * (hi - lo))  # room for the legend
    ax.legend(fontsize=7, loc="upper left")


def figure(table, summary, traj, slices, path, m):
    fig, axes = plt.subplots(3, 3, figsize=(16, 13))
    s = summary.set_index("optimizer")
    # (a) batch losses, (b) batch gradient norms
    _per_batch(axes[0, 0], table, s, "loss", "full_loss",
               lambda n: f"{n}: L={s.loc[n, 'full_loss']:.3f}, max$_b$ L$_b$={s.loc[n, 'max_loss']:.3f}, "
                         f"std={s.loc[n, 'loss_std']:.3f}")
    axes[0, 0].set_ylabel("batch loss $L_b$")
    axes[0, 0].set_title("(a) per-batch loss (dashed: full loss)")
    _per_batch(axes[0, 1], table, s, "grad_norm", "full_grad_norm",
               lambda n: f"{n}: ||g||={s.loc[n, 'full_grad_norm']:.3f}, coherence={s.loc[n, 'coherence']:.3f}, "
                         f"diversity={s.loc[n, 'gradient_diversity']:.2f}")
    axes[0, 1].set_ylabel(r"$\|\nabla L_b\|$")
    axes[0, 1].set_title("(b) per-batch gradient norm (dashed: full gradient)")
    # (c) batch curvature
    ax = axes[0, 2]
    for name in NAMES:
        t = table[table.optimizer == name]
        ax.plot(t["batch"], t["top_eig"], MARKERS[name], color=COLORS[name], ms=5,
                label=rf"{name}: $\lambda_{{max}}(H_b)$; full {s.loc[name, 'full_top_eig']:.1f}")
        ax.plot(t["batch"], -t["min_eig"], MARKERS[name], color=COLORS[name], ms=5, mfc="none",
                label=rf"{name}: $-\lambda_{{min}}(H_b)$; full {-s.loc[name, 'full_min_eig']:.3f}")
        ax.axhline(s.loc[name, "full_top_eig"], color=COLORS[name], lw=1.2, ls="--")
    ax.set_yscale("log")
    ax.set_xlabel("batch b")
    ax.set_ylabel("Hessian eigenvalue of $L_b$")
    ax.set_title("(c) per-batch curvature (dashed: full-data $\\lambda_{max}$)")
    ax.legend(fontsize=6.5, ncol=2, loc="center")
    # (d, e, f) slices
    for ax, name, tag in zip(axes[1], NAMES, "def"):
        L.plot_slice_1d(slices[name], ax=ax, per_batch=True)
        ax.set_yscale("log")
        ax.set_title(f"({tag}) {name} end point: $L_b$ along a filter-normalized direction", fontsize=10)
        ax.set_xlabel(r"$\alpha$ in $L(\theta + \alpha d)$ (thin: $L_b$, black: full)")
    lo = min(ax.get_ylim()[0] for ax in axes[1])
    hi = max(ax.get_ylim()[1] for ax in axes[1])
    for ax in axes[1]:
        ax.set_ylim(lo, hi)
    # (g) along the runs: full loss and batch-loss band
    ax = axes[2, 0]
    for name in NAMES:
        t = traj[traj.optimizer == name]
        ax.plot(t["step"], t["full_loss"], "-", color=COLORS[name], label=f"{name}: full loss")
        ax.fill_between(t["step"], t["min_loss"], t["max_loss"], color=COLORS[name], alpha=0.2,
                        label=f"{name}: min$_b$..max$_b$ $L_b$")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.legend(fontsize=7)
    ax.set_title("(g) along the runs: full loss and the band of batch losses", fontsize=10)
    # (h) coherence along the runs
    ax = axes[2, 1]
    for name in NAMES:
        t = traj[traj.optimizer == name]
        ax.plot(t["step"], t["coherence"], "-", marker=MARKERS[name], ms=3, color=COLORS[name], label=name)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("step")
    ax.set_ylabel(r"coherence $\|\bar g\|^2 / \overline{\|g_b\|^2}$")
    ax.legend(fontsize=8)
    ax.set_title("(h) gradient coherence over the batches along the runs", fontsize=10)
    # (i) the common-minimum test
    ax = axes[2, 2]
    for name in NAMES:
        t = table[table.optimizer == name]
        ax.plot(t["grad_ratio"], t["curvature_ratio"], MARKERS[name], color=COLORS[name], ms=5, alpha=0.7,
                label=f"{name}: {s.loc[name, 'verdict']} ({s.loc[name, 'fraction_batches_passing']:.0%} of batches)")
        ax.plot(s.loc[name, "full_grad_ratio"], s.loc[name, "full_curvature_ratio"], "*", color=COLORS[name],
                ms=16, markeredgecolor="black")
    ax.axvline(GRAD_TOL, color="gray", ls=":")
    ax.axhline(-CURVATURE_TOL, color="gray", ls=":")
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel(r"$\|\nabla L_b(w)\| / \|\nabla L_b(w_0)\|$  (star: full loss)")
    ax.set_ylabel(r"$\lambda_{min} / \lambda_{max}$ of $H_b$")
    ax.legend(fontsize=7, loc="lower left")
    ax.set_title(f"(i) common-minimum test (pass: left of {GRAD_TOL}, above -{CURVATURE_TOL})", fontsize=10)
    parts = [f"{n} ({int(s.loc[n, 'steps'])} steps): train loss {s.loc[n, 'train_loss']:.3f}, "
             f"test error {s.loc[n, 'test_error']:.3f}" for n in NAMES]
    fig.suptitle(f"Digits (m={m}), rank-1 'digits' CNN, same initialization; SGD batch {BATCH}.\n" + "; ".join(parts),
                 fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    main()
