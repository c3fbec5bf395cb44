"""Bad inputs to genbound.landscape: Hessians, Lanczos, per-batch landscapes, slices, sharpness."""
import time

import numpy as np
import pandas as pd
import pytest

import genbound as gb
from genbound import landscape as L
from genbound.nn import Conv2d, Dense, GlobalAvgPool, ReLU, Sequential
from tests.reliability import case, check_raises

MODEL = Sequential([Conv2d(1, 2, 3, padding=1), ReLU(), GlobalAvgPool(), Dense(2, 3)], seed=0, input_shape=(1, 4, 4))
RNG = np.random.default_rng(0)
X = RNG.normal(size=(6, 1, 4, 4))
Y = np.array([0, 1, 2, 0, 1, 2])
D = gb.data.Dataset(X, Y, X[:2], Y[:2], classes=3)
N = MODEL.n_params


def identity(v):
    return v


CASES = [
    # ---- batch_landscape: the batches must partition the training set ------------------------------------
    case(lambda: L.batch_landscape(MODEL, D, batches=[[-1, 1, 2], [3, 4, 5]]), "batches with -1", ValueError,
         "batches[0]"),
    case(lambda: L.batch_landscape(MODEL, D, batches=[[-1, 0, 1], [2, 3, 4]]), "batches [-1, 0, 1 ..]", ValueError,
         "batches[0]"),
    case(lambda: L.batch_landscape(MODEL, D, batches=[[0.5, 1, 2], [3, 4, 5]]), "batches float indices",
         TypeError, "batches[0]"),
    case(lambda: L.batch_landscape(MODEL, D, batches=[np.arange(3.0), np.arange(3.0, 6.0)]),
         "batches whole floats", TypeError, "batches[0]"),
    case(lambda: L.batch_landscape(MODEL, D, batches=[[0, 0, 1], [2, 3, 4, 5]]), "batches repeated index",
         ValueError, "partition"),
    case(lambda: L.batch_landscape(MODEL, D, batches=[[0, 1, 2, 3, 4, 5], []]), "batches with an empty batch",
         ValueError, "batches[1]"),
    case(lambda: L.batch_landscape(MODEL, D, batches=[[0, 1, 2, 3, 4, 6], [5]]), "batches index m", ValueError,
         "batches[0]"),
    case(lambda: L.batch_landscape(MODEL, D, batches=[[0, 1, 2]]), "batches missing examples", ValueError,
         "partition"),
    case(lambda: L.batch_landscape(MODEL, D, batches=[[[0], [1, 2]], [3, 4, 5]]), "batches ragged", ValueError,
         "batches[0]"),
    case(lambda: L.batch_landscape(MODEL, D, batches=5), "batches=5", TypeError, "batches"),
    case(lambda: L.batch_landscape(MODEL, D, batches=[[True] * 6]), "batches boolean mask", TypeError,
         "batches[0]"),
    case(lambda: L.batch_landscape(MODEL, D, batch_size=0), "batch_size=0", ValueError, "batch_size"),
    case(lambda: L.batch_landscape(MODEL, D, config={}), "config dict", TypeError, "config"),
    case(lambda: L.batch_landscape(MODEL, 3), "data=3", TypeError, "data"),
    case(lambda: L.batch_landscape(3, D), "model=3", TypeError, "model"),
    case(lambda: L.BatchLandscapeConfig(eig_tol=0), "eig_tol=0", ValueError, "eig_tol"),
    case(lambda: L.BatchLandscapeConfig(hessian="yes"), "hessian='yes'", TypeError, "hessian"),
    case(lambda: L.batch_partition(D, 0), "batch_partition batch_size=0", ValueError, "batch_size"),
    case(lambda: L.common_minimum_test(MODEL, D, grad_tol=0), "common_minimum_test grad_tol=0", ValueError,
         "grad_tol"),
    case(lambda: L.common_minimum_test(MODEL, D, reference=np.ones(3)), "common_minimum_test short reference",
         ValueError, "reference"),
    case(lambda: L.common_minimum_test(MODEL, D, config=L.BatchLandscapeConfig()), "common_minimum_test no Hessian",
         ValueError, "config"),
    case(lambda: L.gradient_diversity(MODEL, 3), "gradient_diversity data=3", TypeError, "data"),
    # ---- lanczos ------------------------------------------------------------------------------------------
    case(lambda: L.lanczos(identity, np.zeros(5), 3), "lanczos v0=0 (NaN before)", ValueError, "v0"),
    case(lambda: L.lanczos(identity, np.full(5, np.nan), 3), "lanczos NaN v0", ValueError, "v0"),
    case(lambda: L.lanczos(identity, np.ones((5, 2)), 3), "lanczos 2-d v0", ValueError, "v0"),
    case(lambda: L.lanczos(identity, np.ones(0), 3), "lanczos empty v0", ValueError, "v0"),
    case(lambda: L.lanczos(identity, np.ones(5) + 1j, 3), "lanczos complex v0", TypeError, "v0"),
    case(lambda: L.lanczos(identity, [[1.0], [1.0, 2.0]], 3), "lanczos ragged v0", ValueError, "v0"),
    case(lambda: L.lanczos(3, np.ones(5), 3), "lanczos matvec=3", TypeError, "matvec"),
    case(lambda: L.lanczos(lambda v: v[:2], np.ones(5), 3), "lanczos matvec wrong shape", ValueError, "matvec"),
    case(lambda: L.lanczos(lambda v: v * np.nan, np.ones(5), 3), "lanczos matvec NaN", ValueError, "matvec"),
    case(lambda: L.lanczos(identity, np.ones(5), 0), "lanczos max_iter=0", ValueError, "max_iter"),
    case(lambda: L.lanczos(identity, np.ones(5), 3, check_every=0), "lanczos check_every=0", ValueError,
         "check_every"),
    case(lambda: L.lanczos(identity, np.ones(5), 3, stop=3), "lanczos stop=3", TypeError, "stop"),
    # ---- Hessians --------------------------------------------------------------------------------------
    case(lambda: L.hvp(MODEL, D, np.ones(3)), "hvp short v", ValueError, "v"),
    case(lambda: L.hvp(MODEL, D, np.full(N, np.nan)), "hvp NaN v", ValueError, "v"),
    case(lambda: L.hvp(MODEL, D, [[1.0], [1.0, 2.0]]), "hvp ragged v", ValueError, "v"),
    case(lambda: L.hvp(MODEL, D, np.ones(N) + 1j), "hvp complex v", TypeError, "v"),
    case(lambda: L.hvp(MODEL, D, np.ones(N), chunk_size=0), "hvp chunk_size=0", ValueError, "chunk_size"),
    case(lambda: L.hvp(MODEL, (X, Y, Y), np.ones(N)), "hvp data 3-tuple", TypeError, "data"),
    case(lambda: L.hvp(MODEL, (X, Y[:3]), np.ones(N)), "hvp data y too short", ValueError, "y"),
    case(lambda: L.hessian(MODEL, D, max_params=1), "hessian above max_params", ValueError, "max_params"),
    case(lambda: L.top_eigenvalues(MODEL, D, k=0), "top_eigenvalues k=0", ValueError, "k"),
    case(lambda: L.top_eigenvalues(MODEL, D, k=10**6), "top_eigenvalues k > n_params", ValueError, "k"),
    case(lambda: L.top_eigenvalues(MODEL, D, method="power"), "top_eigenvalues method", ValueError, "method"),
    case(lambda: L.top_eigenvalues(MODEL, D, tol=-1), "top_eigenvalues tol<0", ValueError, "tol"),
    case(lambda: L.top_eigenvalues(MODEL, D, max_iter=0), "top_eigenvalues max_iter=0", ValueError, "max_iter"),
    case(lambda: L.min_eigenvalue(MODEL, D, k=0), "min_eigenvalue k=0", ValueError, "k"),
    case(lambda: L.hessian_trace(MODEL, D, n_probes=0), "hessian_trace n_probes=0", ValueError, "n_probes"),
    case(lambda: L.hessian_trace(MODEL, D, n_probes=10**9), "hessian_trace n_probes=1e9 (hang)", ValueError,
         "n_probes"),
    case(lambda: L.hessian_trace(MODEL, D, probes="uniform"), "hessian_trace probes", ValueError, "probes"),
    case(lambda: L.spectral_density(MODEL, D, lanczos_steps=0), "spectral_density lanczos_steps=0", ValueError,
         "lanczos_steps"),
    case(lambda: L.spectral_density(MODEL, D, grid=0), "spectral_density grid=0", ValueError, "grid"),
    case(lambda: L.spectral_density(MODEL, D, grid=10**9), "spectral_density grid=1e9", ValueError, "grid"),
    case(lambda: L.spectral_density(MODEL, D, n_probes=10**9), "spectral_density n_probes=1e9 (hang)", ValueError,
         "n_probes"),
    case(lambda: L.effective_dimension(np.ones(3), -1), "effective_dimension z<0", ValueError, "z"),
    case(lambda: L.effective_dimension(np.array([np.nan, 1.0]), 1), "effective_dimension NaN", ValueError,
         "eigenvalues"),
    case(lambda: L.effective_dimension([[1.0], [1.0, 2.0]], 1), "effective_dimension ragged", ValueError,
         "eigenvalues"),
    # ---- sharpness, directions, slices ----------------------------------------------------------------
    case(lambda: L.sharpness(MODEL, D, eps=0), "sharpness eps=0", ValueError, "eps"),
    case(lambda: L.sharpness(MODEL, D, eps=float("nan")), "sharpness eps=NaN", ValueError, "eps"),
    case(lambda: L.sharpness(MODEL, D, subspace_dim=0), "sharpness subspace_dim=0", ValueError, "subspace_dim"),
    case(lambda: L.sharpness(MODEL, D, subspace_dim=10**9), "sharpness subspace_dim=1e9", ValueError,
         "subspace_dim"),
    case(lambda: L.sharpness(MODEL, D, max_iter=0), "sharpness max_iter=0", ValueError, "max_iter"),
    case(lambda: L.random_direction(MODEL, normalization="l2"), "random_direction normalization", ValueError,
         "normalization"),
    case(lambda: L.random_direction(MODEL, include_bias="yes"), "random_direction include_bias='yes'", TypeError,
         "include_bias"),
    case(lambda: L.slice_1d(MODEL, D, alphas=[np.nan]), "slice_1d NaN alphas", ValueError, "alphas"),
    case(lambda: L.slice_1d(MODEL, D, alphas=[]), "slice_1d no alphas", ValueError, "alphas"),
    case(lambda: L.slice_1d(MODEL, D, alphas=[[1.0], [1.0, 2.0]]), "slice_1d ragged alphas", ValueError, "alphas"),
    case(lambda: L.slice_1d(MODEL, D, alphas=np.zeros(10**6)), "slice_1d 1e6 alphas (hang)", ValueError, "alphas"),
    case(lambda: L.slice_1d(MODEL, D, alphas=[1e300]), "slice_1d alpha=1e300 overflows", ValueError, "alphas"),
    case(lambda: L.slice_1d(MODEL, D, direction=np.full(N, 1e300)), "slice_1d direction=1e300 overflows",
         ValueError, "direction"),
    case(lambda: L.slice_1d(MODEL, D, direction=np.ones(3)), "slice_1d short direction", ValueError, "direction"),
    case(lambda: L.slice_1d(MODEL, D, direction=np.full(N, np.nan)), "slice_1d NaN direction", ValueError,
         "direction"),
    case(lambda: L.slice_2d(MODEL, D, d1=np.ones(3)), "slice_2d short d1", ValueError, "d1"),
    case(lambda: L.slice_2d(MODEL, D, alphas=np.zeros(1000), betas=np.zeros(1000)), "slice_2d 1e6 points (hang)",
         ValueError, "alphas"),
    case(lambda: L.interpolate(MODEL, D, np.full(N, np.nan), np.zeros(N)), "interpolate NaN theta_a", ValueError,
         "theta_a"),
    case(lambda: L.interpolate(MODEL, D, np.ones(3), np.zeros(N)), "interpolate short theta_a", ValueError,
         "theta_a"),
    case(lambda: L.interpolate(MODEL, D, np.zeros(N), np.full(N, 1e308), alphas=[4.0]),
         "interpolate overflowing extrapolation", ValueError, "alphas"),
    case(lambda: L.plot_slice_1d([1, 2]), "plot_slice_1d list", TypeError, "df"),
    case(lambda: L.plot_slice_2d(pd.DataFrame({"alpha": [0.0]})), "plot_slice_2d 1-d table", ValueError, "df"),
]


@pytest.mark.parametrize("call, exc, fragment", CASES)
def test_bad_input(call, exc, fragment):
    check_raises(call, exc, fragment)


@pytest.mark.parametrize("call", [
    lambda: L.hessian_trace(MODEL, D, n_probes=10**12),
    lambda: L.spectral_density(MODEL, D, n_probes=10**12),
    lambda: L.spectral_density(MODEL, D, grid=10**12),
    lambda: L.slice_1d(MODEL, D, alphas=np.zeros(10**7)),
], ids=["hessian_trace", "spectral_density n_probes", "spectral_density grid", "slice_1d"])
def test_no_hang_counts_beyond_their_maximum_raise_fast(call):
    """Counts with documented maxima (MAX_PROBES, MAX_GRID, MAX_POINTS) raise before any work starts."""
    start = time.perf_counter()
    check_raises(call, ValueError, "expected", seconds=5)
    assert time.perf_counter() - start < 2.0


def test_lanczos_good_start_vector_unchanged():
    """The checks refuse only bad input: on a diagonal matrix Lanczos finds the eigenvalues exactly."""
    diag = np.array([3.0, 1.0, -2.0, 0.5])
    run = L.lanczos(lambda v: diag * v, np.ones(4), 4)
    np.testing.assert_allclose(np.sort(run.ritz()[0]), np.sort(diag), atol=1e-12)
