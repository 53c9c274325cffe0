"""Eulerian finite-volume solver for the flow on R^d x G, d = 0, 1, 2 (spec ``semi-discrete-flow.md`` 7.1).

The box ``[lower, upper]^d`` is cut into ``n^d`` equal cells of side ``h`` with zero-flux walls. The
unknowns are cell averages ``rho[g, i]`` (shape ``(K, M)``, ``M = n^d``); the mass is
``rho.sum() * h^d``. Cells of a 2-d grid are numbered row-major: cell ``(i0, i1)`` is ``i0 * n + i1``
and ``i0`` runs along the first coordinate.

**Linear laws** (``glauber``, ``metropolis``, ``upwind``) give a Markov generator ``Q`` on the ``K M``
states ``(g, i)`` (flattened ``g * M + i``) and the system ``d/dt rho = Q^T rho``:

* transport between neighbouring cells i, j of the same node (T > 0), square-root (SQRA)
  Scharfetter–Gummel-type rates ``k(i -> j) = (T / h^2) exp((f_i - f_j) / (2T))``; or exact
  Scharfetter–Gummel ``(T / h^2) B((f_j - f_i) / T)`` with ``B(z) = z / (e^z - 1)`` (``spatial="sg"``);
  at T = 0, upwind transport with velocity ``-grad f``: ``k(i -> j) = (f_i - f_j)_+ / h^2``;
* reaction inside a cell: ``k((g, i) -> (g', i)) = law.rate(f(x_i, g), f(x_i, g'), w(g, g'), T)``.

Both SQRA / SG face rates and the reversible laws satisfy detailed balance with respect to the
discrete Gibbs weights ``pi[g, i] = exp(-f(x_i, g) / T)`` exactly, so ``pi`` (normalised) is the
exact discrete stationary state. Off-diagonal entries are non-negative and rows sum to zero.

Time stepping: implicit Euler ``(I - tau Q^T) rho' = rho`` (an M-matrix: positive and mass
conserving for every tau; one sparse LU per tau, reused), Crank–Nicolson, explicit Euler (with a
stability check), ``scipy.sparse.linalg.expm_multiply`` as a reference, and ``split``: Lie
splitting into implicit transport (K independent spatial blocks) and implicit reaction (M
independent K x K blocks). The direct LU of the coupled system fills in badly for large K n^d
(2-d space times an expander-like graph behaves like a 3-d problem); ``split`` keeps the cost
linear in the number of unknowns at the price of an O(tau) splitting error.

**The nonlinear law** ``logmean`` (4.2) keeps the same transport and uses the reaction
``R_g = sum_h w [T (rho_h - rho_g) + Lambda(rho_g, rho_h) (f_h - f_g)] / kappa`` per cell; stepped
explicitly (refusing ``dt`` above ``1 / max exit rate`` of the current state) or by implicit Euler
with Newton's method.

Example
-------
>>> import numpy as np
>>> from sdot import SemiDiscreteSpace, QuadraticPotential
>>> from sdot.grid import Grid, GridSolver
>>> space = SemiDiscreteSpace.path(2, dim=1)
>>> f = QuadraticPotential(a=[1.0, 2.0], c=[0.0, 0.1], m=[[0.5], [-0.5]])
>>> grid = Grid(lower=-4, upper=4, n_cells=64, dim=1)
>>> solver = GridSolver(space, f, grid, T=0.5)
>>> rho = solver.evolve(solver.gibbs(), t_final=1.0, tau=0.1)
>>> bool(np.allclose(rho, solver.gibbs(), atol=1e-12))
True
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from .backend import to_numpy
from .potentials import Potential
from .rates import RateLaw, get_rate_law, logmean
from .space import SemiDiscreteSpace

__all__ = ["Grid", "GridSolver", "StabilityError", "logmean_derivatives", "logmean_with_derivatives",
           "check_density"]

METHODS = ("implicit", "crank_nicolson", "expm", "explicit", "split")
SPATIAL = ("sqra", "sg", "upwind")


class StabilityError(ValueError):
    """An explicit step larger than its stability bound was requested."""


# --------------------------------------------------------------------------------------------
# Grid
# --------------------------------------------------------------------------------------------
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
        if not isinstance(n_cells, (int, np.integer)) or isinstance(n_cells, bool) or n_cells < 1:
            raise ValueError(f"n_cells must be a positive integer, got {n_cells!r}")
        self.lower, self.upper, self.n_cells = lower, upper, int(n_cells)
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


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
def logmean_with_derivatives(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(Lambda, dLambda/da, dLambda/db) of the logarithmic mean in one pass, for a, b > 0.

    With r = b / a and lambda(r) = (r - 1) / log r: Lambda(a, b) = a lambda(r),
    dLambda/da = lambda(r) - r lambda'(r), dLambda/db = lambda'(r),
    lambda'(r) = (log r - (r - 1) / r) / log(r)^2; Horner forms of the series of lambda and lambda'
    to e^4 (e = r - 1) when |e| < 1e-3. Non-finite values (an argument near 0, where the
    derivative is +inf) become +-1e300 (Newton needs a finite stand-in).
    """
    r = b / a
    e = r - 1.0
    small = np.abs(e) < 1e-3
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        L = np.log(np.where(small, 2.0, r))
        lam = e / L
        dlam = (L - e / r) / (L * L)
        if small.any():
            es = e[small]
            lam[small] = 1 + es * (1 / 2 + es * (-1 / 12 + es * (1 / 24 - es * (19 / 720))))
            dlam[small] = 1 / 2 + es * (-1 / 6 + es * (1 / 8 + es * (-19 / 180 + es * (3 / 32))))
        out = (a * lam, lam - r * dlam, dlam)
    if not all(np.isfinite(x).all() for x in out):
        out = tuple(np.nan_to_num(x, nan=0.0, posinf=1e300, neginf=-1e300) for x in out)
    return out


def logmean_derivatives(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Partial derivatives (d Lambda / da, d Lambda / db) of the logarithmic mean, a, b >= 0.

    Zero arguments are clipped to the smallest normal float first (the derivative there is +inf);
    see :func:`logmean_with_derivatives`.
    """
    tiny = np.finfo(float).tiny
    a = np.maximum(np.asarray(a, dtype=float), tiny)
    b = np.maximum(np.asarray(b, dtype=float), tiny)
    return logmean_with_derivatives(a, b)[1:]


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


def _bernoulli(z: np.ndarray) -> np.ndarray:
    """B(z) = z / (e^z - 1), B(0) = 1, stable for all z."""
    z = np.asarray(z, dtype=float)
    out = np.empty_like(z)
    small = np.abs(z) < 1e-6
    out[small] = 1 - z[small] / 2 + z[small] ** 2 / 12
    zz = z[~small]
    out[~small] = zz / np.expm1(zz)
    return out


# --------------------------------------------------------------------------------------------
# GridSolver
# --------------------------------------------------------------------------------------------
class GridSolver:
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
        self.newton_tol, self.newton_maxiter = float(newton_tol), int(newton_maxiter)
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
        if not np.isfinite(T) or T < 0:
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
        a, b = self.grid.faces()
        if a.size == 0:
            e = np.zeros(0, dtype=np.int64)
            return e, e, np.zeros(0)
        h2, T, M = self.grid.h**2, self.T, self.M
        fa, fb = self.f[:, a], self.f[:, b]  # (K, n_faces)
        if self.spatial == "sqra":
            r_ab = (T / h2) * np.exp((fa - fb) / (2 * T))
            r_ba = (T / h2) * np.exp((fb - fa) / (2 * T))
        elif self.spatial == "sg":
            r_ab = (T / h2) * _bernoulli((fb - fa) / T)
            r_ba = (T / h2) * _bernoulli((fa - fb) / T)
        else:
            r_ab = np.maximum(fa - fb, 0.0) / h2
            r_ba = np.maximum(fb - fa, 0.0) / h2
        off = (np.arange(self.K, dtype=np.int64) * M)[:, None]
        src = np.concatenate([(off + a).ravel(), (off + b).ravel()])
        dst = np.concatenate([(off + b).ravel(), (off + a).ravel()])
        return src, dst, np.concatenate([r_ab.ravel(), r_ba.ravel()])

    def _reaction_edges(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Directed graph edges replicated over cells: (src, dst, w, g_src, g_dst) flattened."""
        gs, gd, w = self.space.edges()
        M = self.M
        cells = np.arange(M, dtype=np.int64)
        src = (gs[:, None] * M + cells[None, :]).ravel()
        dst = (gd[:, None] * M + cells[None, :]).ravel()
        return src, dst, np.repeat(w, M)

    def _assemble(self) -> None:
        N, M = self.n_states, self.M
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
        exit_rate = np.bincount(src, weights=rate, minlength=N)
        idx = np.arange(N, dtype=np.int64)
        rows = np.concatenate([src, idx])
        cols = np.concatenate([dst, idx])
        vals = np.concatenate([rate, -exit_rate])
        # Q (Markov generator: row = from) and A = Q^T (the forward operator on densities)
        self.A = sp.csr_matrix((vals, (cols, rows)), shape=(N, N))
        self.A.sum_duplicates()
        self._exit_rate = exit_rate
        if self.check:
            self.check_generator()

    @property
    def Q(self) -> sp.csr_matrix:
        """Markov generator on the (g, i) states (row = from, column = to); linear part only for logmean."""
        return self.A.T.tocsr()

    def check_generator(self, rtol: float = 1e-12) -> None:
        """Assert non-negative off-diagonal rates and zero row sums of Q (spec 9)."""
        A = self.A.tocoo()
        off = A.row != A.col
        if np.any(A.data[off] < 0):
            k = int(np.flatnonzero(off & (A.data < 0))[0])
            raise AssertionError(f"generator has a negative rate {A.data[k]} from state {A.col[k]} to {A.row[k]}")
        if not np.all(np.isfinite(A.data)):
            raise AssertionError("generator has non-finite rates (overflow in exp((f_i - f_j)/(2T))? "
                                 "refine the grid or use spatial='sg')")
        colsum = np.asarray(self.A.sum(axis=0)).ravel()  # row sums of Q
        scale = np.maximum(self._exit_rate, 1.0)
        bad = np.abs(colsum) > rtol * scale * 10
        if np.any(bad):
            k = int(np.flatnonzero(bad)[0])
            raise AssertionError(f"generator row {k} sums to {colsum[k]}, expected 0")

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
    def _factor(self, kind: str, tau: float):
        key = (kind, float(tau))
        lu = self._lu.get(key)
        if lu is None:
            I = sp.identity(self.n_states, format="csc")
            c = tau if kind == "implicit" else tau / 2
            B = (I - c * self.A).tocsc()
            lu = spla.splu(B, permc_spec="MMD_AT_PLUS_A" if self.grid.dim == 2 else "COLAMD")
            if len(self._lu) > 8:
                self._lu.clear()
            self._lu[key] = lu
        return lu

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
            return self._expm(tau, r)
        if method == "split":
            return self._split_step(r, tau)
        raise ValueError(f"unknown method {method!r}; expected one of {METHODS}")

    def _newton_step(self, r0: np.ndarray, tau: float) -> np.ndarray:
        """Implicit Euler for the log-mean law: solve G(r) = r - r0 - tau (A r + R(r)) = 0 by Newton.

        Damped by halving so that every iterate stays positive; the Jacobian is assembled sparse.
        """
        N = self.n_states
        I = sp.identity(N, format="csc")
        a, b, w = self._r_src, self._r_dst, self._r_w
        fl = self.f.ravel()
        df = fl[b] - fl[a]
        wk = w / self.law.kappa
        r = np.maximum(r0, 0.0).copy()
        floor = 1e-300
        r = np.maximum(r, floor)

        def resid(x):
            return x - r0 - tau * (self.A @ x + self._reaction_logmean(x))

        G = resid(r)
        scale = max(1.0, float(np.abs(r0).max()))
        for it in range(self.newton_maxiter):
            if np.abs(G).max() <= self.newton_tol * scale:
                return r
            dA, dB = logmean_derivatives(r[a], r[b])
            # dR_a/dr_a = w(-T + dA df), dR_a/dr_b = w(T + dB df)
            vals = np.concatenate([wk * (-self.T + dA * df), wk * (self.T + dB * df)])
            J_R = sp.csr_matrix((vals, (np.concatenate([a, a]), np.concatenate([a, b]))), shape=(N, N))
            Jac = (I - tau * (self.A + J_R)).tocsc()
            delta = spla.spsolve(Jac, -G)
            t = 1.0
            nG0 = np.abs(G).max()
            for _ in range(60):
                x = r + t * delta
                if np.all(x > 0):
                    Gx = resid(x)
                    if np.abs(Gx).max() <= (1 - 1e-4 * t) * nG0 or t < 1e-6:
                        break
                t /= 2
            r, G = x, Gx
        if np.abs(G).max() > 1e3 * self.newton_tol * scale:
            raise RuntimeError(f"implicit log-mean Newton did not converge in {self.newton_maxiter} iterations "
                               f"(residual {np.abs(G).max():.3g}); reduce tau")
        return r

    def _split_factors(self, tau: float):
        key = ("split", float(tau))
        fac = self._lu.get(key)
        if fac is None:
            N, K, M = self.n_states, self.K, self.M
            As = sp.csr_matrix((self._s_rate, (self._s_dst, self._s_src)), shape=(N, N))
            As = As - sp.diags(np.asarray(As.sum(axis=0)).ravel())
            lu_s = None
            if As.nnz and self.grid.dim == 1:
                # node-major ordering makes 1-d transport tridiagonal: LAPACK gttrf / gttrs
                from scipy.linalg import lapack

                B = (sp.identity(N, format="csr") - tau * As).todia()
                diag = {int(o): B.data[k] for k, o in enumerate(B.offsets)}
                dl, d0, du = diag.get(-1, np.zeros(N))[:-1], diag[0].copy(), diag.get(1, np.zeros(N))[1:]
                fac_t = lapack.dgttrf(dl.copy(), d0, du.copy())
                if fac_t[-1] != 0:
                    raise np.linalg.LinAlgError(f"tridiagonal factorisation failed (info = {fac_t[-1]})")
                lu_s = _Tridiagonal(fac_t[:5])
            elif As.nnz:
                lu_s = spla.splu((sp.identity(N, format="csc") - tau * As).tocsc(), permc_spec="MMD_AT_PLUS_A")
            # reaction: one K x K forward operator per cell, inverted in one batched call
            cell = self._r_src % M
            g, h = self._r_src // M, self._r_dst // M
            R = np.zeros((M, K, K))
            np.add.at(R, (cell, h, g), self._r_rate)
            np.add.at(R, (cell, g, g), -self._r_rate)
            Binv = np.linalg.inv(np.eye(K)[None] - tau * R)
            fac = self._lu[key] = (lu_s, Binv)
        return fac

    def _split_step(self, r: np.ndarray, tau: float) -> np.ndarray:
        """Lie splitting: implicit transport (every node), then implicit reaction (every cell).

        Each sub-step is an M-matrix inverse with pi invariant, so the step keeps positivity, mass
        and the discrete Gibbs state exactly and never increases F_T; the splitting adds an
        O(tau) error of the same order as implicit Euler. Factorisations are block-diagonal:
        K transport blocks of n^d cells (one sparse LU) and M dense K x K reaction blocks.
        """
        if not self.law.linear:
            raise ValueError(f"method 'split' needs a linear law, got {self.law.name!r}")
        lu_s, Binv = self._split_factors(tau)
        x = lu_s.solve(r) if lu_s is not None else r
        X = x.reshape(self.K, self.M).T  # (M, K)
        return np.einsum("mgh,mh->gm", Binv, X).ravel()

    def _expm(self, t: float, r: np.ndarray) -> np.ndarray:
        """exp(t A) r: dense ``scipy.linalg.expm`` for small systems, else ``expm_multiply``.

        Guarded: with huge rates (wide box, small T) ``||t A||_1`` can reach 1e50 and more, where
        scaling and squaring overflows (NaN) and ``expm_multiply`` would need ~||t A||_1 products.
        The result must be finite and keep the mass (``1^T exp(tA) = 1^T``) to a relative 1e-8;
        otherwise a FloatingPointError names the norm.
        """
        # ||t A||_1: the largest column sum of |t A|
        norm = float(t) * float(np.asarray(abs(self.A).sum(axis=0)).max(initial=0.0))
        if self.n_states <= 1500:
            import scipy.linalg as sla

            key = ("expm", float(t))
            E = self._lu.get(key)
            if E is None:
                with np.errstate(all="ignore"):
                    E = sla.expm(self.A.toarray() * t)
                _check_expm_result(E @ r, r, norm)  # a bad matrix is never cached
                self._lu[key] = E
            return _check_expm_result(E @ r, r, norm)
        if norm > _EXPM_MULTIPLY_MAX_NORM:
            raise FloatingPointError(
                f"expm reference refused: ||t A||_1 = {norm:.3g} (t = {t:g}) would need ~{norm:.1g} sparse "
                f"products in expm_multiply (limit {_EXPM_MULTIPLY_MAX_NORM:.0e}); the rates are huge (wide box "
                "or small T). Use method='implicit' or a smaller t")
        with np.errstate(all="ignore"):
            out = spla.expm_multiply(self.A * t, r)
        return _check_expm_result(out, r, norm)

    def evolve(self, rho0: Any, t_final: float, tau: float, method: str | None = None,
               callback: Any = None) -> np.ndarray:
        """Advance ``rho0`` to time ``t_final`` with ``n = ceil(t_final / tau)`` equal steps of ``t_final / n``.

        ``method='expm'`` computes ``expm(t_final A) rho0`` in one call (the reference; ``tau`` unused).
        ``callback(k, t, rho)`` is called after every step when given.
        """
        method = method or self.method
        t_final = float(t_final)
        if not np.isfinite(t_final) or t_final < 0:
            raise ValueError(f"t_final must be a finite number >= 0, got {t_final!r}")
        r = self.check_density(rho0, name="rho0").ravel()
        if t_final == 0:
            return r.reshape(self.K, self.M)
        if method == "expm" and self.law.linear:
            out = self._expm(t_final, r).reshape(self.K, self.M)
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


class _Tridiagonal:
    """A LAPACK gttrf factorisation with a ``solve`` like SuperLU's."""

    def __init__(self, factors):
        self.factors = factors

    def solve(self, b: np.ndarray) -> np.ndarray:
        from scipy.linalg import lapack

        x, info = lapack.dgttrs(*self.factors, b)
        if info != 0:
            raise np.linalg.LinAlgError(f"tridiagonal solve failed (info = {info})")
        return x


_EXPM_MULTIPLY_MAX_NORM = 1e8


def _check_expm_result(out: np.ndarray, r: np.ndarray, norm: float, rtol: float = 1e-8) -> np.ndarray:
    """Return ``out`` = exp(tA) r if it is finite and keeps the mass of ``r``; else FloatingPointError."""
    mass0 = float(np.sum(r))
    finite = bool(np.all(np.isfinite(out)))
    mass1 = float(np.sum(out)) if finite else float("nan")
    if not finite or abs(mass1 - mass0) > rtol * max(float(np.sum(np.abs(r))), 1e-300):
        what = "is not finite" if not finite else f"changed the mass from {mass0!r} to {mass1!r}"
        raise FloatingPointError(
            f"the expm reference blew up: exp(tA) rho {what}; ||t A||_1 = {norm:.3g} is too large for "
            "scaling and squaring (huge rates: wide box or small T). Use method='implicit' or a smaller t")
    return out


def n_steps(t_final: float, tau: float) -> int:
    """Number of equal steps covering ``t_final`` with steps at most ``tau`` (round-off tolerant).

    Refuses ``tau <= 0`` or non-finite (ValueError naming tau) and a negative or non-finite t_final.
    """
    tau = _check_tau(tau)
    t_final = float(t_final)
    if not math.isfinite(t_final) or t_final < 0:
        raise ValueError(f"t_final must be a finite number >= 0, got {t_final!r}")
    return max(1, int(math.ceil(t_final / tau - 1e-9)))


def _check_tau(tau: Any) -> float:
    tau = float(tau)
    if not np.isfinite(tau) or tau <= 0:
        raise ValueError(f"time step tau must be a finite number > 0, got {tau!r}")
    return tau


def gibbs_density(F: np.ndarray, T: float, cell_volume: float) -> np.ndarray:
    """exp(-F / T) normalised to total mass one (sum * cell_volume = 1), computed stably."""
    z = -np.asarray(F, dtype=float) / T
    z = z - z.max()
    p = np.exp(z)
    return p / (p.sum() * cell_volume)
