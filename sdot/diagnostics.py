"""Diagnostics of a grid state (spec 1.7, 3.4): masses, free energy, dissipation, distance to Gibbs.

All functions take densities ``rho`` of shape (K, M) on a :class:`~sdot.grid.Grid`.

* ``node_masses``             m_g = sum_i rho[g, i] h^d
* ``dissipation``             D(rho) of spec 3.4 (from the solver, which knows the metric)
* ``energy_dissipation_residual``  F(t) - F(0) + int_0^t D ds (trapezoidal rule); ~0 along the flow
* ``kl_to_gibbs``, ``chi_square_to_gibbs``   KL(rho | pi_T), ||rho / pi_T - 1||_{L^2(pi_T)}
* ``tv_node_masses``          (1/2) sum_g |m_g - p_g| against the Gibbs node marginal p
* ``diagnose``                everything at once, as a flat dict (for the Flow driver)
* ``diagnose_jko``            the same for a :class:`~sdot.jko.JKOStep`: its energy (drift, U, W) and the
                              dissipation in its own metric (theta, kappa), plus the mass drift
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .energy import FreeEnergy
from .grid import Grid, GridSolver

__all__ = ["node_masses", "dissipation", "energy_dissipation_residual", "kl_to_gibbs",
           "chi_square_to_gibbs", "tv_node_masses", "diagnose", "diagnose_jko"]


def node_masses(rho: Any, grid: Grid) -> np.ndarray:
    """m_g = sum_i rho[g, i] h^d, shape (K,)."""
    r = np.asarray(rho, dtype=float)
    return r.reshape(r.shape[0], -1).sum(axis=1) * grid.cell_volume


def dissipation(solver: GridSolver, rho: Any) -> float:
    """D(rho) >= 0 with dF_T/dt = -D along the solver's flow (spec 3.4; see GridSolver.dissipation)."""
    return solver.dissipation(rho)


def energy_dissipation_residual(times: Any, free_energy: Any, dissipation_values: Any) -> np.ndarray:
    """F(t_k) - F(t_0) + int_{t_0}^{t_k} D ds for every recorded time (trapezoidal rule for the integral).

    The energy-dissipation identity says this is 0; on the grid it is O(tau) (time stepping) and
    exact in the continuous-time limit. Valid only while T is constant.
    """
    t = np.asarray(times, dtype=float)
    F = np.asarray(free_energy, dtype=float)
    D = np.asarray(dissipation_values, dtype=float)
    if not (t.shape == F.shape == D.shape):
        raise ValueError(f"times, free energy and dissipation must have equal shapes, got {t.shape}, {F.shape}, "
                         f"{D.shape}")
    integral = np.concatenate([[0.0], np.cumsum(0.5 * (D[1:] + D[:-1]) * np.diff(t))])
    return F - F[0] + integral


def kl_to_gibbs(rho: Any, pi: Any, grid: Grid) -> float:
    """KL(rho | pi) = sum rho log(rho / pi) h^d (0 log 0 = 0; +inf if rho > 0 where pi = 0)."""
    r, p = np.asarray(rho, dtype=float), np.asarray(pi, dtype=float)
    pos = r > 0
    with np.errstate(divide="ignore"):
        return float(np.sum(r[pos] * (np.log(r[pos]) - np.log(p[pos]))) * grid.cell_volume)


def chi_square_to_gibbs(rho: Any, pi: Any, grid: Grid) -> float:
    """||rho / pi - 1||_{L^2(pi)} = sqrt(sum (rho - pi)^2 / pi h^d)."""
    r, p = np.asarray(rho, dtype=float), np.asarray(pi, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, (r - p) ** 2 / np.where(p > 0, p, 1.0), np.where(r > 0, np.inf, 0.0))
    return float(np.sqrt(np.sum(terms) * grid.cell_volume))


def tv_node_masses(m: Any, p: Any) -> float:
    """Total variation (1/2) sum_g |m_g - p_g| between node masses and the Gibbs node marginal."""
    m, p = np.asarray(m, dtype=float), np.asarray(p, dtype=float)
    if m.shape != p.shape:
        raise ValueError(f"node masses have shape {m.shape} but the reference has {p.shape}")
    return 0.5 * float(np.abs(m - p).sum())


def diagnose(solver: GridSolver, rho: Any, t: float | None = None, gibbs_marginal: str = "closed_form") -> dict:
    """All diagnostics of ``rho`` under ``solver`` (its potential, grid, T and law) as a flat dict.

    Keys: t, mass, m_g (list), V, H, TH, F, D, and, when T > 0 and the law is Gibbs-reversible,
    kl, chi2, tv (TV between m and the Gibbs node marginal: the closed form for a quadratic
    potential when ``gibbs_marginal='closed_form'``, else the discrete one).
    """
    grid = solver.grid
    rho = np.asarray(rho, dtype=float).reshape(solver.K, solver.M)
    energy = FreeEnergy(solver.potential, solver.T)
    energy._cache[id(grid)] = (grid, solver.f)
    m = node_masses(rho, grid)
    out: dict[str, Any] = {"t": t, "T": solver.T, "mass": float(m.sum()), "m_g": m.tolist()}
    out.update(energy.parts(rho, grid))
    out["D"] = solver.dissipation(rho)
    if solver.T > 0 and solver.law.gibbs_reversible and solver.space.is_connected():
        pi = energy.gibbs(grid)
        out["kl"] = kl_to_gibbs(rho, pi, grid)
        out["chi2"] = chi_square_to_gibbs(rho, pi, grid)
        try:
            p = energy.gibbs_node_masses(None if gibbs_marginal == "closed_form" else grid)
        except TypeError:
            p = energy.gibbs_node_masses(grid)
        out["tv"] = tv_node_masses(m, p)
    return out


def diagnose_jko(step: Any, rho: Any, t: float | None = None) -> dict:
    """Diagnostics of ``rho`` under a :class:`~sdot.jko.JKOStep`, as a flat dict.

    Keys: t, T (None without entropy), mass, mass_drift (mass - 1, never renormalised away), m_g,
    the energy parts V, U, W, F of the step's :class:`~sdot.free_energy.GeneralFreeEnergy` (with
    U = entropy also H and TH = U), D = ``step.dissipation(rho)`` (the step's theta and kappa), and,
    with U = entropy and no interaction, kl / chi2 / tv against the Gibbs measure as in :func:`diagnose`.
    """
    grid = step.grid
    r = np.asarray(rho, dtype=float).reshape(step.K, step.M)
    m = node_masses(r, grid)
    out: dict[str, Any] = {"t": t, "T": step.T, "mass": float(m.sum()), "mass_drift": float(m.sum()) - 1.0,
                           "m_g": m.tolist()}
    out.update(step.energy.parts(r, grid))
    if step.T is not None:
        out["TH"] = out["U"]
        out["H"] = out["U"] / step.T
    out["D"] = step.dissipation(r)
    if step.T is not None and step.energy.interaction is None and step.space.is_connected():
        energy = FreeEnergy(step.potential, step.T)
        energy._cache[id(grid)] = (grid, step.f)
        pi = energy.gibbs(grid)
        out["kl"] = kl_to_gibbs(r, pi, grid)
        out["chi2"] = chi_square_to_gibbs(r, pi, grid)
        try:
            p = energy.gibbs_node_masses(None)
        except TypeError:
            p = energy.gibbs_node_masses(grid)
        out["tv"] = tv_node_masses(m, p)
    return out
