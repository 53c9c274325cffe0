"""General free energies on R^d x G: drift, internal energy U and interaction W (issue 16).

For densities ``rho`` of shape (K, M) on a :class:`~sdot.grid.Grid` (cell volume ``h^d``) ::

    F(rho) = sum_g int [ f_g rho_g + U(rho_g) ] dx + 1/2 sum_{g,h} int int W_gh(x - y) rho_g(x) rho_h(y) dx dy
    dF/drho_g = f_g + U'(rho_g) + sum_h W_gh * rho_h                      (first variation)

(the form of Carrillo, Craig, Wang & Wei, FoCM 2022, eq. (1), with one copy of R^d per node g and a
node coupling in W). The graph part of the metric is the solver's business (:mod:`sdot.jko`).

Internal energies (registry :data:`INTERNAL_ENERGIES`, :func:`get_internal_energy`):

================  ===============================  ==========================  =====================
name              U(r)                             U'(r)                       U''(r)
================  ===============================  ==========================  =====================
``entropy``       T r log r                        T (log r + 1)               T / r
``porous_medium`` nu r^m / (m - 1),  m > 1         nu m r^(m-1) / (m - 1)      nu m r^(m-2)
``callable``      user U                           user dU                     user d2U (checked >= 0)
================  ===============================  ==========================  =====================

``entropy`` gives the linear diffusion T Δ rho, ``porous_medium`` the porous medium equation
``d/dt rho = nu Δ rho^m``. A solver that needs convexity (the JKO step) calls
:meth:`InternalEnergy.require_convex`, which refuses a U with U'' < 0 at a probe point and names it.

Interaction: :class:`Interaction` is a sum of separable terms ``W_gh(z) = sum_k C^k_gh w_k(z)`` with
symmetric node couplings C^k (K, K) and even kernels w_k (:class:`Kernel`: value and gradient,
vectorised over displacements z of shape (n, d)); or a sampled array ``W[g, h, k_1, ..., k_d]`` on the
displacement lattice ``z = k h``, ``k = -(n-1) .. n-1``. On a grid the convolution
``(W * rho)_g(x_i) = sum_h sum_j W_gh(x_i - x_j) rho_h(x_j) h^d`` is evaluated exactly (a discrete linear
convolution, no periodic wrap) by zero-padded FFTs. For particles, :meth:`Interaction.particle_values`
and :meth:`Interaction.particle_grad` evaluate ``(1/N) sum_j W_{g_k g_j}(X_k - X_j)`` and its x-gradient
vectorised over pairs (chunked), never a Python loop over particles.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import scipy.fft as sfft

from .backend import to_numpy
from .grid import Grid
from .potentials import Potential

__all__ = ["InternalEnergy", "Entropy", "PorousMedium", "CallableInternalEnergy", "INTERNAL_ENERGIES",
           "get_internal_energy", "Kernel", "quadratic_kernel", "gaussian_kernel", "Interaction",
           "GeneralFreeEnergy", "as_general_energy"]

_PROBE = np.logspace(-12, 4, 161)


# --------------------------------------------------------------------------------------------
# internal energies
# --------------------------------------------------------------------------------------------
class InternalEnergy:
    """U(r) per unit volume, with U' and U'' (vectorised over arrays of densities r >= 0)."""

    name = "internal"
    #: True when U'(r) -> -inf as r -> 0 (the minimiser is then interior: no positivity barrier needed)
    log_barrier = False

    def value(self, r: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def d1(self, r: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def d2(self, r: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def require_convex(self, who: str = "this solver") -> None:
        """Refuse a U with U''(r) < 0 (or non-finite) at a probe point r in [1e-12, 1e4]."""
        with np.errstate(all="ignore"):
            d2 = np.asarray(self.d2(_PROBE.copy()), dtype=float)
        if d2.shape != _PROBE.shape:
            raise ValueError(f"U'' of {self!r} returned shape {d2.shape} for densities of shape {_PROBE.shape}")
        bad = ~(d2 >= 0)
        if np.any(bad):
            k = int(np.flatnonzero(bad)[0])
            raise ValueError(f"{who} needs a convex internal energy U, but U''({_PROBE[k]:.3g}) = {d2[k]!r} "
                             f"for {self!r}")

    def with_temperature(self, T: float) -> "InternalEnergy":
        """The same energy at another temperature (only meaningful for the entropy)."""
        raise ValueError(f"{self!r} has no temperature; a temperature schedule needs U = entropy")


class Entropy(InternalEnergy):
    """U(r) = T r log r (0 log 0 = 0), T > 0."""

    name = "entropy"
    log_barrier = True

    def __init__(self, T: float = 1.0):
        T = float(T)
        if not np.isfinite(T) or T <= 0:
            raise ValueError(f"the entropy U = T r log r needs a temperature T > 0, got T = {T!r}")
        self.T = T

    def value(self, r):
        r = np.asarray(r, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.T * np.where(r > 0, r * np.log(np.where(r > 0, r, 1.0)), 0.0)

    def d1(self, r):
        with np.errstate(divide="ignore"):
            return self.T * (np.log(r) + 1.0)

    def d2(self, r):
        with np.errstate(divide="ignore"):
            return self.T / np.asarray(r, dtype=float)

    def with_temperature(self, T: float) -> "Entropy":
        return Entropy(T)

    def __repr__(self) -> str:
        return f"Entropy(T={self.T})"


class PorousMedium(InternalEnergy):
    """U(r) = nu r^m / (m - 1), m > 1, nu > 0: the porous medium equation d/dt rho = nu Δ rho^m."""

    name = "porous_medium"

    def __init__(self, m: float = 2.0, nu: float = 1.0):
        m, nu = float(m), float(nu)
        if not np.isfinite(m) or m <= 1:
            raise ValueError(f"the porous medium energy r^m / (m - 1) needs an exponent m > 1, got m = {m!r}")
        if not np.isfinite(nu) or nu <= 0:
            raise ValueError(f"the porous medium energy needs a coefficient nu > 0, got nu = {nu!r}")
        self.m, self.nu = m, nu

    def value(self, r):
        return self.nu * np.maximum(r, 0.0) ** self.m / (self.m - 1)

    def d1(self, r):
        return self.nu * self.m * np.maximum(r, 0.0) ** (self.m - 1) / (self.m - 1)

    def d2(self, r):
        with np.errstate(divide="ignore"):
            return self.nu * self.m * np.maximum(r, 0.0) ** (self.m - 2)

    def __repr__(self) -> str:
        return f"PorousMedium(m={self.m}, nu={self.nu})"


class CallableInternalEnergy(InternalEnergy):
    """A user U with its first and second derivatives (vectorised callables r -> array)."""

    name = "callable"

    def __init__(self, U: Callable, dU: Callable, d2U: Callable, log_barrier: bool = False):
        for nm, fn in (("U", U), ("dU", dU), ("d2U", d2U)):
            if not callable(fn):
                raise TypeError(f"{nm} must be a callable r -> array, got {type(fn).__name__}")
        self._U, self._dU, self._d2U, self.log_barrier = U, dU, d2U, bool(log_barrier)

    def value(self, r):
        return np.asarray(self._U(r), dtype=float)

    def d1(self, r):
        return np.asarray(self._dU(r), dtype=float)

    def d2(self, r):
        return np.asarray(self._d2U(r), dtype=float)

    def __repr__(self) -> str:
        return f"CallableInternalEnergy({getattr(self._U, '__name__', 'U')})"


INTERNAL_ENERGIES: dict[str, Callable[..., InternalEnergy]] = {
    "entropy": Entropy, "porous_medium": PorousMedium, "callable": CallableInternalEnergy}


def get_internal_energy(spec: Any, **params: Any) -> InternalEnergy:
    """An :class:`InternalEnergy` from an instance or a registry name with parameters."""
    if isinstance(spec, InternalEnergy):
        return spec
    if isinstance(spec, str):
        if spec not in INTERNAL_ENERGIES:
            raise ValueError(f"unknown internal energy {spec!r}; expected one of {sorted(INTERNAL_ENERGIES)}")
        return INTERNAL_ENERGIES[spec](**params)
    raise TypeError(f"internal energy must be a name or an InternalEnergy, got {type(spec).__name__}")


# --------------------------------------------------------------------------------------------
# interaction kernels
# --------------------------------------------------------------------------------------------
class Kernel:
    """An even interaction kernel w(z) = w(-z) with gradient, vectorised: z (n, d) -> (n,), (n, d)."""

    def __init__(self, value: Callable, grad: Callable | None = None, name: str = "kernel"):
        if not callable(value):
            raise TypeError(f"kernel value must be a callable z (n, d) -> (n,), got {type(value).__name__}")
        self._value, self._grad, self.name = value, grad, name

    def value(self, z: np.ndarray) -> np.ndarray:
        return np.asarray(self._value(z), dtype=float)

    def grad(self, z: np.ndarray) -> np.ndarray:
        if self._grad is None:
            raise TypeError(f"kernel {self.name!r} has no gradient; particles need Kernel(value, grad)")
        return np.asarray(self._grad(z), dtype=float)

    def __repr__(self) -> str:
        return f"Kernel({self.name})"


def quadratic_kernel(strength: float = 1.0) -> Kernel:
    """w(z) = strength |z|^2 / 2 (attraction for strength > 0); grad = strength z."""
    s = float(strength)
    return Kernel(lambda z: 0.5 * s * np.sum(z * z, axis=-1), lambda z: s * z, name=f"quadratic({s:g})")


def gaussian_kernel(sigma: float = 1.0, amplitude: float = 1.0) -> Kernel:
    """w(z) = amplitude exp(-|z|^2 / (2 sigma^2)) (repulsion for amplitude > 0)."""
    s, a = float(sigma), float(amplitude)
    if not np.isfinite(s) or s <= 0:
        raise ValueError(f"gaussian kernel needs sigma > 0, got sigma = {sigma!r}")

    def val(z):
        return a * np.exp(-np.sum(z * z, axis=-1) / (2 * s * s))

    return Kernel(val, lambda z: -(val(z) / (s * s))[..., None] * z, name=f"gaussian(sigma={s:g}, a={a:g})")


class Interaction:
    """W_gh(z) = sum_k C^k[g, h] w_k(z), or a sampled lattice array (see the module docstring).

    Parameters
    ----------
    terms : Kernel, or sequence of (Kernel, coupling) pairs, or ndarray (K, K, (2n-1,)*d)
        A single kernel acts within each node (coupling = identity).
    n_nodes : int
        K (checks the couplings' shapes).
    """

    def __init__(self, terms: Any, n_nodes: int):
        self.K = int(n_nodes)
        self.sampled: np.ndarray | None = None
        self.terms: list[tuple[Kernel, np.ndarray]] = []
        if isinstance(terms, np.ndarray):
            A = np.asarray(terms, dtype=float)
            if A.ndim < 3 or A.shape[:2] != (self.K, self.K):
                raise ValueError(f"a sampled interaction kernel must have shape ({self.K}, {self.K}, 2n-1[, 2n-1]), "
                                 f"got {A.shape}")
            L = A.shape[2]
            if L % 2 == 0 or any(s != L for s in A.shape[2:]):
                raise ValueError(f"a sampled interaction kernel needs odd equal lattice sizes 2n-1 per axis, got {A.shape}")
            rev = A[(slice(None), slice(None)) + (slice(None, None, -1),) * (A.ndim - 2)]
            if not np.allclose(A, np.swapaxes(rev, 0, 1), rtol=1e-12, atol=1e-14 * np.abs(A).max(initial=1.0)):
                raise ValueError("a sampled interaction kernel must satisfy W[g, h](z) = W[h, g](-z)")
            if not np.all(np.isfinite(A)):
                raise ValueError("a sampled interaction kernel must be finite")
            self.sampled = A
            return
        if isinstance(terms, Kernel):
            terms = [(terms, np.eye(self.K))]
        for item in terms:
            if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], Kernel)):
                raise TypeError("interaction terms must be (Kernel, coupling) pairs")
            C = np.asarray(item[1], dtype=float)
            if C.shape != (self.K, self.K):
                raise ValueError(f"interaction coupling must have shape ({self.K}, {self.K}), got {C.shape}")
            if not np.allclose(C, C.T) or not np.all(np.isfinite(C)):
                raise ValueError("interaction coupling must be finite and symmetric (W_gh(z) = W_hg(-z))")
            self.terms.append((item[0], C))
        self._fft_cache: dict[int, tuple[Grid, Any]] = {}

    # ---- grid ------------------------------------------------------------------------------------
    def lattice(self, grid: Grid) -> np.ndarray:
        """W_gh sampled at displacements k h, k = -(n-1)..n-1 per axis: shape (K, K, (2n-1,)*d)."""
        n, d = grid.n_cells, grid.dim
        if self.sampled is not None:
            if self.sampled.shape[2:] != (2 * n - 1,) * d:
                raise ValueError(f"sampled interaction kernel has lattice shape {self.sampled.shape[2:]}, "
                                 f"the grid needs {(2 * n - 1,) * d}")
            return self.sampled
        k = np.arange(-(n - 1), n) * grid.h
        if d == 1:
            z = k[:, None]
        else:
            Z0, Z1 = np.meshgrid(k, k, indexing="ij")
            z = np.stack([Z0.ravel(), Z1.ravel()], axis=1)
        out = np.zeros((self.K, self.K) + (2 * n - 1,) * d)
        for kern, C in self.terms:
            v = kern.value(z)
            if v.shape != (z.shape[0],):
                raise ValueError(f"interaction kernel {kern.name!r} returned shape {v.shape} for displacements "
                                 f"of shape {z.shape}; expected ({z.shape[0]},)")
            if not np.all(np.isfinite(v)):
                raise ValueError(f"interaction kernel {kern.name!r} is not finite on the displacement lattice "
                                 "(a singular kernel needs a regularised sampled array)")
            v = v.reshape((2 * n - 1,) * d)
            if not np.allclose(v, v[(slice(None, None, -1),) * d], rtol=1e-10, atol=1e-12 * np.abs(v).max(initial=1.0)):
                raise ValueError(f"interaction kernel {kern.name!r} must be even, w(z) = w(-z)")
            out += C[(slice(None), slice(None)) + (None,) * d] * v
        return out

    def _fft(self, grid: Grid):
        hit = self._fft_cache.get(id(grid)) if hasattr(self, "_fft_cache") else None
        if hit is not None and hit[0] is grid:
            return hit[1]
        if grid.dim == 0:
            raise ValueError("an interaction kernel needs a grid with dim >= 1")
        n, d = grid.n_cells, grid.dim
        L = sfft.next_fast_len(2 * n - 1, real=True)
        lat = self.lattice(grid)
        wrap = np.zeros((self.K, self.K) + (L,) * d)
        idx = np.r_[np.arange(n - 1, 2 * n - 1), np.arange(0, n - 1)]  # k = 0..n-1, then -(n-1)..-1
        pos = np.r_[np.arange(0, n), np.arange(L - (n - 1), L)]
        if d == 1:
            wrap[:, :, pos] = lat[:, :, idx]
        else:
            wrap[np.ix_(range(self.K), range(self.K), pos, pos)] = lat[np.ix_(range(self.K), range(self.K), idx, idx)]
        KF = sfft.rfftn(wrap, axes=tuple(range(2, 2 + d)))
        out = (L, KF)
        if not hasattr(self, "_fft_cache"):
            self._fft_cache = {}
        self._fft_cache[id(grid)] = (grid, out)
        return out

    def convolve(self, rho: np.ndarray, grid: Grid) -> np.ndarray:
        """(W * rho)_g(x_i) = sum_h sum_j W_gh(x_i - x_j) rho_h(x_j) h^d, shape (K, M); exact, by FFT."""
        n, d = grid.n_cells, grid.dim
        L, KF = self._fft(grid)
        R = np.asarray(rho, dtype=float).reshape((self.K,) + (n,) * d)
        axes = tuple(range(1, 1 + d))
        RF = sfft.rfftn(R, s=(L,) * d, axes=axes)
        CF = np.einsum("gh...,h...->g...", KF, RF)
        out = sfft.irfftn(CF, s=(L,) * d, axes=axes)[(slice(None),) + (slice(0, n),) * d]
        return out.reshape(self.K, -1) * grid.cell_volume

    def energy(self, rho: np.ndarray, grid: Grid) -> float:
        """1/2 sum_g int rho_g (W * rho)_g dx."""
        r = np.asarray(rho, dtype=float).reshape(self.K, -1)
        return 0.5 * float(np.sum(r * self.convolve(r, grid))) * grid.cell_volume

    # ---- particles ---------------------------------------------------------------------------------
    def _pairs(self, x, g, y, h, what):
        if self.sampled is not None:
            raise TypeError("a sampled interaction kernel has no values off the lattice; particles need Kernel terms")
        x, y = np.asarray(to_numpy(x), dtype=float), np.asarray(to_numpy(y), dtype=float)
        g, h = np.asarray(to_numpy(g)).astype(np.int64), np.asarray(to_numpy(h)).astype(np.int64)
        n, N, d = x.shape[0], y.shape[0], x.shape[1]
        out = np.zeros((n,) if what == "value" else (n, d))
        chunk = max(1, int(4_000_000 // max(N * max(d, 1), 1)))
        for a in range(0, n, chunk):  # chunks of rows (bounded memory), each fully vectorised
            xs, gs = x[a:a + chunk], g[a:a + chunk]
            z = (xs[:, None, :] - y[None, :, :]).reshape(-1, d)
            for kern, C in self.terms:
                c = C[gs[:, None], h[None, :]]  # (chunk, N)
                if what == "value":
                    out[a:a + chunk] += np.sum(c * kern.value(z).reshape(c.shape), axis=1)
                else:
                    out[a:a + chunk] += np.einsum("ij,ijd->id", c, kern.grad(z).reshape(c.shape + (d,)))
        return out / N

    def particle_values(self, x: Any, g: Any, cloud_x: Any, cloud_g: Any) -> np.ndarray:
        """(W * mu_N)_g(x) = (1/N) sum_j W_{g, G_j}(x - X_j) at points (x, g), shape (n,)."""
        return self._pairs(x, g, cloud_x, cloud_g, "value")

    def particle_grad(self, x: Any, g: Any, cloud_x: Any, cloud_g: Any) -> np.ndarray:
        """grad_x (W * mu_N)_g(x) = (1/N) sum_j C_{g G_j} grad w(x - X_j), shape (n, d)."""
        return self._pairs(x, g, cloud_x, cloud_g, "grad")

    def __repr__(self) -> str:
        if self.sampled is not None:
            return f"Interaction(sampled {self.sampled.shape})"
        return f"Interaction({[k.name for k, _ in self.terms]})"


# --------------------------------------------------------------------------------------------
# the free energy
# --------------------------------------------------------------------------------------------
class GeneralFreeEnergy:
    """F(rho) = sum_g int [f_g rho_g + U(rho_g)] + 1/2 sum_{g,h} int int W_gh(x - y) rho_g(x) rho_h(y).

    Parameters
    ----------
    potential : Potential or None   drift f(x, g) (None: f = 0; then ``n_nodes`` is required)
    internal : InternalEnergy or name   U (default: entropy at temperature ``T``)
    interaction : Interaction, Kernel, sequence of (Kernel, coupling), ndarray, or None
    T : float, optional   temperature of the default entropy
    n_nodes : int, optional   K when no potential is given
    """

    def __init__(self, potential: Potential | None = None, internal: Any = None, interaction: Any = None,
                 T: float | None = None, n_nodes: int | None = None, **internal_params: Any):
        if potential is not None and not isinstance(potential, Potential):
            raise TypeError(f"potential must be a Potential or None, got {type(potential).__name__}")
        self.potential = potential
        K = getattr(potential, "n_nodes", None) if potential is not None else None
        if K is None:
            if n_nodes is None:
                raise ValueError("give a potential or n_nodes")
            K = int(n_nodes)
        elif n_nodes is not None and int(n_nodes) != K:
            raise ValueError(f"n_nodes = {n_nodes} but the potential has {K} nodes")
        self.n_nodes = K
        if internal is None:
            internal = Entropy(1.0 if T is None else T)
        elif T is not None:
            raise ValueError("give the temperature through the internal energy (e.g. Entropy(T)), not both")
        self.internal = get_internal_energy(internal, **internal_params)
        if interaction is None or isinstance(interaction, Interaction):
            self.interaction = interaction
        else:
            self.interaction = Interaction(interaction, K)
        if self.interaction is not None and self.interaction.K != K:
            raise ValueError(f"the interaction has {self.interaction.K} nodes, the energy {K}")
        self._fcache: dict[int, tuple[Grid, np.ndarray]] = {}

    @property
    def T(self) -> float | None:
        """Temperature of an entropy U (None otherwise)."""
        return self.internal.T if isinstance(self.internal, Entropy) else None

    def with_temperature(self, T: float) -> "GeneralFreeEnergy":
        """A copy with the entropy at temperature T (refused for other U)."""
        new = GeneralFreeEnergy.__new__(GeneralFreeEnergy)
        new.__dict__.update(self.__dict__)
        new.internal = self.internal.with_temperature(T)
        return new

    def drift_values(self, grid: Grid) -> np.ndarray:
        """f(x_i, g) at the cell centres, shape (K, M) (zeros without a potential; cached)."""
        hit = self._fcache.get(id(grid))
        if hit is not None and hit[0] is grid:
            return hit[1]
        if self.potential is None:
            F = np.zeros((self.n_nodes, grid.n_points))
        else:
            F = np.asarray(to_numpy(self.potential.all_nodes(grid.centers)), dtype=float).T
            if F.shape != (self.n_nodes, grid.n_points):
                raise ValueError(f"potential.all_nodes returned shape {F.shape[::-1]}, expected "
                                 f"({grid.n_points}, {self.n_nodes})")
            if not np.all(np.isfinite(F)):
                raise ValueError("potential has non-finite values on the grid")
        self._fcache[id(grid)] = (grid, F)
        return F

    def parts(self, rho: Any, grid: Grid) -> dict[str, float]:
        """{'V': drift energy, 'U': internal energy, 'W': interaction energy, 'F': total}."""
        r = np.asarray(to_numpy(rho), dtype=float).reshape(self.n_nodes, -1)
        vol = grid.cell_volume
        V = float(np.sum(self.drift_values(grid) * r)) * vol
        U = float(np.sum(self.internal.value(r))) * vol
        W = self.interaction.energy(r, grid) if self.interaction is not None else 0.0
        return {"V": V, "U": U, "W": W, "F": V + U + W}

    def __call__(self, rho: Any, grid: Grid) -> float:
        return self.parts(rho, grid)["F"]

    def first_variation(self, rho: Any, grid: Grid) -> np.ndarray:
        """dF/drho = f + U'(rho) + W * rho, shape (K, M)."""
        r = np.asarray(to_numpy(rho), dtype=float).reshape(self.n_nodes, -1)
        out = self.drift_values(grid) + self.internal.d1(r)
        if self.interaction is not None:
            out = out + self.interaction.convolve(r, grid)
        return out

    def __repr__(self) -> str:
        return (f"GeneralFreeEnergy({type(self.potential).__name__ if self.potential else None}, "
                f"{self.internal!r}, {self.interaction!r})")


def as_general_energy(obj: Any, T: float | None = None) -> GeneralFreeEnergy:
    """A :class:`GeneralFreeEnergy` from itself or from (potential, T) (potential + T x entropy)."""
    if isinstance(obj, GeneralFreeEnergy):
        return obj
    if isinstance(obj, Potential):
        if T is None:
            raise ValueError("a potential needs a temperature T")
        return GeneralFreeEnergy(obj, Entropy(T))
    raise TypeError(f"expected a Potential or a GeneralFreeEnergy, got {type(obj).__name__}")
