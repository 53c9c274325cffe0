"""One minimizing-movement (JKO) step as a convex problem (spec 5, 7.3).

**Dynamic (metric) one-step form.** The states ``s = (g, i)`` of a :class:`~sdot.grid.Grid` form a
graph whose edges are the grid faces (inside each node) and the graph edges of G (inside each cell).
One step from ``rho`` solves ::

    minimise_{rho' >= 0, F}  F_T(rho') + (tau / 2) h^d sum_e F_e^2 / c_e(rho')
    subject to               rho' - rho + tau B F = 0                  (B: state-edge incidence)

with conductances ``c_e = w(g, g') theta(rho'_g, rho'_g') / kappa`` on graph edges and
``c_e = theta(rho'_i, rho'_j) / h^2`` on faces (so ``F_e = m_e / h`` for the face momentum m).
For fixed rho' the flux problem is a weighted least-norm problem solved in closed form
(``F = C B^T psi``, ``L(c) psi = (rho - rho') / tau``, ``L = B C B^T``), leaving the convex
reduced objective ::

    Phi(rho') = F_T(rho') + h^d / (2 tau) (rho - rho')^T L(c(rho'))^+ (rho - rho')

(convex because ``J^2 / theta`` is jointly convex for concave 1-homogeneous theta), minimised over
the simplex by a projected Newton method with an analytic gradient and a finite-difference
Hessian (small problems: d = 0 with any K, or small d = 1, 2 grids). Interpolations theta:

==================  ==============================================================  ====================
name                theta(a, b) on an edge s ~ t                                    limit flow (tau -> 0)
==================  ==============================================================  ====================
``logmean``         Lambda(a, b)                                                    4.2 (nonlinear)
``logmean_pi``      Lambda(a / pi_s, b / pi_t) sqrt(pi_s pi_t)                      4.3 glauber (linear)
``logmean_pi_min``  as above, ``min(pi_s, pi_t)`` on graph edges (faces keep sqrt)  4.3 metropolis
``arithmetic``      (a + b) / 2                                                     nonlinear
==================  ==============================================================  ====================

with ``pi = exp(-f / T)``. Iterating steps (minimizing movement) converges to the grid flow with
error O(tau) at a fixed final time (tests).

**Entropic static variant** (Peyré 2015; Chizat–Peyré–Schmitzer–Vialard 2018), after multiplying
the JKO objective by 2 tau ::

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

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from scipy.special import logsumexp

from .grid import Grid, GridSolver, check_density, logmean_derivatives, n_steps
from .potentials import Potential
from .rates import logmean
from .space import SemiDiscreteSpace

__all__ = ["THETAS", "JKOStep", "JKOResult", "EntropicJKOStep", "two_point_distance", "entropic_limit_rhs"]

THETAS = ("logmean", "logmean_pi", "logmean_pi_min", "arithmetic")


@dataclass
class JKOResult:
    """Outcome of one JKO step.

    rho: new density (K, M); flux: optimal edge flux F_e (density per time, edges ``src -> dst``);
    objective: ``F_T(rho') + (tau / 2) action``; action: ``h^d sum_e F_e^2 / c_e(rho')`` (the
    rate action of spec 3.3, so ``tau^2 action`` approximates W_SD(rho, rho')^2); iterations and the
    final projected-gradient residual of the Newton solve.
    """

    rho: np.ndarray
    flux: np.ndarray
    objective: float
    action: float
    iterations: int
    residual: float
    info: dict = field(default_factory=dict)


def two_point_distance(r0: float, r1: float, w: float = 1.0, theta: Any = None) -> float:
    """Geodesic distance between (r0, 1 - r0) and (r1, 1 - r1) on two nodes (spec 8.10).

    ``W = | int_{r0}^{r1} dr / sqrt(w theta(r, 1 - r)) |`` with theta the log-mean by default.
    Example: ``two_point_distance(0.2, 0.8) ≈ 0.86780``.
    """
    from scipy.integrate import quad

    th = theta if theta is not None else (lambda a, b: float(logmean(np.array(a), np.array(b))))
    val, _ = quad(lambda r: 1.0 / np.sqrt(w * th(r, 1 - r)), min(r0, r1), max(r0, r1), epsabs=1e-13, epsrel=1e-12)
    return float(val)


class JKOStep:
    """Dynamic (metric) one-step JKO solver on a grid of states (see the module docstring).

    Parameters
    ----------
    space, potential, grid, T
        As for :class:`~sdot.grid.GridSolver` (``Grid(dim=0)`` for the pure graph flow).
    theta : str
        ``logmean`` | ``logmean_pi`` | ``logmean_pi_min`` | ``arithmetic``.
    kappa : float
        Graph-metric scale dividing the graph conductances.
    tol : float
        Stop when the projected gradient of Phi (max norm, per unit mass) is below ``tol``.
    max_iter : int
        Newton iterations per step.
    """

    def __init__(self, space: SemiDiscreteSpace, potential: Potential, grid: Grid, T: float,
                 theta: str = "logmean_pi", kappa: float = 1.0, tol: float = 1e-11, max_iter: int = 100):
        if theta not in THETAS:
            raise ValueError(f"unknown theta {theta!r}; expected one of {THETAS}")
        T = float(T)
        if not np.isfinite(T) or T <= 0:
            raise ValueError(f"the JKO step minimises F_T = V + T H and needs a temperature T > 0, got T = {T!r}")
        if not np.isfinite(kappa) or kappa <= 0:
            raise ValueError(f"kappa must be a finite number > 0, got {kappa!r}")
        # reuse the grid solver's validation and potential evaluation
        self._gs = GridSolver(space, potential, grid, T, law="glauber", check=False)
        self.space, self.potential, self.grid, self.T = self._gs.space, potential, grid, T
        self.theta, self.kappa, self.tol, self.max_iter = theta, float(kappa), float(tol), int(max_iter)
        self.K, self.M = self._gs.K, self._gs.M
        self.f = self._gs.f
        N = self.K * self.M
        # undirected state edges: faces (inside each node) then graph edges (inside each cell)
        a, b = grid.faces()
        off = (np.arange(self.K) * self.M)[:, None]
        fs, ft = (off + a).ravel(), (off + b).ravel()
        gs, gd, w = space.edges()
        keep = gs < gd
        gs, gd, w = gs[keep], gd[keep], w[keep]
        cells = np.arange(self.M)
        rs = (gs[:, None] * self.M + cells).ravel()
        rt = (gd[:, None] * self.M + cells).ravel()
        self.src = np.concatenate([fs, rs]).astype(np.int64)
        self.dst = np.concatenate([ft, rt]).astype(np.int64)
        self.base = np.concatenate([np.full(fs.size, 1.0 / grid.h**2), np.repeat(w, self.M) / self.kappa])
        self.is_graph = np.concatenate([np.zeros(fs.size, bool), np.ones(rs.size, bool)])
        self.n_states, self.n_edges = N, self.src.size
        fl = self.f.ravel()
        logpi = -fl / T
        self._logpi = logpi - logpi.max()
        self.pi = np.exp(self._logpi)
        ps, pt = self.pi[self.src], self.pi[self.dst]
        M_ = np.sqrt(ps * pt)
        if theta == "logmean_pi_min":
            M_ = np.where(self.is_graph, np.minimum(ps, pt), M_)
        self._pi_mean = M_

    # ---- conductances ---------------------------------------------------------------------------
    def conductance(self, r: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """c_e(rho') and its partial derivatives in rho'_src and rho'_dst, flattened rho'."""
        a, b = r[self.src], r[self.dst]
        if self.theta == "logmean":
            th = logmean(a, b)
            da, db = logmean_derivatives(a, b)
        elif self.theta == "arithmetic":
            th = (a + b) / 2
            da = db = np.full_like(a, 0.5)
        else:
            ps, pt = self.pi[self.src], self.pi[self.dst]
            ua, ub = a / ps, b / pt
            th = logmean(ua, ub) * self._pi_mean
            da, db = logmean_derivatives(ua, ub)
            da, db = da * self._pi_mean / ps, db * self._pi_mean / pt
        return self.base * th, self.base * da, self.base * db

    def _laplacian(self, c: np.ndarray) -> sp.csr_matrix:
        N = self.n_states
        s, t = self.src, self.dst
        L = sp.csr_matrix((np.r_[-c, -c, c, c], (np.r_[s, t, s, t], np.r_[t, s, s, t])), shape=(N, N))
        return L

    def _solve_L(self, c: np.ndarray, rhs: np.ndarray) -> np.ndarray:
        """psi with L psi = rhs (rhs summing to ~0), grounded at the state of largest conductance sum."""
        L = self._laplacian(c)
        N = self.n_states
        k = int(np.argmax(L.diagonal()))
        keep = np.r_[0:k, k + 1:N]
        Lr = L[keep][:, keep]
        psi = np.zeros(N)
        if N <= 400:
            psi[keep] = np.linalg.solve(Lr.toarray(), rhs[keep])
        else:
            psi[keep] = spla.spsolve(Lr.tocsc(), rhs[keep])
        return psi - np.dot(psi, np.ones(N)) / N

    # ---- objective ----------------------------------------------------------------------------------
    def free_energy(self, r: np.ndarray) -> float:
        """F_T per unit cell volume: sum f rho + T rho log rho (flattened)."""
        pos = r > 0
        return float(np.dot(self.f.ravel(), r) + self.T * np.sum(r[pos] * np.log(r[pos])))

    def objective(self, r: np.ndarray, r0: np.ndarray, tau: float) -> tuple[float, np.ndarray, np.ndarray]:
        """Phi(rho') / h^d, its gradient and psi (with L psi = rho - rho')."""
        c, dca, dcb = self.conductance(r)
        bvec = r0 - r
        psi = self._solve_L(c, bvec)
        q = float(np.dot(bvec, psi))
        val = self.free_energy(r) + q / (2 * tau)
        dpsi2 = (psi[self.src] - psi[self.dst]) ** 2
        grad = self.f.ravel() + self.T * (np.log(r) + 1.0) - psi / tau
        grad -= (np.bincount(self.src, weights=dpsi2 * dca, minlength=self.n_states)
                 + np.bincount(self.dst, weights=dpsi2 * dcb, minlength=self.n_states)) / (2 * tau)
        return val, grad, psi

    def action(self, rho0: Any, rho1: Any, tau: float = 1.0) -> float:
        """One-step action ``tau h^d sum_e F_e^2 / c_e(rho1)`` of the cheapest flux moving rho0 to rho1 in time tau.

        With tau = 1 this is the linearised (endpoint-theta) approximation of W_SD(rho0, rho1)^2,
        consistent to first order in |rho1 - rho0|.
        """
        r0 = np.asarray(rho0, dtype=float).ravel()
        r1 = np.asarray(rho1, dtype=float).ravel()
        c = self.conductance(r1)[0]
        psi = self._solve_L(c, r0 - r1)
        return float(np.dot(r0 - r1, psi)) * self.grid.cell_volume / tau

    def _hessian(self, r, r0, tau, g0):
        N = self.n_states
        H = np.empty((N, N))
        for k in range(N):
            e = 1e-7 * max(r[k], 1e-12)
            rp = r.copy()
            rp[k] += e
            H[:, k] = (self.objective(rp, r0, tau)[1] - g0) / e
        return 0.5 * (H + H.T)

    def step(self, rho: Any, tau: float, rho_init: Any = None) -> JKOResult:
        """One JKO step of size tau from ``rho`` (K, M); returns a :class:`JKOResult`."""
        tau = float(tau)
        if not np.isfinite(tau) or tau <= 0:
            raise ValueError(f"time step tau must be a finite number > 0, got {tau!r}")
        r0 = check_density(rho, (self.K, self.M), self.grid.cell_volume).ravel()
        if rho_init is None:
            # implicit-Euler predictor of the limit flow: a good Newton start
            r = np.maximum(r0, 1e-300)
            c = self.conductance(np.maximum(r0, 1e-12))[0]
            L = self._laplacian(c)
            phi = self.f.ravel() + self.T * (np.log(np.maximum(r0, 1e-300)) + 1)
            cand = r0 - tau * (L @ phi)
            if np.all(cand > 0):
                r = cand
        else:
            r = np.asarray(rho_init, dtype=float).ravel().copy()
        r = r * (r0.sum() / r.sum())
        N = self.n_states
        it, res = 0, np.inf
        val, g, psi = self.objective(r, r0, tau)
        for it in range(1, self.max_iter + 1):
            pg = g - g.mean()
            res = float(np.abs(pg).max())
            if res <= self.tol:
                break
            H = self._hessian(r, r0, tau, g)
            KKT = np.zeros((N + 1, N + 1))
            KKT[:N, :N] = H
            KKT[:N, N] = KKT[N, :N] = 1.0
            try:
                sol = np.linalg.solve(KKT, np.r_[-g, 0.0])
                d = sol[:N]
            except np.linalg.LinAlgError:
                d = -pg * r
            if np.dot(d, pg) >= 0:  # not a descent direction: scaled projected gradient
                d = -(pg - np.dot(pg, r) / r.sum()) * r
            t = 1.0
            neg = d < 0
            if np.any(neg):
                t = min(1.0, 0.99 * float(np.min(-r[neg] / d[neg])))
            accepted = False
            for _ in range(60):
                rn = r + t * d
                vn, gn, psin = self.objective(rn, r0, tau)
                if vn <= val + 1e-4 * t * np.dot(g, d) or abs(vn - val) <= 1e-15 * max(1, abs(val)):
                    accepted = True
                    break
                t /= 2
            if not accepted:
                break
            r, val, g, psi = rn, vn, gn, psin
        pg = g - g.mean()
        res = float(np.abs(pg).max())
        if res > 1e3 * self.tol:
            raise RuntimeError(f"JKO step did not converge: projected gradient {res:.3g} after {it} iterations")
        c = self.conductance(r)[0]
        flux = c * (psi[self.src] - psi[self.dst]) / tau  # F = C B^T psi / tau (density per time)
        action = float(np.dot(r0 - r, psi)) / tau**2  # sum_e F_e^2 / c_e (per unit volume)
        vol = self.grid.cell_volume
        return JKOResult(rho=r.reshape(self.K, self.M), flux=flux, objective=val * vol,
                         action=action * vol, iterations=it, residual=res,
                         info={"free_energy": self.free_energy(r) * vol})

    def evolve(self, rho0: Any, t_final: float, tau: float, callback: Any = None) -> np.ndarray:
        """Minimizing movement: ``n = ceil(t_final / tau)`` JKO steps of ``t_final / n``."""
        n = n_steps(float(t_final), float(tau))
        dt = float(t_final) / n
        rho = check_density(rho0, (self.K, self.M), self.grid.cell_volume, name="rho0")
        for k in range(n):
            rho = self.step(rho, dt).rho
            rho = rho / (rho.sum() * self.grid.cell_volume)  # remove round-off drift of the optimiser
            if callback is not None:
                callback(k + 1, (k + 1) * dt, rho)
        return rho

    def limit_solver(self) -> GridSolver:
        """The grid solver whose flow is this scheme's tau -> 0 limit (linear laws and logmean)."""
        law = {"logmean_pi": "glauber", "logmean_pi_min": "metropolis", "logmean": "logmean"}.get(self.theta)
        if law is None:
            raise ValueError(f"no grid law for theta {self.theta!r}")
        if law == "logmean" and self.grid.dim > 0:
            raise ValueError("the logmean JKO limit uses log-mean face mobilities; the grid solver's faces are SQRA")
        return GridSolver(self.space, self.potential, self.grid, self.T, law=law, kappa=self.kappa)


# --------------------------------------------------------------------------------------------
# entropic static variant
# --------------------------------------------------------------------------------------------
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
        T, eps = float(T), float(eps)
        if not np.isfinite(T) or T <= 0:
            raise ValueError(f"the entropic JKO step needs a temperature T > 0, got T = {T!r}")
        if not np.isfinite(eps) or eps <= 0:
            raise ValueError(f"eps must be a finite number > 0, got {eps!r}")
        if backend not in ("log", "pot"):
            raise ValueError(f"unknown backend {backend!r}; expected 'log' or 'pot'")
        self._gs = GridSolver(space, potential, grid, T, law="glauber", check=False)
        self.space, self.grid, self.T, self.eps = self._gs.space, grid, T, eps
        self.K, self.M = self._gs.K, self._gs.M
        self.graph_cost, self.rate = graph_cost, float(T if rate is None else rate)
        self.tol, self.max_iter, self.backend = float(tol), int(max_iter), backend
        logpi = -self._gs.f / T
        self.log_pi = logpi - logsumexp(logpi) - np.log(grid.cell_volume)  # density normalised to mass 1
        self.W = space.weights.toarray()

    # ---- kernels --------------------------------------------------------------------------------
    def log_graph_kernel(self, tau: float) -> np.ndarray:
        """log K_G = -C_G / eps, shape (K, K) (-inf where no transfer is allowed)."""
        if isinstance(self.graph_cost, str):
            if self.graph_cost not in ("poisson", "glauber"):
                raise ValueError(f"unknown graph cost {self.graph_cost!r}; expected 'poisson', 'glauber' or a (K, K) array")
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
        tau = float(tau)
        if not np.isfinite(tau) or tau <= 0:
            raise ValueError(f"time step tau must be a finite number > 0, got {tau!r}")
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
