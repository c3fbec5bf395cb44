"""Everything that trains as part of an analysis: the paper's experiments, prior training, trajectories,
sweeps and the report writer. ``genbound.landscape`` and ``genbound.bounds`` measure a given model; this
package composes them with training.

Apart from ``sweep``, ``reproduce`` and ``EXPERIMENTS``, the names are imported on first use (PEP 562), so that
a sweep's worker process, which needs only :mod:`genbound.experiments.sweep`, does not pay for importing every
experiment (and the landscape tools behind them): 0.3 s instead of 1.0 s.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

# Eager: these two names are also names of submodules, and a submodule imported later would otherwise shadow the
# function (the import system binds a loaded submodule on its package).
from genbound.experiments.reproduce import EXPERIMENTS, reproduce
from genbound.experiments.sweep import sweep

if TYPE_CHECKING:  # the same names, for static tools and the API docs
    from genbound.experiments import cells
    from genbound.experiments.batch_claims import (BatchLandscapeExperimentConfig, EscapeConfig,
                                                   batch_landscape_experiment, batch_minimum_test, escape_experiment)
    from genbound.experiments.compression import CompressionConfig, compression_experiment, kendall_table
    from genbound.experiments.datasets import DATA_NAMES, data_fingerprint, load_data
    from genbound.experiments.departure import DepartureRecorder
    from genbound.experiments.landscape import (BatchComparison, BatchLandscapeStudy, BatchLandscapeStudyConfig,
                                                TrajectoryLandscape, batch_landscape_study, plot_batch_landscape_study,
                                                sgd_vs_gd_batch_losses, trajectory_landscape)
    from genbound.experiments.priors import bounds_report, data_dependent_prior, train_prior_mean
    from genbound.experiments.protocol import prepare_data, refine_protocol, run_protocol, split_indices
    from genbound.experiments.rank1_update import Rank1UpdateConfig, fit_loglog_slope, rank1_update_experiment
    from genbound.experiments.randomization import RandomizationConfig, randomization_experiment
    from genbound.experiments.report import write_report
    from genbound.experiments.results import Claim, ExperimentResult, seed_summary, t_interval, verdict

#: Public name -> the submodule that defines it.
_WHERE = {
    "BatchLandscapeExperimentConfig": "batch_claims",
    "EscapeConfig": "batch_claims",
    "batch_landscape_experiment": "batch_claims",
    "batch_minimum_test": "batch_claims",
    "escape_experiment": "batch_claims",
    "CompressionConfig": "compression",
    "compression_experiment": "compression",
    "kendall_table": "compression",
    "DATA_NAMES": "datasets",
    "data_fingerprint": "datasets",
    "load_data": "datasets",
    "DepartureRecorder": "departure",
    "BatchComparison": "landscape",
    "BatchLandscapeStudy": "landscape",
    "BatchLandscapeStudyConfig": "landscape",
    "TrajectoryLandscape": "landscape",
    "batch_landscape_study": "landscape",
    "plot_batch_landscape_study": "landscape",
    "sgd_vs_gd_batch_losses": "landscape",
    "trajectory_landscape": "landscape",
    "bounds_report": "priors",
    "data_dependent_prior": "priors",
    "train_prior_mean": "priors",
    "prepare_data": "protocol",
    "run_protocol": "protocol",
    "refine_protocol": "protocol",
    "split_indices": "protocol",
    "Rank1UpdateConfig": "rank1_update",
    "fit_loglog_slope": "rank1_update",
    "rank1_update_experiment": "rank1_update",
    "RandomizationConfig": "randomization",
    "randomization_experiment": "randomization",
    "write_report": "report",
    "Claim": "results",
    "ExperimentResult": "results",
    "seed_summary": "results",
    "t_interval": "results",
    "verdict": "results",
}

__all__ = [
    "DATA_NAMES", "data_fingerprint", "load_data",
    "DepartureRecorder",
    "trajectory_landscape", "TrajectoryLandscape", "sgd_vs_gd_batch_losses", "BatchComparison",
    "batch_landscape_study", "BatchLandscapeStudyConfig", "BatchLandscapeStudy", "plot_batch_landscape_study",
    "bounds_report", "data_dependent_prior", "train_prior_mean",
    "run_protocol", "refine_protocol", "prepare_data", "split_indices",
    "Claim", "ExperimentResult", "seed_summary", "t_interval", "verdict",
    "sweep",
    "batch_landscape_experiment", "BatchLandscapeExperimentConfig", "escape_experiment", "EscapeConfig",
    "batch_minimum_test", "rank1_update_experiment", "Rank1UpdateConfig", "fit_loglog_slope",
    "CompressionConfig", "compression_experiment", "kendall_table",
    "RandomizationConfig", "randomization_experiment",
    "EXPERIMENTS", "reproduce", "write_report", "cells",
]


def __getattr__(name):
    if name == "cells":
        module = importlib.import_module("genbound.experiments.cells")
        globals()[name] = module
        return module
    if name in _WHERE:
        value = getattr(importlib.import_module(f"genbound.experiments.{_WHERE[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'genbound.experiments' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
