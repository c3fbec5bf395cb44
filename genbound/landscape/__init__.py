"""Loss-landscape analysis of a trained model: Hessian (exact HVPs, Lanczos eigenvalues, Hutchinson trace,
spectral density, effective dimension), per-batch landscapes (Lee & Lee), filter-normalized slices, and
epsilon-sharpness.

Every analysis takes ``(model, data, ...)`` with ``data`` a Dataset (its training set) or an ``(x, y)`` pair,
evaluated on all of it in memory chunks of ``chunk_size``; ``batch_size`` only ever means an SGD mini-batch.
Random estimators take ``seed`` and report their spread. Nothing here trains or changes a model's weights:
functions that move them restore them. Training runs that measure landscapes live in
:mod:`genbound.experiments.landscape`.
"""
from genbound.landscape.batches import (BatchLandscapeConfig, CommonMinimumResult, batch_landscape, batch_partition,
                                        common_minimum_test, gradient_diversity)
from genbound.landscape.hessian import (EigenResult, SpectralDensity, TraceResult, effective_dimension, hessian,
                                        hessian_trace, hvp, lanczos, min_eigenvalue, spectral_density,
                                        top_eigenvalues)
from genbound.landscape.sharpness import SharpnessResult, sharpness
from genbound.landscape.slices import (interpolate, plot_slice_1d, plot_slice_2d, random_direction, slice_1d,
                                       slice_2d)

__all__ = [
    "hvp", "hessian", "top_eigenvalues", "min_eigenvalue", "hessian_trace", "spectral_density",
    "effective_dimension", "lanczos", "EigenResult", "TraceResult", "SpectralDensity",
    "batch_landscape", "BatchLandscapeConfig", "batch_partition", "gradient_diversity",
    "common_minimum_test", "CommonMinimumResult",
    "random_direction", "slice_1d", "slice_2d", "interpolate", "plot_slice_1d", "plot_slice_2d",
    "sharpness", "SharpnessResult",
]
