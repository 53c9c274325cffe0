"""The NASGD and NASAGD particle rules on node labels (spec ``semi-discrete-flow.md`` 6.4, 6.5).

Both are explicit (first-order) and T = 0: per step a label jumps g -> g' with a node-level probability,
``dt c w(g, g') (E_g - E_g')_+`` (NASGD, downhill in the node energies) or ``dt c w(g, g') (phi_g' - phi_g)_+``
(NASAGD, uphill in a velocity potential phi with adaptive restart). One uniform per particle is compared
with the cumulative sums of these probabilities (:func:`label_jump_step`, EvAI's sampler vectorised).
"""

from __future__ import annotations

import math
import sys
import warnings
from typing import Any

import numpy as np

from ..backend import is_torch, to_numpy
from ..particles import random as draws
from ..particles.arrays import nonzero
from ..particles.jumps import NeighbourTable, check_on_large_step, neighbour_table
from ..particles.nonfinite import check_policy, handle_nonfinite
from ..particles.state import ParticleState, StepInfo
from ..space import SemiDiscreteSpace
from ..validation import one_of, positive

__all__ = ["check_energies", "nasgd_probabilities", "nasagd_probabilities", "label_jump_step",
           "neighbour_table_like", "nasgd_step", "NASGD", "restart_statistic", "NASAGD"]


# ----------------------------------------------------------------------------------------------
# node-level jump tables
# ----------------------------------------------------------------------------------------------
def check_energies(E: Any, K: int, name: str = "energies") -> np.ndarray:
    """``E`` as a float array of shape (K,) (one value per node); ValueError naming ``name`` otherwise."""
    E = np.asarray(to_numpy(E), dtype=float)
    if E.shape != (K,):
        raise ValueError(f"{name} must have shape ({K},) (one value per node), got {E.shape}")
    return E


def nasgd_probabilities(space: SemiDiscreteSpace, energies: Any, dt: float, c: float = 1.0) -> np.ndarray:
    """Per-step jump probabilities (D, K) of NASGD: ``dt c w(g, nbr[j, g]) (E_g - E_nbr)_+``.

    Rows follow :func:`~sdot.particles.neighbour_table` (padding entries are 0). Non-finite
    energies give NaN entries (handled by :func:`label_jump_step`).
    """
    table = neighbour_table(space)
    E = check_energies(energies, space.n_nodes)
    with np.errstate(invalid="ignore"):
        gap = E[None, :] - E[table.nbr]
        return dt * c * table.wts * np.maximum(gap, 0.0)


def nasagd_probabilities(space: SemiDiscreteSpace, phi: Any, dt: float, c: float = 1.0) -> np.ndarray:
    """Per-step jump probabilities (D, K) of NASAGD: ``dt c w(g, nbr[j, g]) (phi_nbr - phi_g)_+``."""
    table = neighbour_table(space)
    phi = check_energies(phi, space.n_nodes, "phi")
    with np.errstate(invalid="ignore"):
        return dt * c * table.wts * np.maximum(phi[table.nbr] - phi[None, :], 0.0)


def label_jump_step(state: ParticleState, space: SemiDiscreteSpace, probs: np.ndarray, *,
                    bad_nodes: np.ndarray | None = None, nonfinite: str = "raise",
                    on_large_step: str = "substep") -> ParticleState:
    """Move labels with node-level per-step probabilities ``probs`` (D, K) (explicit rule).

    One uniform u per particle: it jumps iff ``u < sum_j probs[j, g]`` and goes to the first
    neighbour slot whose cumulative probability exceeds u (EvAI's sampler, vectorised).
    If a row sums to >= 1 the step is refused (``on_large_step="raise"``) or split into sub-steps
    of ``probs / n`` with a RuntimeWarning (``"substep"``; a sub-step of an explicit rule, the
    first-order probabilities scale with the step). Particles on ``bad_nodes`` (non-finite
    energies) follow ``nonfinite``: ``raise``, ``freeze`` (they stay; edges into bad nodes are
    closed) or ``reset`` (relabelled as copies of healthy particles).
    """
    check_policy(nonfinite)
    check_on_large_step(on_large_step)
    table = neighbour_table(space)
    K, D = space.n_nodes, table.max_degree
    probs = np.array(probs, dtype=float)
    if probs.shape != (D, K):
        raise ValueError(f"probs must have shape (max_degree, K) = ({D}, {K}), got {probs.shape}")
    g = state.g
    if state.n_particles and (int(g.min()) < 0 or int(g.max()) >= K):
        raise ValueError(f"node label out of range [0, {K})")
    bad = np.zeros(K, dtype=bool) if bad_nodes is None else np.asarray(bad_nodes, dtype=bool).copy()
    bad |= ~np.all(np.isfinite(probs), axis=0)
    if bad.any():
        on_bad = np.flatnonzero(bad[to_numpy(g)])
        if on_bad.size:
            handle_nonfinite(state, on_bad, nonfinite, f"node energy (nodes {np.flatnonzero(bad)[:8].tolist()})")
            g = state.g
        probs[:, bad] = 0.0
        probs[bad[table.nbr]] = 0.0  # close edges into bad nodes
    if np.any(probs < 0):
        raise ValueError("jump probabilities must be >= 0")
    total = probs.sum(axis=0)
    pmax = float(total.max(initial=0.0))
    if pmax >= 1.0:
        if on_large_step == "raise":
            raise ValueError(f"explicit jump probabilities sum to {pmax:.3g} >= 1 at node "
                             f"{int(total.argmax())}: lower dt or c, or use on_large_step='substep'")
        n_sub = int(math.ceil(pmax / 0.5))
        warnings.warn(f"explicit label jumps: total probability {pmax:.3g} >= 1; splitting the step into "
                      f"{n_sub} sub-steps", RuntimeWarning, stacklevel=2)
        for _ in range(n_sub):
            _label_jumps(state, table, probs / n_sub)
        state.info.substeps = n_sub
        return state
    _label_jumps(state, table, probs)
    return state


def _label_jumps(state: ParticleState, table: NeighbourTable, probs: np.ndarray) -> None:
    g = state.g
    n = g.shape[0]
    if n == 0 or table.max_degree == 0:
        return
    cum = np.cumsum(probs, axis=0)                       # (D, K)
    if is_torch(g):
        torch = sys.modules["torch"]
        cum_t = torch.as_tensor(cum, dtype=torch.float64, device=g.device)
        nbr = neighbour_table_like(table, g)
        u = draws.uniform(state, n)
        J = nonzero(u < cum_t[-1][g])
        if J.shape[0] == 0:
            return
        gJ = g[J]
        k = (cum_t[:, gJ] <= u[J][None, :]).sum(0)
        k = torch.clamp(k, max=table.max_degree - 1)
        g[J] = nbr[k, gJ]
    else:
        u = draws.uniform(state, n)
        J = np.flatnonzero(u < np.take(cum[-1], g))
        if J.size == 0:
            return
        gJ = g[J]
        k = (cum[:, gJ] <= u[J][None, :]).sum(0)
        np.minimum(k, table.max_degree - 1, out=k)  # u < total guarantees k < D; guards rounding
        g[J] = table.nbr[k, gJ]
    state.info.n_jumps += int(J.shape[0])


def neighbour_table_like(table: NeighbourTable, like: Any) -> Any:
    """The neighbour index table on ``like``'s device (torch)."""
    torch = sys.modules["torch"]
    return torch.as_tensor(table.nbr, device=like.device)


# ----------------------------------------------------------------------------------------------
# NASGD
# ----------------------------------------------------------------------------------------------
def nasgd_step(state: ParticleState, space: SemiDiscreteSpace, energies: Any, dt: float = 0.01, c: float = 1.0, *,
               nonfinite: str = "raise", on_large_step: str = "substep") -> ParticleState:
    """One NASGD step: labels jump g -> g' with probability ``dt c w(g, g') (E_g - E_g')_+``.

    Downhill only (upwind T = 0 flow 4.4, explicit Euler in time). ``energies`` (K,) are the node
    energies E_g = f(x_g, g) of the current per-node weights. Nodes with NaN/inf energy follow
    ``nonfinite`` (see :func:`label_jump_step`). Advances ``state.t`` by dt.
    """
    dt, c = positive("dt", dt), positive("c", c)
    E = check_energies(energies, space.n_nodes)
    state.info = StepInfo()
    bad = ~np.isfinite(E)
    label_jump_step(state, space, nasgd_probabilities(space, np.where(bad, 0.0, E), dt, c), bad_nodes=bad,
                    nonfinite=nonfinite, on_large_step=on_large_step)
    state.t += dt
    state.n_steps += 1
    return state


class NASGD:
    """The NASGD rule as a small solver object: ``step(state, energies) -> state``."""

    def __init__(self, space: SemiDiscreteSpace, dt: float = 0.01, c: float = 1.0, *, nonfinite: str = "raise",
                 on_large_step: str = "substep"):
        self.space, self.dt, self.c = space, positive("dt", dt), positive("c", c)
        self.nonfinite, self.on_large_step = nonfinite, on_large_step

    def step(self, state: ParticleState, energies: Any) -> ParticleState:
        return nasgd_step(state, self.space, energies, self.dt, self.c, nonfinite=self.nonfinite,
                          on_large_step=self.on_large_step)


# ----------------------------------------------------------------------------------------------
# NASAGD
# ----------------------------------------------------------------------------------------------
def restart_statistic(space: SemiDiscreteSpace, energies: Any, phi: Any, counts: Any,
                      edges: tuple | None = None) -> float:
    """``S = sum_g sum_{g' ~ g} (E_g' - E_g)(phi_g' - phi_g) N_g'`` (EvAI ``computeNesterov``).

    S >= 0 means the velocity potential points uphill in energy (weighted by where the mass
    is): restart. ``counts`` may be particle counts or masses (only the sign matters).
    """
    src, dst = (space.edges()[:2]) if edges is None else edges[:2]
    E, phi, N = (np.asarray(to_numpy(v), dtype=float) for v in (energies, phi, counts))
    return float(np.sum((E[dst] - E[src]) * (phi[dst] - phi[src]) * N[dst]))


class NASAGD:
    """The NASAGD velocity-potential rule with adaptive restart (spec 6.5).

    Per step, in the order of the reference code: (1) restart check with the current energies,
    phi and counts; (2) ``phi <- phi - (dt / c_p) E``; (3) jumps with
    ``P(g -> g') = dt c w(g, g') (phi_g' - phi_g)_+``.

    Parameters
    ----------
    space : the graph
    dt, c, c_p : step, mutation coefficient, "momentum" c_p (EvAI: dt = 0.01, c_p = 2)
    restart : bool        gradient restart when S >= 0 (see :func:`restart_statistic`)
    restart_single_support : bool
        also restart while only one node carries particles (the reference code does)
    restart_scope : ``"all"`` (every node; EvAI's local graph is the centre and all its
        neighbours) or ``"support"`` (nodes carrying particles and their neighbours)

    Attributes: ``phi`` (K,), ``restarts`` (step indices at which phi was reset), ``n_steps``.
    """

    def __init__(self, space: SemiDiscreteSpace, dt: float = 0.01, c: float = 1.0, c_p: float = 2.0, *,
                 restart: bool = True, restart_single_support: bool = True, restart_scope: str = "all",
                 nonfinite: str = "raise", on_large_step: str = "substep"):
        one_of("restart_scope", restart_scope, ("all", "support"))
        self.space = space
        self.dt, self.c, self.c_p = positive("dt", dt), positive("c", c), positive("c_p", c_p)
        self.restart, self.restart_single_support, self.restart_scope = restart, restart_single_support, restart_scope
        self.nonfinite, self.on_large_step = nonfinite, on_large_step
        self.phi = np.zeros(space.n_nodes)
        self._edges = space.edges()
        self.restarts: list[int] = []
        self.n_steps = 0

    def _restart_nodes(self, counts: np.ndarray) -> np.ndarray:
        if self.restart_scope == "all":
            return np.ones(self.space.n_nodes, dtype=bool)
        sup = counts > 0
        return sup | (np.asarray(self.space.weights @ sup.astype(float)).ravel() > 0)

    def step(self, state: ParticleState, energies: Any) -> ParticleState:
        K = self.space.n_nodes
        E = check_energies(energies, K)
        bad = ~np.isfinite(E)
        Eok = np.where(bad, 0.0, E)
        counts = state.node_counts(K)
        if self.restart:
            S = restart_statistic(self.space, Eok, self.phi, counts, self._edges)
            single = int(np.count_nonzero(counts)) == 1
            if S >= 0 or (self.restart_single_support and single):
                self.phi[self._restart_nodes(counts)] = 0.0
                self.restarts.append(self.n_steps)
        self.phi -= (self.dt / self.c_p) * Eok
        state.info = StepInfo()
        label_jump_step(state, self.space, nasagd_probabilities(self.space, self.phi, self.dt, self.c),
                        bad_nodes=bad, nonfinite=self.nonfinite, on_large_step=self.on_large_step)
        state.t += self.dt
        state.n_steps += 1
        self.n_steps += 1
        return state

    def state_dict(self) -> dict:
        return {"phi": self.phi.copy(), "restarts": list(self.restarts), "n_steps": self.n_steps}

    def load_state_dict(self, d: dict) -> "NASAGD":
        self.phi = np.array(d["phi"], dtype=float)
        self.restarts = list(d["restarts"])
        self.n_steps = int(d["n_steps"])
        return self
