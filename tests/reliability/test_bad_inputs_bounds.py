"""Bad inputs to genbound.bounds: classical and PAC-Bayes bounds, kl inverses, compression, capacity, report."""
import numpy as np
import pytest

import genbound as gb
from genbound import bounds as B
from genbound.nn import Conv2d, Dense, GlobalAvgPool, ReLU, Sequential
from tests.reliability import case, check_raises

MODEL = Sequential([Conv2d(1, 2, 3, padding=1), ReLU(), GlobalAvgPool(), Dense(2, 3)], seed=0, input_shape=(1, 4, 4))
RNG = np.random.default_rng(0)
X = RNG.normal(size=(6, 1, 4, 4))
Y = np.array([0, 1, 2, 0, 1, 2])
D = gb.data.Dataset(X, Y, X[:2], Y[:2], classes=3)
N = MODEL.n_params

CASES = [
    # ---- classical --------------------------------------------------------------------------------------
    case(lambda: B.sqrt_gap_bound(10, 0), "sqrt_gap_bound m=0", ValueError, "m"),
    case(lambda: B.sqrt_gap_bound(-1, 10), "sqrt_gap_bound N<0", ValueError, "N"),
    case(lambda: B.sqrt_gap_bound(np.nan, 10), "sqrt_gap_bound N=NaN", ValueError, "N"),
    case(lambda: B.sqrt_gap_bound("10", 10), "sqrt_gap_bound N str", TypeError, "N"),
    case(lambda: B.sqrt_gap_bound(10, 10.5), "sqrt_gap_bound m float", TypeError, "m"),
    case(lambda: B.samples_needed(10, 0), "samples_needed eps=0", ValueError, "eps"),
    case(lambda: B.vc_bound(10, 100, 0), "vc_bound delta=0", ValueError, "delta"),
    case(lambda: B.vc_bound(10, 100, 1), "vc_bound delta=1", ValueError, "delta"),
    case(lambda: B.vc_bound(10, 100, 0.05, form="x"), "vc_bound form", ValueError, "form"),
    case(lambda: B.vc_bound(10, 100, 0.05, train_error=2), "vc_bound train_error=2", ValueError, "train_error"),
    case(lambda: B.log_growth_bound(-1, 100), "log_growth_bound d<0", ValueError, "d"),
    case(lambda: B.vc_dimension_relu(0, 2), "vc_dimension_relu W=0", ValueError, "W"),
    case(lambda: B.vc_dimension_relu(10, 2, method="x"), "vc_dimension_relu method", ValueError, "method"),
    # ---- PAC-Bayes ---------------------------------------------------------------------------------------
    case(lambda: B.kl_inverse(1.5, 1), "kl_inverse q=1.5", ValueError, "q"),
    case(lambda: B.kl_inverse(0.1, -1), "kl_inverse c<0", ValueError, "c"),
    case(lambda: B.kl_inverse(np.nan, 1), "kl_inverse q=NaN", ValueError, "q"),
    case(lambda: B.kl_inverse(0.1, np.nan), "kl_inverse c=NaN", ValueError, "c"),
    case(lambda: B.kl_inverse("a", 1), "kl_inverse q str", TypeError, "q"),
    case(lambda: B.kl_inverse(0.1 + 1j, 1), "kl_inverse q complex", TypeError, "q"),
    case(lambda: B.kl_inverse(np.full(3, 0.1), np.ones(4)), "kl_inverse shapes (3,) (4,)", ValueError, "c"),
    case(lambda: B.kl_inverse([[0.1], [0.1, 0.2]], 1), "kl_inverse ragged q", ValueError, "q"),
    case(lambda: B.kl_inverse_lower(np.full(3, 0.1), np.ones(4)), "kl_inverse_lower shapes", ValueError, "c"),
    case(lambda: B.kl_bernoulli(np.full(3, 0.1), np.full(4, 0.2)), "kl_bernoulli shapes", ValueError, "p"),
    case(lambda: B.kl_diag_gaussians(np.zeros(3), 1.0, np.zeros(4), 1.0), "kl_diag_gaussians mu shapes",
         ValueError, "mu_p"),
    case(lambda: B.kl_diag_gaussians(np.zeros(3), np.ones(4), np.zeros(3), 1.0), "kl_diag_gaussians sigma_q shape",
         ValueError, "sigma_q"),
    case(lambda: B.kl_diag_gaussians(np.zeros(3), 1.0, np.zeros((3, 1)), 1.0), "kl_diag_gaussians (3,) vs (3, 1)",
         ValueError, "mu_p"),
    case(lambda: B.kl_diag_gaussians(np.zeros(3), 0.0, np.zeros(3), 1.0), "kl_diag_gaussians sigma_q=0",
         ValueError, "sigma_q"),
    case(lambda: B.kl_diag_gaussians(np.full(3, np.nan), 1.0, np.zeros(3), 1.0), "kl_diag_gaussians NaN mu_q",
         ValueError, "mu_q"),
    case(lambda: B.kl_diag_gaussians(np.zeros(3), np.inf, np.zeros(3), 1.0), "kl_diag_gaussians sigma_q=inf",
         ValueError, "sigma_q"),
    case(lambda: B.mcallester_bound(0.1, 1, 0, 0.05), "mcallester m=0", ValueError, "m"),
    case(lambda: B.mcallester_bound(0.1, -1, 10, 0.05), "mcallester kl<0", ValueError, "kl"),
    case(lambda: B.mcallester_bound(2, 1, 10, 0.05), "mcallester emp_risk=2", ValueError, "emp_risk"),
    case(lambda: B.mcallester_bound(0.1, 1, 10, np.nan), "mcallester delta=NaN", ValueError, "delta"),
    case(lambda: B.mcallester_bound(0.1, np.nan, 10, 0.05), "mcallester kl=NaN", ValueError, "kl"),
    case(lambda: B.mcallester_bound(np.array([0.1, 0.2]), 1, 10, 0.05), "mcallester array emp_risk", TypeError,
         "emp_risk"),
    case(lambda: B.langford_seeger_bound(0.1, 1, 0, 0.05), "langford_seeger m=0", ValueError, "m"),
    case(lambda: B.catoni_bound(0.1, 1, 10, 0.05, grid=[-1]), "catoni grid=[-1]", ValueError, "grid"),
    case(lambda: B.catoni_bound(0.1, 1, 10, 0.05, grid=[]), "catoni grid=[]", ValueError, "grid"),
    case(lambda: B.sample_convergence_bound(0.1, 0, 0.05), "sample_convergence n_samples=0", ValueError,
         "n_samples"),
    case(lambda: B.dziugaite_roy_bound(0.1, 1, 10, b=0), "dziugaite_roy b=0", ValueError, "b"),
    case(lambda: B.dziugaite_roy_bound(0.1, 1, 10, c=-1), "dziugaite_roy c<0", ValueError, "c"),
    # ---- compression -------------------------------------------------------------------------------------
    case(lambda: B.occam_bound(0.1, -1, 10, 0.05), "occam bits<0", ValueError, "bits"),
    case(lambda: B.occam_bound(0.1, 1, 10, 0.05, form="x"), "occam form", ValueError, "form"),
    case(lambda: B.code_length_bits(np.zeros(3, int), 0), "code_length_bits k=0", ValueError, "k"),
    case(lambda: B.code_length_bits(np.array([5]), 2), "code_length_bits index >= k", ValueError, "indices"),
    case(lambda: B.code_length_bits(np.array([0.5, 1.0]), 2), "code_length_bits float indices", TypeError,
         "indices"),
    case(lambda: B.quantize(np.ones(3), []), "quantize no levels", ValueError, "levels"),
    case(lambda: B.quantize(np.array([np.nan]), [0.0, 1.0]), "quantize NaN values", ValueError, "values"),
    case(lambda: B.kmeans_codebook(np.ones(3), 0), "kmeans_codebook k=0", ValueError, "k"),
    case(lambda: B.kmeans_codebook(np.array([np.nan, 1.0]), 2), "kmeans_codebook NaN", ValueError, "values"),
    case(lambda: B.quantize_model(MODEL, scheme="x"), "quantize_model scheme", ValueError, "scheme"),
    case(lambda: B.compression_bound(MODEL, D, k=()), "compression_bound k=()", ValueError, "k"),
    # ---- capacity, posterior, report ---------------------------------------------------------------------
    case(lambda: B.effective_capacity(MODEL, method="x"), "effective_capacity method", ValueError, "method"),
    case(lambda: B.effective_capacity(3), "effective_capacity model=3", TypeError, "model"),
    case(lambda: B.effective_capacity(MODEL, method="hessian"), "effective_capacity hessian without data",
         ValueError, "data"),
    case(lambda: B.effective_capacity(MODEL, D, method="hessian", z=0), "effective_capacity z=0", ValueError, "z"),
    case(lambda: B.effective_capacity(MODEL, at="x"), "effective_capacity at='x'", ValueError, "at"),
    case(lambda: B.layer_summary(3), "layer_summary model=3", TypeError, "model"),
    case(lambda: B.capacity_table("x"), "capacity_table name", ValueError, "name"),
    case(lambda: B.GaussianPosterior(MODEL.get_flat(), -np.ones(N)), "GaussianPosterior negative scale",
         ValueError, "std"),
    case(lambda: B.GaussianPosterior(MODEL.get_flat(), np.ones(3)), "GaussianPosterior std shape", ValueError,
         "std"),
    case(lambda: B.pac_bayes_bounds(MODEL, D, np.ones(3)), "pac_bayes_bounds short prior_mean", ValueError,
         "prior_mean"),
    case(lambda: B.optimize_posterior(MODEL, D, np.ones(3)), "optimize_posterior short prior_mean", ValueError,
         "prior_mean"),
    case(lambda: B.gibbs_error(MODEL, D, B.GaussianPosterior(MODEL.get_flat(), np.ones(N)), n_samples=0),
         "gibbs_error n_samples=0", ValueError, "n_samples"),
    case(lambda: B.report(MODEL, D, config={}), "report config dict", TypeError, "config"),
    case(lambda: B.report(MODEL, D, w0=np.ones(3)), "report short w0", ValueError, "w0"),
    case(lambda: B.report(MODEL, D, w0=np.full(N, np.nan)), "report NaN w0", ValueError, "w0"),
    case(lambda: B.report(MODEL, 3), "report data=3", TypeError, "data"),
    case(lambda: B.ReportConfig(n_samples=0), "ReportConfig n_samples=0", ValueError, "n_samples"),
    case(lambda: B.ReportConfig(delta=2), "ReportConfig delta=2", ValueError, "delta"),
]


@pytest.mark.parametrize("call, exc, fragment", CASES)
def test_bad_input(call, exc, fragment):
    check_raises(call, exc, fragment)
