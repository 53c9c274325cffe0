"""Damped Hamiltonian (second-order) dynamics on a graph (d = 0) and on a grid for R^d x G (spec 4.5, 8.9).

**Core: a weighted graph of states** (edges ``s ~ t`` with weights ``w``, energies ``f`` per
state, masses ``m >= 0`` summing to one, a potential ``phi`` per state)::

    K(m, phi) = (1/2) ||phi||_m^2 = (1/2) sum_{edges s~t} w theta(m_s, m_t) (phi_t - phi_s)^2
    H = K + F_T,   F_T = sum_s f_s m_s + T m_s log(m_s / vol)
    d m_s / dt   = -sum_t w theta(m_s, m_t) (phi_t - phi_s)                                 (= dH/dphi_s)
    d phi_s / dt = -(1/2) sum_t w d_1 theta(m_s, m_t) (phi_t - phi_s)^2 - dF_T/dm_s - gamma(t) phi_s
    d H / dt = -2 gamma(t) K  (H conserved when gamma = 0)

with ``dF_T/dm_s = f_s + T (log(m_s / vol) + 1)``. On the graph (d = 0, :class:`DampedHamiltonian`)
the states are the K nodes and vol = 1.

**Grid (d >= 1, :class:`GridHamiltonian`).** The finite-volume discretisation of the
Wasserstein–Hamiltonian flow on R^d x G (spec 4.5) is the same core on the product graph
(nodes x cells), in the masses ``m[g, i] = rho[g, i] h^d`` (vol = h^d):

* a spatial face ``i ~ j`` of node g is an edge of weight ``1 / h^2``. Because theta is
  1-homogeneous, ``(1/2) sum_faces theta(m_i, m_j) (phi_j - phi_i)^2 / h^2`` approximates
  ``(1/2) int rho_g |grad phi_g|^2 dx`` (mobility 1, as in :class:`sdot.grid.GridSolver`);
* a graph edge ``g ~ g'`` in cell i is an edge of weight ``w(g, g') / kappa`` (the kappa of the
  rate laws);
* ``vol sum (f rho + T rho log rho)`` is exactly ``sum f m + T m log(m / vol)``, and phi is the
  continuum potential phi_g(x_i) itself.

Overdamped limit: as gamma -> infinity, ``phi ~ -dF/drho / gamma`` and ``rho(gamma s)`` tends
to the first-order flow at time s of the same metric. With ``theta="logmean_pi"`` that flow is
*exactly* the generator of ``GridSolver(law="glauber", spatial="sqra", kappa=kappa)``
(face rates ``(T/h^2) exp((f_i - f_j)/(2T))``, glauber reaction rates); with ``theta="logmean"``
it is the log-mean law with a log-mean (instead of SQRA) face flux, consistent to O(h^2).

theta: ``logmean`` (Lambda), ``logmean_pi`` (Lambda(m_s/pi_s, m_t/pi_t) sqrt(pi_s pi_t),
pi = exp(-f/T), evaluated edge-locally as ``Lambda(a m_s, m_t / a)`` with
``a = exp((f_s - f_t) / (2T))`` so that pi never underflows) or ``arithmetic``. gamma: a constant
>= 0 (heavy ball), ``"nesterov"`` (gamma(t) = 3 / t; start at ``t0 > 0``) or a callable
``gamma(t)``. Integrator: the implicit midpoint rule (symplectic for gamma = 0; energy error
O(dt^2) without drift), solved to round-off by fixed-point iteration, with Newton's method on an
analytic sparse Jacobian (second derivatives of theta included) when the fixed point is slow.
Optional adaptive restart (``restart="gradient"``, the O'Donoghue–Candès analogue of spec 6.5):
set phi = 0 whenever ``<dF/dm, dm/dt> > 0``; H never increases at a restart (K drops to 0).

Example
-------
>>> import numpy as np
>>> from sdot import SemiDiscreteSpace, QuadraticPotential
>>> from sdot.grid import Grid
>>> from sdot.hamiltonian import GridHamiltonian
>>> space = SemiDiscreteSpace.path(2, dim=1)
>>> f = QuadraticPotential(a=[1.0, 0.8], c=[0.0, 0.3], m=[[0.3], [-0.3]])
>>> grid = Grid(lower=-4, upper=4, n_cells=40, dim=1)
>>> ham = GridHamiltonian(space, f, grid, T=1.0)
>>> rho0 = np.exp(-f.all_nodes(grid.centers - 0.5).T)  # Gibbs profiles shifted by 0.5: off equilibrium
>>> rho0 /= rho0.sum() * grid.cell_volume
>>> tr = ham.run(rho0, t_final=2.0, dt=0.01)
>>> tr.rho.shape, bool(np.ptp(tr.H) < 1e-6 * abs(tr.H[0]))
((201, 2, 40), True)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from .backend import to_numpy
from .grid import Grid, check_density
from .rates import logmean_second_derivatives, logmean_with_derivatives  # re-exported: old import path
from .potentials import Potential
from .space import SemiDiscreteSpace
from .validation import positive, positive_int

__all__ = ["DampedHamiltonian", "GridHamiltonian", "HamiltonianTrajectory", "logmean_second_derivatives"]

THETAS = ("logmean", "logmean_pi", "arithmetic")
# theta(m_s, m_t) ~ m_t / log(m_t / m_s) vanishes only logarithmically as m_s -> 0, so inertia can
# empty a state in finite time (near-vacuum, e.g. a strong force pulling mass away from a wall)
_EMPTY_HINT = ("reduce dt; if that does not help the discrete flow is emptying a state (near-vacuum, e.g. a "
               "strong force pulling mass off a wall): refine the grid, raise T or gamma, or start nearer equilibrium")


@dataclass
class HamiltonianTrajectory:
    """Recorded times (n,), densities and potentials (n, *state_shape), H, K, F (n,) and restart times.

    ``state_shape`` is (K,) on a graph and (K, M) on a grid; F is F_T of the density.
    """

    t: np.ndarray
    rho: np.ndarray
    phi: np.ndarray
    H: np.ndarray
    kinetic: np.ndarray
    F: np.ndarray
    restarts: list = field(default_factory=list)


def _parse_gamma(gamma: Any) -> Callable[[float], float]:
    if isinstance(gamma, str):
        if gamma != "nesterov":
            raise ValueError(f"unknown damping {gamma!r}; expected a number >= 0, 'nesterov' or a callable")
        return lambda t: 3.0 / t
    if callable(gamma):
        return gamma
    try:
        g0 = float(gamma)
    except (TypeError, ValueError):
        raise ValueError(f"damping gamma must be a number >= 0, 'nesterov' or a callable, got {gamma!r}") from None
    if not np.isfinite(g0) or g0 < 0:
        raise ValueError(f"damping gamma must be >= 0, got {gamma!r}")
    return lambda t, g0=g0: g0


class DampedHamiltonian:
    """Damped Hamiltonian flow on P(G) (d = 0); see the module docstring.

    The core (energies, vector field, implicit midpoint step) works on any weighted graph of
    states: :meth:`from_edges` builds it from an edge list, :meth:`on_grid` (or
    :class:`GridHamiltonian`) on the product graph of a grid.

    Parameters
    ----------
    space : SemiDiscreteSpace (d = 0) or array_like (K, K) weights
    potential : Potential with dim 0 (node energies f_g = potential at the single point)
        or an array of K node energies.
    T : float >= 0 (entropy weight; T > 0 needed for ``logmean_pi``)
    theta : ``"logmean"`` | ``"logmean_pi"`` | ``"arithmetic"``
    gamma : float >= 0, ``"nesterov"`` or callable gamma(t)
    restart : ``"none"`` | ``"gradient"``
    newton_tol : float
        The midpoint equation is solved until its residual (max norm) is below
        ``newton_tol * max(1, |z0|_max)``.
    kappa : float > 0
        Scale dividing every graph weight (spec 3.3; as in :class:`sdot.grid.GridSolver`).
    """

    def __init__(self, space: Any, potential: Any, T: float, theta: str = "logmean",
                 gamma: float | str | Callable[[float], float] = 0.0, restart: str = "none",
                 newton_tol: float = 1e-14, kappa: float = 1.0):
        if not isinstance(space, SemiDiscreteSpace):
            space = SemiDiscreteSpace(space, dim=0)
        if space.dim != 0:
            raise ValueError(f"DampedHamiltonian implements d = 0 (graph only); the space has d = {space.dim}; "
                             "use GridHamiltonian (or DampedHamiltonian.on_grid) for d >= 1")
        self.space = space
        K = space.n_nodes
        if isinstance(potential, Potential):
            f = np.asarray(to_numpy(potential.all_nodes(np.zeros((1, 0)))), dtype=float).ravel()
        else:
            f = np.asarray(potential, dtype=float).ravel()
        if f.shape != (K,) or not np.all(np.isfinite(f)):
            raise ValueError(f"node energies must be {K} finite numbers, got {f!r}")
        kappa = _check_kappa(kappa)
        s, t, w = space.edges()
        keep = s < t
        self._setup(s[keep], t[keep], w[keep] / kappa, f, T, theta, gamma, restart, newton_tol,
                    cell_volume=1.0, shape=(K,))
        self.kappa = kappa

    # ---- construction ----------------------------------------------------------------------------
    @classmethod
    def from_edges(cls, src: Any, dst: Any, weight: Any, energies: Any, T: float, theta: str = "logmean",
                   gamma: float | str | Callable[[float], float] = 0.0, restart: str = "none",
                   newton_tol: float = 1e-14) -> "DampedHamiltonian":
        """The core on an arbitrary graph of N states: undirected edges ``(src[e], dst[e])`` listed once,
        weights ``weight[e] > 0`` and energies ``energies`` of shape (N,) (vol = 1)."""
        f = np.asarray(energies, dtype=float).ravel()
        s = np.asarray(src, dtype=np.int64).ravel()
        t = np.asarray(dst, dtype=np.int64).ravel()
        w = np.asarray(weight, dtype=float).ravel()
        N = f.size
        if not (s.shape == t.shape == w.shape):
            raise ValueError(f"src, dst and weight must have one entry per edge, got {s.shape}, {t.shape}, {w.shape}")
        if s.size and (min(s.min(), t.min()) < 0 or max(s.max(), t.max()) >= N):
            raise ValueError(f"edge endpoints must lie in [0, {N}), got range [{min(s.min(), t.min())}, "
                             f"{max(s.max(), t.max())}]")
        if np.any(s == t):
            raise ValueError(f"self-loop edge at state {int(s[s == t][0])}; edges need src != dst")
        if not np.all(np.isfinite(f)):
            raise ValueError(f"energies must be finite, got {float(f[~np.isfinite(f)][0])!r}")
        obj = cls.__new__(cls)
        obj.space = None
        obj.kappa = 1.0
        obj._setup(s, t, w, f, T, theta, gamma, restart, newton_tol, cell_volume=1.0, shape=(N,))
        return obj

    @classmethod
    def on_grid(cls, space: Any, potential: Any, grid: Grid, T: float, **options: Any) -> "GridHamiltonian":
        """The grid version on R^d x G: ``GridHamiltonian(space, potential, grid, T, **options)``."""
        return GridHamiltonian(space, potential, grid, T, **options)

    def _setup(self, s, t, w, f, T, theta, gamma, restart, newton_tol, *, cell_volume, shape) -> None:
        T = float(T)
        if not np.isfinite(T) or T < 0:  # message kept: "T = value", as the tests and the grid solver say it
            raise ValueError(f"temperature T must be a finite number >= 0, got T = {T!r}")
        if theta not in THETAS:
            raise ValueError(f"unknown theta {theta!r}; expected 'logmean', 'logmean_pi' or 'arithmetic'")
        if theta == "logmean_pi" and T <= 0:
            raise ValueError(f"theta 'logmean_pi' needs a temperature T > 0, got T = {T!r}")
        if restart not in ("none", "gradient"):
            raise ValueError(f"unknown restart rule {restart!r}; expected 'none' or 'gradient'")
        if w.size and (not np.all(np.isfinite(w)) or w.min() <= 0):
            k = int(np.flatnonzero(~(np.isfinite(w) & (w > 0)))[0])
            raise ValueError(f"edge weight w[{k}] = {float(w[k])!r} between states {int(s[k])} and {int(t[k])}; "
                             "weights must be finite and > 0")
        tol = positive("newton_tol", newton_tol)
        self.gamma = _parse_gamma(gamma)
        self.f, self.T, self.theta, self.restart, self.newton_tol = f, T, theta, restart, tol
        self.s, self.t, self.w = s, t, w
        self.N = f.size
        self.K = shape[0]
        self.shape = tuple(shape)
        self.cell_volume = float(cell_volume)
        if theta == "logmean_pi":
            # edge-local pi ratios a = exp((f_s - f_t) / (2T)): theta = Lambda(a m_s, m_t / a)
            with np.errstate(over="ignore"):
                self._alpha = np.exp((f[s] - f[t]) / (2 * T))
            bad = ~np.isfinite(self._alpha) | (self._alpha == 0)
            if np.any(bad):
                k = int(np.flatnonzero(bad)[0])
                raise ValueError(f"theta 'logmean_pi': exp((f_s - f_t) / (2T)) over/underflows on edge {s[k]} ~ "
                                 f"{t[k]} (f = {f[s[k]]:.6g}, {f[t[k]]:.6g}, T = {T:g}); raise T or refine the grid")

    # ---- conversions between the public (density) and internal (mass) variables ----------------------
    def _flat(self, x: Any, name: str) -> np.ndarray:
        x = np.asarray(to_numpy(x), dtype=float)
        if x.size != self.N or (x.ndim > 1 and x.shape != self.shape):
            raise ValueError(f"{name} must have shape {self.shape}, got {x.shape}")
        return x.reshape(self.N)

    def _state_name(self, k: int) -> str:
        """Flat state index k as a tuple string: '(g,)' on a graph, '(g, i)' on a grid."""
        return str(tuple(int(i) for i in np.unravel_index(k, self.shape)))

    def _mass(self, rho: Any) -> np.ndarray:
        return self._flat(rho, "rho") * self.cell_volume

    def _density(self, m: np.ndarray) -> np.ndarray:
        return (m / self.cell_volume).reshape(self.shape)

    # ---- pieces on masses ------------------------------------------------------------------------------
    def _theta(self, m: np.ndarray, second: bool = False):
        """theta on every edge and its first (and second) partial derivatives in (m_s, m_t)."""
        a, b = m[self.s], m[self.t]
        if self.theta == "arithmetic":
            half = np.full_like(a, 0.5)
            out = ((a + b) / 2, half, half)
            return out + (np.zeros_like(a),) * 3 if second else out
        if self.theta == "logmean":
            out = logmean_with_derivatives(a, b)
            return out + logmean_second_derivatives(a, b) if second else out
        al = self._alpha
        x, y = al * a, b / al
        th, da, db = logmean_with_derivatives(x, y)
        out = (th, da * al, db / al)
        if not second:
            return out
        daa, dab, dbb = logmean_second_derivatives(x, y)
        return out + (daa * al * al, dab, dbb / (al * al))

    def _free_energy_m(self, m: np.ndarray) -> float:
        F = float(np.dot(self.f, m))
        if self.T > 0:
            pos = m > 0
            F += self.T * float(np.sum(m[pos] * np.log(m[pos] / self.cell_volume)))
        return F

    def _first_variation_m(self, m: np.ndarray) -> np.ndarray:
        if self.T == 0:
            return self.f.copy()
        with np.errstate(divide="ignore"):
            return self.f + self.T * (np.log(m / self.cell_volume) + 1.0)

    def _kinetic_m(self, m: np.ndarray, phi: np.ndarray) -> float:
        th = self._theta(m)[0]
        return 0.5 * float(np.sum(self.w * th * (phi[self.t] - phi[self.s]) ** 2))

    def _field(self, t: float, m: np.ndarray, phi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(dm/dt, dphi/dt) on flat masses."""
        N = self.N
        th, da, db = self._theta(m)
        dphi = phi[self.t] - phi[self.s]
        flow = self.w * th * dphi  # mass rate s -> t
        dm = np.bincount(self.t, weights=flow, minlength=N) - np.bincount(self.s, weights=flow, minlength=N)
        q = 0.5 * self.w * dphi**2
        dp = -(np.bincount(self.s, weights=q * da, minlength=N) + np.bincount(self.t, weights=q * db, minlength=N))
        dp = dp - self._first_variation_m(m) - self.gamma(t) * phi
        return dm, dp

    def _jacobian(self, t: float, m: np.ndarray, phi: np.ndarray) -> sp.csr_matrix:
        """Sparse Jacobian (2N, 2N) of (dm/dt, dphi/dt) with respect to (m, phi)."""
        N, s, d, w = self.N, self.s, self.t, self.w
        th, da, db, daa, dab, dbb = self._theta(m, second=True)
        dphi = phi[d] - phi[s]
        q = 0.5 * w * dphi**2
        # flow_e = w th dphi enters dm_t with +, dm_s with -
        cs, ct, cp = w * da * dphi, w * db * dphi, w * th
        # dm/dt rows: d flow/d m_s, d flow/d m_t (block mm); d flow/d phi_t = cp, d/d phi_s = -cp (block mp)
        rows = [d, d, s, s, d, d, s, s]
        cols = [s, d, s, d, N + d, N + s, N + d, N + s]
        vals = [cs, ct, -cs, -ct, cp, -cp, -cp, cp]
        # dphi/dt rows: -(q da) at s, -(q db) at t; dq/dphi_t = w dphi = -dq/dphi_s
        wd = w * dphi
        rows += [N + s, N + s, N + d, N + d, N + s, N + s, N + d, N + d]
        cols += [s, d, s, d, N + d, N + s, N + d, N + s]
        vals += [-q * daa, -q * dab, -q * dab, -q * dbb, -da * wd, da * wd, -db * wd, db * wd]
        idx = np.arange(N, dtype=np.int64)
        diag_m = (-self.T / np.maximum(m, np.finfo(float).tiny)) if self.T > 0 else np.zeros(N)
        rows += [N + idx, N + idx]
        cols += [idx, N + idx]
        vals += [diag_m, np.full(N, -float(self.gamma(t)))]
        return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                             shape=(2 * N, 2 * N))

    def _step_m(self, m0: np.ndarray, p0: np.ndarray, t: float, dt: float) -> tuple[np.ndarray, np.ndarray]:
        """Implicit midpoint on masses: z1 = z0 + dt X(t + dt/2, (z0 + z1)/2), solved for the midpoint."""
        N = self.N
        z0 = np.concatenate([m0, p0])
        tm = t + dt / 2

        def G(z):
            dm, dp = self._field(tm, z[:N], z[N:])
            return z - z0 - 0.5 * dt * np.concatenate([dm, dp])

        dm, dp = self._field(t, m0, p0)
        pred = z0 + 0.5 * dt * np.concatenate([dm, dp])  # explicit predictor
        tol = self.newton_tol * max(1.0, float(np.abs(z0).max()))
        # fixed-point iteration z = z0 + dt/2 X(z): cheap, a contraction for small dt; leave for
        # Newton as soon as it contracts slower than 1/2 per sweep or leaves the positive cone
        z, prev = pred, np.inf
        for k in range(60):
            if np.any(z[:N] <= 0):
                break
            g = G(z)
            err = float(np.abs(g).max())
            if err <= tol:
                return self._endpoint(z, m0, p0, t, dt)
            if k >= 2 and err > 0.5 * prev:
                break
            prev = err
            z = z - g
        z = pred if np.all(pred[:N] > 0) else np.concatenate([m0, pred[N:]])
        g = G(z)
        err = float(np.abs(g).max())
        I = sp.identity(2 * N, format="csr")
        for _ in range(50):
            if err <= tol:
                break
            J = (I - 0.5 * dt * self._jacobian(tm, z[:N], z[N:])).tocsc()
            delta = spla.spsolve(J, -g)
            step = 1.0
            for _ in range(60):  # damping: stay positive, decrease the residual
                zn = z + step * delta
                if np.all(zn[:N] > 0):
                    gn = G(zn)
                    en = float(np.abs(gn).max())
                    if en <= (1 - 1e-4 * step) * err or step < 1e-6:
                        break
                step /= 2
            else:
                raise FloatingPointError(f"a density reached zero in the implicit midpoint solve at t = {t:g} "
                                         f"(dt = {dt:g}): {_EMPTY_HINT}")
            if not np.isfinite(en):
                raise FloatingPointError(f"non-finite residual in the implicit midpoint solve at t = {t:g}; "
                                         f"reduce dt (= {dt:g})")
            if en >= err and err <= 1e3 * tol:
                break  # stagnating at round-off: accept the current iterate
            z, g, err = zn, gn, en
        if err > 1e3 * tol:
            raise FloatingPointError(f"implicit midpoint Newton did not converge at t = {t:g} (residual {err:.3g}, "
                                     f"tolerance {tol:.3g}, dt = {dt:g}, smallest mass {z[:N].min():.3g} at state "
                                     f"{self._state_name(int(np.argmin(z[:N])))}): {_EMPTY_HINT}")
        return self._endpoint(z, m0, p0, t, dt)

    def _endpoint(self, z: np.ndarray, m0: np.ndarray, p0: np.ndarray, t: float, dt: float):
        """z1 = 2 z_mid - z0; a positive midpoint does not make the end positive, so check it."""
        N = self.N
        m1 = 2 * z[:N] - m0
        if np.any(m1 <= 0):
            k = int(np.argmin(m1))
            raise FloatingPointError(f"the implicit midpoint step from t = {t:g} (dt = {dt:g}) drives the mass of "
                                     f"state {self._state_name(k)} from {m0[k]:.3g} to {m1[k]:.3g} <= 0: {_EMPTY_HINT}")
        return m1, 2 * z[N:] - p0

    # ---- public pieces (densities of shape ``self.shape``) --------------------------------------------
    def free_energy(self, rho: Any) -> float:
        """F_T(rho) = vol sum (f rho + T rho log rho) (vol = h^d; 1 on a graph)."""
        return self._free_energy_m(self._mass(rho))

    def kinetic(self, rho: Any, phi: Any) -> float:
        """K = (1/2) sum_edges w theta(m_s, m_t) (phi_t - phi_s)^2, m = rho vol."""
        return self._kinetic_m(self._mass(rho), self._flat(phi, "phi"))

    def hamiltonian(self, rho: Any, phi: Any) -> float:
        """H = K + F_T."""
        return self.kinetic(rho, phi) + self.free_energy(rho)

    def first_variation(self, rho: Any) -> np.ndarray:
        """dF_T/drho = f + T (log rho + 1), shape ``self.shape``."""
        return self._first_variation_m(self._mass(rho)).reshape(self.shape)

    def vector_field(self, t: float, rho: Any, phi: Any) -> tuple[np.ndarray, np.ndarray]:
        """(d rho/dt, d phi/dt) at time t, each of shape ``self.shape``."""
        dm, dp = self._field(t, self._mass(rho), self._flat(phi, "phi"))
        return self._density(dm), dp.reshape(self.shape)

    def step(self, rho: Any, phi: Any, t: float, dt: float) -> tuple[np.ndarray, np.ndarray]:
        """One implicit-midpoint step of size dt from (rho, phi) at time t; returns (rho, phi)."""
        m, p = self._step_m(self._mass(rho), self._flat(phi, "phi").copy(), float(t), _check_dt(dt))
        return self._density(m), p.reshape(self.shape)

    def _restart_m(self, t: float, m: np.ndarray, phi: np.ndarray) -> bool:
        """The gradient restart rule on masses: True when <dF/dm, dm/dt> > 0 (F_T is rising)."""
        dm, _ = self._field(t, m, phi)
        return bool(np.dot(self._first_variation_m(m), dm) > 0)

    def should_restart(self, t: float, rho: Any, phi: Any) -> bool:
        """The gradient restart rule (O'Donoghue–Candès): True when ``<dF/drho, drho/dt> > 0`` at (t, rho, phi);
        :meth:`run` then sets phi = 0 (``restart="gradient"``)."""
        return self._restart_m(float(t), self._mass(rho), self._flat(phi, "phi"))

    # ---- integration ---------------------------------------------------------------------------------
    def _check_rho0(self, rho0: Any) -> np.ndarray:
        rho = check_density(self._flat(rho0, "rho0").reshape(self.K, -1), (self.K, self.N // self.K),
                            self.cell_volume, name="rho0")
        if np.any(rho <= 0):
            k = int(np.flatnonzero(rho.ravel() <= 0)[0])
            raise ValueError(f"rho0[{self._state_name(k)[1:-1].rstrip(',')}] = {float(rho.ravel()[k])!r}; the "
                             "Hamiltonian flow needs a strictly positive density (log rho and theta' blow up at 0)")
        return rho.ravel()

    def run(self, rho0: Any, t_final: float, dt: float, phi0: Any = None, t0: float = 0.0,
            record_every: int = 1) -> HamiltonianTrajectory:
        """Integrate from (rho0, phi0) at time t0 to t0 + t_final with n = ceil(t_final / dt) equal steps.

        rho0 : density of shape ``self.shape`` (total mass ``sum(rho0) * vol = 1``, strictly positive).
        phi0 : potential of shape ``self.shape`` (default 0: start at rest).
        Records every ``record_every`` steps and the last one; F in the trajectory is F_T(rho).
        """
        m = self._check_rho0(rho0) * self.cell_volume
        if phi0 is None:
            phi = np.zeros(self.N)
        else:
            phi = self._flat(phi0, "phi0").copy()
            if not np.all(np.isfinite(phi)):
                raise ValueError(f"phi0 must be finite, got {float(phi[~np.isfinite(phi)][0])!r}")
        t_final, dt, t0 = positive("t_final", t_final), _check_dt(dt), float(t0)
        if not isinstance(record_every, (int, np.integer)):
            raise ValueError(f"record_every must be a positive integer, got {record_every!r}")
        record_every = positive_int("record_every", record_every)
        try:
            g0 = float(self.gamma(t0))
        except ZeroDivisionError:
            raise ValueError(f"gamma(t) = 3/t needs a start time t0 > 0, got t0 = {t0!r}") from None
        if not np.isfinite(g0) or g0 < 0:
            raise ValueError(f"damping gamma(t0) = {g0!r} at t0 = {t0!r}; expected a finite number >= 0")
        n = max(1, int(np.ceil(t_final / dt - 1e-9)))
        h = t_final / n
        ts, rs, ps, Hs, Ks, Fs, restarts = [], [], [], [], [], [], []

        def rec(tt):
            k, F = self._kinetic_m(m, phi), self._free_energy_m(m)
            ts.append(tt), rs.append(self._density(m)), ps.append(phi.reshape(self.shape).copy())
            Ks.append(k), Fs.append(F), Hs.append(k + F)

        t = t0
        rec(t)
        for i in range(n):
            m, phi = self._step_m(m, phi, t, h)
            t = t0 + (i + 1) * h
            if self.restart == "gradient" and self._restart_m(t, m, phi):
                phi = np.zeros_like(phi)
                restarts.append(t)
            if (i + 1) % record_every == 0 or i == n - 1:
                rec(t)
        return HamiltonianTrajectory(np.array(ts), np.array(rs), np.array(ps), np.array(Hs), np.array(Ks),
                                     np.array(Fs), restarts)


class GridHamiltonian(DampedHamiltonian):
    """Damped Hamiltonian flow on R^d x G discretised on a :class:`sdot.grid.Grid` (spec 4.5).

    The core of :class:`DampedHamiltonian` on the product graph (nodes x cells) in the masses
    ``m = rho h^d`` (module docstring): faces weigh ``1/h^2``, graph edges ``w(g, g')/kappa``
    in every cell; zero-flux walls (no face leaves the box). Densities and potentials are
    (K, M) arrays (``M = n^d`` cells, numbered as in the grid solver), total mass
    ``sum(rho) h^d = 1``; ``free_energy`` is ``F_T(rho) = h^d sum (f rho + T rho log rho)``.

    Parameters
    ----------
    space : SemiDiscreteSpace (d = grid.dim) or array_like (K, K) weights
    potential : Potential (dim d, K nodes) evaluated at the cell centres, or an array (K, M)
        of cell energies ``f(x_i, g)``.
    grid : Grid
    T, theta, gamma, restart, newton_tol, kappa : as for :class:`DampedHamiltonian`.

    Step size: the implicit midpoint rule is stable for the linearised flow at any dt, but its
    fixed-point solve contracts only for ``dt`` below about ``h / (sqrt(T) + |grad phi|)`` (sqrt(T)
    is the sound speed of the isothermal Euler system this discretises); beyond that each step
    costs a few sparse Newton solves of size 2 K M (cheap in 1-d, seconds for 2-d grids of 1e4 states).

    Limits (near-vacuum): the flow has no dissipation, and ``theta(a, b) ~ b / log(b / a)``,
    ``d_1 theta(a, b) ~ (b / a) / log(b / a)^2`` as ``a / b -> 0``, so a state much emptier than
    its neighbour is drained ever faster by the kinetic terms and can empty in finite time. This
    happens (a FloatingPointError names the state) when tails are under-resolved,
    ``h |grad log rho| >~ 1`` (Gibbs tails: ``h |grad f| / T``), when the initial tails are far
    from balancing the force (a uniform start in a steep well: mass is pulled off the walls), or,
    for ``logmean``, where the node densities at the same x differ by orders of magnitude. Keep the
    box a few standard deviations wide, resolve the tails, and start from profiles whose tails
    follow exp(-f/T) (e.g. shifted or reweighted Gibbs profiles; ``logmean_pi`` compares the
    ratios rho/pi across nodes instead of rho). Tested regimes: tests/sdot/test_hamiltonian_grid.py.
    """

    def __init__(self, space: Any, potential: Any, grid: Grid, T: float, theta: str = "logmean",
                 gamma: float | str | Callable[[float], float] = 0.0, restart: str = "none",
                 newton_tol: float = 1e-14, kappa: float = 1.0):
        if not isinstance(grid, Grid):
            raise ValueError(f"grid must be a sdot.grid.Grid, got {type(grid).__name__}")
        if not isinstance(space, SemiDiscreteSpace):
            space = SemiDiscreteSpace(space, dim=grid.dim)
        if space.dim != grid.dim:
            raise ValueError(f"space has dimension d = {space.dim} but the grid has dim = {grid.dim}")
        K, M = space.n_nodes, grid.n_points
        if isinstance(potential, Potential):
            if getattr(potential, "dim", grid.dim) != grid.dim:
                raise ValueError(f"potential has dimension {potential.dim} but the grid has dim = {grid.dim}")
            if getattr(potential, "n_nodes", K) != K:
                raise ValueError(f"potential has {potential.n_nodes} nodes but the graph has K = {K}")
            F = np.asarray(to_numpy(potential.all_nodes(grid.centers)), dtype=float).T
        else:
            F = np.asarray(to_numpy(potential), dtype=float)
        if F.shape != (K, M):
            raise ValueError(f"cell energies must have shape (K, M) = ({K}, {M}), got {F.shape}")
        if not np.all(np.isfinite(F)):
            k = int(np.flatnonzero(~np.isfinite(F.ravel()))[0])
            g, i = divmod(k, M)
            raise ValueError(f"potential value f(x_{i}, {g}) = {F.ravel()[k]} at x = {grid.centers[i]} is not finite")
        kappa = _check_kappa(kappa)
        # spatial faces of every node (weight 1/h^2), then graph edges in every cell (w/kappa);
        # states are flattened node-major, g * M + i, as in GridSolver
        a, b = grid.faces()
        off = (np.arange(K, dtype=np.int64) * M)[:, None]
        gs, gd, w = space.edges()
        keep = gs < gd
        gs, gd, w = gs[keep], gd[keep], w[keep]
        cells = np.arange(M, dtype=np.int64)[None, :]
        s = np.concatenate([(off + a).ravel(), (gs[:, None] * M + cells).ravel()])
        t = np.concatenate([(off + b).ravel(), (gd[:, None] * M + cells).ravel()])
        wt = np.concatenate([np.full(K * a.size, 1.0 / grid.h**2), np.repeat(w / kappa, M)])
        self._setup(s, t, wt, F.ravel(), T, theta, gamma, restart, newton_tol,
                    cell_volume=grid.cell_volume, shape=(K, M))
        self.space, self.grid, self.kappa, self.M = space, grid, kappa, M

    def node_masses(self, rho: Any) -> np.ndarray:
        """m_g = sum_i rho[g, i] h^d, shape (K,) (or (n, K) for a recorded trajectory (n, K, M))."""
        return np.asarray(rho, dtype=float).sum(axis=-1) * self.cell_volume

    def __repr__(self) -> str:
        return (f"GridHamiltonian(K={self.K}, M={self.M}, d={self.grid.dim}, T={self.T}, theta={self.theta!r}, "
                f"kappa={self.kappa})")


def _check_kappa(kappa: Any) -> float:
    return positive("kappa", kappa)


def _check_dt(dt: Any) -> float:
    return positive("time step dt", dt)
