"""Entropic static JKO step (Peyré 2015; Chizat–Peyré–Schmitzer–Vialard 2018) on a grid of states (spec 7.3).

After multiplying the JKO objective by 2 tau ::

    min_gamma <C, gamma> + eps KL(gamma | 1) + lambda KL(gamma^T 1 | pi_T),  gamma 1 = p,  lambda = 2 tau T

with cost ``C((x, g), (y, g')) = |x - y|^2 + C_G(g, g')`` and kernel ``exp(-C / eps) = K_G ⊗ K_x``
(separable: applied per axis, never formed). Log-domain scaling iterations
``a <- p / (K b)``, ``b <- (pi / (K^T a))^(lambda / (lambda + eps))``; new marginal
``nu = b ⊙ (K^T a)``. The graph part ``C_G`` is a *candidate* cost (spec 5: which one Paper 1
uses is unknown):

* ``graph_cost="poisson"``: ``K_G = I + tau * rate * W`` (an O(tau) jump kernel), i.e.
  ``C_G(g, g') = -eps log(tau rate w(g, g'))``;
* ``graph_cost="glauber"``: the same tilted by ``exp((f(x, g) - f(x, g')) / (2T))`` at the source x;
* any (K, K) matrix.

[derived here, checked numerically by the tests] With ``eps = beta tau`` and ``P = I + tau R`` a
first-order expansion of the step gives, as tau -> 0 (d = 0), the jump law
``r(g -> g') = k(g -> g') (u_g / u_g')^alpha`` with ``alpha = lambda / eps = 2T / beta`` and
``u = rho / pi``, where ``k = rate w`` (poisson) or the glauber rate ``rate w exp((f_g - f_g')/(2T))``
(see :func:`entropic_limit_rhs`). So the poisson cost relaxes to ``rho ∝ pi^(2 alpha / (1 + 2 alpha))``,
*not* to pi, unless eps / tau -> 0; the glauber-tilted cost keeps pi stationary for every beta,
and its limit is the linear glauber flow only as alpha -> 0 (eps >> tau), which conflicts with
the spatial part's need for eps << tau. Use the dynamic form for consistent steps.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import logsumexp

from ..grid import Grid, GridSolver, check_density, n_steps
from ..potentials import Potential
from ..space import SemiDiscreteSpace
from ..validation import positive, positive_int
from .step import check_temperature

__all__ = ["EntropicJKOStep", "entropic_limit_rhs"]


class EntropicJKOStep:
    """Entropic static JKO step (spec 7.3) on a grid of states; see the module docstring.

    Parameters
    ----------
    space, potential, grid, T
        As for the grid solver; any d in {0, 1, 2}.
    eps : float
        Entropic regularisation (keep eps << tau for the spatial part).
    graph_cost : "poisson" or array (K, K)
        Candidate graph cost C_G; ``poisson``: ``K_G = I + tau * rate * W``.
    rate : float
        Jump-rate scale of the ``poisson`` kernel (default T, matching ``T w`` of the linear laws).
    tol, max_iter : stopping rule on the l1 error of the first marginal.
    backend : "log" (own separable log-domain iterations) or "pot" (``ot.unbalanced`` on the
        dense cost; small problems).
    """

    def __init__(self, space: SemiDiscreteSpace, potential: Potential, grid: Grid, T: float, eps: float,
                 graph_cost: Any = "poisson", rate: float | None = None, tol: float = 1e-12,
                 max_iter: int = 100000, backend: str = "log"):
        T, eps = check_temperature(T, "the entropic JKO step"), positive("eps", eps)
        tol, max_iter = positive("tol", tol), positive_int("max_iter", max_iter)
        if backend not in ("log", "pot"):
            raise ValueError(f"unknown backend {backend!r}; expected 'log' or 'pot'")
        self._gs = GridSolver(space, potential, grid, T, law="glauber", check=False)
        self.space, self.grid, self.T, self.eps = self._gs.space, grid, T, eps
        self.K, self.M = self._gs.K, self._gs.M
        self.graph_cost, self.rate = graph_cost, T if rate is None else positive("rate", rate)
        self.tol, self.max_iter, self.backend = float(tol), int(max_iter), backend
        logpi = -self._gs.f / T
        self.log_pi = logpi - logsumexp(logpi) - np.log(grid.cell_volume)  # density normalised to mass 1
        self.W = space.weights.toarray()

    # ---- kernels --------------------------------------------------------------------------------
    def log_graph_kernel(self, tau: float) -> np.ndarray:
        """log K_G = -C_G / eps, shape (K, K) (-inf where no transfer is allowed)."""
        if isinstance(self.graph_cost, str):
            if self.graph_cost not in ("poisson", "glauber"):
                raise ValueError(f"unknown graph cost {self.graph_cost!r}; "
                                 "expected 'poisson', 'glauber' or a (K, K) array")
            with np.errstate(divide="ignore"):
                logK = np.log(tau * self.rate * self.W)
            np.fill_diagonal(logK, 0.0)
            if self.graph_cost == "poisson":
                return logK
            f = self._gs.f  # (K, M): tilt exp((f_g - f_h) / (2T)) at the source cell
            tilt = (f[:, None, :] - f[None, :, :]) / (2 * self.T)
            out = logK[:, :, None] + tilt
            idx = np.arange(self.K)
            out[idx, idx, :] = 0.0
            return out
        C = np.asarray(self.graph_cost, dtype=float)
        if C.shape != (self.K, self.K):
            raise ValueError(f"graph_cost must have shape ({self.K}, {self.K}), got {C.shape}")
        return -C / self.eps

    def _log_axis_kernel(self) -> np.ndarray:
        ax = self.grid.axes[0]
        return -((ax[:, None] - ax[None, :]) ** 2) / self.eps

    def _log_spatial(self, logv: np.ndarray) -> np.ndarray:
        """log(K_x v) per node for log values v (K, M); K_x = exp(-|x - y|^2 / eps), one axis at a time."""
        d = self.grid.dim
        if d == 0:
            return logv
        lk = self._log_axis_kernel()  # symmetric
        n = self.grid.n_cells
        V = logv.reshape((self.K,) + (n,) * d)
        for axis in range(1, d + 1):
            V = np.moveaxis(V, axis, -1)
            V = logsumexp(lk + V[..., None, :], axis=-1)  # LSE_j (lk[i, j] + V[..., j])
            V = np.moveaxis(V, -1, axis)
        return V.reshape(self.K, self.M)

    def _log_apply(self, logK_G: np.ndarray, logv: np.ndarray, transpose: bool = False) -> np.ndarray:
        """log(Kmat v) (or log(Kmat^T v)) with Kmat[(g,i),(h,j)] = K_G[g,h](x_i) K_x[i,j], log inputs.

        ``logK_G`` is (K, K) or cell-dependent (K, K, M) (evaluated at the source cell x_i).
        """
        G = logK_G if logK_G.ndim == 3 else logK_G[:, :, None]
        if not transpose:  # sum over (h, j): space first, then graph at x_i
            return logsumexp(G + self._log_spatial(logv)[None, :, :], axis=1)
        # sum over (g, i): graph at x_i first, then space
        return self._log_spatial(logsumexp(G + logv[:, None, :], axis=0))

    def step(self, rho: Any, tau: float) -> tuple[np.ndarray, dict]:
        """One entropic JKO step; returns (new density (K, M) with mass one, info dict)."""
        tau = positive("time step tau", tau)
        vol = self.grid.cell_volume
        rho = check_density(rho, (self.K, self.M), vol)
        lam = 2 * tau * self.T
        expo = lam / (lam + self.eps)
        p = rho * vol  # masses
        logK_G = self.log_graph_kernel(tau)
        if self.backend == "pot":
            return self._step_pot(p, logK_G, lam)
        with np.errstate(divide="ignore"):
            logp = np.log(p)
        logpi = self.log_pi + np.log(vol)  # pi as masses
        logb = np.zeros_like(p)
        err, it = np.inf, 0
        for it in range(1, self.max_iter + 1):
            loga = logp - self._log_apply(logK_G, logb)
            logKta = self._log_apply(logK_G, loga, transpose=True)
            logb = expo * (logpi - logKta)
            if it % 10 == 0 or it == 1:
                marg = np.exp(loga + self._log_apply(logK_G, logb))
                err = float(np.abs(marg - p).sum())
                if err <= self.tol:
                    break
        nu = np.exp(logb + self._log_apply(logK_G, loga, transpose=True))
        mass = nu.sum()
        return nu / (mass * vol), {"iterations": it, "marginal_error": err, "mass_before_normalisation": float(mass)}

    def _step_pot(self, p: np.ndarray, logK_G: np.ndarray, lam: float) -> tuple[np.ndarray, dict]:
        import ot

        vol = self.grid.cell_volume
        if logK_G.ndim == 3:
            raise ValueError("backend 'pot' needs a cell-independent graph cost ('poisson' or an array)")
        Cg = -self.eps * logK_G
        if self.grid.dim:
            x = self.grid.centers
            Cx = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
        else:
            Cx = np.zeros((1, 1))
        C = (Cg[:, None, :, None] + Cx[None, :, None, :]).reshape(self.K * self.M, self.K * self.M)
        C = np.where(np.isfinite(C), C, 1e300)
        pi = np.exp(self.log_pi + np.log(vol)).ravel()
        gamma = ot.unbalanced.sinkhorn_unbalanced(p.ravel(), pi, C, self.eps, (float("inf"), lam),
                                                  method="sinkhorn", reg_type="entropy",
                                                  numItermax=min(self.max_iter, 3000), stopThr=self.tol)
        nu = gamma.sum(axis=0).reshape(self.K, self.M)
        mass = nu.sum()
        return nu / (mass * vol), {"mass_before_normalisation": float(mass)}

    def evolve(self, rho0: Any, t_final: float, tau: float) -> np.ndarray:
        """Iterate ``ceil(t_final / tau)`` entropic steps of equal size."""
        n = n_steps(float(t_final), float(tau))
        rho = rho0
        for _ in range(n):
            rho = self.step(rho, float(t_final) / n)[0]
        return rho


def entropic_limit_rhs(rho: np.ndarray, space: SemiDiscreteSpace, f: np.ndarray, T: float, rate: float,
                       beta: float, graph_cost: str = "poisson") -> np.ndarray:
    """d rho / dt of the tau -> 0 limit of the d = 0 entropic step with eps = beta tau.

    Jump rates ``r(g -> h) = k(g -> h) (u_g / u_h)^(2 T / beta)``, u = rho / pi, pi = exp(-f / T),
    ``k = rate w`` (``poisson``) or ``rate w exp((f_g - f_h) / (2T))`` (``glauber``) (formal
    first-order expansion of the step in tau; derived here, a candidate law, not the paper's).
    """
    r = np.asarray(rho, dtype=float).ravel()
    f = np.asarray(f, dtype=float).ravel()
    u = r * np.exp(f / T)
    s, t, w = space.edges()
    k = rate * w * (u[s] / u[t]) ** (2 * T / beta)
    if graph_cost == "glauber":
        k = k * np.exp((f[s] - f[t]) / (2 * T))
    flow = k * r[s]
    return np.bincount(t, weights=flow, minlength=r.size) - np.bincount(s, weights=flow, minlength=r.size)

