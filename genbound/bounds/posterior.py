"""PAC-Bayes posterior optimization around a trained network (Dziugaite & Roy 2017, and variants).

A diagonal Gaussian posterior :math:`Q = \\mathcal N(\\mu, \\mathrm{diag}\\,\\sigma^2)` over the flat
parameter vector of a :class:`genbound.nn.Sequential` is fitted by minimizing a differentiable PAC-Bayes
objective with the reparametrization trick; its Gibbs (stochastic) training error is then estimated by
Monte Carlo and bounded with :func:`genbound.bounds.dziugaite_roy_bound`.

The prior is :math:`P = \\mathcal N(w_p, \\lambda\\,\\mathrm{diag}(s^2))`: a mean ``w_p`` fixed before
the sample used by the bound (the random initialization ``w0``, or a network trained on held-out data),
fixed per-parameter scales ``s`` (all ones: the isotropic prior of Dziugaite & Roy; or the init scales
``model.param_scales()``), and a variance multiplier on Dziugaite & Roy's grid
:math:`\\lambda = c\\,e^{-j/b}`, :math:`j \\in \\{1, 2, \\dots\\}`, whose choice after seeing the data is paid
for by their union bound (the term :math:`2\\ln j + \\ln(\\pi^2/6)`).

Every function takes ``(model, data, ...)`` with ``data`` a Dataset or an ``(x, y)`` pair (its training set
is the bound's sample); everything random takes a ``seed``; the model's parameters are restored after every
call. Training a prior mean on held-out data is not done here: see :mod:`genbound.experiments.priors`.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from genbound._checks import as_float_array, check_int, check_model, check_positive, check_probability, check_vector
from genbound._rng import as_generator, permutation_batches
from genbound.bounds._data import test_pair, training_pair
from genbound.bounds.heldout import DataDependentPrior
from genbound.bounds.pacbayes import (catoni_bound, dziugaite_roy_bound, kl_diag_gaussians, kl_inverse,
                                      langford_seeger_bound, mcallester_bound, sample_convergence_bound)
from genbound.nn.objective import restored
from genbound.nn.optim import Adam

__all__ = [
    "VarianceGrid",
    "VARIANCE_GROUPS",
    "variance_groups",
    "GaussianPrior",
    "GaussianPosterior",
    "PosteriorFit",
    "GibbsError",
    "OBJECTIVES",
    "optimize_posterior",
    "gibbs_error",
    "PacBayesResult",
    "family_bounds",
    "pac_bayes_bounds",
]

#: Training objectives of :func:`optimize_posterior`.
OBJECTIVES = ("quad", "kl", "sqrt")

_LN2 = math.log(2.0)


def _derived_seed(seed, offset):
    """A named sub-seed: ``seed + offset`` for an int (``offset`` for None, whose stream is seed 0's); a
    Generator is used as is, so its stream goes on."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None:
        return offset
    if isinstance(seed, numbers.Integral) and not isinstance(seed, bool):
        return int(seed) + offset
    raise TypeError(f"seed: expected an int or a numpy.random.Generator, got {type(seed).__name__}")


# ----------------------------------------------------------------------------------------------------
# prior and posterior
# ----------------------------------------------------------------------------------------------------

#: How the prior variance is shared: one for all parameters, or one per layer with parameters.
VARIANCE_GROUPS = ("one", "layer")


@dataclass(frozen=True)
class VarianceGrid:
    r"""The grid a prior variance :math:`\lambda = c\,e^{-j/b}` is chosen on, and what the choice costs.

    - ``kind="dziugaite_roy"``: :math:`j \in \{1, 2, \dots\}` with weights :math:`6/(\pi^2 j^2)` (Dziugaite &
      Roy 2017): choosing j costs :math:`2\ln j + \ln(\pi^2/6)` nats.
    - ``kind="uniform"``: :math:`j \in \{1, \dots, \text{size}\}` with weights 1/size: any choice costs
      :math:`\ln(\text{size})` nats, and :math:`\lambda \ge c\,e^{-\text{size}/b}`.

    The cost is a union bound: the bound holds for every grid point at once when each is charged its nats.
    With one variance per layer (:data:`VARIANCE_GROUPS`), each layer's choice is charged.

    Attributes
    ----------
    kind : {"dziugaite_roy", "uniform"}
    b, c : float
        Grid constants, > 0 (Dziugaite & Roy: b = 100, c = 0.1).
    size : int or None
        Number of grid points (``"uniform"`` only, >= 1).
    """

    kind: str = "dziugaite_roy"
    b: float = 100.0
    c: float = 0.1
    size: int | None = None

    def __post_init__(self):
        if self.kind not in ("dziugaite_roy", "uniform"):
            raise ValueError(f"kind: expected 'dziugaite_roy' or 'uniform', got {self.kind!r}")
        object.__setattr__(self, "b", check_positive(self.b, "b"))
        object.__setattr__(self, "c", check_positive(self.c, "c"))
        if self.kind == "uniform":
            object.__setattr__(self, "size", check_int(self.size, "size", minimum=1))
        elif self.size is not None:
            raise ValueError(f"size: expected None for the Dziugaite-Roy grid (infinite), got {self.size!r}")

    @property
    def j_max(self):
        """Largest grid index (inf for the Dziugaite-Roy grid)."""
        return math.inf if self.size is None else self.size

    def variance(self, j):
        r""":math:`c\,e^{-j/b}`."""
        return self.c * math.exp(-j / self.b)

    def nats(self, j):
        """The union-bound cost of grid index ``j`` (an int >= 1, <= size), in nats."""
        j = check_int(j, "j", minimum=1)
        if self.size is not None:
            if j > self.size:
                raise ValueError(f"j: expected a grid index <= {self.size}, got {j}")
            return math.log(self.size)
        return 2.0 * math.log(j) + math.log(math.pi ** 2 / 6.0)

    def _real_nats(self, j):
        """Cost and its derivative in j for a real j >= 1 (the training objective)."""
        if self.size is not None:
            return math.log(self.size), 0.0
        jj = max(j, 1.0)
        return 2.0 * math.log(jj) + math.log(math.pi ** 2 / 6.0), (2.0 / jj if j > 1.0 else 0.0)

    def describe(self):
        if self.size is None:
            return f"Dziugaite-Roy grid lambda = {self.c:g} exp(-j/{self.b:g}), j >= 1, cost 2 ln j + ln(pi^2/6)"
        return (f"uniform grid lambda = {self.c:g} exp(-j/{self.b:g}), j = 1..{self.size}, "
                f"cost ln {self.size} = {math.log(self.size):.3f} nats")


def variance_groups(model, groups="one"):
    """Group index of every parameter (flat order): all 0 for ``"one"``, the rank of its layer among the layers
    with parameters for ``"layer"``; an integer array is checked and returned as is."""
    n = model.n_params
    if isinstance(groups, str):
        if groups not in VARIANCE_GROUPS:
            raise ValueError(f"groups: expected one of {VARIANCE_GROUPS} or an array of group indices, got {groups!r}")
        out = np.zeros(n, dtype=np.int64)
        if groups == "layer":
            for g, sl in enumerate(model.layer_slices().values()):
                out[sl] = g
        return out
    arr = np.asarray(groups)
    if arr.shape != (n,) or arr.dtype.kind not in "iu":
        raise ValueError(f"groups: expected {n} integer group indices, got dtype {arr.dtype}, shape {arr.shape}")
    if arr.min() < 0 or np.setdiff1d(np.arange(arr.max() + 1), arr).size:
        raise ValueError("groups: expected the indices 0..G-1, each used")
    return arr.astype(np.int64)


@dataclass
class GaussianPrior:
    r"""The prior :math:`P = \mathcal N(w_p, \mathrm{diag}(\lambda_{g(i)} s_i^2))`,
    :math:`\lambda_g = c\,e^{-j_g/b}` on a :class:`VarianceGrid`.

    Attributes
    ----------
    mean : numpy.ndarray (n_params,)
        :math:`w_p`, fixed before the sample the bound is computed on.
    scale : numpy.ndarray (n_params,)
        Fixed per-parameter scales :math:`s > 0` (ones: isotropic prior).
    j : int or tuple of int
        Grid index (>= 1) of the variance, one per group.
    b, c : float
        Grid constants (Dziugaite & Roy: b = 100, c = 0.1); ignored when ``grid`` is given.
    description : str
        How the mean was chosen (reported in tables).
    grid : VarianceGrid, optional
        The grid (default: Dziugaite & Roy's with ``b``, ``c``).
    groups : numpy.ndarray (n_params,) of int, optional
        The variance group of every parameter (default: one group).
    """

    mean: np.ndarray
    scale: np.ndarray
    j: object
    b: float = 100.0
    c: float = 0.1
    description: str = ""
    grid: VarianceGrid | None = None
    groups: np.ndarray | None = None

    def __post_init__(self):
        if self.grid is None:
            self.grid = VarianceGrid(b=self.b, c=self.c)
        self.b, self.c = self.grid.b, self.grid.c
        if self.groups is None:
            self.groups = np.zeros(np.asarray(self.mean).size, dtype=np.int64)

    @property
    def js(self):
        """The grid indices as a tuple (one per group)."""
        return tuple(int(v) for v in np.atleast_1d(self.j))

    @property
    def variance(self):
        r""":math:`\lambda = c e^{-j/b}` (a float for one group, else an array per group)."""
        lam = np.array([self.grid.variance(j) for j in self.js])
        return float(lam[0]) if lam.size == 1 else lam

    @property
    def nats(self):
        """Union-bound cost of the chosen grid points, summed over the groups."""
        return float(sum(self.grid.nats(j) for j in self.js))

    @property
    def std(self):
        r"""Per-parameter prior standard deviations :math:`\sqrt{\lambda_{g(i)}}\, s_i`."""
        lam = np.atleast_1d(np.asarray(self.variance, dtype=np.float64))
        return np.sqrt(lam)[self.groups] * self.scale


@dataclass
class GaussianPosterior:
    r"""A diagonal Gaussian :math:`Q = \mathcal N(\mu, \mathrm{diag}\,\sigma^2)` over the flat parameters."""

    mean: np.ndarray
    std: np.ndarray

    def __post_init__(self):
        self.mean = as_float_array(self.mean, "mean", ndim=1)
        self.std = as_float_array(self.std, "std")
        if self.std.shape not in ((), self.mean.shape):
            raise ValueError(f"std: expected a scalar or the shape of mean {self.mean.shape}, got {self.std.shape}")
        if np.any(self.std <= 0):
            raise ValueError(f"std: expected standard deviations > 0, got {self.std[self.std <= 0].flat[0]!r}")
        self.std = np.broadcast_to(self.std, self.mean.shape).copy()

    def sample(self, seed=None):
        """One draw :math:`\\mu + \\sigma \\odot \\varepsilon`, :math:`\\varepsilon \\sim \\mathcal N(0, I)`
        (``seed``: int, Generator or None)."""
        return self.mean + self.std * as_generator(seed).standard_normal(self.mean.size)

    def kl(self, prior):
        r"""KL(Q || P) in nats (closed form for diagonal Gaussians, see :func:`kl_diag_gaussians`).

        .. math::

            \mathrm{KL} = \sum_i \Bigl[\frac{(\mu_i - w_{p,i})^2}{2\lambda s_i^2}
                + \tfrac12\bigl(r_i - 1 - \ln r_i\bigr)\Bigr], \qquad r_i = \frac{\sigma_i^2}{\lambda s_i^2}
        """
        return kl_diag_gaussians(self.mean, self.std, prior.mean, prior.std)


def _kl_and_grads(mu, log_sigma, prior_mean, scale2, log_lam, groups=None):
    """KL(Q||P) and its gradients with respect to mu, log sigma and log lambda (a float, or one per group)."""
    if groups is None:
        lam = math.exp(log_lam)
    else:
        lam = np.exp(np.asarray(log_lam, dtype=np.float64))[groups]
    var_p = lam * scale2
    d = mu - prior_mean
    sig2 = np.exp(2.0 * log_sigma)
    r = sig2 / var_p
    kl = float(np.sum(0.5 * d * d / var_p) + 0.5 * np.sum(r - 1.0 - np.log(r)))
    g_mu = d / var_p
    g_ls = r - 1.0
    per = -0.5 * d * d / var_p + 0.5 * (1.0 - r)
    if groups is None:
        g_ll = float(np.sum(per))
    else:
        g_ll = np.bincount(groups, weights=per, minlength=np.size(log_lam))
    return kl, g_mu, g_ls, g_ll


# ----------------------------------------------------------------------------------------------------
# objectives
# ----------------------------------------------------------------------------------------------------

def _objective(kind, s, B):
    """Value of the training objective and its partial derivatives in (s, B)."""
    if kind == "sqrt":
        root = math.sqrt(B / 2.0)
        return s + root, 1.0, 0.25 / max(root, 1e-300)
    if kind == "quad":
        a, r = math.sqrt(s + B / 2.0), math.sqrt(B / 2.0)
        val = (a + r) ** 2
        ds = (a + r) / max(a, 1e-300)
        dB = (a + r) * (0.5 / max(a, 1e-300) + 0.5 / max(r, 1e-300))
        return val, ds, dB
    # kl: p = kl^{-1}(q, B), implicit derivatives
    q = min(max(s, 1e-6), 1.0 - 1e-6)
    p = kl_inverse(q, B)
    p = min(max(p, q + 1e-12), 1.0 - 1e-12)
    dkl_dp = (p - q) / (p * (1.0 - p))
    dkl_dq = math.log(q / p) - math.log((1.0 - q) / (1.0 - p))
    dB = 1.0 / dkl_dp
    ds = -dkl_dq / dkl_dp if 1e-6 < s < 1.0 - 1e-6 else 0.0
    return p, ds, dB


def _union_log_j(j):
    """2 ln j + ln(pi^2/6) with j = b ln(c/lambda) treated as a real number >= 1 (for training)."""
    return 2.0 * math.log(max(j, 1.0)) + math.log(math.pi ** 2 / 6.0)


def _complexity(kl, log_lam, m, delta, b, c, extra_nats, grid=None):
    """B (real-valued j, for training) and dB/dKL, dB/dlog lambda (a float, or an array per group with ``grid``).

    ``grid=None`` is Dziugaite & Roy's grid with one variance (``log_lam`` a float)."""
    if grid is None:
        lam = math.exp(log_lam)
        j = b * math.log(c / lam)
        B = (kl + extra_nats + _union_log_j(j) + math.log(m / delta)) / (m - 1)
        dj = -b  # dj / dlog lambda
        dB_dll = (2.0 / j * dj) / (m - 1) if j > 1.0 else 0.0
        return B, 1.0 / (m - 1), dB_dll
    nats, dB_dll = 0.0, np.zeros(np.size(log_lam))
    for g, ll in enumerate(np.atleast_1d(log_lam)):
        cost, dcost_dj = grid._real_nats(grid.b * (math.log(grid.c) - ll))
        nats += cost
        dB_dll[g] = dcost_dj * (-grid.b) / (m - 1)
    B = (kl + extra_nats + nats + math.log(m / delta)) / (m - 1)
    return B, 1.0 / (m - 1), dB_dll


# ----------------------------------------------------------------------------------------------------
# optimization
# ----------------------------------------------------------------------------------------------------

@dataclass
class PosteriorFit:
    """Result of :func:`optimize_posterior`.

    Attributes
    ----------
    posterior : GaussianPosterior
        The fitted posterior.
    prior : GaussianPrior
        The prior with its grid index j (rounded at the end to the grid point with the smaller B).
    kl : float
        KL(Q || P) in nats at the rounded prior variance.
    m : int
        Number of examples the bound is computed on.
    history : pandas.DataFrame
        One row every ``log_every`` steps: step, surrogate (running mean), kl, lambda, objective.
    start : GaussianPosterior
        The posterior the optimization started from.
    start_prior : GaussianPrior
        The prior (grid-rounded) at the start.
    settings : dict
        The arguments of the run.
    """

    posterior: GaussianPosterior
    prior: GaussianPrior
    kl: float
    m: int
    history: pd.DataFrame
    start: GaussianPosterior
    start_prior: GaussianPrior
    settings: dict = field(default_factory=dict)


def _round_j(mu, sigma, prior_mean, scale, log_lam, grid, groups):
    """Grid indices j (one per group, in [1, grid.j_max]) next to the continuous variances, each the one of the
    floor/ceil pair with the smaller KL + cost on its group (KL and cost are sums over the groups), and the KL."""
    js = []
    for g, ll in enumerate(np.atleast_1d(log_lam)):
        j_real = grid.b * (math.log(grid.c) - ll)
        if abs(j_real - round(j_real)) < 1e-9 * max(1.0, abs(j_real)):
            j_real = float(round(j_real))
        top = grid.j_max
        cands = sorted({min(max(1, math.floor(j_real)), top), min(max(1, math.ceil(j_real)), top)})
        sel = groups == g
        best = None
        for j in cands:
            std_p = math.sqrt(grid.variance(j)) * scale[sel]
            cost = kl_diag_gaussians(mu[sel], sigma[sel], prior_mean[sel], std_p) + grid.nats(j)
            if best is None or cost < best[0]:
                best = (cost, j)
        js.append(best[1])
    lam = np.array([grid.variance(j) for j in js])
    kl = kl_diag_gaussians(mu, sigma, prior_mean, np.sqrt(lam)[groups] * scale)
    return (js[0] if len(js) == 1 else tuple(js)), kl


def optimize_posterior(model, data, prior_mean, *, mean_init=None, prior_scale=None, std_init=0.01,
                       prior_j_init=None, objective="quad", max_iter=1000, batch_size=128, lr_mean=1e-3,
                       lr_std=1e-2, lr_prior=1e-2, surrogate_scale=1.0 / _LN2, delta=0.025, b=100, c=0.1,
                       extra_nats=0.0, learn_prior=True, seed=0, log_every=50, prior_description="", grid=None,
                       groups="one"):
    r"""Fit a diagonal Gaussian posterior around a network by minimizing a PAC-Bayes objective.

    The posterior :math:`Q = \mathcal N(\mu, \mathrm{diag}\,\sigma^2)` (:math:`\sigma = e^\rho`) and
    the prior variance :math:`\lambda` of :math:`P = \mathcal N(w_p, \lambda\,\mathrm{diag}(s^2))` are
    trained with Adam on

    .. math::

        J = f\bigl(\hat s(Q),\, B\bigr), \qquad
        B = \frac{\mathrm{KL}(Q\|P) + \text{extra} + 2\ln j + \ln\frac{\pi^2}{6} + \ln\frac{m}{\delta}}{m-1},
        \qquad j = b \ln(c/\lambda)

    (B is Dziugaite & Roy's complexity, :func:`dziugaite_roy_complexity`, with j real during training),
    where :math:`\hat s(Q)` is the surrogate of the Gibbs training error: ``surrogate_scale`` times the
    mean cross-entropy of a mini-batch at one sampled network :math:`w = \mu + \sigma\odot\varepsilon`
    (reparametrization trick; the gradient comes from ``model.loss_and_grad`` at ``w``:
    :math:`\nabla_\mu = g`, :math:`\nabla_\rho = g \odot \varepsilon \odot \sigma`). With the default
    scale :math:`1/\ln 2` the surrogate bounds the 0-1 error from above example by example (a
    misclassified example has :math:`p_y \le 1/2`, so :math:`-\ln p_y \ge \ln 2`), as in Dziugaite &
    Roy. The objectives ``f``:

    - ``"quad"`` (default): :math:`\bigl(\sqrt{\hat s + B/2} + \sqrt{B/2}\bigr)^2`, the relaxation of the
      kl bound used by Pérez-Ortiz et al. (2021) (Thiemann et al. 2017);
    - ``"kl"``: :math:`\mathrm{kl}^{-1}(\hat s, B)` itself, differentiated implicitly
      (:math:`\partial p/\partial B = 1/\partial_p \mathrm{kl}`); the surrogate is clipped to
      (0, 1) and gives no gradient outside;
    - ``"sqrt"``: :math:`\hat s + \sqrt{B/2}`, Dziugaite & Roy's objective.

    KL and its gradients are exact (closed form). At the end :math:`\lambda` is rounded to the grid point
    :math:`c e^{-j/b}`, :math:`j \in \{\lfloor j\rfloor, \lceil j\rceil\}` (at least 1), with the smaller
    B. With ``grid`` (a :class:`VarianceGrid`) the grid term is that grid's cost (constant
    :math:`\ln(\text{size})` for a uniform grid, :math:`\lambda` kept inside its range); with
    ``groups="layer"`` every layer with parameters has its own :math:`\lambda_g` on the grid, each charged
    (the prior :math:`\mathcal N(w_p, \mathrm{diag}(\lambda_{g(i)} s_i^2))`). The returned fit carries the
    posterior, the rounded prior and KL; bound it with
    :func:`gibbs_error` and :func:`genbound.bounds.dziugaite_roy_bound`.

    Parameters
    ----------
    model : genbound.nn.Sequential
        The network; its parameters are used as the default ``mean_init`` and restored on return.
    data : Dataset or (x, y)
        The ``m`` examples the bound will be computed on (a Dataset's training set, or inputs (m, C, H, W)
        and labels (m,)), m >= 2.
    prior_mean : array_like (n_params,) or DataDependentPrior
        :math:`w_p`, chosen without these examples (e.g. the initialization ``w0``); a
        :class:`DataDependentPrior` refuses ``data`` that overlaps the examples it was trained on.
    mean_init : array_like (n_params,), optional
        Start of :math:`\mu` (default: the model's parameters).
    prior_scale : array_like (n_params,) or None
        Fixed per-parameter prior scales s > 0 (None: ones, the isotropic prior; or the init scales
        ``model.param_scales()``).
    std_init : float or array_like (n_params,)
        Start of every :math:`\sigma_i` (absolute), > 0: one constant, or one per parameter (e.g. a previous
        fit's ``posterior.std``, to continue it). A small constant works where :math:`\sigma = |w|` does not
        (in CP layers the noise of three factors multiplies).
    prior_j_init : int or tuple of int, optional
        Start of the grid index j (one per variance group, or one for all; e.g. a previous fit's
        ``prior.j``); default: the j of the variance minimizing KL at the start,
        :math:`\lambda = \frac1n\sum_i ((\mu_i - w_{p,i})^2 + \sigma_i^2)/s_i^2`, clipped to [1, 5b].
    objective : {"quad", "kl", "sqrt"}
    max_iter : int
        Adam steps, >= 0 (each one mini-batch and one weight sample).
    batch_size : int
        Mini-batch size, >= 1 (one seeded permutation of the m examples after another, cut into
        mini-batches; a last incomplete mini-batch is skipped; a size above m means m).
    lr_mean, lr_std, lr_prior : float
        Adam step sizes for :math:`\mu`, :math:`\rho = \ln\sigma` and :math:`\ln\lambda`.
    surrogate_scale : float
        Multiplies the cross-entropy (default :math:`1/\ln 2`).
    delta : float
        Confidence of the PAC-Bayes part used in B, in (0, 1).
    b, c : float
        Prior-variance grid constants.
    extra_nats : float
        Union-bound cost added to KL (e.g. :math:`\ln K` for K prior configurations searched), >= 0.
    learn_prior : bool
        Train :math:`\lambda` (otherwise it stays at the grid point ``prior_j_init``).
    seed : int, numpy.random.Generator or None
        Seed of the mini-batch order and the weight noise.
    log_every : int
        History row every ``log_every`` steps.
    prior_description : str
        Stored in the returned prior.
    grid : VarianceGrid, optional
        The prior-variance grid (default: Dziugaite & Roy's with ``b``, ``c``).
    groups : {"one", "layer"} or array of int
        One prior variance for all parameters, one per layer, or an explicit group index per parameter.

    Returns
    -------
    PosteriorFit

    References
    ----------
    G. K. Dziugaite, D. M. Roy, "Computing nonvacuous generalization bounds for deep (stochastic) neural
    networks with many more parameters than training data", UAI 2017; M. Pérez-Ortiz, O. Rivasplata,
    J. Shawe-Taylor, C. Szepesvári, "Tighter risk certificates for neural networks", JMLR 22(227), 2021;
    D. P. Kingma, M. Welling, "Auto-encoding variational Bayes", ICLR 2014 (reparametrization).
    """
    check_model(model)
    n = model.n_params
    x, y = model.check_xy(*training_pair(data))
    m = x.shape[0]
    if m < 2:
        raise ValueError(f"m: expected at least 2 examples for the bound, got {m}")
    if isinstance(prior_mean, DataDependentPrior):
        prior_mean.check_bound_data(data)
        prior_mean = prior_mean.checked_mean(n)
    prior_mean = check_vector(prior_mean, n, "prior_mean")
    mu = check_vector(model.get_flat() if mean_init is None else mean_init, n, "mean_init").copy()
    scale = np.ones(n) if prior_scale is None else check_vector(prior_scale, n, "prior_scale")
    if np.any(scale <= 0):
        raise ValueError("prior_scale: expected scales > 0")
    if np.ndim(std_init) == 0:
        std_init = check_positive(std_init, "std_init")
    else:
        std_init = check_vector(std_init, n, "std_init")
        if not np.all(std_init > 0):
            raise ValueError("std_init: expected standard deviations > 0, got "
                             f"{std_init[~(std_init > 0)][0]!r}")
    if objective not in OBJECTIVES:
        raise ValueError(f"objective: expected one of {OBJECTIVES}, got {objective!r}")
    max_iter = check_int(max_iter, "max_iter", minimum=0)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    lr_mean = check_positive(lr_mean, "lr_mean", allow_zero=True)
    lr_std = check_positive(lr_std, "lr_std", allow_zero=True)
    lr_prior = check_positive(lr_prior, "lr_prior", allow_zero=True)
    surrogate_scale = check_positive(surrogate_scale, "surrogate_scale")
    delta = check_probability(delta, "delta")
    b = check_positive(b, "b")
    c = check_positive(c, "c")
    extra_nats = check_positive(extra_nats, "extra_nats", allow_zero=True)
    log_every = check_int(log_every, "log_every", minimum=1)
    gen = as_generator(seed)
    scale2 = scale * scale

    grid = VarianceGrid(b=b, c=c) if grid is None else grid
    if not isinstance(grid, VarianceGrid):
        raise TypeError(f"grid: expected a VarianceGrid, got {type(grid).__name__}")
    group = variance_groups(model, groups)
    n_groups = int(group.max()) + 1
    legacy = grid.kind == "dziugaite_roy" and n_groups == 1  # the original single-lambda objective
    b, c = grid.b, grid.c
    j_top = min(grid.j_max, 5 * b)
    ll_lo, ll_hi = math.log(c) - grid.j_max / b, math.log(c) - 1.0 / b

    log_sigma = np.log(np.broadcast_to(np.asarray(std_init, dtype=np.float64), (n,))).copy()
    if prior_j_init is None:
        lam0 = np.bincount(group, weights=((mu - prior_mean) ** 2 + std_init ** 2) / scale2) / np.bincount(group)
        j0 = [min(max(1, round(b * math.log(c / max(v, 1e-300)))), j_top) for v in lam0]
    else:
        js = tuple(prior_j_init) if isinstance(prior_j_init, (tuple, list)) else (prior_j_init,) * n_groups
        if len(js) != n_groups:
            raise ValueError(f"prior_j_init: expected one grid index or {n_groups} (one per variance group), got "
                             f"{len(js)}")
        j0 = [min(check_int(j, "prior_j_init", minimum=1), grid.j_max) for j in js]
    log_lam = np.array([math.log(c) - j / b for j in j0], dtype=np.float64)
    start = GaussianPosterior(mu.copy(), np.exp(log_sigma))
    j_start, kl_start = _round_j(mu, start.std, prior_mean, scale, log_lam, grid, group)
    start_prior = GaussianPrior(prior_mean, scale, j_start, description=prior_description, grid=grid,
                                groups=group)

    arrays = [mu, log_sigma, log_lam]
    lrs = [lr_mean, lr_std, lr_prior if learn_prior else 0.0]
    moving = [i for i, lr in enumerate(lrs) if lr > 0]  # a step size of 0 leaves an array as it is
    adam = Adam([lrs[i] for i in moving])
    rows, running, batches = [], [], []
    with restored(model):
        for step in range(max_iter):
            if not batches:
                batches = permutation_batches(m, min(batch_size, m), gen, drop_last=True)
            idx = batches.pop(0)
            sigma = np.exp(log_sigma)
            eps = gen.standard_normal(n)
            model.set_flat(mu + sigma * eps)
            ce, g = model.loss_and_grad(x[idx], y[idx], flat=True)
            g = np.asarray(g, dtype=np.float64)
            s = surrogate_scale * float(ce)
            if legacy:
                kl, gk_mu, gk_ls, gk_ll = _kl_and_grads(mu, log_sigma, prior_mean, scale2, log_lam[0])
                B, dB_dkl, dB_dll = _complexity(kl, log_lam[0], m, delta, b, c, extra_nats)
            else:
                kl, gk_mu, gk_ls, gk_ll = _kl_and_grads(mu, log_sigma, prior_mean, scale2, log_lam, group)
                B, dB_dkl, dB_dll = _complexity(kl, log_lam, m, delta, b, c, extra_nats, grid)
            val, dJ_ds, dJ_dB = _objective(objective, s, B)
            gs = dJ_ds * surrogate_scale
            grad_mu = gs * g + dJ_dB * dB_dkl * gk_mu
            grad_ls = gs * g * eps * sigma + dJ_dB * dB_dkl * gk_ls
            grad_ll = np.atleast_1d(dJ_dB * (dB_dkl * np.asarray(gk_ll) + dB_dll)).astype(np.float64)
            if not (np.all(np.isfinite(grad_mu)) and np.all(np.isfinite(grad_ls))):
                raise FloatingPointError(f"optimize_posterior: non-finite gradient at step {step}; lower the "
                                         "learning rates or std_init")
            grads = [grad_mu, grad_ls, grad_ll]
            adam.update([arrays[i] for i in moving], [grads[i] for i in moving])
            # keep every lambda on the grid's range: j in [1, j_max]
            np.clip(log_lam, ll_lo, ll_hi, out=log_lam)
            running.append(s)
            if (step + 1) % log_every == 0 or step + 1 == max_iter:
                rows.append(dict(step=step + 1, surrogate=float(np.mean(running)), kl=kl,
                                 prior_variance=float(np.exp(log_lam).mean()), B=B, objective=val))
                running = []
    sigma = np.exp(log_sigma)
    j, kl = _round_j(mu, sigma, prior_mean, scale, log_lam, grid, group)
    prior = GaussianPrior(prior_mean, scale, j, description=prior_description, grid=grid, groups=group)
    settings = dict(objective=objective, max_iter=max_iter, batch_size=batch_size, lr_mean=lr_mean, lr_std=lr_std,
                    lr_prior=lr_prior, std_init=std_init if np.ndim(std_init) == 0 else "per parameter",
                    surrogate_scale=surrogate_scale, delta=delta,
                    extra_nats=extra_nats, seed=seed, kl_start=kl_start, grid=grid.describe(),
                    groups=groups if isinstance(groups, str) else "custom")
    history = pd.DataFrame(rows, columns=["step", "surrogate", "kl", "prior_variance", "B", "objective"])
    return PosteriorFit(GaussianPosterior(mu, sigma), prior, kl, m, history, start, start_prior, settings)


# ----------------------------------------------------------------------------------------------------
# Monte-Carlo Gibbs error
# ----------------------------------------------------------------------------------------------------

@dataclass
class GibbsError:
    """Monte-Carlo estimate of a Gibbs classifier's 0-1 error.

    Attributes
    ----------
    error : float
        Mean over the draws of each drawn network's error on the examples.
    errors : numpy.ndarray (n_samples,)
        The error of each drawn network.
    n_samples : int
        Number of draws.
    seed : int, numpy.random.Generator or None
        The seed the draws came from.
    """

    error: float
    errors: np.ndarray
    n_samples: int
    seed: object

    @property
    def std_error(self):
        """Standard error of ``error`` over the draws."""
        if self.n_samples < 2:
            return float("nan")
        return float(np.std(self.errors, ddof=1) / math.sqrt(self.n_samples))


def gibbs_error(model, data, posterior, n_samples=100, seed=0, chunk_size=2048):
    r"""Monte-Carlo estimate of the 0-1 error of the Gibbs classifier Q on the examples S of ``data``.

    .. math::

        \hat e_n = \frac1n \sum_{k=1}^n \frac1{|S|}\sum_{(x, y) \in S} \mathbf 1[h_{w_k}(x) \ne y],
        \qquad w_k = \mu + \sigma \odot \varepsilon_k,\ \varepsilon_k \sim \mathcal N(0, I) \text{ i.i.d.}

    One network is drawn per k and evaluated on every example (as Dziugaite & Roy do); the draws come from
    ``seed``, so the estimate is reproducible. Bound the Gibbs error on S from it with
    :func:`genbound.bounds.sample_convergence_bound` (n = ``n_samples``).

    Parameters
    ----------
    model : genbound.nn.Sequential
        The architecture; its parameters are restored on return.
    data : Dataset or (x, y)
        The examples S (a Dataset's training set; pass ``(data.x_test, data.y_test)`` for its test set).
    posterior : GaussianPosterior
    n_samples : int
        Number of weight draws, >= 1.
    seed : int, numpy.random.Generator or None
    chunk_size : int
        Memory chunk of the evaluations (not an SGD batch).

    Returns
    -------
    GibbsError
    """
    check_model(model)
    if not isinstance(posterior, GaussianPosterior):
        raise TypeError(f"posterior: expected a GaussianPosterior, got {type(posterior).__name__}")
    x, y = model.check_xy(*training_pair(data))
    n_samples = check_int(n_samples, "n_samples", minimum=1)
    chunk_size = check_int(chunk_size, "chunk_size", minimum=1)
    gen = as_generator(seed)
    errors = np.empty(n_samples)
    with restored(model):
        for k in range(n_samples):
            model.set_flat(posterior.sample(gen))
            errors[k] = model.evaluate(x, y, chunk_size)[1]
    return GibbsError(float(errors.mean()), errors, n_samples, seed)


# ----------------------------------------------------------------------------------------------------
# the whole certificate: optimize, estimate, bound
# ----------------------------------------------------------------------------------------------------

@dataclass
class PacBayesResult:
    r"""Result of :func:`pac_bayes_bounds`: the posterior, its Monte-Carlo errors and four PAC-Bayes bounds.

    Attributes
    ----------
    fit : PosteriorFit
    train : GibbsError
        Monte-Carlo Gibbs error on the ``m`` examples of the bound.
    test : GibbsError or None
        Monte-Carlo Gibbs error on the test examples (reported, not used by the bounds).
    m : int
    kl : float
        KL(Q || P) in nats at the grid-rounded prior.
    prior_j : int or tuple of int
        Grid index of the prior variance (one per variance group).
    delta, delta_mc : float
        Confidence of the PAC-Bayes part of each bound, and of the Monte-Carlo part.
    train_upper : float
        :math:`\mathrm{kl}^{-1}(\hat e_n, \ln(2/\delta_{mc})/n)`, the sample-convergence upper bound on
        the Gibbs training error used by McAllester, Langford-Seeger and Catoni.
    prior_nats : float
        The union bound over the prior-variance grid (:attr:`GaussianPrior.nats`; :math:`2\ln j + \ln(\pi^2/6)`
        on Dziugaite & Roy's grid), added to KL in every bound.
    bounds : dict
        ``"mcallester"``, ``"langford_seeger"``, ``"catoni"``, ``"dziugaite_roy"`` -> bound value.
    catoni_C : float
        The C of Catoni's bound.
    """

    fit: PosteriorFit
    train: GibbsError
    test: GibbsError | None
    m: int
    kl: float
    prior_j: object
    delta: float
    delta_mc: float
    train_upper: float
    prior_nats: float
    bounds: dict
    catoni_C: float


def family_bounds(emp_error, n_samples, kl, m, delta, delta_mc):
    r"""The four PAC-Bayes bounds of a Gibbs classifier from its ingredients (used by :func:`pac_bayes_bounds`
    and by the protocol; recompute a table row with it).

    ``kl`` is everything charged to the posterior (KL(Q||P) plus the union-bound nats of the prior-variance
    grid and of any other choice); :math:`\bar e = \mathrm{kl}^{-1}(\hat e_n, \ln(2/\delta_{mc})/n)`.

    - ``"mcallester"``: :func:`mcallester_bound` (:math:`\bar e`, kl, m, delta);
    - ``"langford_seeger"``: :func:`langford_seeger_bound` (:math:`\bar e`, kl, m, delta);
    - ``"catoni"``: :func:`catoni_bound` (:math:`\bar e`, kl, m, delta) over :data:`CATONI_GRID`;
    - ``"dziugaite_roy"``: :func:`dziugaite_roy_bound` (:math:`\hat e_n`, kl, m, delta, no prior grid,
      ``n_samples``, ``delta_mc``): :math:`\mathrm{kl}^{-1}(\bar e, (\mathrm{kl} + \ln(m/\delta))/(m-1))`.

    Each holds with probability at least :math:`1 - \delta - \delta_{mc}` (the Monte-Carlo event is shared).

    Returns
    -------
    (dict, float, float)
        The bounds by family, :math:`\bar e`, and Catoni's C.
    """
    upper = sample_convergence_bound(emp_error, n_samples, delta_mc)
    cat = catoni_bound(upper, kl, m, delta)
    bounds = {
        "mcallester": mcallester_bound(upper, kl, m, delta),
        "langford_seeger": langford_seeger_bound(upper, kl, m, delta),
        "catoni": cat.bound,
        "dziugaite_roy": dziugaite_roy_bound(emp_error, kl, m, delta, n_samples=n_samples, delta_prime=delta_mc),
    }
    return bounds, upper, cat.C


def pac_bayes_bounds(model, data, prior_mean, *, n_samples=1000, n_test_samples=None, delta=0.025,
                     delta_mc=0.01, mc_seed=None, **optimize):
    r"""Optimize a Gaussian posterior, estimate its Gibbs error and bound it four ways.

    1. :func:`optimize_posterior` on the m examples of ``data`` with prior mean ``prior_mean`` (its
       ``**optimize`` arguments pass through).
    2. :func:`gibbs_error` with ``n_samples`` draws on those examples (and ``n_test_samples`` on the test
       set of a Dataset).
    3. Bounds on the error of the Gibbs classifier Q (:func:`family_bounds`), each holding with probability at
       least :math:`1 - \delta - \delta_{mc}`, with KL replaced by KL + the prior-variance grid's cost
       (:attr:`GaussianPrior.nats`; on Dziugaite & Roy's grid :math:`2\ln j + \ln(\pi^2/6)`, so that the
       Dziugaite-Roy row is their formula exactly).

    Each bound is a separate statement at its own confidence: the smallest of the four is not a bound at
    :math:`1-\delta-\delta_{mc}`. Choosing among several priors or bound families, with the confidence
    divided among them, is what a :class:`genbound.bounds.Protocol` does; there is no ``n_configs`` to type.

    Parameters
    ----------
    model : genbound.nn.Sequential
    data : Dataset or (x, y)
        The m examples of the bound (a Dataset's training set, m >= 8); a Dataset's test set is measured
        for the report only.
    prior_mean : array_like (n_params,) or DataDependentPrior
        Chosen without the m examples; a :class:`DataDependentPrior` refuses ``data`` that overlaps the
        examples it saw (ValueError).
    n_samples : int
        Monte-Carlo draws on the m examples, >= 1.
    n_test_samples : int, optional
        Draws on the test examples (default ``max(1, n_samples // 4)``).
    delta, delta_mc : float
        Failure probabilities of the PAC-Bayes and Monte-Carlo parts.
    mc_seed : int or numpy.random.Generator, optional
        Seed of the Monte-Carlo draws on the m examples (default ``seed + 1`` of the optimization; a
        Generator ``seed`` goes on with its own stream); the test draws use ``mc_seed + 1``.
    **optimize
        Passed to :func:`optimize_posterior` (``seed``, ``max_iter``, ``objective``, ``std_init``, ``grid``,
        ``groups``, ...).

    Returns
    -------
    PacBayesResult
    """
    n_samples = check_int(n_samples, "n_samples", minimum=1)
    delta = check_probability(delta, "delta")
    delta_mc = check_probability(delta_mc, "delta_mc")
    if delta + delta_mc >= 1:
        raise ValueError(f"delta_mc: expected delta + delta_mc < 1, got {delta!r} + {delta_mc!r}")
    if "extra_nats" in optimize:
        raise TypeError("extra_nats: union-bound costs are charged by a Protocol (genbound.experiments.run_protocol)")
    fit = optimize_posterior(model, data, prior_mean, delta=delta, **optimize)
    mc_seed = _derived_seed(optimize.get("seed", 0), 1) if mc_seed is None else mc_seed
    train = gibbs_error(model, data, fit.posterior, n_samples, seed=mc_seed)
    test, test_data = None, test_pair(data)
    if test_data is not None:
        n_test = (max(1, n_samples // 4) if n_test_samples is None
                  else check_int(n_test_samples, "n_test_samples", minimum=1))
        test = gibbs_error(model, test_data, fit.posterior, n_test, seed=_derived_seed(mc_seed, 1))
    prior_nats = fit.prior.nats
    bounds, upper, C = family_bounds(train.error, n_samples, fit.kl + prior_nats, fit.m, delta, delta_mc)
    return PacBayesResult(fit, train, test, fit.m, fit.kl, fit.prior.j, delta, delta_mc, upper, prior_nats, bounds, C)
