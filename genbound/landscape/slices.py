"""Low-dimensional slices of the loss landscape: filter-normalized random directions (Li et al. 2018), 1-D
and 2-D slices of the full and per-batch losses, linear interpolation between two solutions, contour plots.

Every function that moves the weights puts them back afterwards (also on error).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from genbound._checks import as_float_array, check_bool, check_int, check_model, check_vector
from genbound._rng import as_generator
from genbound.landscape.batches import batch_partition
from genbound.nn.layers import CPConv2d
from genbound.nn.loss import log_softmax
from genbound.nn.objective import restored, training_pair

__all__ = ["random_direction", "slice_1d", "slice_2d", "interpolate", "plot_slice_1d", "plot_slice_2d"]

NORMALIZATIONS = ("filter", "layer", None)

#: Largest number of points of a slice (alphas, or alphas x betas in 2-D): each point is a full evaluation of
#: the training loss, so a larger grid is refused rather than run for days.
MAX_POINTS = 100_000


def _unit_rescale(d, theta, axes):
    """Rescale ``d`` so that its norm over ``axes`` matches that of ``theta`` (zero where theta is zero)."""
    dn = np.sqrt(np.sum(d * d, axis=axes, keepdims=True))
    tn = np.sqrt(np.sum(theta * theta, axis=axes, keepdims=True))
    return d * np.where(dn > 0, tn / np.where(dn > 0, dn, 1.0), 0.0)


def random_direction(model, seed=0, normalization="filter", include_bias=False):
    """A random direction in parameter space, filter-normalized as in Li et al. (2018).

    A Gaussian vector d ~ N(0, I) is drawn for every parameter and, with ``normalization="filter"``,
    rescaled filter by filter so that each filter of the direction has the norm of the same filter of the
    weights,

    .. math:: d_{f} \\leftarrow \\frac{d_{f}}{\\lVert d_{f} \\rVert} \\lVert \\theta_{f} \\rVert,

    which removes the scale invariance of ReLU networks from the plots. A filter is

    - :class:`~genbound.nn.Conv2d`: one output filter ``weight[o]`` (C, kh, kw);
    - :class:`~genbound.nn.Dense`: one output row ``weight[o]`` (a neuron's incoming weights);
    - :class:`~genbound.nn.CPConv2d`: one factor row, ``p[o, r]``, ``q[o, r]`` and ``t[o, r]`` each rescaled to
      the norm of the corresponding factor row. This is a choice: the CP parametrization has its own scale
      invariance (p, q, t -> a p, b q, t / (a b)), and per-factor normalization makes the direction invariant
      to it, as filter normalization is to the ReLU scaling of whole filters;
    - any other parameter with two or more axes: one slice along the first axis.

    Biases (1-d parameters) get a zero direction unless ``include_bias``; then each bias vector is
    rescaled as a whole to the norm of the bias (so a zero bias, as at initialization, still gets zero).
    ``normalization="layer"`` rescales each parameter tensor as a whole; ``None`` keeps the raw Gaussian.
    The Gaussian draws do not depend on ``include_bias`` or ``normalization``: the same seed gives the same
    weight directions.

    Parameters
    ----------
    model : genbound.nn.Sequential
    seed : int, numpy.random.Generator or None
        Source of the Gaussian draws (a Generator is advanced, so two calls give two directions).
    normalization : {"filter", "layer", None}
    include_bias : bool

    Returns
    -------
    numpy.ndarray (n_params,), float64, in the order of ``model.get_flat()``

    References
    ----------
    H. Li, Z. Xu, G. Taylor, C. Studer, T. Goldstein, "Visualizing the loss landscape of neural nets",
    NeurIPS 2018.
    """
    check_model(model)
    include_bias = check_bool(include_bias, "include_bias")
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization: expected one of {NORMALIZATIONS}, got {normalization!r}")
    gen = as_generator(seed)
    out = {}
    for i, layer in enumerate(model.layers):
        for name in layer.param_shapes():
            key = f"{i}.{name}"
            theta = np.asarray(model.params[key], dtype=np.float64)
            d = gen.standard_normal(theta.shape)
            if theta.ndim <= 1:
                if not include_bias:
                    d = np.zeros_like(d)
                elif normalization is not None:
                    d = _unit_rescale(d, theta, None)
            elif normalization == "layer":
                d = _unit_rescale(d, theta, None)
            elif normalization == "filter":
                if isinstance(layer, CPConv2d):
                    d = _unit_rescale(d, theta, tuple(range(2, theta.ndim)))
                else:
                    d = _unit_rescale(d, theta, tuple(range(1, theta.ndim)))
            out[key] = d
    return model.flatten(out, name="direction").astype(np.float64)


# --------------------------------------------------------------------------------------------------------
# evaluating losses on a grid
# --------------------------------------------------------------------------------------------------------


def _sample_losses(model, x, y, chunk_size):
    """Per-example cross-entropy and correctness at the current weights, ``chunk_size`` examples at a time."""
    losses = np.empty(x.shape[0])
    wrong = np.empty(x.shape[0], dtype=bool)
    for s in range(0, x.shape[0], chunk_size):
        logits = model.forward_with_caches(x[s:s + chunk_size])[0]
        yb = y[s:s + chunk_size]
        logp = log_softmax(logits)
        losses[s:s + chunk_size] = -logp[np.arange(yb.size), yb]
        wrong[s:s + chunk_size] = logits.argmax(axis=1) != yb
    return losses, wrong


class _Evaluator:
    """Training loss and error (and per-batch losses, test loss and error when asked) at the current weights."""

    def __init__(self, model, data, per_batch, batch_size, seed, chunk_size, test=False):
        self.model = model
        self.x, self.y = model.check_xy(*training_pair(data))
        self.chunk_size = check_int(chunk_size, "chunk_size", 1)
        self.partition = batch_partition(data, batch_size, seed=seed) if per_batch else None
        self.test = None
        if test and hasattr(data, "x_test") and len(data.y_test):
            self.test = model.check_xy(data.x_test, data.y_test)

    def __call__(self):
        with np.errstate(over="ignore", invalid="ignore"):
            losses, wrong = _sample_losses(self.model, self.x, self.y, self.chunk_size)
        if not np.all(np.isfinite(losses)):
            raise ValueError("logits: expected finite values, got NaN or inf at this point of the slice: the "
                             "forward pass overflowed (parameters too large: use smaller alphas or a normalized "
                             "direction)")
        row = {"loss": float(losses.mean()), "error": float(wrong.mean())}
        if self.test is not None:
            tl, tw = _sample_losses(self.model, *self.test, self.chunk_size)
            row.update(test_loss=float(tl.mean()), test_error=float(tw.mean()))
        if self.partition is not None:
            for b, idx in enumerate(self.partition):
                row[f"loss_batch_{b}"] = float(losses[idx].mean())
        return row

    def attrs(self):
        if self.partition is None:
            return {}
        return {"batch_sizes": [int(idx.size) for idx in self.partition]}


def _grid(values, name, default):
    if values is None:
        return default
    arr = as_float_array(values, name).ravel()
    if arr.size == 0:
        raise ValueError(f"{name}: expected at least one value, got an empty array")
    if arr.size > MAX_POINTS:
        raise ValueError(f"{name}: expected at most {MAX_POINTS} points (genbound.landscape.slices.MAX_POINTS), "
                         f"got {arr.size}")
    return arr


def _move(model, w, names):
    """Set the model's weights to ``w``, refusing a point whose weights overflowed to inf or NaN."""
    if not np.all(np.isfinite(w)):
        raise ValueError(f"{names}: the point moves the parameters beyond the float range (inf or NaN); use "
                         "smaller steps or a normalized direction")
    model.set_flat(w)


def slice_1d(model, data, direction=None, alphas=None, per_batch=False, batch_size=64, seed=0, *,
             normalization="filter", include_bias=False, chunk_size=1024):
    """Training loss along a line through the current weights, L(theta + alpha d), for the full training set
    and optionally for every mini-batch of one epoch.

    Parameters
    ----------
    model : genbound.nn.Sequential (weights restored afterwards)
    data : Dataset or (x, y)
    direction : array_like (n_params,), optional
        Default: :func:`random_direction` (``seed``, ``normalization``, ``include_bias``).
    alphas : array_like, default ``numpy.linspace(-1, 1, 41)``
    per_batch : bool
        Add a column ``loss_batch_{b}`` per batch of :func:`~genbound.landscape.batch_partition`
        ``(data, batch_size, seed)``.
    batch_size : int >= 1
        The SGD mini-batch size of the per-batch losses.
    seed : int, numpy.random.Generator or None
        Source of the default direction and of the batches.
    normalization, include_bias : see :func:`random_direction`
    chunk_size : int
        Memory chunk of the loss evaluations (the result does not depend on it).

    Returns
    -------
    pandas.DataFrame
        Columns alpha, loss, error[, loss_batch_0, ...]; ``attrs["batch_sizes"]`` with ``per_batch``.
    """
    check_model(model)
    batch_size = check_int(batch_size, "batch_size", 1)
    if direction is None:
        direction = random_direction(model, seed, normalization, include_bias)
    direction = check_vector(direction, model.n_params, "direction")
    alphas = _grid(alphas, "alphas", np.linspace(-1.0, 1.0, 41))
    ev = _Evaluator(model, data, per_batch, batch_size, seed, chunk_size)
    rows = []
    with restored(model) as theta, np.errstate(over="ignore", invalid="ignore"):
        for a in alphas:
            _move(model, theta + a * direction, "alphas, direction")
            rows.append({"alpha": float(a), **ev()})
    df = pd.DataFrame(rows)
    df.attrs.update(ev.attrs())
    return df


def slice_2d(model, data, d1=None, d2=None, alphas=None, betas=None, per_batch=False, batch_size=64, seed=0, *,
             normalization="filter", include_bias=False, chunk_size=1024):
    """Training loss on a plane through the current weights, L(theta + alpha d1 + beta d2) (Li et al. 2018),
    for the full training set and optionally every mini-batch.

    Parameters
    ----------
    model : genbound.nn.Sequential (weights restored afterwards)
    data : Dataset or (x, y)
    d1, d2 : array_like (n_params,), optional
        Default: two independent :func:`random_direction` draws from ``seed``.
    alphas, betas : array_like, default ``numpy.linspace(-1, 1, 21)``
    per_batch, batch_size, seed, normalization, include_bias, chunk_size : see :func:`slice_1d`

    Returns
    -------
    pandas.DataFrame
        One row per grid point (alpha outer, beta inner): alpha, beta, loss, error[, loss_batch_0, ...].
        Draw it with :func:`plot_slice_2d`.
    """
    check_model(model)
    batch_size = check_int(batch_size, "batch_size", 1)
    gen = as_generator(seed)
    if d1 is None:
        d1 = random_direction(model, gen, normalization, include_bias)
    if d2 is None:
        d2 = random_direction(model, gen, normalization, include_bias)
    d1 = check_vector(d1, model.n_params, "d1")
    d2 = check_vector(d2, model.n_params, "d2")
    alphas = _grid(alphas, "alphas", np.linspace(-1.0, 1.0, 21))
    betas = _grid(betas, "betas", np.linspace(-1.0, 1.0, 21))
    if alphas.size * betas.size > MAX_POINTS:
        raise ValueError(f"alphas, betas: expected at most {MAX_POINTS} grid points "
                         f"(genbound.landscape.slices.MAX_POINTS), got {alphas.size} x {betas.size}")
    ev = _Evaluator(model, data, per_batch, batch_size, seed, chunk_size)
    rows = []
    with restored(model) as theta, np.errstate(over="ignore", invalid="ignore"):
        for a in alphas:
            for b in betas:
                _move(model, theta + a * d1 + b * d2, "alphas, betas, d1, d2")
                rows.append({"alpha": float(a), "beta": float(b), **ev()})
    df = pd.DataFrame(rows)
    df.attrs.update(ev.attrs())
    return df


def interpolate(model, data, theta_a, theta_b, alphas=None, per_batch=False, batch_size=64, seed=0, *,
                chunk_size=1024):
    """Loss and error along the line between two solutions, theta(alpha) = (1 - alpha) theta_a + alpha theta_b.

    alpha = 0 is ``theta_a``, 1 is ``theta_b``; values outside [0, 1] extrapolate. A barrier between two
    minima shows as a bump of the loss inside (0, 1).

    Parameters
    ----------
    model : genbound.nn.Sequential (weights restored afterwards)
    data : Dataset or (x, y)
        The training set (and the test set of a Dataset).
    theta_a, theta_b : array_like (n_params,)
    alphas : array_like, default ``numpy.linspace(-0.25, 1.25, 31)``
    per_batch, batch_size, seed, chunk_size : see :func:`slice_1d`

    Returns
    -------
    pandas.DataFrame
        Columns alpha, loss, error (training set), test_loss, test_error (when ``data`` has a non-empty test
        set)[, loss_batch_0, ...].

    References
    ----------
    I. J. Goodfellow, O. Vinyals, A. M. Saxe, "Qualitatively characterizing neural network optimization
    problems", ICLR 2015.
    """
    check_model(model)
    theta_a = check_vector(theta_a, model.n_params, "theta_a")
    theta_b = check_vector(theta_b, model.n_params, "theta_b")
    batch_size = check_int(batch_size, "batch_size", 1)
    alphas = _grid(alphas, "alphas", np.linspace(-0.25, 1.25, 31))
    ev = _Evaluator(model, data, per_batch, batch_size, seed, chunk_size, test=True)
    rows = []
    with restored(model), np.errstate(over="ignore", invalid="ignore"):
        for a in alphas:
            _move(model, (1.0 - a) * theta_a + a * theta_b, "alphas, theta_a, theta_b")
            rows.append({"alpha": float(a), **ev()})
    df = pd.DataFrame(rows)
    df.attrs.update(ev.attrs())
    return df


# --------------------------------------------------------------------------------------------------------
# plots (matplotlib imported lazily)
# --------------------------------------------------------------------------------------------------------


def _batch_columns(df):
    cols = [c for c in df.columns if c.startswith("loss_batch_")]
    if not cols:
        raise ValueError("df: per_batch=True needs the loss_batch_* columns (compute the slice with per_batch=True)")
    return sorted(cols, key=lambda c: int(c.rsplit("_", 1)[1]))


def _check_table(df, columns, maker):
    """Refuse anything but a DataFrame with ``columns`` (TypeError/ValueError naming ``df``)."""
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"df: expected a pandas.DataFrame from {maker}, got {type(df).__name__}")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"df: expected the columns of {maker}, missing {missing}")


def plot_slice_1d(df, ax=None, per_batch=False, column="loss"):
    """Plot a :func:`slice_1d` or :func:`interpolate` table: the full loss (black) and, with ``per_batch``,
    every batch loss (thin colored lines). Returns the matplotlib Axes."""
    import matplotlib.pyplot as plt

    _check_table(df, ("alpha", column), "slice_1d or interpolate")
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.5))
    if per_batch:
        cols = _batch_columns(df)
        colors = plt.get_cmap("viridis")(np.linspace(0, 1, len(cols)))
        for c, color in zip(cols, colors):
            ax.plot(df["alpha"], df[c], color=color, lw=0.7, alpha=0.7)
    ax.plot(df["alpha"], df[column], color="black", lw=2, label="full training set")
    ax.set_xlabel("alpha")
    ax.set_ylabel(column)
    return ax


def plot_slice_2d(df, ax=None, per_batch=False, levels=15, column="loss", cmap="viridis"):
    """Contour plot of a :func:`slice_2d` table.

    The full-data loss is drawn as filled contours with the minimum of the grid marked (white star). With
    ``per_batch``, every batch's landscape is drawn on the same plane as contour lines at two levels (its
    own grid minimum plus 10 % and 30 % of its range), one color per batch, with its grid minimum marked (x):
    where the batch minima sit relative to each other and to the full minimum shows how far the batch
    landscapes disagree.

    Parameters
    ----------
    df : pandas.DataFrame from :func:`slice_2d`
    ax : matplotlib Axes, optional
    per_batch : bool
    levels : int or sequence, levels of the filled contours
    column : str, the column to draw as filled contours
    cmap : str

    Returns
    -------
    matplotlib.axes.Axes
    """
    import matplotlib.pyplot as plt

    _check_table(df, ("alpha", "beta", column), "slice_2d")
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 4.5))
    alphas = np.unique(df["alpha"].to_numpy())
    betas = np.unique(df["beta"].to_numpy())
    if alphas.size < 2 or betas.size < 2:
        raise ValueError("df: expected at least a 2 x 2 grid of (alpha, beta)")

    def grid(col):
        return df.pivot_table(index="beta", columns="alpha", values=col).to_numpy()

    A, B = np.meshgrid(alphas, betas)
    z = grid(column)
    cs = ax.contourf(A, B, z, levels=levels, cmap=cmap)
    ax.figure.colorbar(cs, ax=ax, label=column)
    i = np.unravel_index(np.nanargmin(z), z.shape)
    ax.plot(A[i], B[i], marker="*", color="white", markersize=12, markeredgecolor="black", linestyle="none")
    if per_batch:
        cols = _batch_columns(df)
        colors = plt.get_cmap("tab20")(np.arange(len(cols)) % 20)
        for c, color in zip(cols, colors):
            zb = grid(c)
            lo, hi = np.nanmin(zb), np.nanmax(zb)
            if hi > lo:
                ax.contour(A, B, zb, levels=[lo + 0.1 * (hi - lo), lo + 0.3 * (hi - lo)], colors=[color],
                           linewidths=0.8)
            j = np.unravel_index(np.nanargmin(zb), zb.shape)
            ax.plot(A[j], B[j], marker="x", color=color, markersize=6, linestyle="none")
    ax.set_xlabel("alpha (d1)")
    ax.set_ylabel("beta (d2)")
    return ax
