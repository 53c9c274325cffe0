"""The finite-volume solver of the semi-discrete flow on a grid (spec ``semi-discrete-flow.md`` 7.1).

**Linear laws** (``glauber``, ``metropolis``, ``upwind``) give a Markov generator ``Q`` on the ``K M``
states ``(g, i)`` (:mod:`sdot.grid.generator`) and the system ``d/dt rho = Q^T rho``. Both SQRA / SG
face rates and the reversible laws satisfy detailed balance with respect to the discrete Gibbs
weights ``pi[g, i] = exp(-f(x_i, g) / T)`` exactly, so ``pi`` (normalised) is the exact discrete
stationary state.

**The nonlinear law** ``logmean`` (4.2) keeps the same transport and uses the reaction
``R_g = sum_h w [T (rho_h - rho_g) + Lambda(rho_g, rho_h) (f_h - f_g)] / kappa`` per cell; stepped
explicitly (refusing ``dt`` above ``1 / max exit rate`` of the current state) or by implicit Euler
with Newton's method.

Time stepping: implicit Euler, Crank–Nicolson, Lie ``split`` (:mod:`sdot.grid.stepping`), explicit
Euler with a stability check (here) and the guarded ``expm`` reference (:mod:`sdot.grid.expm`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from ..backend import to_numpy
from ..potentials import Potential
from ..rates import RateLaw, get_rate_law, logmean
from ..space import SemiDiscreteSpace
from ..validation import nonnegative, positive, positive_int
from .density import _check_tau, check_density, gibbs_density, n_steps
from .expm import expm_apply
from .generator import SPATIAL, check_generator, forward_operator, reaction_edges, transport_edges
from .geometry import Grid
from .stepping import ImplicitStepping

__all__ = ["GridSolver", "StabilityError", "METHODS"]

METHODS = ("implicit", "crank_nicolson", "expm", "explicit", "split")


class StabilityError(ValueError):
    """An explicit step larger than its stability bound was requested."""


class GridSolver(ImplicitStepping):
    """Finite-volume solver of the semi-discrete flow on a grid (spec 7.1).

    Parameters
    ----------
    space : SemiDiscreteSpace or array_like (K, K)
        Graph G and dimension d (must equal ``grid.dim``); raw weights are validated by
        :class:`SemiDiscreteSpace` (NaN, negative or asymmetric weights raise ValueError).
    potential : Potential
        f(x, g), evaluated once at the cell centres (``potential.all_nodes``).
    grid : Grid
    T : float
        Temperature (>= 0; > 0 for ``glauber``, ``metropolis``, ``logmean``).
    law : str or RateLaw
        ``glauber`` | ``metropolis`` | ``upwind`` (linear) | ``logmean`` (nonlinear 4.2).
    method : str
        ``implicit`` (default) | ``crank_nicolson`` | ``expm`` | ``explicit`` | ``split`` (Lie
        splitting of implicit transport and implicit reaction: block-diagonal factorisations, for
        large grids). For ``logmean``: ``implicit`` (Newton) or ``explicit``.
    kappa : float
        Graph-metric scale dividing every reaction rate (engineering option, spec 3.3).
    spatial : str, optional
        Face rates: ``sqra`` (default for T > 0), ``sg`` (exact Scharfetter–Gummel) or ``upwind``
        (T = 0 transport; the default when T = 0).
    check : bool
        Assert generator sanity (non-negative off-diagonals, zero row sums) after assembly.
    newton_tol, newton_maxiter : float, int
        Stopping rule of the implicit log-mean Newton iteration (residual in max norm).
    """

    def __init__(self, space: SemiDiscreteSpace, potential: Potential, grid: Grid, T: float,
                 law: str | RateLaw = "glauber", method: str = "implicit", kappa: float = 1.0,
                 spatial: str | None = None, check: bool = True, newton_tol: float = 1e-12,
                 newton_maxiter: int = 50):
        if not isinstance(space, SemiDiscreteSpace):
            # raw weights: validated (and rejected with a named entry) by SemiDiscreteSpace
            space = SemiDiscreteSpace(space, dim=grid.dim)
        if space.dim != grid.dim:
            raise ValueError(f"space has dimension d = {space.dim} but the grid has dim = {grid.dim}")
        pdim = getattr(potential, "dim", grid.dim)
        if pdim != grid.dim:
            raise ValueError(f"potential has dimension {pdim} but the grid has dim = {grid.dim}")
        pk = getattr(potential, "n_nodes", space.n_nodes)
        if pk != space.n_nodes:
            raise ValueError(f"potential has {pk} nodes but the graph has K = {space.n_nodes}")
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; expected one of {METHODS}")
        self.space, self.potential, self.grid = space, potential, grid
        self.law = get_rate_law(law, kappa)
        if not self.law.linear and method not in ("implicit", "explicit"):
            raise ValueError(f"the nonlinear law {self.law.name!r} supports method 'implicit' (Newton) or "
                             f"'explicit', got {method!r}")
        self.method = method
        self.K, self.M = space.n_nodes, grid.n_points
        self.check = bool(check)
        self.newton_tol = positive("newton_tol", newton_tol)
        self.newton_maxiter = positive_int("newton_maxiter", newton_maxiter)
        self._spatial_choice = spatial
        F = np.asarray(to_numpy(potential.all_nodes(grid.centers)), dtype=float).T  # (K, M)
        if F.shape != (self.K, self.M):
            raise ValueError(f"potential.all_nodes returned shape {F.shape[::-1]}, expected ({self.M}, {self.K})")
        if not np.all(np.isfinite(F)):
            k = int(np.flatnonzero(~np.isfinite(F.ravel()))[0])
            g, i = divmod(k, self.M)
            raise ValueError(f"potential value f(x_{i}, {g}) = {F.ravel()[k]} at x = {grid.centers[i]} is not finite")
        self.f = F
        self.T = None
        self.set_temperature(T)

    # ---- configuration ------------------------------------------------------------------------
    def set_temperature(self, T: float) -> None:
        """Set T and re-assemble the generator (factorisations are dropped)."""
        T = float(T)
        self.law.check_temperature(T)
        if not np.isfinite(T) or T < 0:  # message kept: "T = value" (tests match it)
            raise ValueError(f"temperature T must be a finite number >= 0, got T = {T!r}")
        spatial = self._spatial_choice or ("sqra" if T > 0 else "upwind")
        if spatial not in SPATIAL:
            raise ValueError(f"unknown spatial scheme {spatial!r}; expected one of {SPATIAL}")
        if spatial in ("sqra", "sg") and T <= 0 and self.grid.dim > 0:
            raise ValueError(f"spatial scheme {spatial!r} needs a temperature T > 0, got T = {T!r}; "
                             "use spatial='upwind' for T = 0")
        if self.T is not None and T == self.T:
            return
        self.T, self.spatial = T, spatial
        self._lu: dict[tuple[str, float], Any] = {}
        self._assemble()

    @property
    def n_states(self) -> int:
        return self.K * self.M

    # ---- assembly ------------------------------------------------------------------------------
    def _spatial_edges(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Directed transport edges (src, dst, rate) over all nodes, flattened indices g * M + i."""
        return transport_edges(self.f, self.grid, self.T, self.spatial)

    def _reaction_edges(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Directed graph edges replicated over cells: (src, dst, w) flattened."""
        return reaction_edges(self.space, self.M)

    def _assemble(self) -> None:
        s_src, s_dst, s_rate = self._spatial_edges()
        self._s_src, self._s_dst = s_src, s_dst
        r_src, r_dst, r_w = self._reaction_edges()
        self._r_src, self._r_dst, self._r_w = r_src, r_dst, r_w
        fflat = self.f.ravel()
        self._s_rate = s_rate
        if self.law.linear:
            r_rate = np.asarray(self.law.rate(fflat[r_src], fflat[r_dst], r_w, self.T), dtype=float)
            self._r_rate = r_rate
            src = np.concatenate([s_src, r_src])
            dst = np.concatenate([s_dst, r_dst])
            rate = np.concatenate([s_rate, r_rate])
        else:
            src, dst, rate = s_src, s_dst, s_rate
        self.A, self._exit_rate = forward_operator(src, dst, rate, self.n_states)
        if self.check:
            self.check_generator()

    @property
    def Q(self) -> sp.csr_matrix:
        """Markov generator on the (g, i) states (row = from, column = to); linear part only for logmean."""
        return self.A.T.tocsr()

    def check_generator(self, rtol: float = 1e-12) -> None:
        """Assert non-negative off-diagonal rates and zero row sums of Q (spec 9)."""
        check_generator(self.A, self._exit_rate, rtol)

    # ---- Gibbs / stationary ----------------------------------------------------------------------
    def gibbs(self) -> np.ndarray:
        """Discrete Gibbs density ``pi[g, i] ∝ exp(-f(x_i, g) / T)`` with total mass 1, shape (K, M).

        For the reversible laws this is the exact stationary state of the discrete flow.
        Raises ValueError for T = 0, for a law that does not leave it invariant, and for a
        disconnected graph (the stationary state is then not unique).
        """
        if not self.law.gibbs_reversible:
            raise ValueError(f"rate law {self.law.name!r} does not leave the Gibbs measure invariant; "
                             "there is no Gibbs stationary state to return")
        if self.T <= 0:
            raise ValueError(f"the Gibbs measure needs a temperature T > 0, got T = {self.T!r}")
        self.space.require_connected()
        return gibbs_density(self.f, self.T, self.grid.cell_volume)

    def node_masses(self, rho: Any) -> np.ndarray:
        """m_g = sum_i rho[g, i] h^d, shape (K,)."""
        return np.asarray(rho, dtype=float).reshape(self.K, self.M).sum(axis=1) * self.grid.cell_volume

    def check_density(self, rho: Any, name: str = "rho") -> np.ndarray:
        """Validate shape (K, M), finiteness, non-negativity and unit mass; return a float array."""
        return check_density(rho, (self.K, self.M), self.grid.cell_volume, name=name)

    # ---- right-hand side, dissipation ------------------------------------------------------------
    def _reaction_logmean(self, r: np.ndarray) -> np.ndarray:
        """R(rho) of the log-mean law on flattened densities."""
        s, d, w = self._r_src, self._r_dst, self._r_w
        rg, rh = r[s], r[d]
        fl = self.f.ravel()
        contrib = w * (self.T * (rh - rg) + logmean(rg, rh) * (fl[d] - fl[s])) / self.law.kappa
        return np.bincount(s, weights=contrib, minlength=self.n_states)

    def rhs(self, rho: Any) -> np.ndarray:
        """d rho / dt at ``rho`` (shape (K, M))."""
        r = np.asarray(rho, dtype=float).ravel()
        out = self.A @ r
        if not self.law.linear:
            out = out + self._reaction_logmean(r)
        return out.reshape(self.K, self.M)

    def first_variation(self, rho: Any) -> np.ndarray:
        """dF_T/drho = f + T (log rho + 1) (just f at T = 0), shape (K, M)."""
        rho = np.asarray(rho, dtype=float).reshape(self.K, self.M)
        if self.T == 0:
            return self.f.copy()
        with np.errstate(divide="ignore"):
            return self.f + self.T * (np.log(rho) + 1.0)

    def dissipation(self, rho: Any) -> float:
        """D(rho) of spec 3.4 in its metric (sum-of-squares) form, so that dF/dt = -D.

        Linear reversible part: ``(h^d / 2) sum_{s,s'} pi_s Q_{ss'} Lambda(u_s, u_s')
        (phi_{s'} - phi_s)^2 / T`` with u = rho / pi and phi = T log u (equivalently
        ``(T h^d / 2) sum pi_s Q_ss' (u_s' - u_s)(log u_s' - log u_s)``); log-mean reaction:
        ``(h^d / 2) sum w Lambda(rho_g, rho_h) (phi_h - phi_g)^2 / kappa``; T = 0 (upwind):
        ``h^d sum_s rho_s sum_{s'} Q_{ss'} (f_s - f_s')``. Non-reversible laws at T > 0 fall back to
        ``-h^d <dF/drho, d rho/dt>``.
        """
        r = np.asarray(rho, dtype=float).ravel()
        vol, T = self.grid.cell_volume, self.T
        Q = self.A.T.tocoo()
        off = Q.row != Q.col
        s, t, q = Q.row[off], Q.col[off], Q.data[off]
        fl = self.f.ravel()
        if T == 0:
            return float(vol * np.sum(r[s] * q * (fl[s] - fl[t])))
        reversible_part = self.law.gibbs_reversible or not self.law.linear
        if not reversible_part:
            phi = self.first_variation(r).ravel()
            return float(-vol * np.dot(phi, self.rhs(r).ravel()))
        # pi_s Q_ss' (u_s' - u_s)(log u_s' - log u_s) written without pi overflow:
        # pi_s Q_ss' u_s' = (pi_s Q_ss' / pi_s') rho_s' = Q_s's rho_s' (detailed balance)
        with np.errstate(divide="ignore", invalid="ignore"):
            logu = np.log(r) + fl / T
            flux = q * r[s]  # pi_s Q_ss' u_s
            dlog = logu[t] - logu[s]
            # pi_s Q_ss' (u_s' - u_s) = flux * (u_s'/u_s - 1) = flux * expm1(dlog)
            terms = np.where(r[s] > 0, flux * np.expm1(dlog) * dlog, np.where(r[t] > 0, np.inf, 0.0))
        D = 0.5 * T * vol * float(np.sum(terms))
        if not self.law.linear:
            a, b, w = self._r_src, self._r_dst, self._r_w
            phi = self.first_variation(r).ravel()
            with np.errstate(invalid="ignore"):
                dphi = np.where(logmean(r[a], r[b]) > 0, phi[b] - phi[a], 0.0)
            D += 0.5 * vol * float(np.sum(w * logmean(r[a], r[b]) * dphi**2)) / self.law.kappa
        return D

    # ---- stepping ----------------------------------------------------------------------------------
    def max_rate(self, rho: Any | None = None) -> float:
        """Largest exit rate; the explicit stability bound is dt <= 1 / max_rate.

        Linear laws: ``max_s sum_{s'} Q_{ss'}``. Log-mean: the exit rate of the current state
        ``rho`` (transport plus ``sum_h w Lambda(rho_g, rho_h) (phi_g - phi_h)_+ / rho_g / kappa``),
        which keeps the explicit step non-negative.
        """
        base = self._exit_rate
        if self.law.linear:
            return float(base.max(initial=0.0))
        if rho is None:
            raise ValueError("the log-mean exit rate depends on the state; pass rho")
        r = np.asarray(rho, dtype=float).ravel()
        a, b, w = self._r_src, self._r_dst, self._r_w
        phi = self.first_variation(r).ravel()
        L = logmean(r[a], r[b])
        with np.errstate(invalid="ignore", divide="ignore"):
            out = np.where(r[a] > 0, w * L * np.maximum(phi[a] - phi[b], 0.0) / np.where(r[a] > 0, r[a], 1.0), 0.0)
        out = np.nan_to_num(out, nan=0.0) / self.law.kappa
        return float((base + np.bincount(a, weights=out, minlength=self.n_states)).max(initial=0.0))

    def step(self, rho: Any, tau: float, method: str | None = None, check: bool = True) -> np.ndarray:
        """One step of size ``tau`` from ``rho`` (K, M); returns the new density (K, M).

        ``check`` validates ``rho`` (finite, non-negative, total mass 1) first.
        """
        tau = _check_tau(tau)
        method = method or self.method
        r = (self.check_density(rho) if check else np.asarray(rho, dtype=float)).ravel()
        return self._step_flat(r, tau, method).reshape(self.K, self.M)

    def _step_flat(self, r: np.ndarray, tau: float, method: str) -> np.ndarray:
        if method == "explicit":
            bound = 1.0 / max(self.max_rate(r), 1e-300)
            if tau > bound * (1 + 1e-12):
                raise StabilityError(
                    f"explicit step dt = {tau:g} exceeds the stability bound 1 / max exit rate = {bound:.6g} "
                    f"(law {self.law.name!r}, T = {self.T:g}, h = {self.grid.h:g}); use dt <= {bound:.6g} "
                    "or method='implicit'")
            return r + tau * self.rhs(r).ravel()
        if not self.law.linear:
            if method != "implicit":
                raise ValueError(f"method {method!r} is not available for the nonlinear law {self.law.name!r}")
            return self._newton_step(r, tau)
        if method == "implicit":
            return self._factor("implicit", tau).solve(r)
        if method == "crank_nicolson":
            return self._factor("crank_nicolson", tau).solve(r + (tau / 2) * (self.A @ r))
        if method == "expm":
            return expm_apply(self.A, tau, r, self._lu)
        if method == "split":
            return self._split_step(r, tau)
        raise ValueError(f"unknown method {method!r}; expected one of {METHODS}")

    def evolve(self, rho0: Any, t_final: float, tau: float, method: str | None = None,
               callback: Any = None) -> np.ndarray:
        """Advance ``rho0`` to time ``t_final`` with ``n = ceil(t_final / tau)`` equal steps of ``t_final / n``.

        ``method='expm'`` computes ``expm(t_final A) rho0`` in one call (the reference; ``tau`` unused).
        ``callback(k, t, rho)`` is called after every step when given.
        """
        method = method or self.method
        t_final = nonnegative("t_final", t_final)
        r = self.check_density(rho0, name="rho0").ravel()
        if t_final == 0:
            return r.reshape(self.K, self.M)
        if method == "expm" and self.law.linear:
            out = expm_apply(self.A, t_final, r, self._lu).reshape(self.K, self.M)
            if callback is not None:
                callback(1, t_final, out)
            return out
        tau = _check_tau(tau)
        n = n_steps(t_final, tau)
        dt = t_final / n
        for k in range(n):
            r = self._step_flat(r, dt, method)
            if callback is not None:
                callback(k + 1, (k + 1) * dt, r.reshape(self.K, self.M))
        return r.reshape(self.K, self.M)

    def __repr__(self) -> str:
        return (f"GridSolver(K={self.K}, M={self.M}, d={self.grid.dim}, T={self.T}, law={self.law.name!r}, "
                f"method={self.method!r}, spatial={self.spatial!r})")
