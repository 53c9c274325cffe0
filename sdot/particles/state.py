"""The particle state (X_k, G_k[, P_k]) with its random stream, and what the last step did (:class:`StepInfo`).

Steps update a state in place and return it; :meth:`ParticleState.copy` takes a snapshot and
:meth:`ParticleState.state_dict` saves everything needed to resume exactly (arrays, clock, generator state).
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..backend import is_torch, namespace, to_numpy
from ..potentials import Potential
from ..space import SemiDiscreteSpace
from ..validation import nonnegative
from . import random as draws
from .arrays import axis
from .random import copy_rng, make_rng

__all__ = ["StepInfo", "ParticleState", "check_state", "clone_particles"]

_FLOAT_DTYPES_NP = (np.float32, np.float64)


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

    def add_nonfinite(self, idx: np.ndarray, policy: str) -> None:
        """Record particles ``idx`` as handled by ``policy`` (union with those already recorded)."""
        self.nonfinite = np.union1d(self.nonfinite, idx).astype(np.int64)
        self.policy = policy


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
                bad = to_numpy(~xp.isfinite(x).all(**axis(xp, 1)))
                raise ValueError(f"positions of particles {np.flatnonzero(bad)[:5].tolist()} are not finite")
        if p is not None:
            if not torch_mode:
                p = np.array(p, order="C", copy=True)
            if tuple(p.shape) != tuple(x.shape) or p.dtype != x.dtype:
                raise ValueError(f"p must have the shape {tuple(x.shape)} and dtype {x.dtype} of x, "
                                 f"got {tuple(p.shape)} {p.dtype}")
        self.x, self.g, self.p = x, g, p
        self.rng = make_rng(rng, x)
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
        nonnegative("T", T)
        self.p = draws.normal(self, tuple(self.x.shape)) * math.sqrt(mass * T)
        return self

    def copy(self) -> "ParticleState":
        """A deep copy (arrays and random stream)."""
        new = ParticleState.__new__(ParticleState)
        clone = (lambda a: a.clone()) if is_torch(self.x) else (lambda a: a.copy())
        new.x, new.g = clone(self.x), clone(self.g)
        new.p = None if self.p is None else clone(self.p)
        new.rng = copy_rng(self.rng)
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


def check_state(state: Any, potential: Potential | None, space: SemiDiscreteSpace | None = None) -> None:
    """TypeError/ValueError unless ``state`` is a ParticleState whose shapes and node labels fit
    ``potential`` and ``space`` (either may be None)."""
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


def clone_particles(state: ParticleState, slots: np.ndarray, sources: np.ndarray, x: Any = None) -> None:
    """Particles ``slots`` become copies (x, g, p) of particles ``sources`` (numpy index arrays; each array is
    read before it is written). ``x``: the positions to update instead of ``state.x`` (a move's candidates)."""
    if is_torch(state.x):
        torch = sys.modules["torch"]
        slots = torch.as_tensor(slots, device=state.x.device)
        sources = torch.as_tensor(sources, device=state.x.device)
    x = state.x if x is None else x
    x[slots] = x[sources]
    state.g[slots] = state.g[sources]
    if state.p is not None:
        state.p[slots] = state.p[sources]
