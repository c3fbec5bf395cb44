"""Bad inputs to genbound.factor: reconstruction, the factored step, departures, Jacobians, CP fitting."""
import numpy as np
import pytest

from genbound import factor as F
from tests.reliability import case, check_raises

RNG = np.random.default_rng(0)
P, Q, T = (RNG.normal(size=(2, 1, 3)) for _ in range(3))
W = RNG.normal(size=(2, 3, 3, 3))
G = RNG.normal(size=(2, 3, 3, 3))

CASES = [
    case(lambda: F.reconstruct(P * np.nan, Q, T), "reconstruct NaN p", ValueError, "p"),
    case(lambda: F.reconstruct(P, Q + 1j, T), "reconstruct complex q", TypeError, "q"),
    case(lambda: F.reconstruct(P, Q, T.astype(np.float16)), "reconstruct float16 t", TypeError, "t"),
    case(lambda: F.reconstruct(P[0], Q, T), "reconstruct 2-d p", ValueError, "p"),
    case(lambda: F.reconstruct(P[:1], Q, T), "reconstruct O mismatch", ValueError, "factors"),
    case(lambda: F.reconstruct([P], Q, T), "reconstruct list for p", TypeError, "p"),
    case(lambda: F.reconstruct(P, Q), "reconstruct missing t", TypeError, "t"),
    case(lambda: F.reconstruct(factors=[]), "reconstruct factors=[]", ValueError, "factors"),
    case(lambda: F.reconstruct(P, Q, T, factors=[P, Q, T]), "reconstruct both forms", TypeError, "factors"),
    case(lambda: F.delta(P, Q, T, P, Q, T, float("nan")), "delta lr=NaN", ValueError, "lr"),
    case(lambda: F.delta(P, Q, T, P, Q, T, "0.1"), "delta lr str", TypeError, "lr"),
    case(lambda: F.delta(P, Q, T, P, Q, T), "delta lr missing", TypeError, "lr"),
    case(lambda: F.delta(P, Q, T, P[:, :, :2], Q, T, 0.1), "delta gp shape", ValueError, "gp"),
    case(lambda: F.delta(P, Q, T, P * np.nan, Q, T, 0.1), "delta NaN gp", ValueError, "gp"),
    case(lambda: F.factor_step(P, Q, T, P, Q, T + 1j, 0.1), "factor_step complex gt", TypeError, "gt"),
    case(lambda: F.weight_step(W, G[0], 0.1), "weight_step G shape", ValueError, "G"),
    case(lambda: F.eq2_step(W, G, G[0], 0.1), "eq2_step Delta shape", ValueError, "Delta"),
    case(lambda: F.factor_grads(np.ones((2, 3, 3)), P, Q, T), "factor_grads G shape", ValueError, "G"),
    case(lambda: F.departure(P, Q, T, np.ones((2, 3, 3)), 0.1), "departure G shape", ValueError, "G"),
    case(lambda: F.departure(P, Q, T, G, None), "departure lr missing", TypeError, "lr"),
    case(lambda: F.departure_table([1, 2]), "departure_table ints", TypeError, "departures[0]"),
    case(lambda: F.cp_jacobian(P, Q, T), "cp_jacobian 3-d factors", ValueError, "p"),
    case(lambda: F.cp_manifold_dimension(0, 3, 3), "cp_manifold_dimension C=0", ValueError, "C"),
    case(lambda: F.cp_manifold_dimension(3, 3, 3, rank=1.5), "cp_manifold_dimension rank=1.5", TypeError, "rank"),
    case(lambda: F.cp_manifold_dimension(10**6, 3, 3), "cp_manifold_dimension C=1e6", ValueError, "C"),
    case(lambda: F.cp_manifold_dimension(3, 3, 3, rank=10**6), "cp_manifold_dimension rank=1e6", ValueError,
         "rank"),
    case(lambda: F.cp_manifold_dimension(3, 3, 3, rank=28), "cp_manifold_dimension rank > C*kh*kw", ValueError,
         "rank"),
    case(lambda: F.decompose(W, 0), "decompose rank=0", ValueError, "rank"),
    case(lambda: F.decompose(W, 1.0), "decompose rank=1.0", TypeError, "rank"),
    case(lambda: F.decompose(W, 10**9), "decompose rank=1e9", ValueError, "rank"),
    case(lambda: F.decompose(W * np.nan, 1), "decompose NaN W", ValueError, "W"),
    case(lambda: F.decompose(W + 1j, 1), "decompose complex W", TypeError, "W"),
    case(lambda: F.decompose(W[0, 0], 1), "decompose 2-d W", ValueError, "W"),
    case(lambda: F.decompose(W[None], 1), "decompose 5-d W", ValueError, "W"),
    case(lambda: F.decompose(W, 1, init="svd"), "decompose init='svd'", ValueError, "init"),
    case(lambda: F.decompose(W, 1, config={}), "decompose config dict", TypeError, "config"),
    case(lambda: F.decompose(W, 1, seed=-3), "decompose seed=-3", ValueError, "seed"),
    case(lambda: F.DecomposeConfig(tol=-1), "DecomposeConfig tol<0", ValueError, "tol"),
    case(lambda: F.DecomposeConfig(n_restarts=-1), "DecomposeConfig n_restarts<0", ValueError, "n_restarts"),
    case(lambda: F.project_rank(W * np.nan, P, Q, T), "project_rank NaN W", ValueError, "W"),
    case(lambda: F.project_rank(W, P, Q, T, max_iter=-1), "project_rank max_iter<0", ValueError, "max_iter"),
]


@pytest.mark.parametrize("call, exc, fragment", CASES)
def test_bad_input(call, exc, fragment):
    check_raises(call, exc, fragment)


def test_decompose_collinear_restarts_do_not_crash():
    """The crash of issue 10 stays fixed: a rank-2 fit of 32 exact rank-1 filters (restarts whose components
    become collinear) finishes with finite factors, every filter fitted."""
    fs = [RNG.normal(size=(32, 1, n)) for n in (3, 3, 3)]
    w = F.reconstruct(*fs)
    res = F.decompose(w, 2, seed=0)
    assert all(np.all(np.isfinite(a)) for a in (res.p, res.q, res.t))
    assert np.max(np.linalg.norm((F.reconstruct(res.p, res.q, res.t) - w).reshape(32, -1), axis=1)
                  / np.linalg.norm(w.reshape(32, -1), axis=1)) < 1e-6
