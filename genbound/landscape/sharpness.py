"""Epsilon-sharpness of Keskar et al. (2017): the largest relative rise of the training loss within a small box
around the weights, in the full parameter space or in a random subspace."""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from scipy.optimize import Bounds, minimize

from genbound._checks import check_int, check_model, check_positive
from genbound._rng import as_generator
from genbound.nn.objective import Objective, restored

__all__ = ["sharpness", "SharpnessResult"]


@dataclass
class SharpnessResult:
    """Outcome of :func:`sharpness`.

    Attributes
    ----------
    value : float
        The sharpness phi (a percentage of 1 + L(w)); >= 0.
    loss : float
        L(w), the training loss at the weights.
    max_loss : float
        The largest loss found in the box, L(w + A z*).
    perturbation : numpy.ndarray (n_params,)
        A z*, the parameter-space move that attains ``max_loss``.
    eps : float
    subspace_dim : int or None
    n_evals : int
        Loss-and-gradient evaluations (each a full pass over the training set).
    n_iter : int
        L-BFGS-B iterations.
    converged : bool
        Whether L-BFGS-B stopped on its own tolerance rather than ``max_iter``.
    message : str
    seconds : float
    """

    value: float
    loss: float
    max_loss: float
    perturbation: np.ndarray
    eps: float
    subspace_dim: int | None
    n_evals: int
    n_iter: int
    converged: bool
    message: str
    seconds: float

    def __float__(self):
        return float(self.value)


class _SharpnessProblem:
    """The maximization behind :func:`sharpness`, posed for ``scipy.optimize.minimize``.

    Variables are scaled to the unit box, z = r * u with |u_i| <= 1 and r_i = eps (|(A^+ w)_i| + 1), and the
    objective is the loss rise divided by c, the mean |component| of its gradient at u = 0,

    f(u) = -(L(w + A (r * u)) - L(w)) / c,  grad f(u) = -r * (A^T grad L(w + A (r * u))) / c,

    so that L-BFGS-B starts with gradient entries of order one whatever eps and the loss scale: its first
    quasi-Newton model (identity Hessian) then steps to the faces of the box instead of creeping towards
    them. A = I in the full space. Keeps the best point seen.
    """

    def __init__(self, model, data, eps, subspace_dim, seed, chunk_size):
        self.model = model
        self.obj = Objective(model, data, chunk_size)
        self.w = model.get_flat().astype(np.float64)
        n = self.w.size
        if subspace_dim is None:
            self.a = None
            center = self.w
        else:
            gen = as_generator(seed)
            # columns of expected unit norm: A z moves the weights by about ||z|| for p << n
            self.a = gen.standard_normal((n, subspace_dim)) / np.sqrt(n)
            center = np.linalg.lstsq(self.a, self.w, rcond=None)[0]  # A^+ w
        self.radius = eps * (np.abs(center) + 1.0)
        self.bounds = Bounds(-np.ones(self.radius.size), np.ones(self.radius.size))
        self.loss0, g0 = self.obj.loss_and_grad()
        g0 = self.radius * (g0 if self.a is None else self.a.T @ g0)
        self.fscale = float(np.mean(np.abs(g0))) or 1.0
        self.n_evals = 1
        self.best = (self.loss0, np.zeros(self.radius.size))

    def move(self, u):
        """The parameter-space perturbation A (r * u)."""
        z = self.radius * np.asarray(u, dtype=np.float64)
        return z if self.a is None else self.a @ z

    def fun_and_grad(self, u):
        u = np.asarray(u, dtype=np.float64)
        self.model.set_flat(self.w + self.move(u))
        loss, g = self.obj.loss_and_grad()
        self.n_evals += 1
        if loss > self.best[0]:
            self.best = (loss, u.copy())
        grad = g if self.a is None else self.a.T @ g
        return -(loss - self.loss0) / self.fscale, -self.radius * grad / self.fscale


def sharpness(model, data, eps=1e-3, subspace_dim=None, seed=0, max_iter=10, *, chunk_size=1024):
    """Epsilon-sharpness of the training loss at the model's weights (Keskar et al. 2017).

    .. math:: \\phi_{w,f}(\\epsilon, A) = 100 \\cdot
              \\frac{\\max_{z \\in \\mathcal{C}_\\epsilon} L(w + A z) - L(w)}{1 + L(w)}, \\qquad
              \\mathcal{C}_\\epsilon = \\{ z \\in \\mathbb{R}^p : |z_i| \\le \\epsilon (|(A^+ w)_i| + 1) \\}

    In the full space A = I_n (p = n, the box |z_i| <= eps (|w_i| + 1)); with ``subspace_dim`` = p, A is a
    random n x p Gaussian matrix (entries N(0, 1/n), drawn from ``seed``) and A^+ its pseudo-inverse. The
    inner maximum is computed by L-BFGS-B (``scipy.optimize.minimize`` on -L, with the exact gradient
    -A^T grad L by the chain rule, in variables scaled to the unit box) from z = 0 for at most ``max_iter``
    iterations; the largest loss seen is kept, so the value is a lower bound on the true maximum and is
    never negative. The loss is the mean over the whole training set (computed in chunks of ``chunk_size``).

    Parameters
    ----------
    model : genbound.nn.Sequential (weights restored afterwards)
    data : Dataset or (x, y)
    eps : float > 0 (Keskar et al. report 1e-3 and 5e-4)
    subspace_dim : int, 1 <= p <= n_params, optional
    seed : int, numpy.random.Generator or None
        Source of A.
    max_iter : int >= 1
        L-BFGS-B iteration limit.
    chunk_size : int
        Memory chunk of the loss evaluations (the result does not depend on it).

    Returns
    -------
    SharpnessResult
        ``value`` and the details (loss, max_loss, perturbation, evaluations, convergence).

    References
    ----------
    N. S. Keskar, D. Mudigere, J. Nocedal, M. Smelyanskiy, P. T. P. Tang, "On large-batch training for deep
    learning: generalization gap and sharp minima", ICLR 2017.
    """
    check_model(model)
    eps = check_positive(eps, "eps")
    max_iter = check_int(max_iter, "max_iter", 1)
    if subspace_dim is not None:
        subspace_dim = check_int(subspace_dim, "subspace_dim", 1)
        if subspace_dim > model.n_params:
            raise ValueError(f"subspace_dim: expected at most n_params = {model.n_params}, got {subspace_dim}")
    start = time.perf_counter()
    with restored(model):
        prob = _SharpnessProblem(model, data, eps, subspace_dim, seed, chunk_size)
        res = minimize(prob.fun_and_grad, np.zeros(prob.radius.size), jac=True, method="L-BFGS-B",
                       bounds=prob.bounds, options={"maxiter": max_iter, "gtol": 0.0, "ftol": 0.0})
    max_loss, u = prob.best
    loss0 = prob.loss0
    value = 100.0 * max(max_loss - loss0, 0.0) / (1.0 + loss0)
    return SharpnessResult(value=float(value), loss=float(loss0), max_loss=float(max_loss),
                           perturbation=prob.move(u), eps=eps, subspace_dim=subspace_dim, n_evals=prob.n_evals,
                           n_iter=int(res.nit), converged=bool(res.success), message=str(res.message),
                           seconds=time.perf_counter() - start)
