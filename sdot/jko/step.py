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
sparse LU per Newton iteration; see :mod:`sdot.jko.newton_system`); the start is the linear
predictor, corrected by the previous step when it ended where this one starts (:meth:`JKOStep._warm_start`).
Positivity: shrinking densities are updated multiplicatively (a step in log rho') with the entropy;
for other U (porous medium: compact supports, rho' = 0 is active) a log barrier ``-mu sum log rho'``
is driven to mu ~ 0.1 tol. The line search decreases the scaled residual norm. A step that cannot
be solved raises :class:`JKOSolveError` with the residual. The free energy is any
:class:`~sdot.free_energy.GeneralFreeEnergy` (drift f, internal U, interaction W * rho by FFT; with W
the Newton system is solved by GMRES with the exact local Jacobian as preconditioner).
``scheme="crank_nicolson"`` (a derived option in the spirit of CCWW's Crank–Nicolson-type method, not
their formula): conductances frozen at a JKO half step, ``phi = (dF(rho') + dF(rho)) / 2``; second
order in tau in the tests (Barenblatt), no energy-decrease guarantee. Interpolations theta:

==================  ==============================================================  ====================
name                theta(a, b) on an edge s ~ t                                    limit flow (tau -> 0)
==================  ==============================================================  ====================
``logmean``         Lambda(a, b)                                                    4.2 (nonlinear)
``logmean_pi``      Lambda(a / pi_s, b / pi_t) sqrt(pi_s pi_t)                      4.3 glauber (linear)
``logmean_pi_min``  as above, ``min(pi_s, pi_t)`` on graph edges (faces keep sqrt)  4.3 metropolis
``arithmetic``      (a + b) / 2                                                     nonlinear
==================  ==============================================================  ====================

with ``pi = exp(-f / T)``. Iterating steps (minimizing movement) converges to the grid flow with
error O(tau) at a fixed final time (tests). The Newton system and its linear solvers:
:mod:`sdot.jko.newton_system`; the entropic static variant: :mod:`sdot.jko.entropic`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from ..grid import Grid, GridSolver, _check_tau, check_density, logmean_derivatives, n_steps
from ..rates import logmean
from ..space import SemiDiscreteSpace
from ..validation import positive, positive_int
from .logmean_second import lambda_second
from .newton_system import NewtonSystem
from .result import JKOResult, JKOSolveError

__all__ = ["THETAS", "SCHEMES", "JKOStep", "check_temperature"]

THETAS = ("logmean", "logmean_pi", "logmean_pi_min", "arithmetic")
SCHEMES = ("jko", "crank_nicolson")


def check_temperature(T: Any, who: str) -> float:
    """T as a float > 0 (:func:`sdot.validation.positive`); ValueError ``{who} ... T > 0, got T = ...`` otherwise."""
    try:
        return positive("T", T)
    except ValueError:  # NotANumberError included (None, strings)
        raise ValueError(f"{who} needs a temperature T > 0, got T = {T!r}") from None


class JKOStep(NewtonSystem):
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
        from ..free_energy import Entropy, GeneralFreeEnergy, as_general_energy

        if isinstance(potential, GeneralFreeEnergy):
            if T is not None and (potential.T is None or float(T) != potential.T):
                raise ValueError(f"T = {T!r} conflicts with the energy {potential!r}; set the temperature there")
            energy = potential
        else:
            energy = as_general_energy(potential, check_temperature(T, "the JKO step minimises F_T = V + T H and"))
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
        kappa, tol, max_iter = positive("kappa", kappa), positive("tol", tol), positive_int("max_iter", max_iter)
        if scheme not in SCHEMES:
            raise ValueError(f"unknown scheme {scheme!r}; expected one of {SCHEMES}")
        if energy.interaction is not None:
            if grid.dim == 0:
                raise ValueError("an interaction kernel needs a grid with dim >= 1")
            energy.interaction.lattice(grid)  # refuse a kernel of the wrong shape up front
        pot = energy.potential
        if pot is None:
            from ..potentials import QuadraticPotential

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
        T = check_temperature(T, "the JKO step")
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
                out = list(lambda_second(a, b))
            else:
                out = [logmean(a, b), *logmean_derivatives(a, b)]
        else:
            ua, ub = a / self.pi[self.src], b / self.pi[self.dst]
            vals = lambda_second(ua, ub) if second else (logmean(ua, ub), *logmean_derivatives(ua, ub))
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
            raise JKOSolveError(f"the transport Laplacian is singular (some state has no conducting edge): {exc}") \
                from exc
        # spsolve only warns on a singular matrix (nan or garbage back): check the solve's residual
        with np.errstate(all="ignore"):
            bad = float(np.linalg.norm(Lr @ psi[keep] - rhs[keep])) / (float(np.linalg.norm(rhs[keep])) or 1.0)
        if not np.isfinite(bad) or bad > 1e-6:
            raise JKOSolveError(f"the transport Laplacian is singular (relative residual {bad:.3g} of its solve): "
                                "some state has no conducting edge, or mass must cross between disconnected parts")
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

