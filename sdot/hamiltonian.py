"""Damped Hamiltonian (second-order) dynamics on the graph, d = 0 (spec 4.5, 8.9).

State (rho, phi) with rho_g >= 0 (sum 1) and a potential phi_g per node::

    K(rho, phi) = (1/2) ||phi||_rho^2 = (1/2) sum_{edges g~h} w theta(rho_g, rho_h) (phi_h - phi_g)^2
    H = K + F_T,   F_T = sum_g f_g rho_g + T rho_g log rho_g
    d rho_g / dt = -sum_h w theta(rho_g, rho_h) (phi_h - phi_g)                        (= dH/dphi_g)
    d phi_g / dt = -(1/2) sum_h w d_1 theta(rho_g, rho_h) (phi_h - phi_g)^2 - dF/drho_g - gamma(t) phi_g
    d H / dt = -2 gamma(t) K  (H conserved when gamma = 0)

theta: ``logmean`` (Lambda), ``logmean_pi`` (Lambda(rho/pi) sqrt(pi pi'), pi = exp(-f/T)) or
``arithmetic``. gamma: a constant >= 0 (heavy ball), ``"nesterov"`` (gamma(t) = 3 / t; start at
``t0 > 0``) or a callable ``gamma(t)``. Integrator: the implicit midpoint rule (symplectic for
gamma = 0; energy error O(dt^2) without drift), solved to round-off by fixed-point iteration
(Newton with a finite-difference Jacobian as the fallback).
Optional adaptive restart (``restart="gradient"``, the O'Donoghue–Candès analogue of spec 6.5):
set phi = 0 whenever ``<dF/drho, d rho/dt> > 0``; H never increases at a restart (K drops to 0).
The grid version (d >= 1) is not implemented.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .grid import logmean_derivatives
from .potentials import Potential
from .rates import logmean
from .space import SemiDiscreteSpace

__all__ = ["DampedHamiltonian", "HamiltonianTrajectory"]


@dataclass
class HamiltonianTrajectory:
    """Recorded times, densities (n, K), potentials (n, K), H, K, F and restart times."""

    t: np.ndarray
    rho: np.ndarray
    phi: np.ndarray
    H: np.ndarray
    kinetic: np.ndarray
    F: np.ndarray
    restarts: list = field(default_factory=list)


class DampedHamiltonian:
    """Damped Hamiltonian flow on P(G) (d = 0); see the module docstring.

    Parameters
    ----------
    space : SemiDiscreteSpace (d = 0) or array_like weights
    potential : Potential with dim 0 (node energies f_g = potential at the single point)
        or an array of K node energies.
    T : float >= 0 (entropy weight; T > 0 needed for ``logmean_pi``)
    theta : str
    gamma : float, "nesterov" or callable
    restart : "none" | "gradient"
    """

    def __init__(self, space: Any, potential: Any, T: float, theta: str = "logmean",
                 gamma: float | str | Callable[[float], float] = 0.0, restart: str = "none",
                 newton_tol: float = 1e-14):
        if not isinstance(space, SemiDiscreteSpace):
            space = SemiDiscreteSpace(space, dim=0)
        if space.dim != 0:
            raise ValueError(f"DampedHamiltonian implements d = 0 (graph only); the space has d = {space.dim}")
        self.space = space
        K = space.n_nodes
        if isinstance(potential, Potential):
            f = np.asarray(potential.all_nodes(np.zeros((1, 0))), dtype=float).ravel()
        else:
            f = np.asarray(potential, dtype=float).ravel()
        if f.shape != (K,) or not np.all(np.isfinite(f)):
            raise ValueError(f"node energies must be {K} finite numbers, got {f!r}")
        T = float(T)
        if not np.isfinite(T) or T < 0:
            raise ValueError(f"temperature T must be a finite number >= 0, got T = {T!r}")
        if theta not in ("logmean", "logmean_pi", "arithmetic"):
            raise ValueError(f"unknown theta {theta!r}; expected 'logmean', 'logmean_pi' or 'arithmetic'")
        if theta == "logmean_pi" and T <= 0:
            raise ValueError(f"theta 'logmean_pi' needs a temperature T > 0, got T = {T!r}")
        if restart not in ("none", "gradient"):
            raise ValueError(f"unknown restart rule {restart!r}; expected 'none' or 'gradient'")
        if isinstance(gamma, str):
            if gamma != "nesterov":
                raise ValueError(f"unknown damping {gamma!r}; expected a number >= 0, 'nesterov' or a callable")
            self.gamma = lambda t: 3.0 / t
        elif callable(gamma):
            self.gamma = gamma
        else:
            g0 = float(gamma)
            if not np.isfinite(g0) or g0 < 0:
                raise ValueError(f"damping gamma must be >= 0, got {gamma!r}")
            self.gamma = lambda t, g0=g0: g0
        self.f, self.T, self.theta, self.restart, self.newton_tol = f, T, theta, restart, float(newton_tol)
        s, t, w = space.edges()
        keep = s < t
        self.s, self.t, self.w = s[keep], t[keep], w[keep]
        self.K = K
        if theta == "logmean_pi":
            lp = -f / T
            self.pi = np.exp(lp - lp.max())

    # ---- pieces ----------------------------------------------------------------------------------
    def _theta(self, rho):
        a, b = rho[self.s], rho[self.t]
        if self.theta == "arithmetic":
            return (a + b) / 2, np.full_like(a, 0.5), np.full_like(a, 0.5)
        if self.theta == "logmean":
            th = logmean(a, b)
            da, db = logmean_derivatives(a, b)
            return th, da, db
        ps, pt = self.pi[self.s], self.pi[self.t]
        m = np.sqrt(ps * pt)
        da, db = logmean_derivatives(a / ps, b / pt)
        return logmean(a / ps, b / pt) * m, da * m / ps, db * m / pt

    def free_energy(self, rho: np.ndarray) -> float:
        pos = rho > 0
        return float(np.dot(self.f, rho) + self.T * np.sum(rho[pos] * np.log(rho[pos])))

    def kinetic(self, rho: np.ndarray, phi: np.ndarray) -> float:
        """K = (1/2) sum_edges w theta (phi_h - phi_g)^2."""
        th = self._theta(rho)[0]
        return 0.5 * float(np.sum(self.w * th * (phi[self.t] - phi[self.s]) ** 2))

    def hamiltonian(self, rho: np.ndarray, phi: np.ndarray) -> float:
        return self.kinetic(rho, phi) + self.free_energy(rho)

    def first_variation(self, rho: np.ndarray) -> np.ndarray:
        return self.f + (self.T * (np.log(rho) + 1.0) if self.T > 0 else 0.0)

    def vector_field(self, t: float, rho: np.ndarray, phi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(d rho/dt, d phi/dt) at time t."""
        th, da, db = self._theta(rho)
        dphi = phi[self.t] - phi[self.s]
        flow = self.w * th * dphi  # mass rate s -> t
        drho = np.bincount(self.t, weights=flow, minlength=self.K) - np.bincount(self.s, weights=flow, minlength=self.K)
        q = 0.5 * self.w * dphi**2
        dp = -(np.bincount(self.s, weights=q * da, minlength=self.K) + np.bincount(self.t, weights=q * db, minlength=self.K))
        dp = dp - self.first_variation(rho) - self.gamma(t) * phi
        return drho, dp

    # ---- integration ---------------------------------------------------------------------------------
    def step(self, rho: np.ndarray, phi: np.ndarray, t: float, dt: float) -> tuple[np.ndarray, np.ndarray]:
        """One implicit-midpoint step: z1 = z0 + dt X(t + dt/2, (z0 + z1)/2)."""
        K = self.K
        z0 = np.concatenate([rho, phi])
        tm = t + dt / 2

        def G(m):
            dr, dp = self.vector_field(tm, m[:K], m[K:])
            return m - z0 - 0.5 * dt * np.concatenate([dr, dp])

        dr, dp = self.vector_field(t, rho, phi)
        m = z0 + 0.5 * dt * np.concatenate([dr, dp])  # explicit predictor
        scale = max(1.0, float(np.abs(z0).max()))
        # fixed-point iteration m = z0 + dt/2 X(m) (a contraction for small dt), then Newton
        for _ in range(40):
            if np.any(m[:K] <= 0):
                break
            g = G(m)
            if np.abs(g).max() <= self.newton_tol * scale:
                z1 = 2 * m - z0
                return z1[:K], z1[K:]
            m = m - g
        m = z0 + 0.5 * dt * np.concatenate([dr, dp])
        for _ in range(50):
            g = G(m)
            if np.abs(g).max() <= self.newton_tol * scale:
                break
            J = np.empty((2 * K, 2 * K))
            for k in range(2 * K):
                e = 1e-7 * max(1.0, abs(m[k])) if k >= K else 1e-7 * max(m[k], 1e-12)
                mp = m.copy()
                mp[k] += e
                J[:, k] = (G(mp) - g) / e
            m = m - np.linalg.solve(J, g)
            if np.any(m[:K] <= 0):
                raise FloatingPointError("a density reached zero in the implicit midpoint solve; reduce dt")
        z1 = 2 * m - z0
        return z1[:K], z1[K:]

    def run(self, rho0: Any, t_final: float, dt: float, phi0: Any = None, t0: float = 0.0,
            record_every: int = 1) -> HamiltonianTrajectory:
        """Integrate from (rho0, phi0 = 0) at time t0 to t0 + t_final with steps dt."""
        rho = np.asarray(rho0, dtype=float).ravel().copy()
        if rho.shape != (self.K,) or np.any(~np.isfinite(rho)) or np.any(rho <= 0):
            raise ValueError(f"rho0 must be {self.K} finite positive numbers, got {rho0!r}")
        if abs(rho.sum() - 1) > 1e-8:
            raise ValueError(f"rho0 has total mass {rho.sum()!r}; expected 1")
        phi = np.zeros(self.K) if phi0 is None else np.asarray(phi0, dtype=float).ravel().copy()
        if self.gamma is not None and t0 <= 0:
            try:
                self.gamma(t0)
            except ZeroDivisionError:
                raise ValueError("gamma(t) = 3/t needs a start time t0 > 0") from None
        n = max(1, int(np.ceil(float(t_final) / dt - 1e-9)))
        h = float(t_final) / n
        ts, rs, ps, Hs, Ks, Fs, restarts = [], [], [], [], [], [], []

        def rec(tt):
            ts.append(tt), rs.append(rho.copy()), ps.append(phi.copy())
            k = self.kinetic(rho, phi)
            F = self.free_energy(rho)
            Ks.append(k), Fs.append(F), Hs.append(k + F)

        t = float(t0)
        rec(t)
        for i in range(n):
            rho, phi = self.step(rho, phi, t, h)
            t = t0 + (i + 1) * h
            if self.restart == "gradient":
                drho, _ = self.vector_field(t, rho, phi)
                if np.dot(self.first_variation(rho), drho) > 0:
                    phi = np.zeros_like(phi)
                    restarts.append(t)
            if (i + 1) % record_every == 0 or i == n - 1:
                rec(t)
        return HamiltonianTrajectory(np.array(ts), np.array(rs), np.array(ps), np.array(Hs), np.array(Ks),
                                     np.array(Fs), restarts)
