"""The uniform cell-centred grid on the box ``[lower, upper]^d``, d in {0, 1, 2}, with zero-flux walls.

Cells of a 2-d grid are numbered row-major: cell ``(i0, i1)`` is ``i0 * n + i1`` and ``i0`` runs along
the first coordinate; a density on the grid is an array ``rho[g, i]`` of shape (K, M), M = n^d.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..validation import positive_int

__all__ = ["Grid"]


class Grid:
    """Uniform cell-centred grid on the box ``[lower, upper]^d``, d in {0, 1, 2}.

    Parameters
    ----------
    lower, upper : float
        Box bounds (the same in every coordinate), ``lower < upper``.
    n_cells : int
        Cells per coordinate (``n``); the grid has ``M = n^d`` cells. Ignored for ``d = 0``.
    dim : int
        0 (a single point: a pure graph flow), 1 or 2.

    Attributes
    ----------
    centers : ndarray (M, d)   cell centres
    h : float                  spacing (1.0 for d = 0, where it has no meaning)
    cell_volume : float        h^d (1 for d = 0)
    n_points : int             M
    shape : tuple              (n,) * d, the spatial array shape of one node's density
    axes : list of ndarray     1-d centre coordinates per axis
    """

    def __init__(self, lower: float = -1.0, upper: float = 1.0, n_cells: int = 1, dim: int = 1):
        if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool) or dim not in (0, 1, 2):
            raise ValueError(f"grid dim must be 0, 1 or 2, got {dim!r}")
        self.dim = int(dim)
        if self.dim == 0:
            self.lower, self.upper, self.n_cells, self.h = 0.0, 0.0, 1, 1.0
            self.axes: list[np.ndarray] = []
            self.shape: tuple[int, ...] = ()
            self.centers = np.zeros((1, 0))
            return
        lower, upper = float(lower), float(upper)
        if not (np.isfinite(lower) and np.isfinite(upper) and lower < upper):
            raise ValueError(f"grid box needs finite lower < upper, got lower={lower}, upper={upper}")
        if not isinstance(n_cells, (int, np.integer)):  # 2.0 is not a cell count here
            raise ValueError(f"n_cells must be a positive integer, got {n_cells!r}")
        self.lower, self.upper, self.n_cells = lower, upper, positive_int("n_cells", n_cells)
        self.h = (upper - lower) / self.n_cells
        ax = lower + (np.arange(self.n_cells) + 0.5) * self.h
        self.axes = [ax] * self.dim
        self.shape = (self.n_cells,) * self.dim
        if self.dim == 1:
            self.centers = ax[:, None].copy()
        else:
            X0, X1 = np.meshgrid(ax, ax, indexing="ij")
            self.centers = np.stack([X0.ravel(), X1.ravel()], axis=1)

    @property
    def n_points(self) -> int:
        """Number of cells M."""
        return self.centers.shape[0]

    @property
    def cell_volume(self) -> float:
        """h^d (1 for d = 0)."""
        return self.h**self.dim if self.dim else 1.0

    def faces(self) -> tuple[np.ndarray, np.ndarray]:
        """Interior faces as pairs (i, j) of neighbouring cells, each unordered pair once, i < j."""
        n = self.n_cells
        if self.dim == 0 or n == 1:
            e = np.zeros(0, dtype=np.int64)
            return e, e
        if self.dim == 1:
            i = np.arange(n - 1, dtype=np.int64)
            return i, i + 1
        idx = np.arange(n * n, dtype=np.int64).reshape(n, n)
        a = np.r_[idx[:-1, :].ravel(), idx[:, :-1].ravel()]  # along axis 0, then axis 1
        b = np.r_[idx[1:, :].ravel(), idx[:, 1:].ravel()]
        return a, b

    def integrate(self, values: Any) -> np.ndarray:
        """Integral over the box of cell values, along the last axis: ``values.sum(-1) * h^d``."""
        return np.asarray(values).sum(axis=-1) * self.cell_volume

    def to_spatial(self, rho: Any) -> np.ndarray:
        """Reshape (K, M) densities to (K, *shape) arrays (a (K, n, n) image for d = 2)."""
        rho = np.asarray(rho)
        return rho.reshape(rho.shape[:-1] + (self.shape if self.dim else (1,)))

    def project(self, fn: Any, n_nodes: int) -> np.ndarray:
        """Cell values of a function ``fn(x (M, d), g (M,)) -> (M,)`` for every node, shape (K, M)."""
        x = self.centers
        return np.stack([np.asarray(fn(x, np.full(self.n_points, g))) for g in range(n_nodes)])

    def __repr__(self) -> str:
        if self.dim == 0:
            return "Grid(dim=0)"
        return f"Grid(lower={self.lower}, upper={self.upper}, n_cells={self.n_cells}, dim={self.dim}, h={self.h:.4g})"
