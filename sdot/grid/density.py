"""Densities and step counts at the edge of the grid solvers: validation, the discrete Gibbs density, n steps.

A density on a grid is ``rho[g, i]`` of shape (K, M) with total mass ``sum(rho) * h^d = 1``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..backend import to_numpy
from ..validation import nonnegative, positive

__all__ = ["check_density", "gibbs_density", "n_steps"]


def check_density(rho: Any, shape: tuple[int, int], cell_volume: float, *, mass_tol: float = 1e-8,
                  name: str = "rho") -> np.ndarray:
    """Validate a density at the edge: shape, finiteness, non-negativity, total mass one.

    Returns the density as a float ndarray. Raises ValueError naming the offending value.
    """
    rho = np.asarray(to_numpy(rho), dtype=float)
    if rho.shape != tuple(shape):
        if rho.size == shape[0] * shape[1] and rho.ndim >= 1 and rho.shape[0] == shape[0]:
            rho = rho.reshape(shape)
        else:
            raise ValueError(f"{name} must have shape {tuple(shape)} (nodes, cells), got {rho.shape}")
    if not np.all(np.isfinite(rho)):
        k = int(np.flatnonzero(~np.isfinite(rho.ravel()))[0])
        g, i = divmod(k, shape[1])
        raise ValueError(f"{name}[{g}, {i}] = {rho.ravel()[k]} is not finite; densities must be finite and >= 0")
    scale = max(1.0, float(np.abs(rho).max(initial=0.0)))
    if rho.size and rho.min() < -1e-12 * scale:
        k = int(np.argmin(rho.ravel()))
        g, i = divmod(k, shape[1])
        raise ValueError(f"{name}[{g}, {i}] = {rho.ravel()[k]:.6g} is negative; densities must be >= 0")
    mass = float(rho.sum()) * cell_volume
    if abs(mass - 1.0) > mass_tol:
        raise ValueError(f"{name} has total mass {mass!r} (sum(rho) * cell_volume); expected 1 "
                         f"(a probability density, tolerance {mass_tol:g})")
    return rho


def n_steps(t_final: float, tau: float) -> int:
    """Number of equal steps covering ``t_final`` with steps at most ``tau`` (round-off tolerant).

    Refuses ``tau <= 0`` or non-finite (ValueError naming tau) and a negative or non-finite t_final.
    """
    tau = _check_tau(tau)
    t_final = nonnegative("t_final", t_final)
    return max(1, int(math.ceil(t_final / tau - 1e-9)))


def _check_tau(tau: Any) -> float:
    """tau as a float; ValueError ``time step tau must be a finite number > 0, got ...`` otherwise."""
    return positive("time step tau", tau)


def gibbs_density(F: np.ndarray, T: float, cell_volume: float) -> np.ndarray:
    """exp(-F / T) normalised to total mass one (sum * cell_volume = 1), computed stably."""
    z = -np.asarray(F, dtype=float) / T
    z = z - z.max()
    p = np.exp(z)
    return p / (p.sum() * cell_volume)
