"""Lagrangian particle solver for the semi-discrete flow on R^d x G (spec ``semi-discrete-flow.md`` 7.2).

The measure is carried by N particles, ``mu_N = (1/N) sum_k delta_(X_k, G_k)``. One step of the linear
reaction-diffusion system 4.3 is split (Strang) into a move in x at fixed node and a jump on G at
fixed x:

* **Langevin** (Euler-Maruyama) ``X <- X - dt grad_x f(X, G) + sqrt(2 T dt) xi``;
* **exact Ornstein-Uhlenbeck** for :class:`~sdot.potentials.QuadraticPotential`
  ``X <- m_g + (X - m_g) e^{-a_g dt} + sqrt(T/a_g (1 - e^{-2 a_g dt})) xi`` (no time-step bias, so
  that errors in the jump part cannot hide behind it);
* **underdamped Langevin** (BAOAB, Leimkuhler-Matthews) on (X, P) with friction gamma;
* **jump** at fixed x: total rate ``lambda(X, G) = sum_{g'} k(G -> g'; X)`` from the rate-law registry
  (:mod:`sdot.rates`); the particle leaves with probability ``1 - exp(-dt lambda)`` to g' with
  probability ``k(G -> g'; X) / lambda``. ``method="exact"`` continues the fixed-x chain after the
  first jump until time dt is used up (exact in law for any dt), ``"single"`` allows one jump per
  step, ``"explicit"`` uses the first-order probability ``dt lambda`` (the NAS code's rule) and
  refuses or sub-steps when ``dt max lambda >= 1``;
* **birth-death** (Lu-Lu-Nolen): a *different geometry* (Hellinger / Fisher-Rao), not the graph
  metric; it realises ``d/dt rho = -rho (log(rho/pi_T) - <log(rho/pi_T)>)`` and needs a density
  estimate (a KDE per node for d <= 2, or Gibbs conditional laws for analytic potentials).

Everything is vectorised over particles: a jump step costs O(N * max_degree) through a padded
neighbour table built once from the graph's CSR structure, and evaluates f only at each particle's
own node and its neighbours. numpy arrays are the default; torch tensors (CPU or CUDA) go through
the same code with a ``torch.Generator``.

**Non-finite policy.** Every step takes ``nonfinite = "raise" | "freeze" | "reset"`` for particles
whose potential value, gradient, rate or new position is NaN or infinite:
``"raise"`` raises :class:`NonFiniteError` naming the particles (``.indices``) and leaves the state
as it was before the elementary step that met them (in a composite Strang/Lie step the sub-steps
already completed stay applied); ``"freeze"`` leaves them where they are for this step (no move,
no jump); ``"reset"`` replaces each one by a copy (x, g, p) of a uniformly chosen healthy particle
(a birth-death replacement, N stays fixed). The affected particles are reported in
``state.info.nonfinite`` (indices; ``state.info.nonfinite_mask(N)`` gives the mask). Nothing
non-finite is ever written into the state. A rate of ``+inf`` *into* a
node is legitimate only as ``f = +inf`` there (an infinite barrier gives rate 0 under the shipped
laws); NaN anywhere, or ``f = +-inf`` at a particle's own node, is flagged.

Steps update ``state`` in place and return it; ``state.copy()`` takes a snapshot. Elementary steps
advance ``state.t`` by their dt; composite steps (Strang, Lie, :class:`ParticleSolver`) advance it
once per full step.

Example
-------
>>> import numpy as np
>>> from sdot import SemiDiscreteSpace, QuadraticPotential
>>> from sdot.particles import ParticleState, strang_step
>>> space = SemiDiscreteSpace.path(3, dim=1)
>>> f = QuadraticPotential([1.0, 2.0, 0.5], [0.0, 0.3, 0.1], [[-1.0], [0.0], [1.0]])
>>> rng = np.random.default_rng(0)
>>> s = ParticleState(rng.normal(size=(1000, 1)), rng.integers(0, 3, 1000), rng=1)
>>> s = strang_step(s, space, f, "glauber", T=0.5, dt=0.05, diffusion="ou")
>>> s.node_fractions(3).shape
(3,)
"""

from __future__ import annotations

import math
import sys
import threading
import warnings
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .backend import is_torch, namespace, to_numpy
from .potentials import Potential, QuadraticPotential
from .rates import RateLaw, get_rate_law, glauber, metropolis, upwind
from .space import SemiDiscreteSpace

__all__ = [
    "ParticleState",
    "StepInfo",
    "NonFiniteError",
    "NeighbourTable",
    "neighbour_table",
    "langevin_step",
    "ou_step",
    "underdamped_step",
    "jump_step",
    "jump_rates",
    "strang_step",
    "lie_step",
    "birth_death_step",
    "node_log_partition",
    "gibbs_node_masses",
    "ParticleSolver",
    "MeanFieldPotential",
    "clear_workspace",
    "NONFINITE_POLICIES",
    "JUMP_METHODS",
    "DIFFUSIONS",
]

NONFINITE_POLICIES = ("raise", "freeze", "reset")
JUMP_METHODS = ("exact", "single", "explicit")
DIFFUSIONS = ("langevin", "ou", "underdamped", "none")
_FLOAT_DTYPES_NP = (np.float32, np.float64)


class NonFiniteError(FloatingPointError):
    """Raised under ``nonfinite="raise"`` when particles meet NaN/inf values; ``.indices`` names them."""

    def __init__(self, message: str, indices: np.ndarray):
        super().__init__(message)
        self.indices = indices


# ----------------------------------------------------------------------------------------------
# diagnostics
# ----------------------------------------------------------------------------------------------
@dataclass
class StepInfo:
    """What the last step did (reset at the start of every public step).

    Attributes
    ----------
    n_jumps : int            graph jumps made (all rounds and sub-steps)
    jump_rounds : int        rounds of the fixed-x chain (``method="exact"``: max jumps of one particle)
    substeps : int           explicit sub-steps used (1 unless ``dt max lambda >= 1`` forced more)
    max_rate : float         largest total jump rate lambda seen
    nonfinite : ndarray      indices of particles that met NaN/inf (handled per ``policy``)
    policy : str | None      the non-finite policy that handled them
    births, deaths : int     birth-death events (birth: a duplicated particle; death: a killed one)
    """

    n_jumps: int = 0
    jump_rounds: int = 0
    substeps: int = 1
    max_rate: float = float("nan")
    nonfinite: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    policy: str | None = None
    births: int = 0
    deaths: int = 0

    def nonfinite_mask(self, n: int) -> np.ndarray:
        """Boolean mask of shape (n,) of the particles reported in ``nonfinite``."""
        m = np.zeros(n, dtype=bool)
        m[self.nonfinite] = True
        return m

    def _add_nonfinite(self, idx: np.ndarray, policy: str) -> None:
        self.nonfinite = np.union1d(self.nonfinite, idx).astype(np.int64)
        self.policy = policy


# ----------------------------------------------------------------------------------------------
# state
# ----------------------------------------------------------------------------------------------
class ParticleState:
    """Particles (X_k, G_k[, P_k]) with their random stream; everything needed to resume exactly.

    Parameters
    ----------
    x : array (N, d), float32 or float64 (numpy) / floating tensor (torch)
        Positions; d = 0 is allowed (labels only, ``x`` of shape (N, 0)).
    g : array (N,), integer
        Node labels in [0, K). Converted to int64.
    p : array (N, d), optional
        Momenta (underdamped Langevin), same backend and dtype as ``x``.
    rng : int | None | numpy.random.Generator | torch.Generator
        The random stream. numpy arrays take a ``numpy.random.Generator`` (or a seed); tensors take
        a ``torch.Generator`` on their device (or a seed, from which one is made).
    t : float, n_steps : int
        Clock and step counter (advanced by the steps).

    Raises
    ------
    ValueError / TypeError at the edge: wrong ndim, mismatched N, non-float x, non-integer g,
    negative labels, non-finite positions, mixed backends, a generator of the wrong kind.
    """

    def __init__(self, x: Any, g: Any, p: Any = None, rng: Any = None, t: float = 0.0, n_steps: int = 0):
        torch_mode = is_torch(x)
        if torch_mode != is_torch(g) or (p is not None and is_torch(p) != torch_mode):
            raise TypeError("x, g (and p) must all be numpy arrays or all torch tensors")
        if torch_mode:
            torch = sys.modules["torch"]
            if not x.is_floating_point() or x.dtype not in (torch.float32, torch.float64):
                raise TypeError(f"x must be a float32/float64 tensor, got dtype {x.dtype}")
            if g.dtype.is_floating_point or g.dtype == torch.bool or g.is_complex():
                raise TypeError(f"g must hold integer node labels, got dtype {g.dtype}")
            x = x.detach().clone().contiguous()
            g = g.detach().to(torch.int64).clone()
            if p is not None:
                p = p.detach().clone().contiguous()
            if g.device != x.device:
                raise ValueError(f"x is on {x.device} but g is on {g.device}")
        else:
            x = np.asarray(x)
            g = np.asarray(g)
            if x.dtype not in _FLOAT_DTYPES_NP:
                raise TypeError(f"x must be a float32 or float64 array, got dtype {x.dtype} "
                                "(convert with x.astype(float))")
            if not np.issubdtype(g.dtype, np.integer):
                raise TypeError(f"g must hold integer node labels, got dtype {g.dtype}")
            # the state owns its arrays (steps update them in place)
            x = np.array(x, order="C", copy=True)
            g = np.array(g, dtype=np.int64, copy=True)
        if x.ndim != 2:
            raise ValueError(f"x must have shape (N, d), got {tuple(x.shape)}")
        if g.ndim != 1 or g.shape[0] != x.shape[0]:
            raise ValueError(f"g must have shape ({x.shape[0]},) to match x, got {tuple(g.shape)}")
        if g.shape[0] and int(g.min()) < 0:
            raise ValueError(f"node labels must be >= 0, got {int(g.min())}")
        xp = namespace(x)
        if x.numel() if torch_mode else x.size:
            if not bool(xp.isfinite(x).all()):
                bad = to_numpy(~xp.isfinite(x).all(**_axis(xp, 1)))
                raise ValueError(f"positions of particles {np.flatnonzero(bad)[:5].tolist()} are not finite")
        if p is not None:
            if not torch_mode:
                p = np.array(p, order="C", copy=True)
            if tuple(p.shape) != tuple(x.shape) or p.dtype != x.dtype:
                raise ValueError(f"p must have the shape {tuple(x.shape)} and dtype {x.dtype} of x, "
                                 f"got {tuple(p.shape)} {p.dtype}")
        self.x, self.g, self.p = x, g, p
        self.rng = _make_rng(rng, x)
        self.t = float(t)
        self.n_steps = int(n_steps)
        self.info = StepInfo()

    # --- constructors ---------------------------------------------------------------------------
    @classmethod
    def from_labels(cls, g: Any, rng: Any = None, dtype: Any = None) -> "ParticleState":
        """Labels-only particles (d = 0), as in NASGD/NASAGD: ``x`` has shape (N, 0)."""
        if is_torch(g):
            torch = sys.modules["torch"]
            x = torch.zeros((g.shape[0], 0), dtype=dtype or torch.float64, device=g.device)
        else:
            g = np.asarray(g)
            x = np.zeros((g.shape[0], 0), dtype=dtype or np.float64)
        return cls(x, g, rng=rng)

    @classmethod
    def sample(cls, n: int, node_probs: Any, mean: Any, std: Any, rng: Any = None, dtype: Any = np.float64,
               momenta_T: float | None = None) -> "ParticleState":
        """Draw ``g ~ node_probs`` and ``x | g ~ N(mean[g], std[g]^2 I)`` (numpy).

        ``mean`` has shape (K, d) or (d,); ``std`` shape (K,) or scalar. With ``momenta_T`` the
        momenta are Maxwellian ``N(0, momenta_T I)`` (unit mass).
        """
        gen = np.random.default_rng(rng)
        probs = np.asarray(node_probs, dtype=float)
        if probs.ndim != 1 or np.any(probs < 0) or not np.isclose(probs.sum(), 1.0):
            raise ValueError(f"node_probs must be a probability vector, got {probs}")
        K = probs.size
        mean = np.asarray(mean, dtype=float)
        mean = mean.reshape(1, 1) if mean.ndim == 0 else (mean[None, :] if mean.ndim == 1 else mean)
        mean = np.broadcast_to(mean, (K, mean.shape[1]))
        std = np.broadcast_to(np.asarray(std, dtype=float), (K,))
        g = gen.choice(K, size=n, p=probs)
        x = (mean[g] + std[g][:, None] * gen.standard_normal((n, mean.shape[1]))).astype(dtype)
        p = None
        if momenta_T is not None:
            p = (math.sqrt(momenta_T) * gen.standard_normal(x.shape)).astype(dtype)
        return cls(x, g, p=p, rng=gen)

    # --- properties -----------------------------------------------------------------------------
    @property
    def n_particles(self) -> int:
        return int(self.x.shape[0])

    @property
    def dim(self) -> int:
        return int(self.x.shape[1])

    @property
    def backend(self) -> str:
        return "torch" if is_torch(self.x) else "numpy"

    def node_counts(self, n_nodes: int) -> np.ndarray:
        """Particles per node, shape (K,), numpy int64."""
        if is_torch(self.g):
            return to_numpy(sys.modules["torch"].bincount(self.g, minlength=n_nodes))[:n_nodes].astype(np.int64)
        return np.bincount(self.g, minlength=n_nodes)[:n_nodes].astype(np.int64)

    def node_fractions(self, n_nodes: int) -> np.ndarray:
        """Empirical node masses N_g / N, shape (K,)."""
        return self.node_counts(n_nodes) / max(self.n_particles, 1)

    def node_fraction_stderr(self, n_nodes: int) -> np.ndarray:
        """Binomial standard errors sqrt(m (1 - m) / N) of the node masses."""
        m = self.node_fractions(n_nodes)
        return np.sqrt(m * (1 - m) / max(self.n_particles, 1))

    def with_momenta(self, T: float, mass: float = 1.0) -> "ParticleState":
        """Draw Maxwellian momenta ``P ~ N(0, mass T I)`` from the state's stream (in place)."""
        _check_nonneg("T", T)
        self.p = _normal(self, tuple(self.x.shape)) * math.sqrt(mass * T)
        return self

    def copy(self) -> "ParticleState":
        """A deep copy (arrays and random stream)."""
        new = ParticleState.__new__(ParticleState)
        clone = (lambda a: a.clone()) if is_torch(self.x) else (lambda a: a.copy())
        new.x, new.g = clone(self.x), clone(self.g)
        new.p = None if self.p is None else clone(self.p)
        new.rng = _copy_rng(self.rng)
        new.t, new.n_steps, new.info = self.t, self.n_steps, StepInfo()
        return new

    # --- persistence ----------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Plain data (numpy arrays, numbers, the generator state) for exact save/restore."""
        d = {"backend": self.backend, "x": to_numpy(self.x).copy(), "g": to_numpy(self.g).copy(),
             "p": None if self.p is None else to_numpy(self.p).copy(), "t": self.t, "n_steps": self.n_steps}
        if is_torch(self.x):
            d["device"] = str(self.x.device)
            d["rng"] = {"kind": "torch", "state": to_numpy(self.rng.get_state()).copy()}
        else:
            d["rng"] = {"kind": "numpy", "state": self.rng.bit_generator.state}
        return d

    def load_state_dict(self, d: dict) -> "ParticleState":
        """Restore everything from :meth:`state_dict` (in place); returns self."""
        other = ParticleState.from_state_dict(d)
        self.x, self.g, self.p, self.rng = other.x, other.g, other.p, other.rng
        self.t, self.n_steps, self.info = other.t, other.n_steps, StepInfo()
        return self

    @classmethod
    def from_state_dict(cls, d: dict) -> "ParticleState":
        if d["backend"] == "torch":
            import torch

            dev = torch.device(d.get("device", "cpu"))
            x = torch.as_tensor(d["x"], device=dev)
            g = torch.as_tensor(d["g"], device=dev)
            p = None if d["p"] is None else torch.as_tensor(d["p"], device=dev)
            gen = torch.Generator(device=dev)
            gen.set_state(torch.as_tensor(d["rng"]["state"], dtype=torch.uint8))
            return cls(x, g, p, rng=gen, t=d["t"], n_steps=d["n_steps"])
        st = d["rng"]["state"]
        bitgen = getattr(np.random, st["bit_generator"])()
        bitgen.state = st
        return cls(np.array(d["x"]), np.array(d["g"]), None if d["p"] is None else np.array(d["p"]),
                   rng=np.random.Generator(bitgen), t=d["t"], n_steps=d["n_steps"])

    def __repr__(self) -> str:
        return (f"ParticleState(N={self.n_particles}, d={self.dim}, backend={self.backend}, "
                f"dtype={self.x.dtype}, momenta={self.p is not None}, t={self.t:g})")


def _make_rng(rng: Any, x: Any):
    if is_torch(x):
        torch = sys.modules["torch"]
        if isinstance(rng, torch.Generator):
            if rng.device.type != x.device.type:
                raise ValueError(f"torch.Generator on {rng.device} but particles on {x.device}")
            return rng
        if isinstance(rng, np.random.Generator):
            seed = int(rng.integers(2**63 - 1))
        elif rng is None:
            seed = int(np.random.SeedSequence().generate_state(1, np.uint64)[0] >> 1)
        elif isinstance(rng, (int, np.integer)):
            seed = int(rng)
        else:
            raise TypeError(f"rng for torch particles must be a seed or torch.Generator, got {type(rng).__name__}")
        gen = torch.Generator(device=x.device)
        gen.manual_seed(seed)
        return gen
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(rng, torch.Generator):
        raise TypeError("a torch.Generator was given for numpy particles; pass a numpy Generator or a seed")
    return np.random.default_rng(rng)


def _copy_rng(rng):
    if isinstance(rng, np.random.Generator):
        bg = type(rng.bit_generator)()
        bg.state = rng.bit_generator.state
        return np.random.Generator(bg)
    torch = sys.modules["torch"]
    gen = torch.Generator(device=rng.device)
    gen.set_state(rng.get_state())
    return gen


# ----------------------------------------------------------------------------------------------
# backend helpers (one code path for numpy and torch)
# ----------------------------------------------------------------------------------------------
def _axis(xp, a):
    return {"axis": a} if xp is np else {"dim": a}


def _normal(state: ParticleState, shape: tuple) -> Any:
    x = state.x
    if is_torch(x):
        return sys.modules["torch"].randn(shape, generator=state.rng, dtype=x.dtype, device=x.device)
    return state.rng.standard_normal(shape, dtype=x.dtype)


def _uniform(state: ParticleState, n: int) -> Any:
    x = state.x
    if is_torch(x):
        torch = sys.modules["torch"]
        return torch.rand((n,), generator=state.rng, dtype=torch.float64, device=x.device)
    return state.rng.random(n)


def _integers(state: ParticleState, high: int, n: int) -> Any:
    x = state.x
    if is_torch(x):
        return sys.modules["torch"].randint(0, high, (n,), generator=state.rng, device=x.device)
    return state.rng.integers(0, high, n)


def _nonzero(mask: Any) -> Any:
    if is_torch(mask):
        return mask.nonzero(as_tuple=True)[0]
    return np.flatnonzero(mask)


# ----------------------------------------------------------------------------------------------
# validation at the edge
# ----------------------------------------------------------------------------------------------
def _check_pos(name: str, v: Any) -> float:
    try:
        v = float(v)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real number, got {v!r}") from None
    if not math.isfinite(v) or v <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {v!r}")
    return v


def _check_nonneg(name: str, v: Any) -> float:
    try:
        v = float(v)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real number, got {v!r}") from None
    if not math.isfinite(v) or v < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
    return v


def _check_policy(nonfinite: str) -> None:
    if nonfinite not in NONFINITE_POLICIES:
        raise ValueError(f"nonfinite must be one of {NONFINITE_POLICIES}, got {nonfinite!r}")


def _check_state(state: Any, potential: Potential | None, space: SemiDiscreteSpace | None = None) -> None:
    if not isinstance(state, ParticleState):
        raise TypeError(f"expected a ParticleState, got {type(state).__name__}")
    x, g = state.x, state.g
    if x.ndim != 2 or g.ndim != 1 or g.shape[0] != x.shape[0]:
        raise ValueError(f"state arrays have inconsistent shapes x {tuple(x.shape)}, g {tuple(g.shape)}")
    K = None
    if space is not None:
        if not isinstance(space, SemiDiscreteSpace):
            raise TypeError(f"space must be a SemiDiscreteSpace, got {type(space).__name__}")
        K = space.n_nodes
        if space.dim != x.shape[1]:
            raise ValueError(f"particles live in R^{x.shape[1]} but the space has d = {space.dim}")
    if potential is not None:
        pd, pk = getattr(potential, "dim", None), getattr(potential, "n_nodes", None)
        if pd is not None and pd != x.shape[1]:
            raise ValueError(f"particles live in R^{x.shape[1]} but the potential has d = {pd}")
        if K is not None and pk is not None and pk != K:
            raise ValueError(f"the potential has {pk} nodes but the graph has {K}")
        K = K if K is not None else pk
    if K is not None and g.shape[0]:
        gmin, gmax = int(g.min()), int(g.max())
        if gmin < 0 or gmax >= K:
            raise ValueError(f"node label {gmin if gmin < 0 else gmax} out of range [0, {K})")


def _check_values(v: Any, n: int, what: str) -> None:
    if tuple(v.shape) != (n,):
        raise ValueError(f"the potential returned {what} of shape {tuple(v.shape)}, expected ({n},)")


# ----------------------------------------------------------------------------------------------
# non-finite policy
# ----------------------------------------------------------------------------------------------
def _handle_nonfinite(state: ParticleState, bad_global: Any, policy: str, what: str,
                      new_x: Any = None) -> None:
    """Apply the policy to particles ``bad_global`` (indices). For ``reset`` the clones are taken
    from ``new_x`` when given (positions after a move) else from ``state.x``."""
    idx = to_numpy(bad_global).astype(np.int64)
    n_bad = idx.size
    if policy == "raise":
        raise NonFiniteError(
            f"{n_bad} particle(s) met a non-finite {what} (first indices {idx[:8].tolist()}); "
            "pass nonfinite='freeze' to keep them in place or 'reset' to replace them by copies of "
            "healthy particles", idx)
    state.info._add_nonfinite(idx, policy)
    if policy == "reset":
        N = state.n_particles
        healthy_mask = np.ones(N, dtype=bool)
        healthy_mask[idx] = False
        healthy = np.flatnonzero(healthy_mask)
        if healthy.size == 0:
            raise NonFiniteError(f"all {N} particles met a non-finite {what}; nothing to reset from", idx)
        pick = to_numpy(_integers(state, healthy.size, n_bad))
        donors = healthy[pick]
        if is_torch(state.x):
            torch = sys.modules["torch"]
            idx_t = torch.as_tensor(idx, device=state.x.device)
            don_t = torch.as_tensor(donors, device=state.x.device)
        else:
            idx_t, don_t = idx, donors
        src = state.x if new_x is None else new_x
        if new_x is not None:
            new_x[idx_t] = src[don_t]
        else:
            state.x[idx_t] = state.x[don_t]
        state.g[idx_t] = state.g[don_t]
        if state.p is not None:
            state.p[idx_t] = state.p[don_t]


class _Workspace(threading.local):
    """Reusable scratch buffers for the numpy hot paths.

    A fresh 8 MB temporary costs page faults that take longer than the arithmetic on it (about
    3x at N = 10^6), so the steps keep their temporaries here, one buffer per name and dtype,
    grown on demand. Results that leave a step are never workspace views.
    """

    def __init__(self):
        self.bufs: dict = {}

    def get(self, name: str, shape: tuple | int, dtype: Any) -> np.ndarray:
        dtype = np.dtype(dtype)
        shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(int(s) for s in shape)
        size = int(np.prod(shape, dtype=np.int64))
        key = (name, dtype.str)
        buf = self.bufs.get(key)
        if buf is None or buf.size < size:
            buf = np.empty(size, dtype=dtype)
            self.bufs[key] = buf
        return buf[:size].reshape(shape)


_WS = _Workspace()


def clear_workspace() -> None:
    """Free the scratch buffers the numpy steps keep between calls (about 10 arrays of size N)."""
    _WS.bufs.clear()


def _all_finite(a: Any) -> bool:
    """True when every entry is finite. numpy: one summation (a finite sum proves it) before the
    full check."""
    if isinstance(a, np.ndarray):
        if a.size == 0:
            return True
        with np.errstate(over="ignore", invalid="ignore"):
            s = a.sum()
        if math.isfinite(float(s)):
            return True
        return bool(np.isfinite(a).all())
    return bool(namespace(a).isfinite(a).all())


def _row_nonfinite(a: Any) -> Any:
    """Mask of rows (N,) of a (N, d) or (N,) array holding NaN/inf; None when all are finite."""
    if _all_finite(a):
        return None
    xp = namespace(a)
    fin = xp.isfinite(a)
    if a.ndim == 2:
        return ~fin.all(**_axis(xp, 1))
    return ~fin


# ----------------------------------------------------------------------------------------------
# fast numpy kernels for the shipped quadratic potential
# ----------------------------------------------------------------------------------------------
_KERNELS: "weakref.WeakKeyDictionary[QuadraticPotential, tuple]" = weakref.WeakKeyDictionary()


class _QuadraticKernel:
    """``f(x, h) = a_h |x - m_h|^2 / 2 + c_h`` and its gradient with 1-D ``np.take`` gathers and
    in-place arithmetic on coordinate columns (the generic ``QuadraticPotential.__call__`` gathers
    whole rows and reduces along a short axis, about five times slower at N = 10^6). Used only for
    numpy arrays and the exact class ``QuadraticPotential`` (subclasses take the generic path);
    computes in the dtype of the positions."""

    def __init__(self, pot: QuadraticPotential, dtype: Any):
        self.half_a = (pot.a / 2).astype(dtype)
        self.a = pot.a.astype(dtype)
        self.c = pot.c.astype(dtype)
        self.m = np.ascontiguousarray(pot.m, dtype=dtype)
        self.m_cols = [np.ascontiguousarray(pot.m[:, k], dtype=dtype) for k in range(pot.dim)]
        self.dtype = np.dtype(dtype)

    @staticmethod
    def get(potential: Any, x: Any) -> "_QuadraticKernel | None":
        if type(potential) is not QuadraticPotential or not isinstance(x, np.ndarray):
            return None
        key = (x.dtype.str, potential.a.tobytes(), potential.c.tobytes(), potential.m.tobytes())
        cached = _KERNELS.get(potential)
        if cached is not None and cached[0] == key:  # parameters unchanged since it was built
            return cached[1]
        kern = _QuadraticKernel(potential, x.dtype)
        _KERNELS[potential] = (key, kern)
        return kern

    def values(self, cols: list, h: np.ndarray, out: np.ndarray) -> np.ndarray:
        if not cols:
            return np.take(self.c, h, out=out)
        tmp = _WS.get("ktmp", h.shape[0], self.dtype)
        for k, col in enumerate(cols):
            if k == 0:
                np.take(self.m_cols[0], h, out=out)
                np.subtract(col, out, out=out)
                np.multiply(out, out, out=out)
            else:
                np.take(self.m_cols[k], h, out=tmp)
                np.subtract(col, tmp, out=tmp)
                np.multiply(tmp, tmp, out=tmp)
                out += tmp
        out *= np.take(self.half_a, h, out=tmp)
        out += np.take(self.c, h, out=tmp)
        return out

    def grad(self, x: np.ndarray, g: np.ndarray, out: np.ndarray) -> np.ndarray:
        """out = a_g (x - m_g), shape (N, d)."""
        np.take(self.m, g, axis=0, out=out)
        np.subtract(x, out, out=out)
        out *= np.take(self.a, g, out=_WS.get("ktmp", g.shape[0], self.dtype))[:, None]
        return out


def _columns(x: np.ndarray) -> list:
    """Contiguous coordinate columns of x (one transposed copy into the workspace)."""
    xt = _WS.get("xt", (x.shape[1], x.shape[0]), x.dtype)
    np.copyto(xt, x.T)
    return [xt[k] for k in range(xt.shape[0])]


def _grad(potential: Potential, x: Any, g: Any, name: str = "grad") -> Any:
    """grad_x f(x, g); a workspace buffer on the fast path, else the potential's own array."""
    kern = _QuadraticKernel.get(potential, x)
    if kern is not None:
        return kern.grad(x, g, _WS.get(name, x.shape, x.dtype))
    grad = potential.grad(x, g)
    if tuple(grad.shape) != tuple(x.shape):
        raise ValueError(f"potential.grad returned shape {tuple(grad.shape)}, expected {tuple(x.shape)}")
    return grad


# ----------------------------------------------------------------------------------------------
# moves in x
# ----------------------------------------------------------------------------------------------
def _langevin(state: ParticleState, potential: Potential, T: float, dt: float, nonfinite: str) -> None:
    x, g = state.x, state.g
    if x.shape[1] == 0:
        return
    grad = _grad(potential, x, g)
    noise_scale = math.sqrt(2.0 * T * dt)
    if isinstance(x, np.ndarray):
        step = _WS.get("step", x.shape, x.dtype)
        owned = _QuadraticKernel.get(potential, x) is not None  # grad is our scratch buffer
        if T > 0:
            state.rng.standard_normal(dtype=x.dtype, out=step)
            step *= noise_scale
            if owned:
                grad *= dt
                step -= grad
            else:
                step -= dt * grad
        else:
            np.multiply(grad, -dt, out=step)
        cand = _WS.get("cand", x.shape, x.dtype)
        np.add(x, step, out=cand)
    else:
        cand = x - dt * grad.to(x.dtype)
        if T > 0:
            cand += noise_scale * _normal(state, tuple(x.shape))
    bad = _row_nonfinite(cand)
    if bad is not None:
        idx = _nonzero(bad)
        if nonfinite == "freeze":
            cand[idx] = x[idx]
        _handle_nonfinite(state, idx, nonfinite, "gradient or position in the Langevin step", new_x=cand)
    if isinstance(x, np.ndarray):
        np.copyto(x, cand)
    else:
        state.x = cand


def langevin_step(state: ParticleState, potential: Potential, T: float, dt: float, *,
                  nonfinite: str = "raise") -> ParticleState:
    """Euler-Maruyama step ``X <- X - dt grad_x f(X, G) + sqrt(2 T dt) xi``, xi ~ N(0, I_d).

    Weak error O(dt) (the stationary law is pi_T up to O(dt)). T = 0 is plain gradient descent.
    Non-finite gradients or new positions follow ``nonfinite`` (module docstring).
    """
    _check_state(state, potential)
    T, dt = _check_nonneg("T", T), _check_pos("dt", dt)
    _check_policy(nonfinite)
    state.info = StepInfo()
    _langevin(state, potential, T, dt, nonfinite)
    state.t += dt
    return state


def _ou_coefficients(potential: QuadraticPotential, T: float, dt: float):
    a = potential.a
    decay = np.exp(-a * dt)
    small = np.abs(a * dt) < 1e-8
    safe_a = np.where(small, 1.0, a)
    # T/a (1 - e^{-2 a dt}); its a -> 0 limit is Brownian motion 2 T dt (1 - a dt)
    var = np.where(small, 2 * T * dt * (1 - a * dt), -T * np.expm1(-2 * safe_a * dt) / safe_a)
    return decay, np.sqrt(np.maximum(var, 0.0))


def _ou(state: ParticleState, potential: QuadraticPotential, T: float, dt: float) -> None:
    x, g = state.x, state.g
    if x.shape[1] == 0:
        return
    decay, std = _ou_coefficients(potential, T, dt)
    if is_torch(x):
        torch = sys.modules["torch"]
        kw = {"dtype": x.dtype, "device": x.device}
        decay_t, std_t, m_t = (torch.as_tensor(v, **kw) for v in (decay, std, potential.m))
        mg = m_t[g]
        state.x = mg + (x - mg) * decay_t[g][:, None] + std_t[g][:, None] * _normal(state, tuple(x.shape))
        return
    n = x.shape[0]
    mg = np.take(np.ascontiguousarray(potential.m, dtype=x.dtype), g, axis=0, out=_WS.get("mg", x.shape, x.dtype))
    noise = state.rng.standard_normal(dtype=x.dtype, out=_WS.get("step", x.shape, x.dtype))
    noise *= np.take(std.astype(x.dtype), g, out=_WS.get("sd", n, x.dtype))[:, None]
    x -= mg
    x *= np.take(decay.astype(x.dtype), g, out=_WS.get("dec", n, x.dtype))[:, None]
    x += mg
    x += noise


def ou_step(state: ParticleState, potential: QuadraticPotential, T: float, dt: float) -> ParticleState:
    """Exact Ornstein-Uhlenbeck transition for ``f = a_g |x - m_g|^2 / 2 + c_g`` (spec 7.2, 8.4).

    ``X <- m_g + (X - m_g) e^{-a_g dt} + sqrt(T / a_g (1 - e^{-2 a_g dt})) xi``: the law of the
    overdamped Langevin diffusion after time dt, with no time-step bias (a_g = 0 gives Brownian
    motion). The potential's parameters are finite (checked when it is built) and positions are
    finite, so no non-finite values can arise.
    """
    if not isinstance(potential, QuadraticPotential):
        raise TypeError(f"the exact OU step needs a QuadraticPotential, got {type(potential).__name__}; "
                        "use langevin_step for other potentials")
    _check_state(state, potential)
    T, dt = _check_nonneg("T", T), _check_pos("dt", dt)
    state.info = StepInfo()
    _ou(state, potential, T, dt)
    state.t += dt
    return state


def _underdamped(state: ParticleState, potential: Potential, T: float, dt: float, gamma: float,
                 mass: float, nonfinite: str) -> None:
    x, g, p = state.x, state.g, state.p
    if x.shape[1] == 0:
        return
    h = 0.5 * dt
    p1 = p - h * _grad(potential, x, g)                                  # B
    x1 = x + (h / mass) * p1                                             # A
    c1 = math.exp(-gamma * dt)
    p1 = c1 * p1 + math.sqrt(max(0.0, (1 - c1 * c1) * mass * T)) * _normal(state, tuple(x.shape))  # O
    x1 = x1 + (h / mass) * p1                                            # A
    p1 = p1 - h * _grad(potential, x1, g)                                # B
    bad_x, bad_p = _row_nonfinite(x1), _row_nonfinite(p1)
    if bad_x is not None or bad_p is not None:
        bad = bad_x if bad_p is None else (bad_p if bad_x is None else bad_x | bad_p)
        idx = _nonzero(bad)
        x1[idx], p1[idx] = x[idx], p[idx]  # freeze; under "reset" overwritten by clones below
        state.p = p1
        _handle_nonfinite(state, idx, nonfinite, "gradient, position or momentum in the underdamped step",
                          new_x=x1)
    state.x, state.p = x1, p1


def underdamped_step(state: ParticleState, potential: Potential, T: float, dt: float, *, gamma: float = 1.0,
                     mass: float = 1.0, nonfinite: str = "raise") -> ParticleState:
    """One BAOAB step of underdamped Langevin dynamics (Leimkuhler-Matthews 2013).

    ``dX = P/M dt``, ``dP = -grad_x f(X, G) dt - gamma P dt + sqrt(2 gamma M T) dW``; invariant law
    ``exp(-(f(x, g) + |p|^2 / (2M)) / T)`` up to O(dt^2) in x. Needs ``state.p`` (see
    :meth:`ParticleState.with_momenta`). Jumps on G keep (x, p), so the joint Gibbs law stays
    invariant when combined with a reversible jump law.
    """
    _check_state(state, potential)
    T, dt = _check_nonneg("T", T), _check_pos("dt", dt)
    gamma, mass = _check_nonneg("gamma", gamma), _check_pos("mass", mass)
    _check_policy(nonfinite)
    if state.p is None:
        raise ValueError("underdamped_step needs momenta: call state.with_momenta(T) first")
    state.info = StepInfo()
    _underdamped(state, potential, T, dt, gamma, mass, nonfinite)
    state.t += dt
    return state


# ----------------------------------------------------------------------------------------------
# jumps on G
# ----------------------------------------------------------------------------------------------
@dataclass
class NeighbourTable:
    """Padded neighbour table of G: ``nbr[j, g]`` is the j-th neighbour of g, ``wts[j, g]`` its weight.

    Shape (D, K) with D the maximum degree (row-major over j so that ``nbr[j]`` gathers are 1-D).
    Padding entries point to g itself with weight 0 (rate 0). Built once per graph from the CSR
    structure and cached per backend/device.
    """

    nbr: Any
    wts: Any
    degree: np.ndarray
    uniform_weight: float | None  # the common weight when every node has D edges of one weight

    @property
    def max_degree(self) -> int:
        return int(self.nbr.shape[0])


_TABLES: "weakref.WeakKeyDictionary[SemiDiscreteSpace, dict]" = weakref.WeakKeyDictionary()


def neighbour_table(space: SemiDiscreteSpace, like: Any = None) -> NeighbourTable:
    """The (cached) padded neighbour table of ``space`` on the backend/device of ``like``."""
    key = ("numpy", None) if like is None or not is_torch(like) else ("torch", str(like.device))
    cache = _TABLES.setdefault(space, {})
    if key in cache:
        return cache[key]
    if key[0] == "numpy":
        W = space.weights
        K = W.shape[0]
        deg = np.diff(W.indptr).astype(np.int64)
        D = int(deg.max(initial=0))
        nbr = np.tile(np.arange(K, dtype=np.int64), (D, 1))
        wts = np.zeros((D, K))
        rows = np.repeat(np.arange(K), deg)
        slot = np.arange(W.nnz) - W.indptr[rows]
        nbr[slot, rows] = W.indices
        wts[slot, rows] = W.data
        uw = float(W.data[0]) if W.nnz and np.all(W.data == W.data[0]) and np.all(deg == D) else None
        table = NeighbourTable(nbr, wts, deg, uw)
    else:
        base = neighbour_table(space)
        torch = sys.modules["torch"]
        table = NeighbourTable(torch.as_tensor(base.nbr, device=like.device),
                               torch.as_tensor(base.wts, device=like.device), base.degree, base.uniform_weight)
    cache[key] = table
    return table


def _rates_into(out: Any, law: RateLaw, f0: Any, fh: Any, w: Any, T: float) -> None:
    """out[:] = k(g -> h; x), in place for the shipped laws on numpy, through ``law.rate`` otherwise."""
    if isinstance(out, np.ndarray) and law._rate in (glauber._rate, metropolis._rate, upwind._rate):
        np.subtract(f0, fh, out=out)                       # f_g - f_h
        scalar_w = not isinstance(w, np.ndarray)
        if law._rate is glauber._rate:
            out *= 1.0 / (2.0 * T)
            np.exp(out, out=out)
            out *= T * (w if scalar_w else 1.0) / law.kappa
        elif law._rate is metropolis._rate:
            out *= 1.0 / T
            np.minimum(out, 0.0, out=out)
            np.exp(out, out=out)
            out *= T * (w if scalar_w else 1.0) / law.kappa
        else:
            np.maximum(out, 0.0, out=out)
            out *= (w if scalar_w else 1.0) / law.kappa
        if not scalar_w:
            out *= w
        return
    out[...] = law.rate(f0, fh, w, T)


def jump_rates(x: Any, g: Any, space: SemiDiscreteSpace, potential: Potential, law: str | RateLaw,
               T: float, kappa: float = 1.0):
    """Rates to the padded neighbours at fixed x.

    Returns ``(nbr, rates)`` of shape (D, n): ``rates[j, i] = k(g_i -> nbr[j, i]; x_i)``, padding
    entries 0. Evaluates f only at each particle's node and its neighbours.
    """
    law = get_rate_law(law, kappa)
    table = neighbour_table(space, x)
    C, _ = _cumulative_rates(x, g, table, potential, law, T)
    xp = namespace(C)
    rates = C.clone() if xp is not np else C.copy()
    if table.max_degree > 1:
        rates[1:] = C[1:] - C[:-1]
    nbr = xp.stack([table.nbr[j][g] for j in range(table.max_degree)]) if table.max_degree else table.nbr[:, :0]
    return nbr, rates


def _cumulative_rates(x: Any, g: Any, table: NeighbourTable, potential: Potential, law: RateLaw, T: float):
    """Cumulative rates C (D, n) over the padded neighbours (C[-1] = lambda) and f(x, g) (n,).

    numpy: both are workspace buffers, valid until the next call."""
    n = g.shape[0]
    D = table.max_degree
    if isinstance(x, np.ndarray):
        kern = _QuadraticKernel.get(potential, x)
        if kern is not None:
            cols = _columns(x)
            f0 = kern.values(cols, g, _WS.get("f0", n, kern.dtype))
            fval = lambda nodes: kern.values(cols, nodes, _WS.get("fh", n, kern.dtype))  # noqa: E731
        else:
            f0 = potential(x, g)
            fval = lambda nodes: potential(x, nodes)  # noqa: E731
        _check_values(f0, n, "values")
        C = _WS.get("C", (D, n), np.result_type(f0.dtype, np.float32))
        hbuf = _WS.get("h", n, np.int64)
        for j in range(D):
            h = np.take(table.nbr[j], g, out=hbuf)
            fh = fval(h)
            w = table.uniform_weight if table.uniform_weight is not None else np.take(
                table.wts[j], g, out=_WS.get("w", n, np.float64))
            _rates_into(C[j], law, f0, fh, w, T)
            if j:
                C[j] += C[j - 1]
        return C, f0
    f0 = potential(x, g)
    _check_values(f0, n, "values")
    torch = sys.modules["torch"]
    C = torch.empty((D, n), dtype=f0.dtype, device=f0.device)
    for j in range(D):
        h = table.nbr[j][g]
        w = table.uniform_weight if table.uniform_weight is not None else table.wts[j][g].to(f0.dtype)
        C[j] = law.rate(f0, potential(x, h), w, T)
        if j:
            C[j] += C[j - 1]
    return C, f0


def _select_destination(C: Any, cols: Any, target: Any, table: NeighbourTable, gsel: Any) -> Any:
    """New labels for particles ``cols`` (columns of C): the first neighbour slot j with
    ``C[j] > target``."""
    xp = namespace(C)
    Cs = C[:, cols]
    D = Cs.shape[0]
    k = (Cs <= target[None, :]).sum(**_axis(xp, 0))
    over = k >= D
    if bool(over.any()):  # target rounded up to lambda: take the last slot with a positive rate
        oi = _nonzero(over)
        inc = Cs[:, oi]
        if D > 1:
            inc = xp.concatenate([inc[:1], inc[1:] - inc[:-1]]) if xp is np else xp.cat([inc[:1], inc[1:] - inc[:-1]])
        pos = inc > 0
        rev = pos[::-1] if xp is np else pos.flip(0)
        last = (D - 1) - (rev.argmax(0) if xp is np else rev.int().argmax(0))
        k[oi] = last
    return table.nbr[k, gsel]


def _jump_round(state: ParticleState, idx: Any, tau: Any, table: NeighbourTable, potential: Potential,
                law: RateLaw, T: float, method: str, nonfinite: str, pre: tuple | None = None,
                undo: list | None = None):
    """One round of jumps for particles ``idx`` (None = all) with remaining times ``tau`` (scalar or
    per particle). Returns (global indices of the jumpers, their remaining time or None); appends
    (jumpers, old labels) to ``undo`` when given."""
    if idx is None:
        x, g = state.x, state.g
    else:
        x, g = state.x[idx], state.g[idx]
    n = g.shape[0]
    C, f0 = pre if pre is not None else _cumulative_rates(x, g, table, potential, law, T)
    D = table.max_degree
    lam = C[D - 1]
    if not (_all_finite(f0) and _all_finite(lam)):
        xp = namespace(f0)
        badm = ~(xp.isfinite(f0) & xp.isfinite(lam))
        loc = _nonzero(badm)
        glob = loc if idx is None else idx[loc]
        C[:, loc] = 0.0  # they do not jump this round (frozen, or just replaced by a clone)
        _handle_nonfinite(state, glob, nonfinite, "potential value or jump rate")
    numpy = isinstance(C, np.ndarray)
    if n:
        mr = float(lam.max())
        state.info.max_rate = mr if math.isnan(state.info.max_rate) else max(state.info.max_rate, mr)
    scalar_tau = not hasattr(tau, "shape")
    if numpy:
        u = state.rng.random(out=_WS.get("u", n, np.float64))
        prob = _WS.get("prob", n, np.float64)
        np.multiply(lam, tau, out=prob)
        if method != "explicit":
            np.negative(prob, out=prob)
            np.expm1(prob, out=prob)
            np.negative(prob, out=prob)                         # 1 - exp(-tau lambda)
        jump = np.less(u, prob, out=_WS.get("jump", n, np.bool_))
        J = np.flatnonzero(jump)
    else:
        torch = sys.modules["torch"]
        u = _uniform(state, n)
        prob = lam.to(torch.float64) * tau
        if method != "explicit":
            prob = -torch.expm1(-prob)
        J = _nonzero(u < prob)
    nj = int(J.shape[0])
    gidx = J if idx is None else idx[J]
    if nj == 0:
        return gidx, None
    lamJ = lam[J] if numpy else lam[J].to(sys.modules["torch"].float64)
    xp = namespace(lamJ)
    if method == "exact":
        # jump time from u (u < P  <=>  s < tau), destination from a fresh uniform
        s = -xp.log1p(-u[J]) / lamJ
        tau_left = (tau - s) if scalar_tau else (tau[J] - s)
        tau_left = xp.clip(tau_left, 0.0, None) if xp is np else tau_left.clamp(min=0.0)
        target = _uniform(state, nj) * lamJ
    else:
        tau_left = None
        target = (u[J] / prob[J]) * lamJ
    old = g[J]
    new = _select_destination(C, J, target if numpy else target.to(C.dtype), table, old)
    state.g[gidx] = new
    state.info.n_jumps += nj
    if undo is not None:
        undo.append((gidx, old))
    return gidx, tau_left


def _jumps(state: ParticleState, table: NeighbourTable, potential: Potential, law: RateLaw, T: float,
           dt: float, method: str, nonfinite: str, on_large_step: str, max_rounds: int) -> None:
    if state.n_particles == 0 or table.max_degree == 0:
        return
    if method == "explicit":
        _explicit_jumps(state, table, potential, law, T, dt, nonfinite, on_large_step, depth=0)
        return
    # under "raise" a non-finite value met after a jump (a later round) undoes this step's jumps
    undo = [] if nonfinite == "raise" and method == "exact" else None
    idx, tau = _jump_round(state, None, dt, table, potential, law, T, method, nonfinite, undo=undo)
    rounds = 1
    if method == "exact":
        try:
            while tau is not None and rounds < max_rounds:
                idx, tau = _jump_round(state, idx, tau, table, potential, law, T, method, nonfinite, undo=undo)
                rounds += 1
        except NonFiniteError:
            for gidx, old in reversed(undo):
                state.g[gidx] = old
            raise
        if tau is not None:
            warnings.warn(f"jump_step: {int(idx.shape[0])} particles still jumping after max_rounds = "
                          f"{max_rounds} rounds; their remaining time was dropped", RuntimeWarning, stacklevel=3)
    state.info.jump_rounds = max(state.info.jump_rounds, rounds)


def _explicit_jumps(state, table, potential, law, T, dt, nonfinite, on_large_step, depth):
    """First-order jumps with probability dt * lambda; refuses or sub-steps when dt max lambda >= 1."""
    C, f0 = _cumulative_rates(state.x, state.g, table, potential, law, T)
    lam = C[table.max_degree - 1]
    fin = namespace(lam).isfinite(lam)
    max_rate = float(lam[fin].max()) if bool(fin.any()) else 0.0
    if dt * max_rate >= 1.0:
        if on_large_step == "raise":
            raise ValueError(f"explicit jump step with dt * max_rate = {dt * max_rate:.3g} >= 1 "
                             f"(dt = {dt:g}, max rate = {max_rate:.3g}): dt*lambda is not a probability; "
                             "lower dt, use method='exact', or on_large_step='substep'")
        n_sub = int(math.ceil(dt * max_rate / 0.5))
        if depth == 0:
            warnings.warn(f"explicit jump step: dt * max_rate = {dt * max_rate:.3g} >= 1; "
                          f"splitting dt = {dt:g} into {n_sub} sub-steps", RuntimeWarning, stacklevel=4)
        for _ in range(n_sub):
            _explicit_jumps(state, table, potential, law, T, dt / n_sub, nonfinite, on_large_step, depth + 1)
        state.info.substeps = max(state.info.substeps, n_sub)
        return
    _jump_round(state, None, dt, table, potential, law, T, "explicit", nonfinite, pre=(C, f0))
    state.info.jump_rounds = max(state.info.jump_rounds, 1)


def _check_law(law: str | RateLaw, kappa: float, T: float) -> RateLaw:
    law = get_rate_law(law, kappa)
    if not law.linear:
        raise TypeError(f"rate law {law.name!r} is nonlinear (no jump rate at fixed x); particles need a "
                        "linear law: glauber, metropolis or upwind")
    law.check_temperature(T)
    return law


def _check_method(method: str) -> None:
    if method not in JUMP_METHODS:
        raise ValueError(f"jump method must be one of {JUMP_METHODS}, got {method!r}")


def jump_step(state: ParticleState, space: SemiDiscreteSpace, potential: Potential, law: str | RateLaw = "glauber",
              T: float = 1.0, dt: float = 0.01, *, method: str = "exact", kappa: float = 1.0,
              nonfinite: str = "raise", on_large_step: str = "substep", max_rounds: int = 10_000) -> ParticleState:
    """Jumps on G at fixed x for a time dt with rates ``k(g -> g'; x)`` of the rate law ``law``.

    Total rate ``lambda(x, g) = sum_{g'} k(g -> g'; x)``; a particle jumps with probability
    ``1 - exp(-dt lambda)`` to g' with probability ``k(g -> g'; x) / lambda`` (one uniform per
    particle decides both: jump iff ``u < P``, destination = first neighbour whose cumulative rate
    exceeds ``(u / P) lambda``). Methods:

    ``"exact"`` (default)
        the continuous-time chain at fixed x over [0, dt]: after a jump at time s the particle
        continues from its new node for the remaining ``dt - s`` (rounds over the jumpers only).
        Exact in law for any dt, so Strang splitting keeps its O(dt^2) bias.
    ``"single"``
        at most one jump per step with probability ``1 - exp(-dt lambda)`` (local error O(dt^2)).
    ``"explicit"``
        probability ``dt lambda`` (first order, the NAS code's rule). When ``dt max lambda >= 1``
        it raises (``on_large_step="raise"``) or splits dt into sub-steps with a RuntimeWarning
        (``"substep"``, default).

    Cost O(N * max_degree): f is evaluated at each particle's node and its neighbours only.
    ``kappa`` divides every rate (graph-metric scale, spec 3.3). Non-finite potential values or
    rates follow ``nonfinite``. The state is updated in place and returned; ``state.info`` holds
    the counts.
    """
    _check_state(state, potential, space)
    T, dt = _check_nonneg("T", T), _check_pos("dt", dt)
    _check_policy(nonfinite)
    _check_method(method)
    if on_large_step not in ("substep", "raise"):
        raise ValueError(f"on_large_step must be 'substep' or 'raise', got {on_large_step!r}")
    law = _check_law(law, kappa, T)
    state.info = StepInfo()
    table = neighbour_table(space, state.x)
    _jumps(state, table, potential, law, T, dt, method, nonfinite, on_large_step, max_rounds)
    state.t += dt
    return state


# ----------------------------------------------------------------------------------------------
# splitting
# ----------------------------------------------------------------------------------------------
def _diffuse(state, potential, T, dt, diffusion, nonfinite, gamma, mass):
    if diffusion == "langevin":
        _langevin(state, potential, T, dt, nonfinite)
    elif diffusion == "ou":
        _ou(state, potential, T, dt)
    elif diffusion == "underdamped":
        _underdamped(state, potential, T, dt, gamma, mass, nonfinite)
    # "none": pure graph flow


def _check_diffusion(diffusion: str, potential: Potential, state: ParticleState) -> None:
    if diffusion not in DIFFUSIONS:
        raise ValueError(f"diffusion must be one of {DIFFUSIONS}, got {diffusion!r}")
    if diffusion == "ou" and not isinstance(potential, QuadraticPotential):
        raise TypeError(f"diffusion='ou' needs a QuadraticPotential, got {type(potential).__name__}")
    if diffusion == "underdamped" and state.p is None:
        raise ValueError("diffusion='underdamped' needs momenta: call state.with_momenta(T) first")


def strang_step(state: ParticleState, space: SemiDiscreteSpace, potential: Potential, law: str | RateLaw = "glauber",
                T: float = 1.0, dt: float = 0.01, *, diffusion: str = "langevin", jump_method: str = "exact",
                kappa: float = 1.0, nonfinite: str = "raise", on_large_step: str = "substep",
                gamma: float = 1.0, mass: float = 1.0, max_rounds: int = 10_000) -> ParticleState:
    """Strang splitting: diffusion dt/2, jumps dt, diffusion dt/2 (spec 7.2).

    ``diffusion``: ``"langevin"`` (Euler-Maruyama, O(dt) bias), ``"ou"`` (exact for quadratic f;
    with ``jump_method="exact"`` the total bias is the O(dt^2) splitting error), ``"underdamped"``
    (BAOAB on (x, p)) or ``"none"``.
    """
    _check_state(state, potential, space)
    T, dt = _check_nonneg("T", T), _check_pos("dt", dt)
    _check_policy(nonfinite)
    _check_method(jump_method)
    _check_diffusion(diffusion, potential, state)
    law = _check_law(law, kappa, T)
    state.info = StepInfo()
    table = neighbour_table(space, state.x)
    _diffuse(state, potential, T, 0.5 * dt, diffusion, nonfinite, gamma, mass)
    _jumps(state, table, potential, law, T, dt, jump_method, nonfinite, on_large_step, max_rounds)
    _diffuse(state, potential, T, 0.5 * dt, diffusion, nonfinite, gamma, mass)
    state.t += dt
    state.n_steps += 1
    return state


def lie_step(state: ParticleState, space: SemiDiscreteSpace, potential: Potential, law: str | RateLaw = "glauber",
             T: float = 1.0, dt: float = 0.01, *, diffusion: str = "langevin", jump_method: str = "exact",
             kappa: float = 1.0, nonfinite: str = "raise", on_large_step: str = "substep",
             gamma: float = 1.0, mass: float = 1.0, max_rounds: int = 10_000) -> ParticleState:
    """Lie splitting: diffusion dt, then jumps dt (one full step at the cost of one move; O(dt))."""
    _check_state(state, potential, space)
    T, dt = _check_nonneg("T", T), _check_pos("dt", dt)
    _check_policy(nonfinite)
    _check_method(jump_method)
    _check_diffusion(diffusion, potential, state)
    law = _check_law(law, kappa, T)
    state.info = StepInfo()
    table = neighbour_table(space, state.x)
    _diffuse(state, potential, T, dt, diffusion, nonfinite, gamma, mass)
    _jumps(state, table, potential, law, T, dt, jump_method, nonfinite, on_large_step, max_rounds)
    state.t += dt
    state.n_steps += 1
    return state


# ----------------------------------------------------------------------------------------------
# Gibbs node masses and birth-death (Fisher-Rao)
# ----------------------------------------------------------------------------------------------
def node_log_partition(potential: Potential, T: float) -> np.ndarray:
    """log Z_g = log int exp(-f(x, g)/T) dx per node, in closed form where one exists.

    QuadraticPotential (a_g > 0): ``-c_g / T + (d/2) log(2 pi T / a_g)``; d = 0 potentials:
    ``-f(g) / T``. Hence the Gibbs node masses ``p_g ∝ exp(-c_g/T) (2 pi T / a_g)^{d/2}`` (spec 8.6).
    """
    T = _check_pos("T", T)
    if isinstance(potential, QuadraticPotential):
        d = potential.dim
        if d and np.any(potential.a <= 0):
            raise ValueError("node Gibbs masses need a_g > 0 for every node (confining potential)")
        with np.errstate(divide="ignore"):
            return -potential.c / T + (0.5 * d * np.log(2 * np.pi * T / potential.a) if d else 0.0)
    if getattr(potential, "dim", None) == 0:
        K = potential.n_nodes
        return -np.asarray(potential(np.zeros((K, 0)), np.arange(K)), dtype=float) / T
    raise TypeError(f"no closed-form node partition function for {type(potential).__name__}")


def gibbs_node_masses(potential: Potential, T: float) -> np.ndarray:
    """Stationary node masses p_g = Z_g / sum Z (closed form, see :func:`node_log_partition`)."""
    lz = node_log_partition(potential, T)
    lz = lz - lz.max()
    p = np.exp(lz)
    return p / p.sum()


def _log_density_ratio(state: ParticleState, potential: Potential, T: float, density: str, n_nodes: int,
                       bandwidth: float | str | None, max_kde_points: int) -> np.ndarray:
    """log(rho_hat / pi_T) at every particle, up to one additive constant (numpy, shape (N,))."""
    x, g = to_numpy(state.x).astype(float, copy=False), to_numpy(state.g)
    N, d = x.shape
    counts = np.bincount(g, minlength=n_nodes)
    log_mass = np.full(n_nodes, -np.inf)
    np.log(counts / N, out=log_mass, where=counts > 0)
    if density == "gibbs_conditional":
        # rho_hat(x, g) = (N_g / N) pi_T(x | g): log(rho_hat/pi_T) = log(N_g/N) - log Z_g + const
        return (log_mass - node_log_partition(potential, T))[g]
    # KDE per node (d <= 2)
    fx = to_numpy(potential(state.x, state.g)).astype(float)
    L = np.empty(N)
    if d == 0:
        L[:] = log_mass[g]
    else:
        from scipy.stats import gaussian_kde

        sub_rng = np.random.default_rng(int(to_numpy(_integers(state, 2**31 - 1, 1))[0]))
        order = np.argsort(g, kind="stable")
        starts = np.r_[0, np.cumsum(counts)]
        for k in range(n_nodes):  # a loop over nodes (K), never over particles
            members = order[starts[k]:starts[k + 1]]
            if members.size == 0:
                continue
            pts = x[members]
            ref = pts if members.size <= max_kde_points else pts[sub_rng.choice(members.size, max_kde_points,
                                                                                 replace=False)]
            try:
                if ref.shape[0] < d + 2:
                    raise np.linalg.LinAlgError("too few points")
                kde = gaussian_kde(ref.T, bw_method=bandwidth)
                L[members] = log_mass[k] + kde.logpdf(pts.T)
            except (np.linalg.LinAlgError, ValueError):
                # degenerate cloud: a Gaussian of width 1 around the points' mean
                mu = pts.mean(0)
                L[members] = log_mass[k] - 0.5 * ((pts - mu) ** 2).sum(1) - 0.5 * d * np.log(2 * np.pi)
    with np.errstate(invalid="ignore"):
        return L + fx / T


def birth_death_step(state: ParticleState, space: SemiDiscreteSpace, potential: Potential, T: float, dt: float, *,
                     density: str = "kde", bandwidth: float | str | None = None, max_kde_points: int = 2000,
                     nonfinite: str = "raise") -> ParticleState:
    """Birth-death step (Lu-Lu-Nolen 2019) toward pi_T — **a different geometry** (Hellinger /
    Fisher-Rao), not the graph transport metric of the flow.

    ``beta_k = log(rho_hat / pi_T)(X_k, G_k) - mean_j log(rho_hat / pi_T)(X_j, G_j)``. If beta_k > 0,
    particle k dies with probability ``1 - exp(-dt beta_k)`` and is replaced by a copy of a
    uniformly chosen other particle; if beta_k < 0 it is duplicated with probability
    ``1 - exp(-dt |beta_k|)`` over a uniformly chosen other particle. N stays fixed; in the limit
    this is ``d/dt rho = -rho (log(rho/pi_T) - <log(rho/pi_T)>)``. All events of a step are drawn
    from the state at its start (parallel version; conflicts are O(dt^2)).

    density : ``"kde"``
        one Gaussian KDE per node (scipy, d <= 2; at most ``max_kde_points`` reference points),
        times the node mass N_g/N; bias O(bandwidth^2) plus noise.
    density : ``"gibbs_conditional"``
        ``rho_hat(x, g) = (N_g/N) pi_T(x | g)`` with the node partition functions in closed form
        (:func:`node_log_partition`): corrects node masses only (any d).
    """
    _check_state(state, potential, space)
    T, dt = _check_pos("T", T), _check_pos("dt", dt)
    _check_policy(nonfinite)
    if density not in ("kde", "gibbs_conditional"):
        raise ValueError(f"density must be 'kde' or 'gibbs_conditional', got {density!r}")
    if density == "kde" and state.dim > 2:
        raise ValueError(f"the KDE density estimate is for d <= 2 only (d = {state.dim}); "
                         "use density='gibbs_conditional' for an analytic potential")
    state.info = StepInfo()
    N = state.n_particles
    if N < 2:
        state.t += dt
        return state
    L = _log_density_ratio(state, potential, T, density, space.n_nodes, bandwidth, max_kde_points)
    bad = ~np.isfinite(L)
    if bad.any():
        idx = np.flatnonzero(bad)
        _handle_nonfinite(state, idx if not is_torch(state.x) else sys.modules["torch"].as_tensor(
            idx, device=state.x.device), nonfinite, "density ratio in the birth-death step")
        L[idx] = np.nan
    ok = np.isfinite(L)
    beta = np.where(ok, L - L[ok].mean() if ok.any() else 0.0, 0.0)
    u = to_numpy(_uniform(state, N))
    prob = -np.expm1(-dt * np.abs(beta))
    event = (u < prob) & ok
    kill = np.flatnonzero(event & (beta > 0))
    dup = np.flatnonzero(event & (beta < 0))
    n_ev = kill.size + dup.size
    if n_ev:
        other = to_numpy(_integers(state, N - 1, n_ev))
        me = np.r_[kill, dup]
        other = other + (other >= me)                           # uniform over the others
        slots = np.r_[kill, other[kill.size:]]
        sources = np.r_[other[:kill.size], dup]
        if is_torch(state.x):
            torch = sys.modules["torch"]
            slots_t = torch.as_tensor(slots, device=state.x.device)
            src_t = torch.as_tensor(sources, device=state.x.device)
        else:
            slots_t, src_t = slots, sources
        xv, gv = state.x[src_t], state.g[src_t]                 # copies of the pre-step values
        pv = None if state.p is None else state.p[src_t]
        state.x[slots_t], state.g[slots_t] = xv, gv
        if pv is not None:
            state.p[slots_t] = pv
    state.info.births, state.info.deaths = int(dup.size), int(kill.size)
    state.t += dt
    return state


# ----------------------------------------------------------------------------------------------
# solver object
# ----------------------------------------------------------------------------------------------
class _ZeroPotential(Potential):
    """f = 0 (an energy without drift)."""

    def __init__(self, n_nodes: int, dim: int):
        self.n_nodes, self.dim = int(n_nodes), int(dim)

    def __call__(self, x, g):
        return np.zeros(x.shape[0])

    def grad(self, x, g):
        return np.zeros(x.shape)


class MeanFieldPotential(Potential):
    """f(x, g) + (W * mu_N)_g(x) with the cloud mu_N = (1/N) sum_j delta_(X_j, G_j) frozen (a copy).

    Values and gradients are vectorised over (point, particle) pairs in chunks
    (:meth:`sdot.free_energy.Interaction.particle_grad`); no Python loop over particles.
    """

    def __init__(self, base: Potential, interaction: Any, x: Any, g: Any):
        self.base, self.interaction = base, interaction
        self.n_nodes, self.dim = base.n_nodes, base.dim
        self._x, self._g = np.array(to_numpy(x), dtype=float), np.array(to_numpy(g))

    def __call__(self, x, g):
        return np.asarray(to_numpy(self.base(x, g)), dtype=float) + self.interaction.particle_values(x, g, self._x, self._g)

    def grad(self, x, g):
        return np.asarray(to_numpy(self.base.grad(x, g)), dtype=float) + self.interaction.particle_grad(x, g, self._x, self._g)


class ParticleSolver:
    """A configured particle solver: ``step(state) -> state`` and ``evolve(state, t_final)``.

    Parameters
    ----------
    space, potential : the problem; ``potential`` may be a :class:`~sdot.free_energy.GeneralFreeEnergy`
        (U = entropy, its T is used; an interaction W enters through :class:`MeanFieldPotential`)
    T : float or callable t -> T(t)   temperature (schedules are evaluated at the step's start time)
    law : rate-law name or RateLaw (linear laws only); ``kappa`` scales it
    dt : step
    diffusion : ``"langevin" | "ou" | "underdamped" | "none"``
    splitting : ``"strang"`` (default) or ``"lie"``
    jump_method : ``"exact" | "single" | "explicit"``
    birth_death : None, or ``"kde"`` / ``"gibbs_conditional"`` to add a birth-death step of length dt
        after each step (a different, Fisher-Rao geometry — an accelerator, not the graph flow)
    nonfinite : ``"raise" | "freeze" | "reset"``
    """

    def __init__(self, space: SemiDiscreteSpace, potential: Potential, T: float | Callable[[float], float] = 1.0,
                 law: str | RateLaw = "glauber", dt: float = 0.01, *, diffusion: str = "langevin",
                 splitting: str = "strang", jump_method: str = "exact", kappa: float = 1.0,
                 birth_death: str | None = None, nonfinite: str = "raise", on_large_step: str = "substep",
                 gamma: float = 1.0, mass: float = 1.0):
        if splitting not in ("strang", "lie"):
            raise ValueError(f"splitting must be 'strang' or 'lie', got {splitting!r}")
        if diffusion not in DIFFUSIONS:
            raise ValueError(f"diffusion must be one of {DIFFUSIONS}, got {diffusion!r}")
        _check_method(jump_method)
        _check_policy(nonfinite)
        if birth_death not in (None, "kde", "gibbs_conditional"):
            raise ValueError(f"birth_death must be None, 'kde' or 'gibbs_conditional', got {birth_death!r}")
        self.interaction = None
        from .free_energy import Entropy, GeneralFreeEnergy

        if isinstance(potential, GeneralFreeEnergy):
            # the same energy object as the grid/JKO solvers: drift f, U = T x entropy (Langevin noise),
            # interaction W through a mean-field potential frozen at the start of each step
            if not isinstance(potential.internal, Entropy):
                raise ValueError(f"particles realise U = T rho log rho only (Langevin noise), got {potential.internal!r}")
            if callable(T) or (T != 1.0 and float(T) != potential.T):
                raise ValueError(f"T = {T!r} conflicts with the energy's entropy temperature {potential.T}")
            T = potential.T
            self.interaction = potential.interaction
            potential = potential.potential if potential.potential is not None else _ZeroPotential(
                potential.n_nodes, space.dim)
        self.space, self.potential, self.T, self.law = space, potential, T, get_rate_law(law, kappa)
        self.dt = _check_pos("dt", dt)
        self.diffusion, self.splitting, self.jump_method = diffusion, splitting, jump_method
        self.birth_death, self.nonfinite, self.on_large_step = birth_death, nonfinite, on_large_step
        self.gamma, self.mass = gamma, mass

    def temperature(self, t: float) -> float:
        return float(self.T(t)) if callable(self.T) else float(self.T)

    def step(self, state: ParticleState) -> ParticleState:
        T = self.temperature(state.t)
        fn = strang_step if self.splitting == "strang" else lie_step
        pot = self.potential
        if self.interaction is not None:
            pot = MeanFieldPotential(self.potential, self.interaction, state.x, state.g)
        fn(state, self.space, pot, self.law, T, self.dt, diffusion=self.diffusion,
           jump_method=self.jump_method, nonfinite=self.nonfinite, on_large_step=self.on_large_step,
           gamma=self.gamma, mass=self.mass)
        if self.birth_death is not None:
            info = state.info
            birth_death_step(state, self.space, self.potential, T, self.dt, density=self.birth_death,
                             nonfinite=self.nonfinite)
            state.t -= self.dt  # one step of time in all
            info.births, info.deaths = state.info.births, state.info.deaths
            if state.info.nonfinite.size:
                info._add_nonfinite(state.info.nonfinite, self.nonfinite)
            state.info = info
        return state

    def evolve(self, state: ParticleState, t_final: float,
               callback: Callable[[ParticleState], None] | None = None) -> ParticleState:
        """Step until ``state.t >= t_final`` (the last step is shortened to land on t_final)."""
        t_final = float(t_final)
        dt0 = self.dt
        try:
            while state.t < t_final - 1e-12 * max(1.0, abs(t_final)):
                self.dt = min(dt0, t_final - state.t)
                self.step(state)
                if callback is not None:
                    callback(state)
        finally:
            self.dt = dt0
        return state
