"""Loss-landscape analysis of a trained model: Hessian (exact HVPs, Lanczos eigenvalues, Hutchinson trace,
spectral density, effective dimension), per-batch landscapes (Lee & Lee), filter-normalized slices, and
epsilon-sharpness.

Functions that take ``data`` work on the whole training set by default, computed in batches; random
estimators report their spread. Nothing here changes a model's weights: functions that move them restore them.
"""
from genbound.landscape.batches import (BatchComparison, CommonMinimumResult, TrajectoryLandscape, batch_landscape,
                                        batch_partition, common_minimum_test, gradient_diversity,
                                        sgd_vs_gd_batch_losses, trajectory_landscape)
from genbound.landscape.hessian import (EigenResult, SpectralDensity, TraceResult, effective_dimension, hessian,
                                        hessian_trace, hvp, lanczos, min_eigenvalue, spectral_density,
                                        top_eigenvalues)
from genbound.landscape.sharpness import SharpnessResult, sharpness
from genbound.landscape.slices import (interpolate, plot_slice_1d, plot_slice_2d, random_direction, slice_1d,
                                       slice_2d)

__all__ = [
    "hvp", "hessian", "top_eigenvalues", "min_eigenvalue", "hessian_trace", "spectral_density",
    "effective_dimension", "lanczos", "EigenResult", "TraceResult", "SpectralDensity",
    "batch_landscape", "batch_partition", "gradient_diversity", "trajectory_landscape", "TrajectoryLandscape",
    "common_minimum_test", "CommonMinimumResult", "sgd_vs_gd_batch_losses", "BatchComparison",
    "random_direction", "slice_1d", "slice_2d", "interpolate", "plot_slice_1d", "plot_slice_2d",
    "sharpness", "SharpnessResult",
]
