"""The Markov generator Q of the linear laws on the states (g, i) of a grid (spec 7.1), and its checks.

States are flattened node-major, ``s = g * M + i``. Two kinds of directed edges:

* transport between neighbouring cells i, j of the same node (T > 0), square-root (SQRA)
  Scharfetter–Gummel-type rates ``k(i -> j) = (T / h^2) exp((f_i - f_j) / (2T))``; or exact
  Scharfetter–Gummel ``(T / h^2) B((f_j - f_i) / T)`` with ``B(z) = z / (e^z - 1)`` (``spatial="sg"``);
  at T = 0, upwind transport with velocity ``-grad f``: ``k(i -> j) = (f_i - f_j)_+ / h^2``;
* reaction inside a cell: ``k((g, i) -> (g', i)) = law.rate(f(x_i, g), f(x_i, g'), w(g, g'), T)``.

The forward operator on densities is ``A = Q^T`` (``d/dt rho = A rho``); off-diagonal entries are
non-negative and the columns of A (rows of Q) sum to zero.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..space import SemiDiscreteSpace
from .geometry import Grid

__all__ = ["SPATIAL", "transport_edges", "reaction_edges", "forward_operator", "check_generator", "bernoulli"]

SPATIAL = ("sqra", "sg", "upwind")


def bernoulli(z: np.ndarray) -> np.ndarray:
    """B(z) = z / (e^z - 1), B(0) = 1, stable for all z."""
    z = np.asarray(z, dtype=float)
    out = np.empty_like(z)
    small = np.abs(z) < 1e-6
    out[small] = 1 - z[small] / 2 + z[small] ** 2 / 12
    zz = z[~small]
    out[~small] = zz / np.expm1(zz)
    return out


def transport_edges(f: np.ndarray, grid: Grid, T: float, spatial: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Directed transport edges (src, dst, rate) over all nodes for cell energies f (K, M), flattened g * M + i."""
    a, b = grid.faces()
    if a.size == 0:
        e = np.zeros(0, dtype=np.int64)
        return e, e, np.zeros(0)
    K, M = f.shape
    h2 = grid.h**2
    fa, fb = f[:, a], f[:, b]  # (K, n_faces)
    if spatial == "sqra":
        r_ab = (T / h2) * np.exp((fa - fb) / (2 * T))
        r_ba = (T / h2) * np.exp((fb - fa) / (2 * T))
    elif spatial == "sg":
        r_ab = (T / h2) * bernoulli((fb - fa) / T)
        r_ba = (T / h2) * bernoulli((fa - fb) / T)
    else:
        r_ab = np.maximum(fa - fb, 0.0) / h2
        r_ba = np.maximum(fb - fa, 0.0) / h2
    off = (np.arange(K, dtype=np.int64) * M)[:, None]
    src = np.concatenate([(off + a).ravel(), (off + b).ravel()])
    dst = np.concatenate([(off + b).ravel(), (off + a).ravel()])
    return src, dst, np.concatenate([r_ab.ravel(), r_ba.ravel()])


def reaction_edges(space: SemiDiscreteSpace, M: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Directed graph edges replicated over the M cells: (src, dst, w), flattened g * M + i."""
    gs, gd, w = space.edges()
    cells = np.arange(M, dtype=np.int64)
    src = (gs[:, None] * M + cells[None, :]).ravel()
    dst = (gd[:, None] * M + cells[None, :]).ravel()
    return src, dst, np.repeat(w, M)


def forward_operator(src: np.ndarray, dst: np.ndarray, rate: np.ndarray, N: int) -> tuple[sp.csr_matrix, np.ndarray]:
    """(A = Q^T, exit rates) of the generator with off-diagonal rates ``Q[src, dst] = rate`` on N states."""
    exit_rate = np.bincount(src, weights=rate, minlength=N)
    idx = np.arange(N, dtype=np.int64)
    rows = np.concatenate([src, idx])
    cols = np.concatenate([dst, idx])
    vals = np.concatenate([rate, -exit_rate])
    # Q (Markov generator: row = from) and A = Q^T (the forward operator on densities)
    A = sp.csr_matrix((vals, (cols, rows)), shape=(N, N))
    A.sum_duplicates()
    return A, exit_rate


def check_generator(A: sp.spmatrix, exit_rate: np.ndarray, rtol: float = 1e-12) -> None:
    """Assert non-negative off-diagonal rates and zero row sums of Q = A^T (spec 9)."""
    Ac = A.tocoo()
    off = Ac.row != Ac.col
    if np.any(Ac.data[off] < 0):
        k = int(np.flatnonzero(off & (Ac.data < 0))[0])
        raise AssertionError(f"generator has a negative rate {Ac.data[k]} from state {Ac.col[k]} to {Ac.row[k]}")
    if not np.all(np.isfinite(Ac.data)):
        raise AssertionError("generator has non-finite rates (overflow in exp((f_i - f_j)/(2T))? "
                             "refine the grid or use spatial='sg')")
    colsum = np.asarray(A.sum(axis=0)).ravel()  # row sums of Q
    scale = np.maximum(exit_rate, 1.0)
    bad = np.abs(colsum) > rtol * scale * 10
    if np.any(bad):
        k = int(np.flatnonzero(bad)[0])
        raise AssertionError(f"generator row {k} sums to {colsum[k]}, expected 0")
