"""What the paper's experiments share: cells, seeds, data specs, verdicts and figure helpers.

An experiment (:mod:`~genbound.experiments.compression`, :mod:`~genbound.experiments.randomization`,
:mod:`~genbound.experiments.batch_claims`, :mod:`~genbound.experiments.rank1_update`) is a grid of **cells**.
A cell is one call of a module-level cell function (``compression_cell``, ``escape_cell``, ...) with plain
JSON parameters: one network, one setting, one seed. Cells run through :func:`genbound.experiments.sweep`
(a local process pool or Dask), which stores each result under a key made of the function, its parameters,
the experiment's ``key_extra`` (the data fingerprint and the module's ``CELL_VERSION``) and genbound's
version, so a rerun reuses exactly the cells whose key matches. Each experiment module has a
``grid_cells(data, grid, *, quick, config)`` function (two for the two experiments of ``batch_claims``)
that builds the cells of any grid from a config; ``genbound sweep`` uses it.

**Seeds.** ``seeds=k`` means seeds 0..k-1, a list is taken as given (:func:`seed_list`). The seed of a cell
drives the initialization, the batch order and any corruption; the train/test split has its own
``data_seed``, fixed across a run.

**Data specs.** A cell loads its data by itself (in a worker process, perhaps on another machine), so the data
is passed as a JSON value (:func:`data_spec`): ``"digits"``, ``"mnist-subset"`` or the absolute path of a
folder of MNIST IDX files; :func:`cell_data` loads it (cached per process) and takes the first ``n_train`` /
``n_test`` examples.

Statistics over seeds are 95 % Student-t intervals; :func:`claim` turns one value per seed into a
:class:`~genbound.experiments.Claim` with the verdict of :func:`~genbound.experiments.verdict`.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import itertools
import numbers
import os
import re
import tempfile

import numpy as np

from genbound._checks import check_int
from genbound.experiments.datasets import DATA_NAMES, load_data
from genbound.experiments.results import Claim, t_interval, verdict
from genbound.experiments.sweep import BACKENDS, sweep

__all__ = ["SCALINGS", "COLORS", "DataOptions", "seed_list", "data_spec", "data_label", "cell_data",
           "default_network", "example_sample", "check_backend", "check_config", "setting_label", "check_ranks",
           "check_data_options", "experiment_arguments", "run_cells", "config_dict", "config_cell", "make_cells",
           "expand_grid", "filters_label", "slug", "fmt_interval", "interval_text", "claim", "legend_below",
           "plain_log_axis"]

#: Input scalings an experiment config accepts (:func:`genbound.experiments.load_data`).
SCALINGS = ("standardize", "fixed", "raw")

#: Line colours of the experiments' figures, one per filter type or method.
COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")


# ------------------------------------------------------------------------------------------------------
# arguments
# ------------------------------------------------------------------------------------------------------


def seed_list(seeds):
    """``seeds`` as a list of distinct ints: an int k >= 1 gives 0..k-1; a list is taken as given."""
    if isinstance(seeds, numbers.Integral) and not isinstance(seeds, bool):
        return list(range(check_int(seeds, "seeds", minimum=1)))
    if isinstance(seeds, (list, tuple, range, np.ndarray)):
        out = [check_int(s, "seeds", minimum=0) for s in seeds]
        if not out:
            raise ValueError("seeds: expected at least one seed, got an empty list")
        if len(set(out)) != len(out):
            raise ValueError(f"seeds: expected distinct seeds, got {out}")
        return out
    raise TypeError(f"seeds: expected an int (number of seeds) or a list of ints, got {type(seeds).__name__}")


def data_spec(data):
    """``data`` as a JSON value a cell can load by itself: a name of :data:`DATA_NAMES` or an absolute path."""
    if isinstance(data, str) and data in DATA_NAMES:
        return data
    if isinstance(data, (str, os.PathLike)) and os.path.isdir(data):
        return os.path.abspath(os.fspath(data))
    raise ValueError(f"data: expected one of {DATA_NAMES} or a folder of MNIST IDX files, got {data!r}")


def data_label(data):
    """A short name for file names and tables: the name, or the folder's base name for IDX files."""
    return data if data in DATA_NAMES else os.path.basename(os.path.normpath(data)) or "idx"


@functools.lru_cache(maxsize=4)
def cell_data(data, data_seed, scaling, n_train=None, n_test=None):
    """The data set of a cell (cached per process): :func:`load_data`, then the first ``n_train`` training and
    ``n_test`` test examples (None: all)."""
    full = load_data(data, data_seed, scaling=scaling)
    if n_train is None and n_test is None:
        return full
    train_idx = np.arange(full.m if n_train is None else min(n_train, full.m))
    test_idx = None if n_test is None else np.arange(min(n_test, full.n_test))
    return full.subset(train_idx, test_idx)


def example_sample(m, k, seed):
    """A fixed sample of ``k`` of ``m`` training examples: ``k`` distinct indices of ``range(m)`` drawn by
    ``numpy.random.default_rng(seed)``, sorted; None (every example) when ``k`` is None or at least ``m``.
    The experiments draw it from the config's ``data_seed``, so every network and training seed of a run
    is measured on the same examples."""
    if k is None or k >= m:
        return None
    return np.sort(np.random.default_rng(seed).choice(m, check_int(k, "k", minimum=1), replace=False))


def default_network(data, digits="digits_gap"):
    """The reference network of a data spec: ``digits`` on the 8x8 digits, ``"mnist_gap"`` on 28x28 images."""
    return digits if data == "digits" else "mnist_gap"


def check_backend(backend, scheduler, workers):
    """Validate the sweep arguments before any work."""
    if backend not in BACKENDS:
        raise ValueError(f"backend: expected one of {BACKENDS}, got {backend!r}")
    if scheduler is not None and backend != "dask":
        raise ValueError(f"scheduler: only used with backend='dask', got backend={backend!r}")
    if workers is not None:
        check_int(workers, "workers", minimum=1)


def check_config(config, cls, quick, data="digits"):
    """``config`` if it is a ``cls``, else the default setting for ``data``: ``cls.for_data(data, quick)``
    (:meth:`DataOptions.for_data`: the quick setting with ``quick``, else the full-run default of the data)."""
    if config is None:
        return cls.for_data(data, quick)
    if not isinstance(config, cls):
        raise TypeError(f"config: expected a {cls.__name__}, got {type(config).__name__}")
    return config


def setting_label(config, quick, data):
    """Which setting an experiment ran with, for its recorded configuration: ``"given"`` (a config was passed),
    ``"quick"``, ``"full (digits)"`` or ``"full (28x28 images)"`` (:meth:`DataOptions.for_data`)."""
    if config is not None:
        return "given"
    if quick:
        return "quick"
    return "full (digits)" if data_spec(data) == "digits" else "full (28x28 images)"


def experiment_arguments(config, cls, quick, seeds, data, backend, scheduler, workers):
    """The checks every experiment function makes before any work: returns ``(config, seeds, spec)``
    (:func:`data_spec`, :func:`check_config` with the data's default setting, :func:`seed_list`,
    :func:`check_backend`)."""
    spec = data_spec(data)
    config = check_config(config, cls, quick, spec)
    seeds = seed_list(seeds)
    check_backend(backend, scheduler, workers)
    return config, seeds, spec


def check_ranks(ranks):
    """``ranks`` as a non-empty tuple of distinct CP ranks (ints >= 1, None for full filters)."""
    ranks = tuple(ranks)
    if not ranks:
        raise ValueError("ranks: expected at least one rank (None for full filters)")
    for r in ranks:
        if r is not None:
            check_int(r, "ranks", minimum=1)
    if len(set(ranks)) != len(ranks):
        raise ValueError(f"ranks: expected distinct ranks, got {ranks}")
    return ranks


@dataclasses.dataclass(frozen=True)
class DataOptions:
    """The fields every experiment config starts with (each experiment's config derives from this one).

    Attributes
    ----------
    network : str or None
        Reference network (:func:`genbound.nn.reference_cnn`); None: the experiment's default for the data.
    scaling : {"standardize", "fixed", "raw"}
        Input scaling of :func:`genbound.experiments.load_data`.
    data_seed : int
        Seed of the train/test split (fixed across training seeds). Default 0.
    n_train, n_test : int or None
        Use only the first ``n_train`` training / ``n_test`` test examples (None: all; for tests and
        cheaper runs).
    """

    network: str | None = None
    scaling: str = "standardize"
    data_seed: int = 0
    n_train: int | None = None
    n_test: int | None = None

    def __post_init__(self):
        check_data_options(self)

    @classmethod
    def quick(cls):
        """The ``--quick`` setting (each experiment's config defines its own)."""
        return cls()

    @classmethod
    def mnist(cls):
        """The full-run setting on 28x28 images (each experiment's config defines its own; default ``cls()``)."""
        return cls()

    @classmethod
    def for_data(cls, data="digits", quick=False):
        """The default setting of the experiment on ``data``: :meth:`quick` with ``quick`` (whatever the data),
        else ``cls()`` (the full run on the 8x8 digits) for ``"digits"`` and :meth:`mnist` (the full run on
        28x28 images, sized so that a 2-core machine runs every experiment in hours) for ``"mnist-subset"``
        or a folder of MNIST IDX files. ``genbound reproduce`` and ``genbound sweep`` use it when no config
        is given."""
        if quick:
            return cls.quick()
        return cls() if data_spec(data) == "digits" else cls.mnist()


def check_data_options(config):
    """Validate the fields of :class:`DataOptions`: ``network`` (None or a reference network), ``scaling``,
    ``data_seed``, ``n_train`` and ``n_test``."""
    from genbound.nn import REFERENCE_NETWORKS

    if config.network is not None and config.network not in REFERENCE_NETWORKS:
        raise ValueError(f"network: expected None or one of {REFERENCE_NETWORKS}, got {config.network!r}")
    if config.scaling not in SCALINGS:
        raise ValueError(f"scaling: expected one of {SCALINGS}, got {config.scaling!r}")
    check_int(config.data_seed, "data_seed", minimum=0)
    for name in ("n_train", "n_test"):
        if getattr(config, name) is not None:
            check_int(getattr(config, name), name, minimum=1)


# ------------------------------------------------------------------------------------------------------
# cells
# ------------------------------------------------------------------------------------------------------


def run_cells(fn, cells, *, out, key_extra, backend, scheduler, workers, progress):
    """Run ``cells`` (a list of dicts) through :func:`sweep` into ``out`` (a temporary folder when None) and
    return the table; a failed cell raises (an experiment's statistics need every cell)."""
    with contextlib.ExitStack() as stack:
        if out is None:
            out = stack.enter_context(tempfile.TemporaryDirectory(prefix="genbound-sweep-"))
        return sweep(fn, cells, backend=backend, scheduler=scheduler, workers=workers, out=out,
                     key_extra=key_extra, progress=progress, raise_on_error=True)


def config_dict(config):
    """A frozen config as plain JSON values (nested dataclasses as dicts, tuples as lists)."""
    def plain(v):
        if dataclasses.is_dataclass(v):
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        return v

    return plain(config)


def config_cell(fn, config, **fixed):
    """One cell of the cell function ``fn``: each parameter of ``fn`` from ``fixed`` if given there, else the
    config field of the same name (as plain JSON, :func:`config_dict`). A parameter found in neither is a
    TypeError naming it, unless ``fn`` gives it a default.

    A parameter that has a default in ``fn``'s signature is left out of the cell while its value equals that
    default (``fn`` then receives the same value by itself): adding an optional parameter to a cell function
    keeps the keys, hence the stored results, of every cell that does not use it."""
    import inspect

    fields = config_dict(config)
    cell = {}
    for name, param in inspect.signature(fn).parameters.items():
        if name in fixed:
            cell[name] = fixed[name]
        elif name in fields:
            cell[name] = fields[name]
        elif param.default is inspect.Parameter.empty:
            raise TypeError(f"{fn.__name__}: parameter {name!r} is neither given nor a field of "
                            f"{type(config).__name__}")
    return _drop_defaults(fn, cell)


def _optional_parameters(fn):
    """The parameters of ``fn`` with a default, and their defaults."""
    import inspect

    return {name: p.default for name, p in inspect.signature(fn).parameters.items()
            if p.default is not inspect.Parameter.empty}


def _drop_defaults(fn, cell):
    """``cell`` without the optional parameters of ``fn`` whose value is their default (same type and value)."""
    optional = _optional_parameters(fn)
    return {k: v for k, v in cell.items()
            if not (k in optional and type(v) is type(optional[k]) and v == optional[k])}


def make_cells(fn, config, data, grid, cell_version, **fixed):
    """The cells of the cell function ``fn`` over ``grid`` and the ``key_extra`` of their sweep: what every
    experiment's ``grid_cells`` returns.

    Each cell holds ``data`` (a :func:`data_spec`) and ``fixed``, every other parameter of ``fn`` from the
    config field of the same name (:func:`config_cell`), with the values of ``grid`` substituted
    (:func:`expand_grid`); an optional parameter of ``fn`` at its default is left out (:func:`config_cell`).
    ``key_extra`` is ``{"data_fingerprint": ..., "cell_version": cell_version}``: the
    fingerprint of the data the cells train on (after ``n_train`` / ``n_test``), and the module's version of
    its cell functions, so that changing either recomputes stored cells.
    """
    from genbound.experiments.datasets import data_fingerprint

    spec = data_spec(data)
    optional = _optional_parameters(fn)
    cells = expand_grid(config_cell(fn, config, data=spec, **fixed), grid, fn.__name__, optional=optional)
    cells = [_drop_defaults(fn, cell) for cell in cells]
    fingerprint = data_fingerprint(cell_data(spec, config.data_seed, config.scaling, config.n_train,
                                             config.n_test))
    return cells, {"data_fingerprint": fingerprint, "cell_version": cell_version}


def expand_grid(base, grid, fn_name, optional=()):
    """Cells: ``base`` (one cell's parameters) with every combination of ``grid`` (name -> list of values)
    substituted, the first name varying slowest. Names neither in ``base`` nor in ``optional`` (parameters with
    a default) are a ValueError naming them."""
    grid = dict(grid or {})
    for name, values in grid.items():
        if name not in base and name not in optional:
            raise ValueError(f"grid: {name!r} is not a parameter of {fn_name}; expected some of "
                             f"{sorted({*base, *optional})}")
        if not isinstance(values, (list, tuple, range)) or not len(values):
            raise ValueError(f"grid[{name!r}]: expected a non-empty list of values, got {values!r}")
    return [{**base, **dict(zip(grid, combo))} for combo in itertools.product(*grid.values())]


# ------------------------------------------------------------------------------------------------------
# tables, verdicts and figures
# ------------------------------------------------------------------------------------------------------


def filters_label(rank):
    """``"full"`` for rank None (or NaN, as a table stores it), else ``"rank R"``."""
    if rank is None or (isinstance(rank, float) and np.isnan(rank)):
        return "full"
    return f"rank {int(rank)}"


def slug(text):
    """``"Eq. 1, N = parameters"`` -> ``"eq_1_n_parameters"``."""
    return re.sub(r"[^0-9a-z]+", "_", str(text).lower()).strip("_")


def fmt_interval(mean, lo, hi, digits=3):
    """``"0.123 [0.100, 0.146]"``, or the mean alone when the interval is undefined."""
    if not np.isfinite(mean):
        return "n/a"
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return f"{mean:.{digits}g}"
    return f"{mean:.{digits}g} [{lo:.{digits}g}, {hi:.{digits}g}]"


def interval_text(values, digits=3):
    """``"0.123 [0.100, 0.146] (n = 5)"``: mean and 95 % t-interval over seeds."""
    mean, _, lo, hi, n = t_interval(values)
    if not np.isfinite(mean):
        return "n/a (no finite value)"
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return f"{mean:.{digits}g} (n = {n}, no interval)"
    return f"{fmt_interval(mean, lo, hi, digits)} (n = {n})"


def claim(statement, values, threshold, side, quantity):
    """A :class:`Claim` on ``values`` (one per seed): its verdict from the 95 % t-interval against
    ``threshold`` (``side`` "above" or "below"), its evidence the interval of ``quantity``."""
    _, _, lo, hi, _ = t_interval(values)
    return Claim(statement=statement, verdict=verdict(lo, hi, threshold, side),
                 evidence=f"{quantity}: {interval_text(values)} over seeds (claimed {side} {threshold:g})")


def legend_below(fig, ax, title, ncol=4):
    """Finish a constrained-layout figure: one legend (from ``ax``'s lines) below the panels, and ``title``."""
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=ncol, fontsize=8)
    fig.suptitle(title)
    return fig


def plain_log_axis(ax):
    """Log y axis with plain-number tick labels (call after plotting: minor ticks at 2 and 5 are labelled when
    the axis spans less than two decades)."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    lo, hi = ax.get_ylim()
    if lo > 0 and hi / lo < 100:
        def minor(v, _):
            lead = v / 10 ** np.floor(np.log10(v))
            return f"{v:g}" if np.isclose(lead, 2) or np.isclose(lead, 5) else ""
        ax.yaxis.set_minor_formatter(FuncFormatter(minor))
    else:
        ax.yaxis.set_minor_formatter(NullFormatter())
