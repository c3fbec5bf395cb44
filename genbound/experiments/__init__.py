"""Everything that trains as part of an analysis: the paper's experiments, prior training, trajectories,
sweeps and the report writer. ``genbound.landscape`` and ``genbound.bounds`` measure a given model; this
package composes them with training.
"""
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
from genbound.experiments.protocol import prepare_data, run_protocol, split_indices
from genbound.experiments.rank1_update import Rank1UpdateConfig, fit_loglog_slope, rank1_update_experiment
from genbound.experiments.randomization import RandomizationConfig, randomization_experiment
from genbound.experiments.report import write_report
from genbound.experiments.reproduce import EXPERIMENTS, reproduce
from genbound.experiments.results import Claim, ExperimentResult, seed_summary, t_interval, verdict
from genbound.experiments.sweep import sweep

__all__ = [
    "DATA_NAMES", "data_fingerprint", "load_data",
    "DepartureRecorder",
    "trajectory_landscape", "TrajectoryLandscape", "sgd_vs_gd_batch_losses", "BatchComparison",
    "batch_landscape_study", "BatchLandscapeStudyConfig", "BatchLandscapeStudy", "plot_batch_landscape_study",
    "bounds_report", "data_dependent_prior", "train_prior_mean",
    "run_protocol", "prepare_data", "split_indices",
    "Claim", "ExperimentResult", "seed_summary", "t_interval", "verdict",
    "sweep",
    "batch_landscape_experiment", "BatchLandscapeExperimentConfig", "escape_experiment", "EscapeConfig",
    "batch_minimum_test", "rank1_update_experiment", "Rank1UpdateConfig", "fit_loglog_slope",
    "CompressionConfig", "compression_experiment", "kendall_table",
    "RandomizationConfig", "randomization_experiment",
    "EXPERIMENTS", "reproduce", "write_report", "cells",
]
