"""Per-batch loss landscapes: how the landscape of each mini-batch differs from the full one, how it shifts
during training, and whether training ends near a point that is stationary for every batch.

Lee & Lee ask whether "the landscape changes per batch, and iterated updates reach a minimum common to all
batch landscapes". For a partition of the training set into batches b (sizes n_b, sum m) the training loss
is the size-weighted mean of the batch losses,

.. math:: L(w) = \\sum_b \\frac{n_b}{m} L_b(w),

so the full landscape is an average of the batch landscapes; the tools here measure each L_b (value,
gradient, curvature) at given weights, along a training run, and against stated thresholds.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from genbound._checks import check_int, check_positive
from genbound._rng import as_generator
from genbound.landscape._common import check_model, check_vector, restored, train_xy
from genbound.landscape.hessian import lanczos

__all__ = ["batch_landscape", "gradient_diversity", "trajectory_landscape", "TrajectoryLandscape",
           "common_minimum_test", "CommonMinimumResult", "sgd_vs_gd_batch_losses", "BatchComparison",
           "batch_partition"]

SUMMARY_KEYS = ("full_loss", "full_grad_norm", "max_loss", "min_loss", "loss_std", "loss_range", "coherence",
                "batch_gradient_diversity", "gradient_diversity", "mean_grad_norm", "n_batches")


def batch_partition(data, batch_size, seed=0, rng=None):
    """The batches of one epoch: ``data.batch_indices(batch_size, seed=seed)`` for a Dataset; for an
    ``(x, y)`` pair the same convention (a permutation from ``seed`` cut into chunks of ``batch_size``)."""
    batch_size = check_int(batch_size, "batch_size", 1)
    if hasattr(data, "batch_indices"):
        return data.batch_indices(batch_size, seed=seed, rng=rng)
    m = np.asarray(train_xy(data)[1]).shape[0]
    order = as_generator(seed, rng).permutation(m)
    return [order[i:i + batch_size] for i in range(0, m, batch_size)]


def _per_sample_grads(model, x, y):
    """Sum of per-sample gradients and sum of their squared norms (one backward pass per sample)."""
    total = np.zeros(model.n_params)
    sq = 0.0
    for i in range(x.shape[0]):
        _, g = model.loss_and_grad(x[i:i + 1], y[i:i + 1], flat=True)
        total += g
        sq += float(g @ g)
    return total, sq


def gradient_diversity(model, data):
    """Gradient diversity of the training set at the current weights (Yin et al. 2018), per-sample form.

    .. math:: \\Delta_S(w) = \\frac{\\sum_{i=1}^m \\lVert \\nabla \\ell_i(w) \\rVert^2}
              {\\lVert \\sum_{i=1}^m \\nabla \\ell_i(w) \\rVert^2}

    with l_i the loss of example i alone. It lies in [1/m, inf): 1/m when all gradients are equal, large
    when they cancel (as near a minimum of the full loss). Yin et al. show mini-batch SGD with batch size
    up to about m * Delta_S behaves like full gradient descent per example seen. One backward pass per
    example.

    References
    ----------
    D. Yin, A. Pananjady, M. Lam, D. Papailiopoulos, K. Ramchandran, P. Bartlett, "Gradient diversity: a key
    ingredient for scalable distributed learning", AISTATS 2018.
    """
    check_model(model)
    x, y = model.check_xy(*train_xy(data))
    total, sq = _per_sample_grads(model, x, y)
    denom = float(total @ total)
    return sq / denom if denom > 0 else float("inf")


def _extremes(matvec, n, gen, tol, maxiter):
    """Top and minimum Hessian eigenvalues from one Lanczos run (both ends converge first)."""
    def stop(run):
        theta, s = run.ritz()
        res = run.residual_bounds(s)
        scale = max(np.max(np.abs(theta)), 1e-300)
        return bool(res[-1] <= tol * scale and res[0] <= tol * scale)

    run = lanczos(matvec, gen.standard_normal(n), maxiter, rng=gen, keep_basis=False, stop=stop, check_every=2)
    theta, s = run.ritz()
    res = run.residual_bounds(s)
    scale = max(np.max(np.abs(theta)), 1e-300)
    converged = bool((res[-1] <= tol * scale and res[0] <= tol * scale) or len(run.alpha) >= n)
    return float(theta[-1]), float(theta[0]), len(run.alpha), converged


def batch_landscape(model, data, batch_size=64, seed=0, hessian=False, *, rng=None, per_sample=True,
                    batches=None, eig_tol=1e-3, eig_maxiter=150, eig_seed=0, full_hessian=None):
    """The landscape of every mini-batch of one epoch at the model's current weights.

    For each batch b of ``data.batch_indices(batch_size, seed=seed)`` (the batches ``genbound.train`` uses
    in its first epoch with the same seed) one row with its size n_b, loss L_b, 0-1 error, gradient norm
    ||g_b||, g_b = grad L_b, and the cosine between g_b and the full-data gradient g = sum_b (n_b/m) g_b; with
    ``hessian=True`` also the largest and smallest eigenvalue of the batch Hessian (one Lanczos run each).

    Summaries go to ``df.attrs`` (plain floats):

    - ``full_loss`` = sum_b (n_b/m) L_b (the training loss), ``full_grad_norm`` = ||g||;
    - ``max_loss`` = max_b L_b, ``min_loss``, ``loss_std`` (population std over batches, unweighted),
      ``loss_range`` = max - min, ``mean_grad_norm``;
    - ``coherence`` (gradient coherence over batches, in [0, 1]; 1 iff all g_b are equal)

      .. math:: C = \\frac{\\lVert \\frac{1}{B}\\sum_b g_b \\rVert^2}{\\frac{1}{B}\\sum_b \\lVert g_b\\rVert^2};

    - ``gradient_diversity``: Yin et al.'s per-sample diversity (see :func:`gradient_diversity`; NaN unless
      ``per_sample``), and its per-batch analogue ``batch_gradient_diversity``
      sum_b ||n_b g_b||^2 / ||sum_b n_b g_b||^2 (batch-sum gradients; equals the per-sample one at
      batch size 1), labelled as such because it is not Yin et al.'s quantity;
    - with ``hessian``: ``full_top_eig`` and ``full_min_eig`` of the full-data Hessian (unless
      ``full_hessian=False``);
    - ``batch_size``, ``seed``, ``m``.

    Parameters
    ----------
    model : genbound.nn.Sequential
        Evaluated at its current weights (unchanged).
    data : Dataset or (x, y)
        The training set.
    batch_size : int >= 1
    seed, rng : the shuffle (as in :meth:`genbound.data.Dataset.batch_indices`)
    hessian : bool
        Add ``top_eig``, ``min_eig`` (and ``eig_steps``, ``eig_converged``) per batch.
    per_sample : bool
        Compute the per-sample gradient diversity (m backward passes of one example).
    batches : list of index arrays, optional
        Use this partition instead of drawing one.
    eig_tol, eig_maxiter, eig_seed : Lanczos residual tolerance (relative to the largest |Ritz value|),
        step limit and start-vector seed of the eigenvalue estimates.
    full_hessian : bool, optional
        Also the full-data extreme eigenvalues (default: same as ``hessian``).

    Returns
    -------
    pandas.DataFrame
        Columns batch, n_b, loss, error, grad_norm, cos_full[, top_eig, min_eig, eig_steps, eig_converged];
        summaries in ``attrs``.

    References
    ----------
    Lee & Lee, "Effect of local search with real data on generalization in deep learning" (the per-batch
    landscape). D. Yin et al., AISTATS 2018 (gradient diversity).
    """
    check_model(model)
    x, y = model.check_xy(*train_xy(data))
    m = x.shape[0]
    batch_size = check_int(batch_size, "batch_size", 1)
    if batches is None:
        batches = batch_partition(data, batch_size, seed=seed, rng=rng)
    else:
        batches = [np.asarray(b, dtype=np.int64) for b in batches]
        if sum(b.size for b in batches) != m or np.unique(np.concatenate(batches)).size != m:
            raise ValueError(f"batches: expected a partition of range({m}) (every example exactly once)")
    eig_tol = check_positive(eig_tol, "eig_tol")
    eig_maxiter = check_int(eig_maxiter, "eig_maxiter", 1)
    full_hessian = hessian if full_hessian is None else bool(full_hessian)
    gen = as_generator(eig_seed, name="eig_seed")
    rows, grads = [], []
    for b, idx in enumerate(batches):
        xb, yb = x[idx], y[idx]
        loss, g = model.loss_and_grad(xb, yb, flat=True)
        err = model.error(xb, yb)
        row = {"batch": b, "n_b": int(idx.size), "loss": float(loss), "error": err,
               "grad_norm": float(np.linalg.norm(g))}
        if hessian:
            top, low, steps, conv = _extremes(lambda v: model.hvp(xb, yb, v), model.n_params, gen, eig_tol,
                                              eig_maxiter)
            row.update(top_eig=top, min_eig=low, eig_steps=steps, eig_converged=conv)
        rows.append(row)
        grads.append(g)
    df = pd.DataFrame(rows)
    sizes = df["n_b"].to_numpy(dtype=np.float64)
    gmat = np.array(grads)
    full_g = (sizes / m) @ gmat
    full_norm = float(np.linalg.norm(full_g))
    norms = df["grad_norm"].to_numpy()
    df.insert(df.columns.get_loc("grad_norm") + 1, "cos_full",
              (gmat @ full_g) / np.maximum(norms * full_norm, 1e-300))
    losses = df["loss"].to_numpy()
    mean_g = gmat.mean(axis=0)
    mean_sq = float(np.mean(norms ** 2))
    sum_g = sizes @ gmat
    attrs = {
        "full_loss": float(sizes @ losses / m),
        "full_grad_norm": full_norm,
        "max_loss": float(losses.max()),
        "min_loss": float(losses.min()),
        "loss_std": float(losses.std()),
        "loss_range": float(losses.max() - losses.min()),
        "mean_grad_norm": float(norms.mean()),
        "coherence": float(mean_g @ mean_g / mean_sq) if mean_sq > 0 else 1.0,
        "batch_gradient_diversity": float(np.sum((sizes * norms) ** 2) / (sum_g @ sum_g))
        if sum_g @ sum_g > 0 else float("inf"),
        "gradient_diversity": float("nan"),
        "n_batches": len(batches), "batch_size": batch_size, "seed": seed if isinstance(seed, int) else None,
        "m": m,
    }
    if per_sample:
        total, sq = _per_sample_grads(model, x, y)
        attrs["gradient_diversity"] = sq / float(total @ total) if total @ total > 0 else float("inf")
    if full_hessian:
        def full_hvp(v):
            out = np.zeros(model.n_params)
            for idx in batches:
                out += (idx.size / m) * model.hvp(x[idx], y[idx], v)
            return out

        top, low, steps, conv = _extremes(full_hvp, model.n_params, gen, eig_tol, eig_maxiter)
        attrs.update(full_top_eig=top, full_min_eig=low, full_eig_steps=steps, full_eig_converged=conv)
    df.attrs.update(attrs)
    return df


# --------------------------------------------------------------------------------------------------------
# Along a training run
# --------------------------------------------------------------------------------------------------------


@dataclass
class TrajectoryLandscape:
    """Per-batch landscapes measured along a training run.

    Attributes
    ----------
    batches : pandas.DataFrame
        One row per (checkpoint, batch): ``epoch``, ``step`` and the columns of :func:`batch_landscape`.
    summary : pandas.DataFrame
        One row per checkpoint: ``epoch``, ``step``, train/test loss and error, and the summaries of
        :func:`batch_landscape` (full_loss, max_loss, loss_std, loss_range, coherence, diversities, ...).
    history : pandas.DataFrame
        The training history of :func:`genbound.train`.
    """

    batches: pd.DataFrame
    summary: pd.DataFrame
    history: pd.DataFrame


def trajectory_landscape(model, data, epochs=30, batch_size=64, optimizer=None, seed=0, every=1, *,
                         hessian=False, per_sample=True, landscape_batch_size=None, landscape_seed=None,
                         eig_tol=1e-3, eig_maxiter=150):
    """Train ``model`` (in place, with :func:`genbound.train`) and measure the per-batch landscape at
    checkpoints: at initialization, every ``every`` epochs, and at the end.

    The landscape is measured on one fixed partition of the training set,
    ``data.batch_indices(landscape_batch_size, seed=landscape_seed)``; with the defaults (same batch size,
    ``landscape_seed = seed``) these are exactly the batches of the first training epoch, so the same
    functions L_b are followed through the run. Shifting landscapes show as the per-batch losses and
    gradient directions moving relative to each other; convergence to a common minimum as max_b L_b and all
    ||g_b|| falling together (and ``coherence`` staying high) rather than the batch gradients cancelling.

    Parameters
    ----------
    model : genbound.nn.Sequential (trained in place)
    data : Dataset
    epochs, batch_size, optimizer, seed : as in :func:`genbound.train` (default optimizer SGD(lr=0.05))
    every : int >= 1
        Checkpoint spacing in epochs.
    hessian, per_sample, eig_tol, eig_maxiter : see :func:`batch_landscape`
    landscape_batch_size : int, optional (default ``batch_size``)
    landscape_seed : int, optional (default ``seed``)

    Returns
    -------
    TrajectoryLandscape
        ``batches`` (long table with ``epoch``, ``step``, ``batch``), ``summary`` (one row per checkpoint),
        ``history``.
    """
    from genbound.nn.optim import SGD
    from genbound.nn.train import train

    check_model(model)
    epochs = check_int(epochs, "epochs", 1)
    batch_size = check_int(batch_size, "batch_size", 1)
    every = check_int(every, "every", 1)
    lb = batch_size if landscape_batch_size is None else check_int(landscape_batch_size, "landscape_batch_size", 1)
    ls = seed if landscape_seed is None else landscape_seed
    optimizer = SGD(lr=0.05) if optimizer is None else optimizer
    partition = batch_partition(data, lb, seed=ls)
    tables, summary = [], []

    def callback(mdl, row):
        epoch = row["epoch"]
        if float(epoch).is_integer() and (int(epoch) % every == 0 or int(epoch) == epochs):
            df = batch_landscape(mdl, data, lb, hessian=hessian, per_sample=per_sample, batches=partition,
                                 eig_tol=eig_tol, eig_maxiter=eig_maxiter)
            df.insert(0, "step", row["step"])
            df.insert(0, "epoch", int(epoch))
            tables.append(pd.DataFrame(df))
            summary.append({"epoch": int(epoch), "step": row["step"], "train_loss": row["train_loss"],
                            "train_error": row["train_error"], "test_loss": row["test_loss"],
                            "test_error": row["test_error"],
                            **{k: v for k, v in df.attrs.items() if k not in ("batch_size", "seed", "m")}})

    history = train(model, data, epochs=epochs, batch_size=batch_size, optimizer=optimizer, seed=seed,
                    progress=False, callback=callback)
    batches = pd.concat(tables, ignore_index=True)
    batches.attrs = {}
    return TrajectoryLandscape(batches=batches, summary=pd.DataFrame(summary), history=history)


# --------------------------------------------------------------------------------------------------------
# A minimum common to all batches?
# --------------------------------------------------------------------------------------------------------


@dataclass
class CommonMinimumResult:
    """Outcome of :func:`common_minimum_test`.

    Attributes
    ----------
    table : pandas.DataFrame
        Per batch: the columns of :func:`batch_landscape` with the Hessian, plus ``ref_grad_norm``,
        ``grad_ratio`` (||g_b(w)|| / ||g_b(reference)||, or ||g_b(w)|| when no reference),
        ``curvature_ratio`` (min_eig / top_eig), ``stationary``, ``no_negative_curvature``, ``passes``.
    full : dict
        The same measurements for the full training loss.
    verdict : str
        "common minimum" (the full loss and every batch pass), "full-data minimum only" (the full loss passes,
        some batch does not), or "not a minimum" (the full loss fails).
    fraction_passing : float
        Fraction of batches that pass.
    grad_tol, curvature_tol : float
        The thresholds used.
    relative_to : str
        "reference" or "absolute".
    """

    table: pd.DataFrame
    full: dict
    verdict: str
    fraction_passing: float
    grad_tol: float
    curvature_tol: float
    relative_to: str
    info: dict = field(default_factory=dict)

    @property
    def common(self):
        """True when the point passes for the full loss and every batch."""
        return self.verdict == "common minimum"

    def with_thresholds(self, grad_tol=None, curvature_tol=None):
        """The verdict under other thresholds, from the same measurements (nothing is recomputed)."""
        grad_tol = self.grad_tol if grad_tol is None else check_positive(grad_tol, "grad_tol")
        curvature_tol = (self.curvature_tol if curvature_tol is None
                         else check_positive(curvature_tol, "curvature_tol", allow_zero=True))
        return _judge(self.table, self.full, grad_tol, curvature_tol, self.relative_to)


def common_minimum_test(model, data, batch_size=64, seed=0, grad_tol=0.1, curvature_tol=0.05, reference=None,
                        *, eig_tol=1e-3, eig_maxiter=150):
    """Is the current point near-stationary and free of significant negative curvature for every batch's
    landscape, or only for the full one?

    Cross-entropy on separable data has no finite minimizer (the loss keeps falling as weights grow), so
    "minimum" is decided by stated, adjustable thresholds on measured values. A landscape f passes when

    .. math:: \\frac{\\lVert \\nabla f(w) \\rVert}{\\lVert \\nabla f(w_0) \\rVert} \\le \\text{grad\\_tol}
              \\quad\\text{and}\\quad
              \\frac{\\lambda_{\\min}(\\nabla^2 f(w))}{\\lambda_{\\max}(\\nabla^2 f(w))} \\ge -\\text{curvature\\_tol},

    with w_0 = ``reference`` (e.g. the initialization, as a flat vector); without a reference the gradient
    criterion is absolute, ||grad f(w)|| <= grad_tol. It is applied to the full training loss and to each
    L_b of one epoch's batches (``data.batch_indices(batch_size, seed=seed)``). Eigenvalues come from
    Lanczos to a relative residual ``eig_tol`` (Ritz values lie inside the spectrum, so an unconverged
    min_eig errs towards passing; ``eig_converged`` in the table says whether it converged).

    Parameters
    ----------
    model : genbound.nn.Sequential (unchanged)
    data : Dataset or (x, y)
    batch_size : int >= 1
    seed : int, the shuffle
    grad_tol : float > 0
    curvature_tol : float >= 0
    reference : array_like (n_params,), optional
        Weights at which the gradient norms are taken as reference.

    Returns
    -------
    CommonMinimumResult
        ``table`` (per batch), ``full``, ``verdict``, ``fraction_passing``: the measured values, not only
        the verdict.
    """
    check_model(model)
    grad_tol = check_positive(grad_tol, "grad_tol")
    curvature_tol = check_positive(curvature_tol, "curvature_tol", allow_zero=True)
    batch_size = check_int(batch_size, "batch_size", 1)
    partition = batch_partition(data, batch_size, seed=seed)
    table = batch_landscape(model, data, batch_size, hessian=True, per_sample=False, batches=partition,
                            eig_tol=eig_tol, eig_maxiter=eig_maxiter)
    attrs = dict(table.attrs)
    full = {"loss": attrs["full_loss"], "grad_norm": attrs["full_grad_norm"], "top_eig": attrs["full_top_eig"],
            "min_eig": attrs["full_min_eig"]}
    if reference is not None:
        reference = check_vector(reference, model.n_params, "reference")
        with restored(model):
            model.set_flat(reference)
            ref = batch_landscape(model, data, batch_size, per_sample=False, batches=partition)
        table["ref_grad_norm"] = ref["grad_norm"].to_numpy()
        full["ref_grad_norm"] = ref.attrs["full_grad_norm"]
        relative_to = "reference"
    else:
        table["ref_grad_norm"] = 1.0
        full["ref_grad_norm"] = 1.0
        relative_to = "absolute"

    table.attrs = attrs
    return _judge(table, full, grad_tol, curvature_tol, relative_to)


def _ratios(grad_norm, ref, top, low):
    gr = grad_norm / ref if ref > 0 else float("inf")
    cr = low / top if top > 0 else float("-inf")
    return gr, cr


def _judge(table, full, grad_tol, curvature_tol, relative_to):
    """Apply the thresholds to measured values (no model evaluation)."""
    table = table.copy()
    full = dict(full)
    cols = table[["grad_norm", "ref_grad_norm", "top_eig", "min_eig"]].to_numpy()
    gr, cr = zip(*[_ratios(*r) for r in cols])
    table["grad_ratio"] = gr
    table["curvature_ratio"] = cr
    table["stationary"] = table["grad_ratio"] <= grad_tol
    table["no_negative_curvature"] = table["curvature_ratio"] >= -curvature_tol
    table["passes"] = table["stationary"] & table["no_negative_curvature"]
    full["grad_ratio"], full["curvature_ratio"] = _ratios(full["grad_norm"], full["ref_grad_norm"], full["top_eig"],
                                                          full["min_eig"])
    full["stationary"] = bool(full["grad_ratio"] <= grad_tol)
    full["no_negative_curvature"] = bool(full["curvature_ratio"] >= -curvature_tol)
    full["passes"] = full["stationary"] and full["no_negative_curvature"]
    fraction = float(table["passes"].mean())
    if not full["passes"]:
        verdict = "not a minimum"
    elif fraction == 1.0:
        verdict = "common minimum"
    else:
        verdict = "full-data minimum only"
    return CommonMinimumResult(table=table, full=full, verdict=verdict, fraction_passing=fraction, grad_tol=grad_tol,
                               curvature_tol=curvature_tol, relative_to=relative_to)


# --------------------------------------------------------------------------------------------------------
# SGD versus full-batch GD
# --------------------------------------------------------------------------------------------------------


@dataclass
class BatchComparison:
    """Per-batch landscapes at the end of SGD and at points reached by full-batch GD from the same start.

    Attributes
    ----------
    table : pandas.DataFrame
        The per-batch tables of :func:`batch_landscape` at every end point, with a column ``optimizer``
        ("SGD", and "GD" for one GD learning rate or "GD lr=<lr>" for several).
    summary : pandas.DataFrame
        One row per optimizer: lr, epochs, steps, seconds, train/test loss and error, and the
        :func:`batch_landscape` summaries.
    histories : dict of str -> pandas.DataFrame
        Training histories, keyed like ``optimizer``.
    weights : dict of str -> numpy.ndarray
        Start ("init") and end weights (keyed like ``optimizer``) as flat vectors.
    """

    table: pd.DataFrame
    summary: pd.DataFrame
    histories: dict
    weights: dict


def sgd_vs_gd_batch_losses(model, data, batch_size=64, sgd_lr=0.05, sgd_epochs=30, gd_lr=None, gd_max_epochs=None,
                           seed=0, *, match_loss=True, hessian=True, per_sample=True, eig_tol=1e-3,
                           eig_maxiter=150):
    """Train copies of ``model`` by SGD and by full-batch GD from the same start and compare the per-batch
    landscapes at the end points.

    SGD: ``sgd_epochs`` epochs of mini-batches of ``batch_size`` with learning rate ``sgd_lr`` (batch order
    from ``seed``). GD: steps w <- w - lr grad L(w) on the whole training set for each lr in ``gd_lr``
    (default ``sgd_lr``), at most ``gd_max_epochs`` steps (default: as many steps as SGD took), stopping as
    soon as the training loss is at most SGD's final training loss when ``match_loss``, so that all end
    points have comparable training loss. All end points are measured on the same partition
    (``data.batch_indices(batch_size, seed=seed)``, SGD's first-epoch batches).

    Parameters
    ----------
    model : genbound.nn.Sequential
        The starting point (unchanged; copies are trained).
    data : Dataset
    batch_size, sgd_lr, sgd_epochs, gd_max_epochs, seed, match_loss : see above
    gd_lr : float or sequence of float, optional
        One GD learning rate (end point "GD") or several (end points "GD lr=<lr>").
    hessian, per_sample, eig_tol, eig_maxiter : see :func:`batch_landscape`

    Returns
    -------
    BatchComparison
    """
    from genbound.nn.optim import GD, SGD
    from genbound.nn.train import train

    check_model(model)
    batch_size = check_int(batch_size, "batch_size", 1)
    sgd_epochs = check_int(sgd_epochs, "sgd_epochs", 1)
    sgd_lr = check_positive(sgd_lr, "sgd_lr")
    if gd_lr is None:
        gd_lrs = [sgd_lr]
    elif np.ndim(gd_lr) == 0:
        gd_lrs = [check_positive(gd_lr, "gd_lr")]
    else:
        gd_lrs = [check_positive(lr, "gd_lr") for lr in gd_lr]
        if not gd_lrs:
            raise ValueError("gd_lr: expected at least one learning rate")
    gd_names = ["GD"] if len(gd_lrs) == 1 else [f"GD lr={lr:g}" for lr in gd_lrs]
    m = data.m if hasattr(data, "m") else np.asarray(train_xy(data)[1]).shape[0]
    sgd_steps = sgd_epochs * (-(-m // batch_size))
    gd_max_epochs = sgd_steps if gd_max_epochs is None else check_int(gd_max_epochs, "gd_max_epochs", 1)
    partition = batch_partition(data, batch_size, seed=seed)
    weights = {"init": model.get_flat()}
    tables, summary, histories, runs = [], [], {}, []

    sgd_model = model.copy()
    t0 = time.perf_counter()
    histories["SGD"] = train(sgd_model, data, epochs=sgd_epochs, batch_size=batch_size, optimizer=SGD(lr=sgd_lr),
                             seed=seed, progress=False)
    runs.append(("SGD", sgd_model, sgd_lr, time.perf_counter() - t0))
    target = float(histories["SGD"]["train_loss"].iloc[-1])

    for name, lr in zip(gd_names, gd_lrs):
        gd_model = model.copy()
        rows = []

        def gd_callback(mdl, row, rows=rows):
            rows.append(dict(row))
            return match_loss and row["epoch"] > 0 and row["train_loss"] <= target

        t0 = time.perf_counter()
        train(gd_model, data, epochs=gd_max_epochs, batch_size=batch_size, optimizer=GD(lr=lr), seed=seed,
              progress=False, callback=gd_callback)
        histories[name] = pd.DataFrame(rows, columns=list(histories["SGD"].columns))
        runs.append((name, gd_model, lr, time.perf_counter() - t0))

    for name, mdl, lr, secs in runs:
        weights[name] = mdl.get_flat()
        df = batch_landscape(mdl, data, batch_size, hessian=hessian, per_sample=per_sample, batches=partition,
                             eig_tol=eig_tol, eig_maxiter=eig_maxiter)
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
