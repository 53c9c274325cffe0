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

(convex because ``J^2 / theta`` is jointly convex for concave 1-homogeneous theta). With
``phi = psi / tau`` the optimality conditions are the square system (issue 16) ::

    R_E = dF/drho(rho') - phi - (tau / 2) sum_e dc_e/drho' (phi_s - phi_t)^2 = 0     (energy)
    R_C = rho' - rho + tau L(c(rho')) phi = 0                                      (continuity)

solved by Newton's method with the exact sparse Jacobian (second derivatives of theta included),
interleaved unknowns (rho'_s, phi_s): a banded LU (LAPACK, cell-major order) for d <= 1, and for
d = 2 GMRES preconditioned by the Jacobian with graph couplings lumped and rho' eliminated (one
sparse LU per step). Positivity: shrinking densities are updated multiplicatively (a step in
log rho') with the entropy; for other U (porous medium: compact supports, rho' = 0 is active) a
log barrier ``-mu sum log rho'`` is driven to mu ~ 0.1 tol. The line search decreases the scaled
residual norm. A step that cannot be solved raises :class:`JKOSolveError` with the residual. The
free energy is any :class:`~sdot.free_energy.GeneralFreeEnergy` (drift f, internal U, interaction
W * rho by FFT; with W the Newton system is solved by GMRES with the local Jacobian as
preconditioner). ``scheme="crank_nicolson"`` (a derived option in the spirit of CCWW's
Crank–Nicolson-type method, not their formula): conductances frozen at a JKO half step,
``phi = (dF(rho') + dF(rho)) / 2``; second order in tau in the tests (Barenblatt), no energy-decrease
guarantee. Interpolations theta:Interpolations theta:

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

from .grid import Grid, GridSolver, _check_tau, check_density, logmean_derivatives, logmean_with_derivatives, n_steps
from .potentials import Potential
from .rates import logmean
from .space import SemiDiscreteSpace

__all__ = ["THETAS", "SCHEMES", "JKOStep", "JKOResult", "JKOSolveError", "EntropicJKOStep", "two_point_distance", "entropic_limit_rhs"]

THETAS = ("logmean", "logmean_pi", "logmean_pi_min", "arithmetic")
SCHEMES = ("jko", "crank_nicolson")


@dataclass
class JKOResult:
    """Outcome of one JKO step.

    rho: new density (K, M); flux: optimal edge flux F_e (density per time, edges ``src -> dst``);
    objective: ``F_T(rho') + (tau / 2) action``; action: ``h^d sum_e F_e^2 / c_e(rho')`` (the
    rate action of spec 3.3, so ``tau^2 action`` approximates W_SD(rho, rho')^2); iterations and the
    final scaled residual of the Newton solve (max norm of the continuity rows / max rho and of the
    energy rows / (1 + max |phi|), the energy rows weighted by min(1, rho' / (1e-6 max rho)));
    info: free_energy, mass_drift (sum(rho' - rho) h^d, never renormalised away), linear_solves,
    min_density, barrier_mu.
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


class JKOSolveError(RuntimeError):
    """A JKO step could not be solved; the message carries the final residual and what to try."""


def _lambda_second(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, ...]:
    """(Lambda, Lambda_a, Lambda_b, Lambda_aa, Lambda_ab, Lambda_bb) of the log-mean, a, b > 0.

    With r = b / a and lambda(r) = (r - 1) / log r: Lambda_aa = r^2 lambda''(r) / a,
    Lambda_ab = -r lambda''(r) / a, Lambda_bb = lambda''(r) / a, where
    lambda'' = (e L / r^2 - 2 (L - e / r) / r) / L^3 (e = r - 1, L = log r); series
    ``-1/6 + e/4 - 19 e^2/60 + 3 e^3/8`` for |e| < 1e-2.
    """
    tiny = np.finfo(float).tiny
    a = np.maximum(a, tiny)
    b = np.maximum(b, tiny)
    L0, La, Lb = logmean_with_derivatives(a, b)
    r = b / a
    e = r - 1.0
    small = np.abs(e) < 1e-2
    with np.errstate(all="ignore"):
        L = np.log(np.where(small, 2.0, r))
        d2 = (e * L / (r * r) - 2 * (L - e / r) / r) / (L * L * L)
        es = e[small]
        d2[small] = -1 / 6 + es * (1 / 4 + es * (-19 / 60 + es * (3 / 8)))
        d2a = d2 / a
        rd2a = r * d2a
        sec = (r * rd2a, -rd2a, d2a)
    if not all(np.isfinite(x).all() for x in sec):  # L0, La, Lb are finite already
        sec = tuple(np.nan_to_num(x, nan=0.0, posinf=1e300, neginf=-1e300) for x in sec)
    return (L0, La, Lb, *sec)


class JKOStep:
    """Dynamic (metric) one-step JKO solver on a grid of states (see the module docstring).

    Parameters
    ----------
    space, grid
        As for :class:`~sdot.grid.GridSolver` (``Grid(dim=0)`` for the pure graph flow).
    potential : Potential or GeneralFreeEnergy
        A potential f (then the energy is ``F_T = V + T H`` with the temperature ``T``), or a
        :class:`~sdot.free_energy.GeneralFreeEnergy` (drift, internal energy U, interaction W).
    T : float, optional
        Temperature of ``F_T`` when ``potential`` is a Potential (> 0).
    theta : str, optional
        ``logmean`` | ``logmean_pi`` | ``logmean_pi_min`` (entropy only) | ``arithmetic``. Default:
        ``logmean_pi`` for the entropy, ``arithmetic`` otherwise (it lets a porous-medium support spread).
    kappa : float
        Graph-metric scale dividing the graph conductances.
    tol : float
        Newton stops when the scaled residual (max norm) is below ``tol``.
    max_iter : int
        Newton iterations per step.
    scheme : str
        ``"jko"`` (minimising movement, first order in tau) or ``"crank_nicolson"`` (conductances
        frozen at a JKO half step, energy gradient averaged over the step ends; a derived option,
        order measured in the tests; no energy-decrease guarantee).
    """

    def __init__(self, space: SemiDiscreteSpace, potential: Any, grid: Grid, T: float | None = None,
                 theta: str | None = None, kappa: float = 1.0, tol: float = 1e-11, max_iter: int = 100,
                 scheme: str = "jko"):
        from .free_energy import Entropy, GeneralFreeEnergy, as_general_energy

        if isinstance(potential, GeneralFreeEnergy):
            if T is not None and (potential.T is None or float(T) != potential.T):
                raise ValueError(f"T = {T!r} conflicts with the energy {potential!r}; set the temperature there")
            energy = potential
        else:
            Tf = float("nan") if T is None else float(T)
            if not np.isfinite(Tf) or Tf <= 0:
                raise ValueError(f"the JKO step minimises F_T = V + T H and needs a temperature T > 0, got T = {T!r}")
            energy = as_general_energy(potential, Tf)
        energy.internal.require_convex("the JKO step")
        self.energy = energy
        is_entropy = isinstance(energy.internal, Entropy)
        if theta is None:
            theta = "logmean_pi" if is_entropy else "arithmetic"
        if theta not in THETAS:
            raise ValueError(f"unknown theta {theta!r}; expected one of {THETAS}")
        if theta.startswith("logmean_pi") and not is_entropy:
            raise ValueError(f"theta {theta!r} weights by pi = exp(-f / T) and needs U = entropy; "
                             f"got {energy.internal!r} (use 'arithmetic' or 'logmean')")
        if not np.isfinite(kappa) or kappa <= 0:
            raise ValueError(f"kappa must be a finite number > 0, got {kappa!r}")
        if scheme not in SCHEMES:
            raise ValueError(f"unknown scheme {scheme!r}; expected one of {SCHEMES}")
        if energy.interaction is not None:
            if grid.dim == 0:
                raise ValueError("an interaction kernel needs a grid with dim >= 1")
            energy.interaction.lattice(grid)  # refuse a kernel of the wrong shape up front
        pot = energy.potential
        if pot is None:
            from .potentials import QuadraticPotential

            pot = QuadraticPotential(a=np.zeros(energy.n_nodes), c=np.zeros(energy.n_nodes), dim=grid.dim)
        self.T = energy.T if is_entropy else None
        # reuse the grid solver's validation and potential evaluation (its T only matters for limit_solver)
        self._gs = GridSolver(space, pot, grid, self.T if is_entropy else 1.0, law="glauber", check=False)
        self.space, self.potential, self.grid = self._gs.space, pot, grid
        self.theta, self.kappa, self.tol, self.max_iter = theta, float(kappa), float(tol), int(max_iter)
        self.scheme = scheme
        self.K, self.M = self._gs.K, self._gs.M
        self.f = self._gs.f
        N = self.K * self.M
        # undirected state edges: faces (inside each node) then graph edges (inside each cell)
        a, b = grid.faces()
        off = (np.arange(self.K) * self.M)[:, None]
        fs, ft = (off + a).ravel(), (off + b).ravel()
        gs, gd, w = space.edges() if isinstance(space, SemiDiscreteSpace) else self._gs.space.edges()
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
        self._pattern = None
        self._band = None
        self._fpat = None
        self._warm = None  # (rho' of the last step, its predictor, phi - dF(rho'), tau): see _warm_start
        self._set_pi()

    def _set_pi(self) -> None:
        if self.T is None:
            self.pi = None
            return
        logpi = -self.f.ravel() / self.T
        self._logpi = logpi - logpi.max()
        self.pi = np.exp(self._logpi)
        ps, pt = self.pi[self.src], self.pi[self.dst]
        M_ = np.sqrt(ps * pt)
        if self.theta == "logmean_pi_min":
            M_ = np.where(self.is_graph, np.minimum(ps, pt), M_)
        self._pi_mean = M_
        # conductance weights base * M / (pi_s^i pi_t^j) of Lambda and its derivatives in (a / pi_s, b / pi_t)
        bm = self.base * M_
        self._pi_w = (bm, bm / ps, bm / pt, bm / (ps * ps), bm / (ps * pt), bm / (pt * pt))

    def set_temperature(self, T: float) -> None:
        """Change the temperature of the entropy (for schedules); refused for other internal energies."""
        T = float(T)
        if not np.isfinite(T) or T <= 0:
            raise ValueError(f"the JKO step needs a temperature T > 0, got T = {T!r}")
        if self.T == T:
            return
        self.energy = self.energy.with_temperature(T)
        self.T = T
        self._gs.set_temperature(T)
        self._set_pi()

    # ---- energy ---------------------------------------------------------------------------------
    def _dF(self, r: np.ndarray) -> np.ndarray:
        """First variation f + U'(r) + W * r, flattened."""
        out = self.f.ravel() + self.energy.internal.d1(r)
        if self.energy.interaction is not None:
            out = out + self.energy.interaction.convolve(r.reshape(self.K, self.M), self.grid).ravel()
        return out

    def _conv(self, v: np.ndarray) -> np.ndarray:
        return self.energy.interaction.convolve(v.reshape(self.K, self.M), self.grid).ravel()

    def free_energy(self, r: np.ndarray) -> float:
        """F(rho') per unit cell volume (flattened rho'): sum f rho + U(rho) (+ 1/2 rho W * rho)."""
        r = np.asarray(r, dtype=float).ravel()
        val = float(np.dot(self.f.ravel(), r) + np.sum(self.energy.internal.value(r)))
        if self.energy.interaction is not None:
            val += 0.5 * float(np.dot(r, self._conv(r)))
        return val

    # ---- conductances ---------------------------------------------------------------------------
    def conductance(self, r: np.ndarray, second: bool = False) -> tuple[np.ndarray, ...]:
        """c_e(rho') and its partial derivatives in rho'_src and rho'_dst (and the second ones), flattened rho'."""
        a, b = r[self.src], r[self.dst]
        if self.theta == "arithmetic":
            th = (a + b) / 2
            da = db = np.full_like(a, 0.5)
            out = [th, da, db]
            if second:
                z = np.zeros_like(a)
                out += [z, z, z]
        elif self.theta == "logmean":
            if second:
                out = list(_lambda_second(a, b))
            else:
                out = [logmean(a, b), *logmean_derivatives(a, b)]
        else:
            ua, ub = a / self.pi[self.src], b / self.pi[self.dst]
            vals = _lambda_second(ua, ub) if second else (logmean(ua, ub), *logmean_derivatives(ua, ub))
            return tuple(v * w for v, w in zip(vals, self._pi_w))
        return tuple(self.base * x for x in out)

    def _laplacian(self, c: np.ndarray) -> sp.csr_matrix:
        N = self.n_states
        s, t = self.src, self.dst
        L = sp.csr_matrix((np.r_[-c, -c, c, c], (np.r_[s, t, s, t], np.r_[t, s, s, t])), shape=(N, N))
        return L

    def _apply_L(self, c: np.ndarray, phi: np.ndarray) -> np.ndarray:
        """(L(c) phi)_s = sum_{e ∋ s} c_e (phi_s - phi_other) (no matrix formed)."""
        fl = c * (phi[self.src] - phi[self.dst])
        N = self.n_states
        return np.bincount(self.src, weights=fl, minlength=N) - np.bincount(self.dst, weights=fl, minlength=N)

    def _solve_L(self, c: np.ndarray, rhs: np.ndarray) -> np.ndarray:
        """psi with L psi = rhs (rhs summing to ~0), grounded at the state of largest conductance sum."""
        L = self._laplacian(c)
        N = self.n_states
        k = int(np.argmax(L.diagonal()))
        keep = np.r_[0:k, k + 1:N]
        Lr = L[keep][:, keep]
        psi = np.zeros(N)
        try:
            if N <= 400:
                psi[keep] = np.linalg.solve(Lr.toarray(), rhs[keep])
            else:
                psi[keep] = spla.spsolve(Lr.tocsc(), rhs[keep])
        except (np.linalg.LinAlgError, RuntimeError) as exc:
            raise JKOSolveError(f"the transport Laplacian is singular (some state has no conducting edge): {exc}") from exc
        return psi - np.dot(psi, np.ones(N)) / N

    def objective(self, r: np.ndarray, r0: np.ndarray, tau: float) -> tuple[float, np.ndarray]:
        """Reduced objective Phi(rho') / h^d = F(rho') + (rho - rho')^T L(c(rho'))^+ (rho - rho') / (2 tau), and psi."""
        c = self.conductance(r)[0]
        bvec = r0 - r
        psi = self._solve_L(c, bvec)
        return self.free_energy(r) + float(np.dot(bvec, psi)) / (2 * tau), psi

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

    def dissipation(self, rho: Any) -> float:
        """D(rho) = h^d sum_e c_e(rho) (dF/drho_s - dF/drho_t)^2 in this step's metric (theta, kappa).

        Each unordered edge once (the spec's 1/2 sum over ordered pairs); for ``logmean_pi`` and
        kappa = 1 it equals the glauber grid solver's dissipation, for ``logmean_pi_min`` the
        metropolis one; kappa divides the graph part.
        """
        r = np.asarray(rho, dtype=float).ravel()
        c = self.conductance(r)[0]
        with np.errstate(divide="ignore", invalid="ignore"):
            phi = self._dF(r)
            d = phi[self.src] - phi[self.dst]
            terms = np.where(c > 0, c * d * d, 0.0)
        return float(np.sum(np.nan_to_num(terms, nan=0.0))) * self.grid.cell_volume

    # ---- Newton on the optimality system -----------------------------------------------------------
    def _jacobian_pattern(self):
        """Sparsity of the interleaved Jacobian (rows 2s: energy equation, 2s+1: continuity; cols 2s: rho', 2s+1: phi).

        Returns (indices, indptr, nnz, pos): CSR pattern and, per block b in (E r, E phi, C r, C phi),
        the data positions of the diagonal (N) and of the edge entries (s, t) and (t, s) (each edge
        once), so that assembly is a few scatters with no sort or sum of duplicates.
        """
        if self._pattern is not None:
            return self._pattern
        N = self.n_states
        s, t = self.src, self.dst
        idx = np.arange(N, dtype=np.int64)
        n2 = 2 * N
        offs = ((0, 0), (0, 1), (1, 0), (1, 1))  # (row, col) parity of the blocks E r, E phi, C r, C phi
        diag_keys = [(2 * idx + a) * n2 + 2 * idx + b for a, b in offs]
        st_keys = [(2 * s + a) * n2 + 2 * t + b for a, b in offs]
        ts_keys = [(2 * t + a) * n2 + 2 * s + b for a, b in offs]
        uniq, inv = np.unique(np.concatenate(diag_keys + st_keys + ts_keys), return_inverse=True)
        if uniq.size != inv.size:
            raise ValueError("the state graph has repeated edges or self-loops")
        indptr = np.zeros(n2 + 1, dtype=np.int64)
        np.cumsum(np.bincount(uniq // n2, minlength=n2), out=indptr[1:])
        cuts = np.cumsum([0] + [N] * 4 + [s.size] * 8)
        chunks = [inv[cuts[k]:cuts[k + 1]] for k in range(12)]
        pos = {"diag": chunks[0:4], "st": chunks[4:8], "ts": chunks[8:12]}
        self._pattern = ((uniq % n2).astype(np.int32), indptr.astype(np.int32), uniq.size, pos)
        return self._pattern

    def _jacobian(self, diagE, c, dca, dcb, caa, cab, cbb, dphi, tau, w_edge, frozen, band=False):
        """Sparse Jacobian (CSR arrays on the fixed pattern) of the residual (R_E, R_C).

        R_E = w_E (dF(r) [+ dF(r0)]) - phi - (tau / 2) w_edge sum_e dc_e dphi_e^2 (- mu / r)
        R_C = r - r0 + tau L(c) phi;   ``frozen``: c does not depend on r (no dc terms).
        Per block, the edge terms (ss, st, ts, tt) go to the diagonal (ss, tt: summed over edges by
        bincount) and to the edge's own off-diagonal slots (st, ts: one scatter each).
        ``band``: written straight into LAPACK band storage (d <= 1, see :meth:`_band_layout`).
        """
        indices, indptr, nnz, pos = self._jacobian_pattern()
        if band:
            pos, size = self._band_layout()[4:]
        N = self.n_states
        s, t = self.src, self.dst
        tc = tau * c
        diags = [diagE, np.full(N, -1.0), np.ones(N), np.zeros(N)]
        blocks = [None, None, None, (tc, -tc, -tc, tc)]  # (ss, st, ts, tt) of E r, E phi, C r, C phi
        if not frozen:
            q = dphi * dphi * (tau / 2) * w_edge
            qab = -cab * q
            blocks[0] = (-caa * q, qab, qab, -cbb * q)
            pa, pb = dca * (tau * dphi * w_edge), dcb * (tau * dphi * w_edge)
            blocks[1] = (-pa, pa, -pb, pb)
            ra, rb = dca * (tau * dphi), dcb * (tau * dphi)
            blocks[2] = (ra, rb, -ra, -rb)
        data = np.zeros(size) if band else np.empty(nnz)
        for b in range(4):
            v = blocks[b]
            if v is None:
                data[pos["diag"][b]] = diags[b]
                if not band:
                    data[pos["st"][b]] = 0.0
                    data[pos["ts"][b]] = 0.0
                continue
            data[pos["diag"][b]] = diags[b] + np.bincount(s, weights=v[0], minlength=N) \
                + np.bincount(t, weights=v[3], minlength=N)
            if band:
                (ps_, os_), (pt_, ot_) = pos["st"][b], pos["ts"][b]
                data[ps_] = v[1][os_]
                data[pt_] = v[2][ot_]
            else:
                data[pos["st"][b]] = v[1]
                data[pos["ts"][b]] = v[2]
        return data, indices, indptr

    def _band_layout(self):
        """Cell-major permutation of the interleaved unknowns and the LAPACK band positions (d <= 1)."""
        if getattr(self, "_band", None) is not None:
            return self._band
        indices, indptr, nnz, _ = self._jacobian_pattern()
        N, K, M = self.n_states, self.K, self.M
        s = np.arange(N)
        cellmajor = (s % M) * K + s // M
        perm = np.empty(2 * N, dtype=np.int64)
        perm[0::2], perm[1::2] = 2 * cellmajor, 2 * cellmajor + 1
        rows = np.repeat(np.arange(2 * N), np.diff(indptr))
        pr, pc = perm[rows], perm[indices]
        kl, ku = int(max((pr - pc).max(), 0)), int(max((pc - pr).max(), 0))
        # column-major (Fortran) band storage, as LAPACK reads it (no transposed copy): entry (i, j)
        # at row kl + ku + i - j of column j; the kl leading rows hold the LU fill
        flat = pc * (2 * kl + ku + 1) + (kl + ku + pr - pc)
        pos = self._jacobian_pattern()[3]
        # edge entries sorted by band position (written in memory order, the values gathered instead)
        bpos = {"diag": [flat[p] for p in pos["diag"]]}
        for k in ("st", "ts"):
            bpos[k] = []
            for p in pos[k]:
                o = np.argsort(flat[p])
                bpos[k].append((flat[p][o], o))
        self._band = (perm, kl, ku, flat, bpos, (2 * kl + ku + 1) * 2 * N)
        return self._band

    def _face_pattern(self):
        """CSR pattern (diagonal + face couplings) of the preconditioner's spatial matrices, built once."""
        if self._fpat is not None:
            return self._fpat
        N = self.n_states
        f = ~self.is_graph
        s, t = self.src[f], self.dst[f]
        idx = np.arange(N, dtype=np.int64)
        rows = np.concatenate([idx, s, s, t, t])
        cols = np.concatenate([idx, s, t, s, t])
        uniq, inv = np.unique(rows * N + cols, return_inverse=True)
        indptr = np.zeros(N + 1, dtype=np.int64)
        np.cumsum(np.bincount(uniq // N, minlength=N), out=indptr[1:])
        self._fpat = (inv, (uniq % N).astype(np.int32), indptr.astype(np.int32), uniq.size)
        return self._fpat

    def _spatial_preconditioner(self, A, parts, tau):
        """Approximate inverse of the Jacobian: graph couplings lumped on the diagonal, rho' eliminated.

        Returns ``solve(vE, vC) -> (dr, dphi)`` for the system ``A dr + (-I + Ep) dphi = vE``,
        ``(I + Cr) dr + tau L dphi = vC`` (A: diagonal of the rho'-block; Ep, Cr, L with face
        couplings kept and graph couplings lumped on the diagonal). The Schur complement
        ``tau L + (I + Cr) A^-1 (I - Ep)`` is approximated by dropping ``Cr A^-1 Ep`` (a two-hop,
        second-order term that would widen the 5-point stencil to 13 points and triple the LU fill):
        ``S = tau L + A^-1 + Cr A^-1 - A^-1 Ep``, one sparse LU (K decoupled spatial blocks).
        """
        N = self.n_states
        inv, indices, indptr, nnz = self._face_pattern()
        c, dca, dcb, dphi = parts[0], parts[1], parts[2], parts[6]
        s, t, g = self.src, self.dst, self.is_graph
        f = ~g
        if dca is None:
            dca = dcb = dphi = np.zeros_like(c)
        p = tau * dphi
        # entries (s,s), (s,t), (t,s), (t,t) of Ep (d R_E / d phi without the -I), Cr (d R_C / d r
        # without the I) and tau L
        ep = (-dca * p, dca * p, -dcb * p, dcb * p)
        cr = (dca * p, dcb * p, -dca * p, -dcb * p)
        lp = (tau * c, -tau * c, -tau * c, tau * c)
        sg, tg = s[g], t[g]

        def assemble(v, diag):
            # graph couplings: diagonal entries only (lumped)
            d = diag + np.bincount(sg, weights=v[0][g], minlength=N) + np.bincount(tg, weights=v[3][g], minlength=N)
            data = np.bincount(inv, weights=np.concatenate([d, *(x[f] for x in v)]), minlength=nnz)
            return sp.csr_matrix((data, indices, indptr), shape=(N, N))

        zero = np.zeros(N)
        Ep, Cr = assemble(ep, zero), assemble(cr, zero)
        Ai = 1.0 / A
        Epd = np.bincount(s, weights=ep[0], minlength=N) + np.bincount(t, weights=ep[3], minlength=N)
        Crd = np.bincount(s, weights=cr[0], minlength=N) + np.bincount(t, weights=cr[3], minlength=N)
        sf, tf = s[f], t[f]
        Ais, Ait = Ai[sf], Ai[tf]
        epf, crf = [x[f] for x in ep], [x[f] for x in cr]
        # (Cr A^-1 Ep) on the 5-point pattern: (s,t) = Cr_ss Ep_st / A_s + Cr_st Ep_tt / A_t, ...
        pst = Crd[sf] * epf[1] * Ais + crf[1] * Epd[tf] * Ait
        pts = Crd[tf] * epf[2] * Ait + crf[2] * Epd[sf] * Ais
        pdiag = Crd * Epd * Ai + np.bincount(sf, weights=crf[1] * epf[2] * Ait, minlength=N) \
            + np.bincount(tf, weights=crf[2] * epf[1] * Ais, minlength=N)
        sv = (lp[0] + cr[0] * Ai[s] - ep[0] * Ai[s], lp[1] + cr[1] * Ai[t] - ep[1] * Ai[s],
              lp[2] + cr[2] * Ai[s] - ep[2] * Ai[t], lp[3] + cr[3] * Ai[t] - ep[3] * Ai[t])
        S = assemble(sv, Ai)
        S = S + sp.csr_matrix((np.bincount(self._fpat[0], weights=np.concatenate(
            [-pdiag, np.zeros(sf.size), -pst, -pts, np.zeros(sf.size)]), minlength=nnz), indices, indptr), shape=(N, N))
        # CSR arrays of S read as CSC are S^T: factorise S^T and solve with trans="T".
        # Structurally symmetric, diagonally dominant in practice: a symmetric ordering and
        # diagonal pivots keep the fill at the 2-d minimum-degree level
        St = sp.csc_matrix((S.data, S.indices, S.indptr), shape=(N, N))
        luS = spla.splu(St, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0, options={"SymmetricMode": True})

        def solve(vE, vC):
            y = vE * Ai
            dph = luS.solve(vC - y - Cr @ y, trans="T")
            return (vE + dph - Ep @ dph) * Ai, dph

        return solve

    def _newton_solve(self, J, data, rhs, diagE, parts, wE, it, res, col_scale, row_scale):
        """Solve J x = rhs for the Newton direction; returns (x, number of linear solves).

        d <= 1: banded LU (LAPACK gbsv, cell-major order: bandwidth ~ 2K). d = 2: GMRES with a
        block preconditioner (r eliminated by the diagonal of J, phi by the K decoupled spatial
        blocks of tau L + diag(1/A), one sparse LU). An interaction term adds ``wE W *`` to the
        rho'-columns of the energy rows: GMRES on the full operator, the local solve as preconditioner.
        """
        N = self.n_states
        have_W = self.energy.interaction is not None
        n2 = 2 * N

        def fail(msg, exc=None):
            raise JKOSolveError(f"JKO step: {msg} at Newton iteration {it} (scaled residual {res:.3g}); "
                                "reduce tau or check that the graph is connected") from exc

        if self.grid.dim <= 1:
            from scipy.linalg.lapack import dgbtrf, dgbtrs

            perm, kl, ku, flat, _, size = self._band_layout()
            if J is None:  # assembled in band storage already
                ab = data
            else:
                ab = np.zeros(size)  # LAPACK band storage with kl rows for the pivots
                ab[flat] = data
            lub, piv, info = dgbtrf(ab.reshape(n2, 2 * kl + ku + 1).T, kl, ku, overwrite_ab=1)  # F-order view
            if info != 0:
                fail(f"singular Newton system (LAPACK dgbtrf info {info})")

            def local(v):
                pv = np.empty(n2)
                pv[perm] = v
                x, info_s = dgbtrs(lub, kl, ku, pv, piv, overwrite_b=1)
                if info_s != 0:
                    fail(f"banded solve failed (LAPACK dgbtrs info {info_s})")
                return x[perm]
        else:
            # refactorised at every Newton iteration: with a 5-point stencil the LU is cheap, and a
            # stale one (the Jacobian moves a lot in the first iterations) costs more GMRES its
            A = np.asarray(J.diagonal()[0::2], dtype=float)
            A = np.where(np.abs(A) > 0, A, 1.0)
            try:
                psolve = self._spatial_preconditioner(A, parts, float(self._tau_now))
            except RuntimeError as exc:
                fail(f"singular preconditioner ({exc})", exc)

            def local(v):
                dr_, dph = psolve(v[0::2], v[1::2])
                out = np.empty(n2)
                out[0::2], out[1::2] = dr_, dph
                return out

        if not have_W and self.grid.dim <= 1:
            return local(rhs), 1

        # GMRES on the equilibrated system: rho'-columns scaled by rho' (a step in log rho'),
        # continuity rows by 1 / max(rho', rho) (relative mass balance), so that cells with tiny
        # density are solved as accurately as the bulk
        Dc = np.ones(n2)
        Dc[0::2] = np.maximum(col_scale, 1e-300)
        Dr = np.ones(n2)
        Dr[1::2] = 1.0 / np.maximum(row_scale, 1e-300)

        def matvec(xs):
            v = Dc * xs
            out = J @ v
            if have_W:
                out[0::2] += wE * self._conv(v[0::2])
            return Dr * out

        count = [0]

        def cb(_):
            count[0] += 1

        # inexact Newton (Eisenstat-Walker-type forcing): a loose linear solve far from the root,
        # eta = O(residual) keeps the quadratic convergence near it
        eta = max(1e-10, min(1e-2, 0.1 * res))
        op = spla.LinearOperator((n2, n2), matvec=matvec)
        pre = spla.LinearOperator((n2, n2), matvec=lambda y: local(y / Dr) / Dc)
        sol, info = spla.gmres(op, Dr * rhs, M=pre, rtol=eta, atol=0.0, restart=60, maxiter=10,
                               callback=cb, callback_type="pr_norm")
        sol = Dc * sol
        if info != 0 or not np.all(np.isfinite(sol)):
            fail(f"GMRES on the Newton system did not converge (info {info}, {count[0]} iterations)")
        return sol, count[0]

    def _predict(self, r: np.ndarray, tau: float) -> np.ndarray | None:
        """Newton start: one implicit step of the tau -> 0 limit flow (linear laws; entropy only).

        ``logmean_pi`` / ``logmean_pi_min`` with U = entropy: the glauber / metropolis grid step
        (``split`` on 2-d grids, whose factorisation stays cheap), which differs from the JKO step by
        O(tau^2). None (start from rho) otherwise.
        """
        law = {"logmean_pi": "glauber", "logmean_pi_min": "metropolis"}.get(self.theta)
        if law is None or self.T is None:
            return None
        gs = getattr(self, "_pred_solver", None)
        if gs is None or gs.T != self.T:
            gs = GridSolver(self.space, self.potential, self.grid, self.T, law=law, kappa=self.kappa,
                            method="split" if self.grid.dim == 2 else "implicit", check=False)
            self._pred_solver = gs
        try:
            out = gs._step_flat(r, tau, gs.method)
        except Exception:  # a predictor only: fall back to rho
            return None
        if not np.all(np.isfinite(out)):
            return None
        tiny = 1e-300
        return np.maximum(out, tiny)

    def _warm_start(self, r0: np.ndarray, tau: float, pred: np.ndarray):
        """Newton start corrected by the last step when it ended at ``r0`` with the same tau, else None.

        The JKO step differs from the linear predictor P by an O(tau^2) term that varies slowly from
        step to step: ``rho' ~ P(r0) * (rho_prev' / P(rho_prev))`` (ratio clipped to [0.2, 5], so
        positivity holds), and ``phi ~ dF(rho') + (phi_prev - dF(rho_prev'))``. Only the start changes:
        the step solves the same system to the same tolerance.
        """
        w = self._warm
        if w is None or w[3] != tau or w[0].shape != r0.shape or not np.array_equal(w[0], r0):
            return None
        return pred * np.clip(w[0] / w[1], 0.2, 5.0), w[2]

    def step(self, rho: Any, tau: float, rho_init: Any = None) -> JKOResult:
        """One step of size tau from ``rho`` (K, M); returns a :class:`JKOResult`.

        ``scheme="jko"``: the minimising-movement step. ``"crank_nicolson"``: a JKO half step gives
        the frozen conductances c* = c(rho_{1/2}); then ``rho' - rho + tau L(c*) phi = 0``,
        ``phi = (dF(rho') + dF(rho)) / 2``.
        """
        tau = _check_tau(tau)
        r0 = check_density(rho, (self.K, self.M), self.grid.cell_volume).ravel()
        if self.scheme == "crank_nicolson":
            half = self._solve(r0, tau / 2, rho_init, None)
            c_star = self.conductance(half.rho.ravel())[0]
            res = self._solve(r0, tau, half.rho.ravel(), c_star)
            res.info["half_step_iterations"] = half.iterations
            res.iterations += half.iterations
            return res
        return self._solve(r0, tau, rho_init, None)

    def _solve(self, r0: np.ndarray, tau: float, rho_init: Any, c_star: np.ndarray | None) -> JKOResult:
        N = self.n_states
        self._tau_now = tau
        vol = self.grid.cell_volume
        U = self.energy.internal
        frozen = c_star is not None
        wE = 0.5 if frozen else 1.0
        barrier = not U.log_barrier
        scale_r = float(np.abs(r0).max()) or 1.0
        pred = phi_corr = None
        if rho_init is None:
            delta = 1e-8 if barrier else 1e-12
            r = (1 - delta) * r0 + delta * r0.mean()
            pred = self._predict(r, tau)
            if pred is not None:
                r = pred
                warm = self._warm_start(r0, tau, pred)
                if warm is not None:
                    r, phi_corr = warm
        else:
            r = np.asarray(rho_init, dtype=float).ravel().copy()
            r = np.maximum(r, 1e-14 * scale_r)
            r *= r0.sum() / r.sum()
        dF0 = None
        if frozen:
            with np.errstate(divide="ignore"):
                dF0 = self._dF(np.maximum(r0, np.finfo(float).tiny))
        phi = self._dF(r) if not frozen else 0.5 * (self._dF(r) + dF0)
        if phi_corr is not None:
            phi = phi + phi_corr
        scale_phi = 1.0 + float(np.abs(phi[np.isfinite(phi)]).max(initial=0.0))
        mu = 1e-4 * scale_phi * scale_r if barrier else 0.0
        mu_min = 0.1 * self.tol * scale_phi * scale_r if barrier else 0.0

        def residual(r, phi, mu):
            if frozen:
                c = c_star
                dc = (None, None)
                RE = wE * (self._dF(r) + dF0) - phi
            else:
                dc = self.conductance(r, second=True)  # second derivatives reused by the next Jacobian
                c, dca, dcb = dc[:3]
                dphi = phi[self.src] - phi[self.dst]
                q = 0.5 * tau * dphi * dphi
                RE = self._dF(r) - phi - (np.bincount(self.src, weights=dca * q, minlength=N)
                                          + np.bincount(self.dst, weights=dcb * q, minlength=N))
            if mu:
                RE = RE - mu / r
            RC = r - r0 + tau * self._apply_L(c, phi)
            return RE, RC, c, dc

        def measure(RE, RC, r):
            # energy equation weighted by min(1, rho' / (1e-6 max rho)): an error in phi moves mass
            # in proportion to the density, so cells far below the bulk need not resolve it
            wE_ = np.minimum(1.0, r / (1e-6 * scale_r))
            return max(float(np.abs(RE * wE_).max()) / scale_phi, float(np.abs(RC).max()) / scale_r)

        RE, RC, c, dc = residual(r, phi, mu)
        use_band = self.grid.dim <= 1 and self.energy.interaction is None
        it, lin = 0, 0
        res = measure(RE, RC, r)
        for it in range(1, self.max_iter + 1):
            # barrier continuation: shrink mu once the barrier problem is solved to O(mu)
            while mu > mu_min and res <= max(100 * mu / (scale_phi * scale_r), self.tol):
                mu = max(mu * 0.1, mu_min)
                RE, RC, c, dc = residual(r, phi, mu)
                res = measure(RE, RC, r)
            if mu <= mu_min and res <= self.tol and abs(float(RC.sum())) <= 1e-14 * float(r0.sum()) + 1e-300:
                it -= 1
                break
            # ---- Jacobian ----
            diagE = wE * U.d2(r) + (mu / (r * r) if mu else 0.0)
            if frozen:
                parts = (c, None, None, None, None, None, None)
            else:
                _, dca, dcb, caa, cab, cbb = dc
                parts = (c, dca, dcb, caa, cab, cbb, phi[self.src] - phi[self.dst])
            data, indices, indptr = self._jacobian(diagE, *parts, tau, 1.0, frozen, band=use_band)
            if not np.all(np.isfinite(data)):
                raise JKOSolveError(f"JKO step: non-finite Jacobian at iteration {it} (residual {res:.3g}); "
                                    "a density hit 0 where U'' or theta' is singular; reduce tau")
            J = None if use_band else sp.csr_matrix((data, indices, indptr), shape=(2 * N, 2 * N))
            rhs = np.empty(2 * N)
            rhs[0::2], rhs[1::2] = -RE, -RC
            sol, k_lin = self._newton_solve(J, data, rhs, diagE, parts, wE, it, res, r, np.maximum(r, r0))
            lin += k_lin
            dr, dp = sol[0::2], sol[1::2]
            if not (np.all(np.isfinite(dr)) and np.all(np.isfinite(dp))):
                raise JKOSolveError(f"JKO step: non-finite Newton direction at iteration {it} (residual {res:.3g}); "
                                    "reduce tau")
            t = 1.0
            logstep = U.log_barrier
            if logstep:
                ds = dr / r  # Newton step in s = log rho' where rho' shrinks (positivity for free)
                big = float(-np.minimum(ds, 0.0).min(initial=0.0))
                if big > 20.0:
                    t = 20.0 / big
            else:
                neg = dr < 0
                if np.any(neg):
                    t = min(1.0, 0.995 * float(np.min(-r[neg] / dr[neg])))
            merit0 = float(np.dot(RE, RE) / scale_phi**2 + np.dot(RC, RC) / scale_r**2)
            accepted = False
            for _ in range(40):
                # growth linear, shrinking multiplicative: same derivative dr at t = 0, rho' stays > 0
                rn = np.where(dr >= 0, r + t * dr, r * np.exp(t * np.minimum(ds, 0.0))) if logstep else r + t * dr
                pn = phi + t * dp
                REn, RCn, cn, dcn = residual(rn, pn, mu)
                mn = float(np.dot(REn, REn) / scale_phi**2 + np.dot(RCn, RCn) / scale_r**2)
                if np.isfinite(mn) and mn <= (1 - 1e-4 * t) * merit0:
                    accepted = True
                    break
                t /= 2
            if not accepted:
                if res <= 1e3 * self.tol and mu <= mu_min:
                    break
                raise JKOSolveError(f"JKO step: the line search failed at Newton iteration {it}, scaled residual "
                                    f"{res:.3g} (tol {self.tol:g}); reduce tau or raise max_iter")
            r, phi, RE, RC, c, dc = rn, pn, REn, RCn, cn, dcn
            res = measure(RE, RC, r)
        res = measure(*residual(r, phi, mu)[:2], r)
        if res > 1e3 * self.tol:
            raise JKOSolveError(f"JKO step did not converge: scaled residual {res:.3g} after {it} Newton iterations "
                                f"(tol {self.tol:g}); reduce tau or raise max_iter")
        cfin = c_star if frozen else self.conductance(r)[0]
        if not frozen and pred is not None:
            self._warm = (r.copy(), pred, phi - self._dF(r), tau)
        dphi = phi[self.src] - phi[self.dst]
        flux = cfin * dphi  # density per time along src -> dst
        action = float(np.sum(cfin * dphi * dphi))  # sum_e F_e^2 / c_e (per unit volume)
        Fr = self.free_energy(r)
        return JKOResult(rho=r.reshape(self.K, self.M), flux=flux, objective=(Fr + tau * action / 2) * vol,
                         action=action * vol, iterations=it, residual=res,
                         info={"free_energy": Fr * vol, "mass_drift": float(r.sum() - r0.sum()) * vol,
                               "linear_solves": lin, "min_density": float(r.min()), "barrier_mu": mu})

    def evolve(self, rho0: Any, t_final: float, tau: float, callback: Any = None) -> np.ndarray:
        """Minimizing movement: ``n = ceil(t_final / tau)`` JKO steps of ``t_final / n``.

        The mass is not renormalised: ``self.mass_drift`` holds the total drift (sum(rho) h^d - 1)
        after the last call.
        """
        n = n_steps(float(t_final), float(tau))
        dt = float(t_final) / n
        rho = check_density(rho0, (self.K, self.M), self.grid.cell_volume, name="rho0")
        for k in range(n):
            rho = self.step(rho, dt).rho
            if callback is not None:
                callback(k + 1, (k + 1) * dt, rho)
        self.mass_drift = float(rho.sum() * self.grid.cell_volume - 1.0)
        return rho

    def limit_solver(self) -> GridSolver:
        """The grid solver whose flow is this scheme's tau -> 0 limit (linear laws and logmean; entropy only)."""
        law = {"logmean_pi": "glauber", "logmean_pi_min": "metropolis", "logmean": "logmean"}.get(self.theta)
        if law is None or self.T is None or self.energy.interaction is not None:
            raise ValueError(f"no grid law for theta {self.theta!r} with {self.energy!r}")
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
