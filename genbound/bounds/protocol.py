"""A PAC-Bayes protocol: everything a data-dependent bound depends on, declared before any data is looked at.

A union bound holds over a list fixed in advance, and a confidence level is spent once. A :class:`Protocol`
makes both explicit and checkable: the split of the training set into a prior part and a bound part, the
preprocessing and where its statistics come from, the finite tuple of prior configurations
(:class:`PriorConfig`), the posterior optimization (:class:`PosteriorConfig`), the Monte-Carlo draw count, the
bound families reported, and delta with the way it is divided. It serializes to JSON (and back) to be stored
beside the results.

``genbound.experiments.run_protocol`` runs it (bounds never trains) and returns a :class:`ProtocolResult`: one
row per (configuration, family) with every ingredient, and the minimum over all rows, valid because

- each configuration k has its own prior part (a seeded split that does not look at the data), prior trained
  on it and preprocessing fitted on it only, its own posterior, and its bound part never seen by its prior;
- each (configuration, family) bound is evaluated at :math:`\\delta_{PB}/(K F)` and each configuration's
  Monte-Carlo estimate at :math:`\\delta_{MC}/K`, with K the number of configurations actually run and F
  the number of families: by a union bound, with probability at least :math:`1 - \\delta_{PB} - \\delta_{MC}`
  every row holds at once, so their minimum does too.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field

import pandas as pd

from genbound._checks import check_int, check_named_entries, check_positive, check_probability
from genbound.bounds.posterior import OBJECTIVES, VARIANCE_GROUPS, VarianceGrid

__all__ = ["FAMILIES", "PREPROCESSINGS", "PRIOR_SCALES", "PriorConfig", "PosteriorConfig", "Protocol",
           "ProtocolResult", "PROTOCOL_COLUMNS", "Refinement", "RefinementResult", "REFINEMENT_COLUMNS"]

#: Bound families a protocol may report (see :func:`genbound.bounds.family_bounds`).
FAMILIES = ("mcallester", "langford_seeger", "catoni", "dziugaite_roy")
#: Preprocessings: ``"fixed"`` (pixels / a fixed maximum: data-independent) or ``"standardize_prior"``
#: (per-pixel statistics of each configuration's prior part only).
PREPROCESSINGS = ("fixed", "standardize_prior")
#: Per-parameter prior scales: ones, or each tensor's initialization scale (``model.param_scales()``).
PRIOR_SCALES = ("isotropic", "init")

FAMILY_LABELS = {"mcallester": "McAllester", "langford_seeger": "Langford-Seeger", "catoni": "Catoni",
                 "dziugaite_roy": "Dziugaite-Roy"}


def _check_name(name, field_name="name"):
    if not isinstance(name, str) or not name:
        raise TypeError(f"{field_name}: expected a non-empty string, got {name!r}")
    return name


@dataclass(frozen=True)
class PriorConfig:
    """One prior configuration: how its prior part is cut, how its prior mean is trained, its prior variances.

    Attributes
    ----------
    name : str
        Unique within a protocol.
    fraction : float
        Part of the training set the prior is trained on (the bound uses the rest), in (0, 1). Default 0.5.
    epochs : int
        SGD epochs of the prior mean, >= 1. Default 40.
    batch_size : int
        Default 64.
    lr, momentum : float
        SGD step size and momentum. Defaults 0.05, 0.9.
    seed : int
        Initialization of the network (for a reference name) and SGD order. Default 0.
    early_stopping : float or None
        If given, this part of the prior part is held out of the prior's SGD and the epoch with the smallest
        error on it is kept (both parts belong to the prior: the bound part is never looked at). Default None.
    prior_scale : {"isotropic", "init"}
        Per-parameter prior scales s: ones, or each tensor's initialization scale. Default "isotropic".
    variance_groups : {"one", "layer"}
        One prior variance, or one per layer (each choice charged on the grid). Default "one".
    grid : VarianceGrid
        Grid of the prior variance(s) and its cost. Default Dziugaite & Roy's (b = 100, c = 0.1).
    """

    name: str
    fraction: float = 0.5
    epochs: int = 40
    batch_size: int = 64
    lr: float = 0.05
    momentum: float = 0.9
    seed: int = 0
    early_stopping: float | None = None
    prior_scale: str = "isotropic"
    variance_groups: str = "one"
    grid: VarianceGrid = field(default_factory=VarianceGrid)

    def __post_init__(self):
        _check_name(self.name)
        check_probability(self.fraction, "fraction")
        check_int(self.epochs, "epochs", minimum=1)
        check_int(self.batch_size, "batch_size", minimum=1)
        check_positive(self.lr, "lr")
        check_positive(self.momentum, "momentum", allow_zero=True)
        check_int(self.seed, "seed", minimum=0)
        if self.early_stopping is not None:
            check_probability(self.early_stopping, "early_stopping")
        if self.prior_scale not in PRIOR_SCALES:
            raise ValueError(f"prior_scale: expected one of {PRIOR_SCALES}, got {self.prior_scale!r}")
        if self.variance_groups not in VARIANCE_GROUPS:
            raise ValueError(f"variance_groups: expected one of {VARIANCE_GROUPS}, got {self.variance_groups!r}")
        if isinstance(self.grid, dict):
            object.__setattr__(self, "grid", VarianceGrid(**self.grid))
        if not isinstance(self.grid, VarianceGrid):
            raise TypeError(f"grid: expected a VarianceGrid, got {type(self.grid).__name__}")


@dataclass(frozen=True)
class PosteriorConfig:
    """How every posterior of a protocol is optimized (:func:`genbound.bounds.optimize_posterior`).

    The posterior mean starts at the prior mean. Defaults: objective "quad", 4,000 steps, initial std 0.01,
    batch 128, Adam step sizes 1e-3 (mean), 1e-2 (log std), 1e-2 (log prior variance), seed 0.
    """

    objective: str = "quad"
    max_iter: int = 4000
    std_init: float = 0.01
    batch_size: int = 128
    lr_mean: float = 1e-3
    lr_std: float = 1e-2
    lr_prior: float = 1e-2
    seed: int = 0

    def __post_init__(self):
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective: expected one of {OBJECTIVES}, got {self.objective!r}")
        check_int(self.max_iter, "max_iter", minimum=0)
        check_positive(self.std_init, "std_init")
        check_int(self.batch_size, "batch_size", minimum=1)
        for name in ("lr_mean", "lr_std", "lr_prior"):
            check_positive(getattr(self, name), name, allow_zero=True)
        check_int(self.seed, "seed", minimum=0)


@dataclass(frozen=True)
class Protocol:
    r"""A data-dependent PAC-Bayes protocol, declared before the data is looked at.

    Attributes
    ----------
    priors : tuple of PriorConfig
        The finite list of prior configurations (K = its length, charged automatically).
    posterior : PosteriorConfig
    preprocessing : {"fixed", "standardize_prior"}
        ``"fixed"``: pixels divided by a fixed maximum (data-independent; raw data need ``pixel_max``);
        ``"standardize_prior"``: per-pixel statistics from each configuration's prior part only (from raw or
        fixed-scaled data alike). Default "fixed".
    pixel_max : float or None
        Divisor of raw pixels for ``"fixed"`` (16 for scikit-learn's digits, 255 for MNIST); None: the data
        must already be fixed-scaled. Default None.
    split_seed : int
        Seed of every configuration's prior/bound split (the same permutation of the training set, cut at
        each configuration's fraction). Default 0.
    n_samples : int
        Monte-Carlo weight draws of each posterior's Gibbs error on its bound part. Default 5,000.
    n_test_samples : int
        Draws for the Gibbs test error (reported, not used by any bound). Default 1,000.
    mc_seed : int
        Seed of the Monte-Carlo draws. Default 1.
    delta_pac_bayes : float
        Failure probability of all the PAC-Bayes statements together, divided by K x F. Default 0.025.
    delta_mc : float
        Failure probability of all the Monte-Carlo estimates together, divided by K. Default 0.01.
    families : tuple of str
        Bound families reported (F = its length), from :data:`FAMILIES`. Default ("langford_seeger", "catoni",
        "dziugaite_roy").
    name, description : str
        For tables and the JSON file.
    """

    priors: tuple
    posterior: PosteriorConfig = field(default_factory=PosteriorConfig)
    preprocessing: str = "fixed"
    pixel_max: float | None = None
    split_seed: int = 0
    n_samples: int = 5000
    n_test_samples: int = 1000
    mc_seed: int = 1
    delta_pac_bayes: float = 0.025
    delta_mc: float = 0.01
    families: tuple = ("langford_seeger", "catoni", "dziugaite_roy")
    name: str = "protocol"
    description: str = ""

    def __post_init__(self):
        priors = check_named_entries((PriorConfig(**p) if isinstance(p, dict) else p for p in self.priors),
                                     PriorConfig, "priors")
        object.__setattr__(self, "priors", priors)
        posterior = PosteriorConfig(**self.posterior) if isinstance(self.posterior, dict) else self.posterior
        if not isinstance(posterior, PosteriorConfig):
            raise TypeError(f"posterior: expected a PosteriorConfig, got {type(posterior).__name__}")
        object.__setattr__(self, "posterior", posterior)
        if self.preprocessing not in PREPROCESSINGS:
            raise ValueError(f"preprocessing: expected one of {PREPROCESSINGS}, got {self.preprocessing!r}")
        if self.pixel_max is not None:
            object.__setattr__(self, "pixel_max", check_positive(self.pixel_max, "pixel_max"))
        check_int(self.split_seed, "split_seed", minimum=0)
        check_int(self.n_samples, "n_samples", minimum=1)
        check_int(self.n_test_samples, "n_test_samples", minimum=1)
        check_int(self.mc_seed, "mc_seed", minimum=0)
        check_probability(self.delta_pac_bayes, "delta_pac_bayes")
        check_probability(self.delta_mc, "delta_mc")
        if self.delta_pac_bayes + self.delta_mc >= 1:
            raise ValueError(f"delta_mc: expected delta_pac_bayes + delta_mc < 1, got "
                             f"{self.delta_pac_bayes!r} + {self.delta_mc!r}")
        families = (self.families,) if isinstance(self.families, str) else tuple(self.families)
        if not families or any(f not in FAMILIES for f in families) or len(set(families)) != len(families):
            raise ValueError(f"families: expected distinct names from {FAMILIES}, got {self.families!r}")
        object.__setattr__(self, "families", families)
        _check_name(self.name)
        if not isinstance(self.description, str):
            raise TypeError(f"description: expected a string, got {type(self.description).__name__}")

    # -- the division of delta ---------------------------------------------------------------------
    @property
    def n_configs(self):
        """K: the number of prior configurations (the length of the declared list)."""
        return len(self.priors)

    @property
    def n_families(self):
        """F: the number of bound families reported."""
        return len(self.families)

    @property
    def delta(self):
        """Total failure probability of the protocol's minimum: ``delta_pac_bayes + delta_mc``."""
        return self.delta_pac_bayes + self.delta_mc

    @property
    def delta_per_bound(self):
        """:math:`\\delta_{PB}/(K F)`: the confidence each (configuration, family) bound is evaluated at."""
        return self.delta_pac_bayes / (self.n_configs * self.n_families)

    @property
    def delta_mc_per_config(self):
        """:math:`\\delta_{MC}/K`: the confidence of each configuration's Monte-Carlo estimate."""
        return self.delta_mc / self.n_configs

    # -- JSON --------------------------------------------------------------------------------------
    def to_dict(self):
        """A plain dict (JSON-able) that :meth:`from_dict` turns back into an equal protocol."""
        out = dataclasses.asdict(self)
        out["priors"] = [dataclasses.asdict(p) for p in self.priors]
        out["families"] = list(self.families)
        out["format"] = "genbound.bounds.Protocol/1"
        return out

    @classmethod
    def from_dict(cls, d):
        d = dict(d)
        fmt = d.pop("format", "genbound.bounds.Protocol/1")
        if fmt != "genbound.bounds.Protocol/1":
            raise ValueError(f"format: expected 'genbound.bounds.Protocol/1', got {fmt!r}")
        priors = []
        for p in d.pop("priors"):
            p = dict(p)
            p["grid"] = VarianceGrid(**p.get("grid", {}))
            priors.append(PriorConfig(**p))
        d["posterior"] = PosteriorConfig(**d.get("posterior", {}))
        d["families"] = tuple(d.get("families", ()))
        return cls(priors=tuple(priors), **d)

    def to_json(self, **kwargs):
        kwargs.setdefault("indent", 2)
        return json.dumps(self.to_dict(), **kwargs)

    @classmethod
    def from_json(cls, text):
        return cls.from_dict(json.loads(text))

    def save(self, path):
        """Write the JSON to ``path`` (atomically)."""
        from genbound._io import atomic_write_text

        atomic_write_text(path, self.to_json() + "\n")
        return path

    @classmethod
    def load(cls, path):
        with open(path, encoding="utf-8") as fh:
            return cls.from_json(fh.read())


#: Columns of :attr:`ProtocolResult.table`, in order: every ingredient of every row.
PROTOCOL_COLUMNS = [
    "config", "family", "bound", "value", "bounds_what", "m", "m_prior", "fraction", "kl", "grid_nats", "grid",
    "prior_j", "prior_variance", "variance_groups", "prior_scale", "n_configs", "n_families", "delta_total",
    "delta_pac_bayes", "delta_row", "delta_mc", "delta_mc_row", "n_mc", "train_error_mc", "train_upper",
    "test_error_mc", "n_test_mc", "ratio_to_test", "catoni_C", "catoni_grid_size", "scaling",
    "prior_train_error", "prior_test_error", "prior_epochs_used", "posterior_steps", "seconds",
]


@dataclass
class ProtocolResult:
    """What :func:`genbound.experiments.run_protocol` returns.

    Attributes
    ----------
    protocol : Protocol
        The protocol that was run (K = ``len(protocol.priors)`` configurations, all of them run).
    table : pandas.DataFrame
        One row per (configuration, family), columns :data:`PROTOCOL_COLUMNS`: the bound ``value`` on the
        error of that configuration's Gibbs classifier Q, and what it was computed from (``kl``, ``grid_nats``,
        ``m``, ``delta_row`` = delta_pac_bayes / (K F), ``delta_mc_row`` = delta_mc / K, ``n_mc``,
        ``train_error_mc``, ``train_upper``); recompute any row with :func:`genbound.bounds.family_bounds`.
    info : dict
        Provenance: data fingerprint, scaling, model, timings.
    fits, priors : dict
        Per configuration name: the :class:`genbound.bounds.PosteriorFit` and the
        :class:`genbound.bounds.DataDependentPrior` (not serialized).
    """

    protocol: Protocol
    table: pd.DataFrame
    info: dict = field(default_factory=dict)
    fits: dict = field(default_factory=dict, repr=False)
    priors: dict = field(default_factory=dict, repr=False)

    @property
    def headline(self):
        """The row with the smallest bound: the minimum over every configuration and family, all paid for
        (holds with probability at least ``1 - protocol.delta``)."""
        return self.table.loc[self.table["value"].idxmin()]

    @property
    def bound(self):
        """The protocol's bound: the headline value."""
        return float(self.headline["value"])

    def per_family(self):
        """For each family, the row of the configuration with the smallest bound."""
        idx = self.table.groupby("family", sort=False)["value"].idxmin()
        return self.table.loc[idx.values]

    def save(self, folder, stem="protocol"):
        """Write ``<stem>.json`` (the protocol), ``<stem>_table.csv`` (every row) and ``<stem>_result.json``
        (headline and provenance) into ``folder``; returns the paths."""
        import os

        from genbound._io import atomic_write_json, atomic_write_text, check_writable_folder

        check_writable_folder(folder)
        paths = {"protocol": os.path.join(folder, f"{stem}.json"),
                 "table": os.path.join(folder, f"{stem}_table.csv"),
                 "result": os.path.join(folder, f"{stem}_result.json")}
        self.protocol.save(paths["protocol"])
        atomic_write_text(paths["table"], self.table.to_csv(index=False, float_format="%.10g"))
        head = {}
        for k, v in self.headline.items():
            v = v.item() if hasattr(v, "item") else v
            head[k] = None if isinstance(v, float) and not math.isfinite(v) else v
        atomic_write_json(paths["result"], {"bound": self.bound, "delta_total": self.protocol.delta,
                                            "headline": head, "info": self.info})
        return paths

    def report_rows(self):
        """Rows for :func:`genbound.bounds.report`: per family, the configuration with the smallest bound."""
        rows = []
        for _, r in self.per_family().iterrows():
            label = FAMILY_LABELS[r["family"]]
            detail = (f"protocol {self.protocol.name!r}: best of K = {int(r['n_configs'])} declared prior "
                      f"configurations ({r['config']}), F = {int(r['n_families'])} families; delta "
                      f"{r['delta_pac_bayes']:g}/(K F) = {r['delta_row']:.3g} per bound, MC delta "
                      f"{r['delta_mc']:g}/K = {r['delta_mc_row']:.3g}; prior trained on {int(r['m_prior'])} "
                      f"examples, bound on the other {int(r['m'])}; scaling {r['scaling']}; {r['grid']}; "
                      f"Gibbs error from {int(r['n_mc'])} draws, MC upper {r['train_upper']:.4f}")
            if math.isclose(r["value"], self.bound):
                detail += "; the protocol's minimum over configurations and families"
            rows.append(dict(bound=f"{label} (data-dependent prior, protocol)", bounds_what="error of the Gibbs "
                             "classifier Q", prior=f"N(w_prior, lambda s^2), w_prior trained on {int(r['m_prior'])} "
                             "held-out examples; data-dependent", train_error=r["train_error_mc"],
                             test_error=r["test_error_mc"], gap=r["test_error_mc"] - r["train_error_mc"],
                             value=r["value"], error_bound=r["value"], kl=r["kl"], extra_nats=r["grid_nats"],
                             m=r["m"], delta=r["delta_row"], delta_mc=r["delta_mc_row"], n_mc=r["n_mc"],
                             prior_j=r["prior_j"], scaling=r["scaling"], n_configs=r["n_configs"],
                             train_upper=r["train_upper"], detail=detail))
        return rows



@dataclass(frozen=True)
class Refinement:
    """A further optimization of one protocol configuration's posterior, certified with fresh Monte-Carlo draws
    (run by :func:`genbound.experiments.refine_protocol`).

    The prior stays the configuration's (its mean, scales, variance groups and grid); only the posterior moves.

    Attributes
    ----------
    config : str
        Name of the protocol's prior configuration.
    posterior : PosteriorConfig
        How the posterior is optimized further, starting from the protocol's posterior of that configuration
        (its mean, its standard deviations and its prior variance); ``max_iter=0`` keeps it as it is, so only
        the Monte-Carlo estimate is new. Default: ``PosteriorConfig(max_iter=0)``.
    name : str
        Label in tables; default ``"<config>+<max_iter> <objective>"``.
    """

    config: str
    posterior: PosteriorConfig = field(default_factory=lambda: PosteriorConfig(max_iter=0))
    name: str = ""

    def __post_init__(self):
        _check_name(self.config, "config")
        posterior = PosteriorConfig(**self.posterior) if isinstance(self.posterior, dict) else self.posterior
        if not isinstance(posterior, PosteriorConfig):
            raise TypeError(f"posterior: expected a PosteriorConfig, got {type(posterior).__name__}")
        object.__setattr__(self, "posterior", posterior)
        if not isinstance(self.name, str):
            raise TypeError(f"name: expected a string, got {type(self.name).__name__}")
        if not self.name:
            object.__setattr__(self, "name", f"{self.config}+{posterior.max_iter} {posterior.objective}")


#: Columns of :attr:`RefinementResult.table`: the refinement's name and count, then :data:`PROTOCOL_COLUMNS`.
REFINEMENT_COLUMNS = ["refinement", "n_refinements", *PROTOCOL_COLUMNS]


@dataclass
class RefinementResult:
    r"""What :func:`genbound.experiments.refine_protocol` returns.

    Every row bounds the Gibbs error of one refined posterior, at the protocol's
    :math:`\delta_{PB}/(KF)` (the PAC-Bayes statements hold for every posterior at once) with its own
    Monte-Carlo estimate at :math:`\delta'/T` (fresh draws; T refinements). With probability at least
    :attr:`confidence` = :math:`1 - \delta_{PB} - \delta'` every row holds.

    Attributes
    ----------
    protocol : Protocol
    refinements : tuple of Refinement
    delta_mc : float
        :math:`\delta'`: failure probability of all the refinements' Monte-Carlo estimates together.
    table : pandas.DataFrame
        One row per (refinement, family), columns :data:`REFINEMENT_COLUMNS` (``delta_mc`` = :math:`\delta'`,
        ``delta_mc_row`` = :math:`\delta'/T`, ``delta_total`` = :math:`\delta_{PB} + \delta'`).
    info : dict
        Provenance.
    fits : dict
        Per refinement name: its :class:`genbound.bounds.PosteriorFit` (not serialized).
    """

    protocol: Protocol
    refinements: tuple
    delta_mc: float
    table: pd.DataFrame
    info: dict = field(default_factory=dict)
    fits: dict = field(default_factory=dict, repr=False)

    @property
    def confidence(self):
        r""":math:`1 - \delta_{PB} - \delta'`: the probability that every row holds (alone; together with the
        protocol's own rows subtract the protocol's ``delta_mc`` as well)."""
        return 1.0 - self.protocol.delta_pac_bayes - self.delta_mc

    @property
    def headline(self):
        """The row with the smallest bound (holds with probability at least :attr:`confidence`)."""
        return self.table.loc[self.table["value"].idxmin()]

    @property
    def bound(self):
        """The smallest refined bound."""
        return float(self.headline["value"])

    def save(self, folder, stem="refinement"):
        """Write ``<stem>.json`` (the refinements and the accounting), ``<stem>_table.csv`` (every row) and
        ``<stem>_result.json`` (headline and provenance) into ``folder``; returns the paths."""
        import os

        from genbound._io import atomic_write_json, atomic_write_text, check_writable_folder

        check_writable_folder(folder)
        paths = {"refinements": os.path.join(folder, f"{stem}.json"),
                 "table": os.path.join(folder, f"{stem}_table.csv"),
                 "result": os.path.join(folder, f"{stem}_result.json")}
        atomic_write_json(paths["refinements"], {
            "format": "genbound.bounds.Refinement/1", "protocol": self.protocol.to_dict(),
            "refinements": [dataclasses.asdict(r) for r in self.refinements], "delta_mc": self.delta_mc,
            "confidence": self.confidence})
        atomic_write_text(paths["table"], self.table.to_csv(index=False, float_format="%.10g"))
        head = {}
        for k, v in self.headline.items():
            v = v.item() if hasattr(v, "item") else v
            head[k] = None if isinstance(v, float) and not math.isfinite(v) else v
        atomic_write_json(paths["result"], {"bound": self.bound, "confidence": self.confidence,
                                            "headline": head, "info": self.info})
        return paths
