"""Per-batch loss landscapes: how the landscape of each mini-batch differs from the full one, and whether a
point is stationary for every batch or only for the full training loss.

Lee & Lee ask whether "the landscape changes per batch, and iterated updates reach a minimum common to all
batch landscapes". For a partition of the training set into batches b (sizes n_b, sum m) the training loss
is the size-weighted mean of the batch losses,

.. math:: L(w) = \\sum_b \\frac{n_b}{m} L_b(w),

so the full landscape is an average of the batch landscapes; the tools here measure each L_b (value,
gradient, curvature) at given weights and judge it against stated thresholds. Following them along a training
run is an experiment: see :mod:`genbound.experiments.landscape`.
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from genbound._checks import check_int, check_model, check_positive, check_vector
from genbound._rng import as_generator, permutation_batches
from genbound.landscape.hessian import lanczos
from genbound.nn.objective import Objective, restored, training_pair

__all__ = ["batch_landscape", "BatchLandscapeConfig", "batch_partition", "gradient_diversity",
           "common_minimum_test", "CommonMinimumResult"]


def batch_partition(data, batch_size, seed=0):
    """The mini-batches of one epoch over the training set: a permutation drawn from ``seed`` cut into
    consecutive chunks of ``batch_size`` (:func:`genbound._rng.permutation_batches`, the convention of
    :meth:`genbound.data.Dataset.batch_indices` and of :func:`genbound.train`'s epochs).

    Parameters
    ----------
    data : Dataset or (x, y)
    batch_size : int >= 1
        The SGD mini-batch size.
    seed : int, numpy.random.Generator or None

    Returns
    -------
    list of numpy.ndarray of int64
        Every training index exactly once; the last batch may be smaller.
    """
    batch_size = check_int(batch_size, "batch_size", 1)
    m = np.asarray(training_pair(data)[1]).shape[0]
    return permutation_batches(m, batch_size, seed)


def _per_sample_diversity(model, x, y):
    """Yin et al.'s diversity sum_i ||g_i||^2 / ||sum_i g_i||^2 (one backward pass per example)."""
    total = np.zeros(model.n_params)
    sq = 0.0
    for i in range(x.shape[0]):
        _, g = model.loss_and_grad(x[i:i + 1], y[i:i + 1], flat=True)
        total += g
        sq += float(g @ g)
    denom = float(total @ total)
    return sq / denom if denom > 0 else float("inf")


def gradient_diversity(model, data):
    """Gradient diversity of the training set at the current weights (Yin et al. 2018), per-sample form.

    .. math:: \\Delta_S(w) = \\frac{\\sum_{i=1}^m \\lVert \\nabla \\ell_i(w) \\rVert^2}
              {\\lVert \\sum_{i=1}^m \\nabla \\ell_i(w) \\rVert^2}

    with l_i the loss of example i alone. It lies in [1/m, inf): 1/m when all gradients are equal, large
    when they cancel (as near a minimum of the full loss). Yin et al. show mini-batch SGD with batch size
    up to about m * Delta_S behaves like full gradient descent per example seen. One backward pass per
    example.

    Parameters
    ----------
    model : genbound.nn.Sequential
    data : Dataset or (x, y)

    Returns
    -------
    float

    References
    ----------
    D. Yin, A. Pananjady, M. Lam, D. Papailiopoulos, K. Ramchandran, P. Bartlett, "Gradient diversity: a key
    ingredient for scalable distributed learning", AISTATS 2018.
    """
    check_model(model)
    return _per_sample_diversity(model, *model.check_xy(*training_pair(data)))


def _extremes(matvec, n, gen, tol, max_iter):
    """Top and minimum Hessian eigenvalues from one Lanczos run (both ends converge first), the number of
    steps, and whether both ends reached the relative residual ``tol`` (or the Krylov space is exhausted)."""
    def both_ends(run):
        theta, s = run.ritz()
        res = run.residual_bounds(s)
        scale = max(np.max(np.abs(theta)), 1e-300)
        return theta, bool(res[-1] <= tol * scale and res[0] <= tol * scale)

    run = lanczos(matvec, gen.standard_normal(n), max_iter, seed=gen, keep_basis=False,
                  stop=lambda r: both_ends(r)[1], check_every=2)
    theta, converged = both_ends(run)
    return float(theta[-1]), float(theta[0]), len(run.alpha), converged or len(run.alpha) >= n


@dataclass(frozen=True)
class BatchLandscapeConfig:
    """What :func:`batch_landscape` measures besides the batch losses and gradients.

    Attributes
    ----------
    hessian : bool
        Add the largest and smallest eigenvalue of every batch Hessian (columns ``top_eig``, ``min_eig``,
        ``eig_steps``, ``eig_converged``; one Lanczos run per batch gives both ends). Default False.
    full_hessian : bool or None
        Also the extreme eigenvalues of the full-data Hessian (``attrs`` ``full_top_eig``, ``full_min_eig``);
        None (default): the same as ``hessian``.
    per_sample : bool
        Compute Yin et al.'s per-sample gradient diversity (m backward passes of one example). Default True.
    eig_tol : float > 0
        Lanczos residual tolerance, relative to the largest |Ritz value|. Default 1e-3.
    eig_max_iter : int >= 1
        Lanczos step limit per eigenvalue run. Default 150.
    eig_seed : int or None
        Seed of the Lanczos start vectors; None (default): the ``seed`` of the call (so ``seed=0`` gives
        ``eig_seed=0``).
    """

    hessian: bool = False
    full_hessian: bool | None = None
    per_sample: bool = True
    eig_tol: float = 1e-3
    eig_max_iter: int = 150
    eig_seed: int | None = None

    def __post_init__(self):
        for name in ("hessian", "per_sample"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise TypeError(f"{name}: expected a bool, got {getattr(self, name)!r}")
        if self.full_hessian is not None and not isinstance(self.full_hessian, (bool, np.bool_)):
            raise TypeError(f"full_hessian: expected a bool or None, got {self.full_hessian!r}")
        check_positive(self.eig_tol, "eig_tol")
        check_int(self.eig_max_iter, "eig_max_iter", 1)
        if self.eig_seed is not None:
            check_int(self.eig_seed, "eig_seed", 0)

    @property
    def measures_full_hessian(self):
        """Whether the full-data extreme eigenvalues are measured."""
        return self.hessian if self.full_hessian is None else bool(self.full_hessian)


def _check_config(config, default=BatchLandscapeConfig()):
    if config is None:
        return default
    if not isinstance(config, BatchLandscapeConfig):
        raise TypeError(f"config: expected a BatchLandscapeConfig, got {type(config).__name__}")
    return config


def _check_partition(batches, m):
    """``batches`` as int64 index arrays forming a partition of range(m): each a non-empty 1-d array of
    integers in [0, m), every index exactly once (negative, float or repeated indices are refused)."""
    from genbound._checks import as_array

    if isinstance(batches, (str, bytes)) or not hasattr(batches, "__iter__"):
        raise TypeError(f"batches: expected a list of index arrays, got {type(batches).__name__}")
    out = []
    for b, idx in enumerate(batches):
        arr = as_array(idx, f"batches[{b}]")
        if arr.size == 0:
            raise ValueError(f"batches[{b}]: expected a non-empty 1-d array of indices, got an empty batch")
        if arr.dtype.kind not in "iu":
            raise TypeError(f"batches[{b}]: expected integer indices, got dtype {arr.dtype}")
        if arr.ndim != 1 or arr.size == 0:
            raise ValueError(f"batches[{b}]: expected a non-empty 1-d array of indices, got shape {arr.shape}")
        if arr.min() < 0 or arr.max() >= m:
            raise ValueError(f"batches[{b}]: expected indices in [0, {m}), got values in [{arr.min()}, {arr.max()}]")
        out.append(arr.astype(np.int64))
    if not out or sum(b.size for b in out) != m or np.unique(np.concatenate(out)).size != m:
        raise ValueError(f"batches: expected a partition of range({m}) (every example exactly once)")
    return out


def batch_landscape(model, data, batch_size=64, seed=0, config=None, *, batches=None):
    """The landscape of every mini-batch of one epoch at the model's current weights.

    For each batch b of :func:`batch_partition` ``(data, batch_size, seed)`` (the batches
    ``genbound.train`` uses in its first epoch with the same seed) one row with its size n_b, loss L_b, 0-1
    error, gradient norm ||g_b||, g_b = grad L_b, and the cosine between g_b and the full-data gradient
    g = sum_b (n_b/m) g_b; with ``config.hessian`` also the largest and smallest eigenvalue of the batch
    Hessian (one Lanczos run gives both).

    Summaries go to ``df.attrs`` (plain floats):

    - ``full_loss`` = sum_b (n_b/m) L_b (the training loss), ``full_grad_norm`` = ||g||;
    - ``max_loss`` = max_b L_b, ``min_loss``, ``loss_std`` (population std over batches, unweighted),
      ``loss_range`` = max - min, ``mean_grad_norm``;
    - ``coherence`` (gradient coherence over batches, in [0, 1]; 1 iff all g_b are equal)

      .. math:: C = \\frac{\\lVert \\frac{1}{B}\\sum_b g_b \\rVert^2}{\\frac{1}{B}\\sum_b \\lVert g_b\\rVert^2};

    - ``gradient_diversity``: Yin et al.'s per-sample diversity (see :func:`gradient_diversity`; NaN unless
      ``config.per_sample``), and its per-batch analogue ``batch_gradient_diversity``
      sum_b ||n_b g_b||^2 / ||sum_b n_b g_b||^2 (batch-sum gradients; equals the per-sample one at
      batch size 1), labelled as such because it is not Yin et al.'s quantity;
    - with ``config.measures_full_hessian``: ``full_top_eig`` and ``full_min_eig`` of the full-data Hessian
      (with ``full_eig_steps``, ``full_eig_converged``);
    - ``n_batches``, ``batch_size``, ``seed`` (None for a Generator), ``m``.

    Parameters
    ----------
    model : genbound.nn.Sequential
        Evaluated at its current weights (unchanged).
    data : Dataset or (x, y)
        The training set.
    batch_size : int >= 1
        The SGD mini-batch size.
    seed : int, numpy.random.Generator or None
        The shuffle (as in :meth:`genbound.data.Dataset.batch_indices`), and the Lanczos start vectors unless
        ``config.eig_seed`` is set.
    config : BatchLandscapeConfig, optional
        Hessian, per-sample diversity and Lanczos settings (default ``BatchLandscapeConfig()``).
    batches : list of index arrays, optional
        Use this partition instead of drawing one.

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
    config = _check_config(config)
    x, y = model.check_xy(*training_pair(data))
    m = x.shape[0]
    batch_size = check_int(batch_size, "batch_size", 1)
    batches = batch_partition(data, batch_size, seed) if batches is None else _check_partition(batches, m)
    gen = as_generator(seed if config.eig_seed is None else config.eig_seed, name="eig_seed")
    rows, grads = [], []
    for b, idx in enumerate(batches):
        xb, yb = x[idx], y[idx]
        loss, g = model.loss_and_grad(xb, yb, flat=True)
        row = {"batch": b, "n_b": int(idx.size), "loss": float(loss), "error": model.error(xb, yb),
               "grad_norm": float(np.linalg.norm(g))}
        if config.hessian:
            top, low, steps, conv = _extremes(Objective(model, (xb, yb)).hvp, model.n_params, gen,
                                              config.eig_tol, config.eig_max_iter)
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
        "gradient_diversity": _per_sample_diversity(model, x, y) if config.per_sample else float("nan"),
        "n_batches": len(batches), "batch_size": batch_size,
        "seed": int(seed) if isinstance(seed, numbers.Integral) else None, "m": m,
    }
    if config.measures_full_hessian:
        top, low, steps, conv = _extremes(Objective(model, (x, y)).hvp, model.n_params, gen, config.eig_tol,
                                          config.eig_max_iter)
        attrs.update(full_top_eig=top, full_min_eig=low, full_eig_steps=steps, full_eig_converged=conv)
    df.attrs.update(attrs)
    return df


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
                        *, config=None):
    """Is the current point near-stationary and free of significant negative curvature for every batch's
    landscape, or only for the full one?

    Cross-entropy on separable data has no finite minimizer (the loss keeps falling as weights grow), so
    "minimum" is decided by stated, adjustable thresholds on measured values. A landscape f passes when

    .. math:: \\frac{\\lVert \\nabla f(w) \\rVert}{\\lVert \\nabla f(w_0) \\rVert} \\le \\text{grad\\_tol}
              \\quad\\text{and}\\quad
              \\frac{\\lambda_{\\min}(\\nabla^2 f(w))}{\\lambda_{\\max}(\\nabla^2 f(w))} \\ge -\\text{curvature\\_tol},

    with w_0 = ``reference`` (e.g. the initialization, as a flat vector); without a reference the gradient
    criterion is absolute, ||grad f(w)|| <= grad_tol. It is applied to the full training loss and to each
    L_b of one epoch's batches (:func:`batch_partition` ``(data, batch_size, seed)``). Eigenvalues come from
    Lanczos to a relative residual ``config.eig_tol`` (Ritz values lie inside the spectrum, so an unconverged
    min_eig errs towards passing; ``eig_converged`` in the table says whether it converged).

    Parameters
    ----------
    model : genbound.nn.Sequential (unchanged)
    data : Dataset or (x, y)
    batch_size : int >= 1
        The SGD mini-batch size.
    seed : int, numpy.random.Generator or None
        The shuffle, and the Lanczos start vectors unless ``config.eig_seed`` is set.
    grad_tol : float > 0
    curvature_tol : float >= 0
    reference : array_like (n_params,), optional
        Weights at which the gradient norms are taken as reference.
    config : BatchLandscapeConfig, optional
        Settings of the measurement (default ``BatchLandscapeConfig(hessian=True, per_sample=False)``); the
        test needs the batch and full Hessians, so ``hessian`` and ``full_hessian`` may not be False.

    Returns
    -------
    CommonMinimumResult
        ``table`` (per batch), ``full``, ``verdict``, ``fraction_passing``: the measured values, not only
        the verdict.
    """
    check_model(model)
    grad_tol = check_positive(grad_tol, "grad_tol")
    curvature_tol = check_positive(curvature_tol, "curvature_tol", allow_zero=True)
    config = _check_config(config, BatchLandscapeConfig(hessian=True, per_sample=False))
    if not (config.hessian and config.measures_full_hessian):
        raise ValueError("config: the common-minimum test measures the batch and full Hessians; expected "
                         f"hessian=True and full_hessian True or None, got {config}")
    partition = batch_partition(data, batch_size, seed)
    table = batch_landscape(model, data, batch_size, seed, config, batches=partition)
    attrs = dict(table.attrs)
    full = {"loss": attrs["full_loss"], "grad_norm": attrs["full_grad_norm"], "top_eig": attrs["full_top_eig"],
            "min_eig": attrs["full_min_eig"]}
    if reference is not None:
        reference = check_vector(reference, model.n_params, "reference")
        with restored(model):
            model.set_flat(reference)
            ref = batch_landscape(model, data, batch_size, config=BatchLandscapeConfig(per_sample=False),
                                  batches=partition)
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
