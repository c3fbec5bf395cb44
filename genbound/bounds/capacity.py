"""Effective capacity N of a network, the N of the paper's Eq. 1, by three measures.

- ``"params"``: the number of trainable scalars (what Lee & Lee use).
- ``"manifold"``: the dimension of the set of weights the parametrization reaches (rank-R CP filters
  form a manifold of smaller dimension than their factor count, because of scaling redundancies).
- ``"hessian"``: the effective dimensionality of the training-loss Hessian (Maddox, Benton & Wilson 2020).

:func:`effective_capacity` returns a :class:`Capacity` with the total (a number that
:func:`genbound.bounds.sqrt_gap_bound` accepts) and a per-layer table; :func:`capacity_table` compares
measures and CP ranks.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from genbound._checks import check_int, check_model, check_positive
from genbound.nn.objective import training_pair

__all__ = ["CAPACITY_METHODS", "Capacity", "effective_capacity", "capacity_table", "layer_summary"]

#: Capacity measures understood by :func:`effective_capacity`.
CAPACITY_METHODS = ("params", "manifold", "hessian")

_PER_LAYER_COLUMNS = ["layer", "name", "kind", "params", "N", "detail"]


@dataclass
class Capacity:
    """Result of :func:`effective_capacity`.

    Attributes
    ----------
    method : str
        ``"params"``, ``"manifold"`` or ``"hessian"``.
    total : float
        The capacity N of the whole network.
    per_layer : pandas.DataFrame
        One row per layer with parameters: ``layer`` (index in the model), ``name`` (the layer's repr),
        ``kind``, ``params`` (its parameter count), ``N`` (its share of ``total``; the rows sum to it) and
        ``detail``.
    n_params : int
        The model's parameter count.
    tol : float or None
        ``"manifold"``: the largest singular-value threshold used for a numerical rank (see
        :func:`effective_capacity`); None otherwise.
    z : float or None
        ``"hessian"``: the scale z of the effective dimension; None otherwise.
    info : dict
        Method details (``"hessian"``: eigenvalues, how they were computed, the bracket on the total).
    """

    method: str
    total: float
    per_layer: pd.DataFrame
    n_params: int
    tol: float | None = None
    z: float | None = None
    info: dict = field(default_factory=dict)

    def __float__(self):
        return float(self.total)

    def __repr__(self):
        extra = f", tol={self.tol:.3g}" if self.tol is not None else ""
        extra += f", z={self.z:g}" if self.z is not None else ""
        return f"Capacity(method={self.method!r}, total={self.total:.6g}, n_params={self.n_params}{extra})"


# ----------------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------------

def _param_layers(model):
    """(index, layer, parameter count) of every layer with parameters."""
    return [(i, model.layers[i], sl.stop - sl.start) for i, sl in model.layer_slices().items()]


def _kind(layer):
    from genbound.nn.layers import Conv2d, CPConv2d, Dense

    if isinstance(layer, CPConv2d):
        return f"cp-conv (rank {layer.rank})"
    if isinstance(layer, Conv2d):
        return "conv"
    if isinstance(layer, Dense):
        return "dense"
    return type(layer).__name__


def layer_summary(model):
    """Per-layer parameter counts of a model, with the closed-form count of each layer.

    Full convolutions: :math:`O (C k_h k_w + 1)`; rank-R CP convolutions: :math:`O (R (C + k_h + k_w) + 1)`;
    dense layers: :math:`n_{out} (n_{in} + 1)`.

    Parameters
    ----------
    model : genbound.nn.Sequential

    Returns
    -------
    pandas.DataFrame
        Columns ``layer``, ``name``, ``kind``, ``params``.
    """
    check_model(model)
    rows = [dict(layer=i, name=repr(layer), kind=_kind(layer), params=n) for i, layer, n in _param_layers(model)]
    return pd.DataFrame(rows, columns=["layer", "name", "kind", "params"])


# ----------------------------------------------------------------------------------------------------
# params and manifold
# ----------------------------------------------------------------------------------------------------

def _params(model):
    rows = [dict(layer=i, name=repr(layer), kind=_kind(layer), params=n, N=float(n), detail="parameter count")
            for i, layer, n in _param_layers(model)]
    per_layer = pd.DataFrame(rows, columns=_PER_LAYER_COLUMNS)
    return Capacity("params", float(model.n_params), per_layer, model.n_params)


def _filter_rank(J, tol):
    s = np.linalg.svd(J, compute_uv=False)
    t = float(s[0] * max(J.shape) * np.finfo(np.float64).eps) if tol is None and s.size else (tol or 0.0)
    return int(np.sum(s > t)), t


#: Where ``effective_capacity(method="manifold")`` counts the CP-manifold dimension.
MANIFOLD_POINTS = ("generic", "model")


def _manifold(model, tol, at, seed):
    from genbound.factor import cp_jacobian, cp_manifold_dimension
    from genbound.nn.layers import CPConv2d

    rows, tol_used = [], 0.0
    for i, layer, n in _param_layers(model):
        if not isinstance(layer, CPConv2d):
            rows.append(dict(layer=i, name=repr(layer), kind=_kind(layer), params=n, N=float(n),
                             detail="full layer: parameter count"))
            continue
        O, R, C, k = layer.out_channels, layer.rank, layer.in_channels, layer.kernel_size
        if at == "generic":
            res = cp_manifold_dimension(C, k, k, rank=R, seed=seed, tol=tol)
            per_filter = [res.dim] * O
            tol_used = max(tol_used, float(res.tol))
            how = f"{res.dim} per filter at a generic point (seed {seed})"
        else:
            p, q, t = (np.asarray(layer.params[name], dtype=np.float64) for name in ("p", "q", "t"))
            per_filter = []
            for o in range(O):
                r, t_o = _filter_rank(cp_jacobian(p[o], q[o], t[o]), tol)
                per_filter.append(r)
                tol_used = max(tol_used, t_o)
            how = f"{min(per_filter)}..{max(per_filter)} per filter at the model's factors"
        dim = int(sum(per_filter)) + O  # + biases
        rows.append(dict(layer=i, name=repr(layer), kind=_kind(layer), params=n, N=float(dim),
                         detail=f"rank of d(factors)->W: {how}; + {O} biases"))
    per_layer = pd.DataFrame(rows, columns=_PER_LAYER_COLUMNS)
    return Capacity("manifold", float(per_layer["N"].sum()), per_layer, model.n_params, tol=tol_used,
                    info={"at": at, "tol_rule": "user tol" if tol is not None else
                          "sigma_max * max(J.shape) * eps (numpy.linalg.matrix_rank)"})


# ----------------------------------------------------------------------------------------------------
# hessian
# ----------------------------------------------------------------------------------------------------

def _hessian(model, data, z, k, dense_max, chunk_size, seed, tol):
    from genbound.landscape import hessian as dense_hessian
    from genbound.landscape import top_eigenvalues

    if data is None:
        raise ValueError("data: method='hessian' needs the training data (a Dataset or an (x, y) pair)")
    x, y = training_pair(data)
    n = model.n_params
    dense_max = check_int(dense_max, "dense_max", minimum=0)
    if n <= dense_max:
        H = dense_hessian(model, (x, y), chunk_size=chunk_size, max_params=max(n, 1), symmetrize=True)
        values, vectors = np.linalg.eigh(H)
        values, vectors = values[::-1], vectors[:, ::-1]
        how, n_hvp, complete = f"dense Hessian ({n} HVPs) and numpy.linalg.eigh", n, True
    else:
        k = min(n - 1, 64) if k is None else check_int(k, "k", minimum=1)
        k = min(k, n)
        res = top_eigenvalues(model, (x, y), k=k, chunk_size=chunk_size, tol=tol, seed=seed,
                              max_iter=min(n, max(3 * k, k + 40)))
        values, vectors = np.asarray(res.values), np.asarray(res.vectors)
        residuals = np.asarray(res.residuals, dtype=np.float64)
        how, n_hvp, complete = f"Lanczos, top {k} eigenvalues ({res.n_hvp} HVPs)", res.n_hvp, k >= n
    if complete:
        residuals = np.zeros_like(values)

    def contribution(lam):
        lam = np.maximum(lam, 0.0)
        return lam / (lam + z)

    lower = float(np.sum(contribution(values)))
    # upper end of the bracket: each Ritz value raised by its residual bound (|theta - lambda| <= residual),
    # and the n - k eigenvalues not computed each counted at the k-th one (also raised)
    f = contribution(values + residuals)
    rest = 0.0 if complete else float(contribution(values[-1] + residuals[-1]))
    upper = float(np.sum(f)) + (n - values.size) * rest
    # per layer: N = sum_i f_i ||u_i on the layer||^2 + rest * (params of the layer outside span(u_i))
    weights = (vectors ** 2) @ f
    outside = 1.0 - np.sum(vectors ** 2, axis=1)
    slices = model.param_slices()
    rows = []
    for i, layer, count in _param_layers(model):
        keys = model.layer_params(i)
        share = float(sum(weights[slices[key]].sum() for key in keys))
        share += rest * float(sum(outside[slices[key]].sum() for key in keys))
        rows.append(dict(layer=i, name=repr(layer), kind=_kind(layer), params=count, N=share,
                         detail="sum_i f_i ||u_i on this layer||^2 + uncomputed part at f(lambda_k)"))
    per_layer = pd.DataFrame(rows, columns=_PER_LAYER_COLUMNS)
    total = upper
    info = {"eigenvalues": values, "residuals": residuals, "how": how, "n_hvp": n_hvp, "complete": complete,
            "lower": lower, "upper": upper, "n_negative": int(np.sum(values < 0)), "m": int(np.asarray(y).shape[0]),
            "spectrum": "positive part of the eigenvalues of the training-loss Hessian", "heuristic": True}
    return Capacity("hessian", total, per_layer, n, z=z, info=info)


# ----------------------------------------------------------------------------------------------------
# public API
# ----------------------------------------------------------------------------------------------------

def effective_capacity(model, data=None, *, method="params", z=1.0, tol=None, at="generic", seed=0, k=None,
                       dense_max=600, chunk_size=1024, eig_tol=1e-4):
    r"""Effective capacity N of a network: parameter count, manifold dimension or Hessian dimension.

    ``method="params"``: the number of trainable scalars, layer by layer (it equals ``model.n_params``):

    .. math::

        N = \sum_{\text{full conv}} O (C k_h k_w + 1) + \sum_{\text{CP conv}} O (R (C + k_h + k_w) + 1)
          + \sum_{\text{dense}} n_{out} (n_{in} + 1).

    ``method="manifold"``: the dimension of the set of weights the parametrization reaches, layer by
    layer. For a rank-R CP convolution, each filter contributes the numerical rank of the Jacobian of the
    map (p, q, t) -> W (:func:`genbound.factor.cp_jacobian`), i.e. the dimension of the rank-R filters
    near that point; generically

    .. math::

        \dim = \min\bigl(R (C + k_h + k_w - 2),\ C k_h k_w\bigr) \text{ per filter}
        \quad (C + k_h + k_w - 2 \text{ for rank 1: two scalings per rank-1 term}),

    plus one per bias. Full convolutions and dense layers reach an open set of weights: their parameter
    count. The rank is counted at a generic point (``at="generic"``: standard normal factors from
    ``seed``, via :func:`genbound.factor.cp_manifold_dimension`) or at the model's own factors
    (``at="model"``), with the threshold ``tol`` on singular values; by default NumPy's ``matrix_rank``
    rule :math:`\text{tol} = \sigma_{\max}(J)\cdot\max(\text{shape}(J))\cdot\varepsilon_{64}`. The largest
    threshold used is returned as ``result.tol``. Symmetries of the network function that span layers
    (positive rescaling across a ReLU) are not removed: this is the dimension of the reachable weights,
    an upper bound on that of the functions.

    ``method="hessian"``: the effective dimensionality of Maddox, Benton & Wilson (2020) of the Hessian
    of the mean training cross-entropy on ``data`` (the whole training set, in batches):

    .. math::

        N_\mathrm{eff}(H, z) = \sum_{i:\ \lambda_i > 0} \frac{\lambda_i}{\lambda_i + z}.

    The loss Hessian is indefinite away from a minimum (and at ReLU networks' saddles); only its
    **positive part** is used: negative eigenvalues contribute 0 (not the Gauss-Newton matrix). With
    ``n_params <= dense_max`` the Hessian is built densely from ``n_params`` exact Hessian-vector products
    and fully diagonalized (``numpy.linalg.eigh``). Otherwise the top ``k`` eigenpairs come from Lanczos
    (:func:`genbound.landscape.top_eigenvalues`) and N is bracketed: ``result.info["lower"]`` counts the
    eigenvalues below the k-th as 0, ``result.info["upper"]`` raises every Ritz value by its residual bound
    (:math:`|\theta_i - \lambda_i| \le r_i`) and counts each of the :math:`n - k` others at
    :math:`f(\theta_k + r_k)`, the most it can be if Lanczos missed no eigenvalue above the k-th.
    ``result.total`` is the **upper** end (the pessimistic side for a capacity); it is a heuristic, not
    a certified bound (a Lanczos run can miss an eigenvalue), and ``result.info["heuristic"]`` says so. Cost
    measured on the 2-core development machine: one HVP over the 1,437 digits images takes about 0.25 s (rank-1 ``digits_gap``, 1,194
    parameters: a dense Hessian in about 5 min) and 1 s (full filters, 5,130: 1.4 h dense), hence the
    default ``dense_max=600`` and Lanczos above it. The per-layer shares are
    :math:`\sum_i f_i \lVert u_i^{(l)}\rVert^2` with :math:`f_i = \lambda_i/(\lambda_i+z)` and
    :math:`u_i^{(l)}` the part of the i-th unit eigenvector on layer l's parameters, plus (Lanczos) the
    uncomputed part :math:`f(\theta_k + r_k)` times the layer's share of the complement of the computed
    eigenvectors; they sum to the total.

    Parameters
    ----------
    model : genbound.nn.Sequential
    data : Dataset or (x, y), optional
        Training data (a Dataset's training set); required by ``"hessian"``, checked but unused otherwise.
    method : {"params", "manifold", "hessian"}
    z : float
        Scale of the effective dimension, > 0 (``"hessian"``). Eigenvalues much larger than z count about
        1, much smaller about 0. In the Laplace reading with a Gaussian prior of precision alpha on the
        sum of m losses, :math:`z = \alpha/m`.
    tol : float, optional
        Singular-value threshold of the numerical rank (``"manifold"``), >= 0.
    at : {"generic", "model"}
        Where the CP Jacobian's rank is counted (``"manifold"``).
    seed : int, numpy.random.Generator or None
        Generic point (``"manifold"``) or Lanczos start vector (``"hessian"``).
    k : int, optional
        Number of top eigenvalues for Lanczos (default min(n_params - 1, 64)).
    dense_max : int
        Largest parameter count for the dense Hessian.
    chunk_size : int
        Memory chunk of the Hessian-vector products (not an SGD batch).
    eig_tol : float
        Relative residual tolerance of Lanczos.

    Returns
    -------
    Capacity
        ``.total``, ``.per_layer``, ``.tol`` (manifold), ``.z`` and ``.info`` (hessian).

    Raises
    ------
    TypeError
        ``model`` is not a :class:`genbound.nn.Sequential`; ``data`` is neither a Dataset nor an (x, y)
        pair.
    ValueError
        Unknown ``method`` or ``at``; ``"hessian"`` without ``data``; ``z <= 0``.

    References
    ----------
    Lee & Lee, Eq. 1 (N as parameter count); T. G. Kolda, B. W. Bader, "Tensor decompositions and
    applications", SIAM Review 51(3), 2009 (CP rank); W. J. Maddox, G. Benton, A. G. Wilson, "Rethinking
    parameter counting in deep models: effective dimensionality revisited", arXiv:2003.02139, 2020.
    """
    check_model(model)
    if data is not None:
        training_pair(data)
    if method not in CAPACITY_METHODS:
        raise ValueError(f"method: expected one of {CAPACITY_METHODS}, got {method!r}")
    if at not in MANIFOLD_POINTS:
        raise ValueError(f"at: expected one of {MANIFOLD_POINTS}, got {at!r}")
    if method == "params":
        return _params(model)
    if method == "manifold":
        if tol is not None:
            tol = check_positive(tol, "tol", allow_zero=True)
        return _manifold(model, tol, at, seed)
    z = check_positive(z, "z")
    eig_tol = check_positive(eig_tol, "eig_tol")
    chunk_size = check_int(chunk_size, "chunk_size", minimum=1)
    return _hessian(model, data, z, k, dense_max, chunk_size, seed, eig_tol)


def _rank_of(model):
    from genbound.nn.layers import CPConv2d

    ranks = {layer.rank for layer in model.layers if isinstance(layer, CPConv2d)}
    if not ranks:
        return "full"
    return ranks.pop() if len(ranks) == 1 else "mixed"


def capacity_table(model_or_name, ranks=(None, 1, 2, 4), methods=("params", "manifold"), *, data=None, z=1.0,
                   seed=0, width=1.0, m=None, **kwargs):
    r"""Capacity N by measure and CP rank.

    Parameters
    ----------
    model_or_name : str, Sequential or mapping label -> Sequential
        A reference network name (``"digits"``, ``"digits_gap"``, ``"mnist"``: one network per entry of
        ``ranks`` is built with :func:`genbound.nn.reference_cnn`, initialized from ``seed``), one model
        (``ranks`` is ignored), or several labelled models (e.g. trained ones, for ``"hessian"``).
    ranks : sequence of (int or None)
        CP ranks (None: full filters), for a reference name.
    methods : sequence of str
        Measures from :data:`CAPACITY_METHODS`. ``"hessian"`` needs ``data`` and is meaningful for trained
        models.
    data : Dataset or (x, y), optional
        Training data for ``"hessian"``.
    z : float
        Scale of the Hessian effective dimension.
    seed : int
        Initialization of the reference networks.
    width : float
        Width multiplier of the reference networks.
    m : int, optional
        If given, adds a column ``sqrt(<method>/m)`` (Eq. 1) per method.
    **kwargs
        Passed to :func:`effective_capacity`.

    Returns
    -------
    pandas.DataFrame
        One row per network: ``network``, ``rank``, ``n_params`` and one column per method with its N.
    """
    from genbound.bounds.classical import sqrt_gap_bound
    from genbound.nn.model import Sequential
    from genbound.nn.reference import reference_cnn

    methods = list(methods)
    for meth in methods:
        if meth not in CAPACITY_METHODS:
            raise ValueError(f"methods: expected entries from {CAPACITY_METHODS}, got {meth!r}")
    if isinstance(model_or_name, str):
        models = {}
        for r in ranks:
            models[(model_or_name, "full" if r is None else r)] = reference_cnn(model_or_name, rank=r, seed=seed,
                                                                                 width=width)
    elif isinstance(model_or_name, Sequential):
        models = {("model", _rank_of(model_or_name)): model_or_name}
    elif isinstance(model_or_name, Mapping):
        models = {}
        for label, mod in model_or_name.items():
            check_model(mod, f"model_or_name[{label!r}]")
            models[(str(label), _rank_of(mod))] = mod
    else:
        raise TypeError("model_or_name: expected a reference network name, a genbound.nn.Sequential or a "
                        f"mapping of them, got {type(model_or_name).__name__}")
    if m is not None:
        m = check_int(m, "m", minimum=1)
    rows = []
    for (label, rank), mod in models.items():
        row = dict(network=label, rank=rank, n_params=mod.n_params)
        for meth in methods:
            row[meth] = effective_capacity(mod, data, method=meth, z=z, **kwargs).total
            if m is not None:
                row[f"sqrt({meth}/m)"] = sqrt_gap_bound(row[meth], m)
        rows.append(row)
    return pd.DataFrame(rows)

