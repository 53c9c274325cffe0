"""Free energy F_T = V + T H on grid densities, its Gibbs measure and first variation (spec 4.1).

For densities ``rho`` of shape (K, M) on a :class:`~sdot.grid.Grid` (cell volume ``h^d``)::

    V(rho)   = sum_g sum_i f(x_i, g) rho[g, i] h^d                 potential energy
    H(rho)   = sum_g sum_i rho[g, i] log rho[g, i] h^d  (0 log 0 = 0)   entropy
    F_T(rho) = V + T H = T KL(rho | pi_T) - T log Z_T
    pi_T[g, i] = exp(-f(x_i, g) / T) / Z_T,  Z_T = sum_{g, i} exp(-f(x_i, g) / T) h^d
    dF_T/drho_g = f(x, g) + T (log rho_g + 1)

The continuous Gibbs node marginal ``p_g ∝ ∫ exp(-f(x, g) / T) dx`` has the closed form
``p_g ∝ exp(-c_g / T) (2 pi T / a_g)^{d/2}`` for the quadratic potential
``f = a_g |x - m_g|^2 / 2 + c_g`` (spec 8.6: a flatter but higher minimum can win at T > 0).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import logsumexp

from .backend import to_numpy
from .grid import Grid, gibbs_density
from .potentials import Potential, QuadraticPotential

__all__ = ["FreeEnergy", "gibbs_node_masses_quadratic"]


def gibbs_node_masses_quadratic(a: Any, c: Any, T: float, dim: int) -> np.ndarray:
    """Continuous Gibbs node masses p_g ∝ exp(-c_g / T) (2 pi T / a_g)^{d/2} (normalised), shape (K,)."""
    a = np.asarray(a, dtype=float)
    c = np.asarray(c, dtype=float)
    T = float(T)
    if not np.isfinite(T) or T <= 0:
        raise ValueError(f"the Gibbs measure needs a temperature T > 0, got T = {T!r}")
    if dim > 0 and np.any(a <= 0):
        k = int(np.flatnonzero(a <= 0)[0])
        raise ValueError(f"curvature a[{k}] = {a[k]} must be > 0 for a normalisable Gibbs measure in d = {dim}")
    logp = -c / T + (0.5 * dim * np.log(2 * np.pi * T / a) if dim > 0 else 0.0)
    return np.exp(logp - logsumexp(logp))


class FreeEnergy:
    """F_T(rho) = V(rho) + T H(rho) for a potential f and temperature T >= 0.

    Parameters
    ----------
    potential : Potential
        f(x, g); evaluated at the grid's cell centres (cached per grid).
    T : float
        Temperature, >= 0 (the Gibbs measure needs T > 0).

    All methods take densities ``rho`` of shape (K, M) and the :class:`Grid` they live on.
    """

    def __init__(self, potential: Potential, T: float):
        T = float(T)
        if not np.isfinite(T) or T < 0:
            raise ValueError(f"temperature T must be a finite number >= 0, got T = {T!r}")
        self.potential, self.T = potential, T
        self._cache: dict[int, tuple[Grid, np.ndarray]] = {}

    # ---- evaluation -------------------------------------------------------------------------
    def values(self, grid: Grid) -> np.ndarray:
        """f(x_i, g) at the cell centres, shape (K, M) (cached per grid)."""
        hit = self._cache.get(id(grid))
        if hit is not None and hit[0] is grid:
            return hit[1]
        F = np.asarray(to_numpy(self.potential.all_nodes(grid.centers)), dtype=float).T
        if not np.all(np.isfinite(F)):
            raise ValueError("potential has non-finite values on the grid")
        self._cache[id(grid)] = (grid, F)
        return F

    def _rho(self, rho: Any, grid: Grid) -> np.ndarray:
        F = self.values(grid)
        r = np.asarray(to_numpy(rho), dtype=float)
        if r.size != F.size:
            raise ValueError(f"rho must have shape {F.shape} (nodes, cells), got {r.shape}")
        return r.reshape(F.shape)

    def potential_energy(self, rho: Any, grid: Grid) -> float:
        """V(rho) = sum f rho h^d."""
        return float(np.sum(self.values(grid) * self._rho(rho, grid)) * grid.cell_volume)

    def entropy(self, rho: Any, grid: Grid) -> float:
        """H(rho) = sum rho log rho h^d with 0 log 0 = 0."""
        r = self._rho(rho, grid)
        pos = r > 0
        return float(np.sum(r[pos] * np.log(r[pos])) * grid.cell_volume)

    def __call__(self, rho: Any, grid: Grid) -> float:
        """F_T(rho) = V + T H (just V at T = 0)."""
        V = self.potential_energy(rho, grid)
        return V if self.T == 0 else V + self.T * self.entropy(rho, grid)

    free_energy = __call__

    def parts(self, rho: Any, grid: Grid) -> dict[str, float]:
        """{'V': V, 'H': H, 'TH': T H, 'F': V + T H}."""
        V, H = self.potential_energy(rho, grid), self.entropy(rho, grid)
        return {"V": V, "H": H, "TH": self.T * H, "F": V + self.T * H}

    def first_variation(self, rho: Any, grid: Grid) -> np.ndarray:
        """dF_T/drho = f + T (log rho + 1), shape (K, M); -inf where rho = 0 and T > 0."""
        r = self._rho(rho, grid)
        F = self.values(grid)
        if self.T == 0:
            return F.copy()
        with np.errstate(divide="ignore"):
            return F + self.T * (np.log(r) + 1.0)

    # ---- Gibbs measure ---------------------------------------------------------------------------
    def _need_T(self) -> None:
        if self.T <= 0:
            raise ValueError(f"the Gibbs measure needs a temperature T > 0, got T = {self.T!r}")

    def log_partition(self, grid: Grid) -> float:
        """log Z_T with Z_T = sum exp(-f / T) h^d (discrete)."""
        self._need_T()
        return float(logsumexp(-self.values(grid) / self.T) + np.log(grid.cell_volume))

    def gibbs(self, grid: Grid) -> np.ndarray:
        """Discrete Gibbs density pi_T on the grid (total mass 1), shape (K, M)."""
        self._need_T()
        return gibbs_density(self.values(grid), self.T, grid.cell_volume)

    def gibbs_node_masses(self, grid: Grid | None = None) -> np.ndarray:
        """Gibbs node marginal p_g ∝ ∫ exp(-f(x, g) / T) dx.

        Without a grid: the closed form ``exp(-c_g / T) (2 pi T / a_g)^{d/2}`` (quadratic potential
        only). With a grid: the discrete marginal ``sum_i pi[g, i] h^d``.
        """
        self._need_T()
        if grid is not None:
            return self.gibbs(grid).sum(axis=1) * grid.cell_volume
        if isinstance(self.potential, QuadraticPotential):
            return gibbs_node_masses_quadratic(self.potential.a, self.potential.c, self.T, self.potential.dim)
        raise TypeError(f"no closed-form Gibbs node masses for {type(self.potential).__name__}; pass a grid")

    def kl(self, rho: Any, grid: Grid) -> float:
        """KL(rho | pi_T) = sum rho log(rho / pi) h^d; equals (F_T(rho) + T log Z_T) / T."""
        r = self._rho(rho, grid)
        pi = self.gibbs(grid)
        pos = r > 0
        return float(np.sum(r[pos] * (np.log(r[pos]) - np.log(pi[pos]))) * grid.cell_volume)

    def chi_square(self, rho: Any, grid: Grid) -> float:
        """||rho / pi_T - 1||_{L^2(pi_T)} = sqrt(sum (rho - pi)^2 / pi h^d)."""
        r = self._rho(rho, grid)
        pi = self.gibbs(grid)
        return float(np.sqrt(np.sum((r - pi) ** 2 / pi) * grid.cell_volume))

    def __repr__(self) -> str:
        return f"FreeEnergy({type(self.potential).__name__}, T={self.T})"
