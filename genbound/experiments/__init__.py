"""Everything that trains as part of an analysis: the paper's experiments, prior training, trajectories,
sweeps and the report writer. ``genbound.landscape`` and ``genbound.bounds`` measure a given model; this
package composes them with training.
"""
from genbound.experiments.departure import DepartureRecorder
from genbound.experiments.landscape import (BatchComparison, BatchLandscapeStudy, BatchLandscapeStudyConfig,
                                            TrajectoryLandscape, batch_landscape_study, plot_batch_landscape_study,
                                            sgd_vs_gd_batch_losses, trajectory_landscape)
from genbound.experiments.priors import PriorTraining, bounds_report, data_dependent_prior, train_prior_mean

__all__ = ["DepartureRecorder", "PriorTraining", "bounds_report", "data_dependent_prior", "train_prior_mean",
           "trajectory_landscape", "TrajectoryLandscape", "sgd_vs_gd_batch_losses", "BatchComparison",
           "batch_landscape_study", "BatchLandscapeStudyConfig", "BatchLandscapeStudy", "plot_batch_landscape_study"]
