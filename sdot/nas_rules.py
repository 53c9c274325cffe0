"""NAS-faithful particle rules: NASGD (spec ``semi-discrete-flow.md`` 6.4) and NASAGD (6.5).

As in the reference code of Paper 2 [reference code: EvAI], particles carry **node labels only**;
the weights live on the node (one weight vector x_g per node, trained elsewhere), and the node
energy ``E_g = f(x_g, g)`` drives the jumps. Both rules are explicit (first-order) and T = 0.

NASGD (upwind, flow 4.4)
    ``P(g -> g') = dt c w(g, g') (E_g - E_g')_+`` per step, one uniform per particle compared with
    the cumulative sums of these probabilities (EvAI ``update_velocity_mobility``; there
    ``c = c_mut * 50`` and the local graph is complete with unit weights).
NASAGD (velocity potential, 4.5 without kinetic terms)
    per step: adaptive restart check, then ``phi_g <- phi_g - (dt / c_p) E_g``, then
    ``P(g -> g') = dt c w(g, g') (phi_g' - phi_g)_+``. Restart (O'Donoghue-Candes gradient restart,
    EvAI ``updateNesterov``): ``S = sum_g sum_{g' ~ g} (E_g' - E_g)(phi_g' - phi_g) N_g'``; if S >= 0,
    or only one node carries particles, phi is reset to 0.

The mean-field limits (N -> infinity, spec 7.2) are ``dm_g/dt = sum_g' w c [m_g' (E_g' - E_g)_+ -
m_g (E_g - E_g')_+]`` and its phi analogue; :func:`nasgd_mean_field` integrates them exactly over
steps with piecewise-constant energies (``scheme="ode"``) or returns the exact expectation of the
explicit particle rule (``scheme="expected"``, which differs from the ODE by O(dt)).

:class:`QuadraticLadder` is the synthetic landscape of spec 7.2: a path graph of "depths" with
``f(x, g) = a_g |x - m_g|^2 / 2 + c_g`` per node, each node's weights trained by gradient descent.

Vectorised: a step costs O(N) plus O(n_jumpers * max_degree); node-level tables are O(K * D).
numpy or torch labels (through :class:`~sdot.particles.ParticleState`).
"""

from __future__ import annotations

import math
import sys
import warnings
from typing import Any

import numpy as np
import scipy.sparse as sp

from .backend import is_torch, to_numpy
from .particles import (NeighbourTable, ParticleState, StepInfo, _handle_nonfinite, _nonzero, _uniform,
                        neighbour_table)
from .space import SemiDiscreteSpace

__all__ = [
    "nasgd_probabilities",
    "nasagd_probabilities",
    "label_jump_step",
    "nasgd_step",
    "restart_statistic",
    "NASGD",
    "NASAGD",
    "upwind_generator",
    "nasgd_mean_field",
    "nasagd_mean_field",
    "QuadraticLadder",
    "steps_to_reach",
]


# ----------------------------------------------------------------------------------------------
# node-level jump tables
# ----------------------------------------------------------------------------------------------
def _check_energies(E: Any, K: int, name: str = "energies") -> np.ndarray:
    E = np.asarray(to_numpy(E), dtype=float)
    if E.shape != (K,):
        raise ValueError(f"{name} must have shape ({K},) (one value per node), got {E.shape}")
    return E


def _check_masses(m: Any, K: int, name: str = "m0") -> np.ndarray:
    """Node masses: shape (K,), finite, >= 0 and summing to 1 (to 1e-9); ValueError naming the value."""
    m = _check_energies(m, K, name)
    if not np.all(np.isfinite(m)) or np.any(m < 0):
        raise ValueError(f"{name} must be finite and >= 0, got {m.tolist()}")
    if abs(float(m.sum()) - 1.0) > 1e-9:
        raise ValueError(f"{name} must sum to 1 (a probability vector over the nodes), got sum {float(m.sum())!r}")
    return m


def _pos(name: str, v: Any) -> float:
    v = float(v)
    if not math.isfinite(v) or v <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {v!r}")
    return v


def nasgd_probabilities(space: SemiDiscreteSpace, energies: Any, dt: float, c: float = 1.0) -> np.ndarray:
    """Per-step jump probabilities (D, K) of NASGD: ``dt c w(g, nbr[j, g]) (E_g - E_nbr)_+``.

    Rows follow :func:`~sdot.particles.neighbour_table` (padding entries are 0). Non-finite
    energies give NaN entries (handled by :func:`label_jump_step`).
    """
    table = neighbour_table(space)
    E = _check_energies(energies, space.n_nodes)
    with np.errstate(invalid="ignore"):
        gap = E[None, :] - E[table.nbr]
        return dt * c * table.wts * np.maximum(gap, 0.0)


def nasagd_probabilities(space: SemiDiscreteSpace, phi: Any, dt: float, c: float = 1.0) -> np.ndarray:
    """Per-step jump probabilities (D, K) of NASAGD: ``dt c w(g, nbr[j, g]) (phi_nbr - phi_g)_+``."""
    table = neighbour_table(space)
    phi = _check_energies(phi, space.n_nodes, "phi")
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
    if nonfinite not in ("raise", "freeze", "reset"):
        raise ValueError(f"nonfinite must be 'raise', 'freeze' or 'reset', got {nonfinite!r}")
    if on_large_step not in ("substep", "raise"):
        raise ValueError(f"on_large_step must be 'substep' or 'raise', got {on_large_step!r}")
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
            idx = on_bad if not is_torch(g) else sys.modules["torch"].as_tensor(on_bad, device=g.device)
            _handle_nonfinite(state, idx, nonfinite,
                              f"node energy (nodes {np.flatnonzero(bad)[:8].tolist()})")
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
        u = _uniform(state, n)
        J = _nonzero(u < cum_t[-1][g])
        if J.shape[0] == 0:
            return
        gJ = g[J]
        k = (cum_t[:, gJ] <= u[J][None, :]).sum(0)
        k = torch.clamp(k, max=table.max_degree - 1)
        g[J] = nbr[k, gJ]
    else:
        u = _uniform(state, n)
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
    dt, c = _pos("dt", dt), _pos("c", c)
    E = _check_energies(energies, space.n_nodes)
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
        self.space, self.dt, self.c = space, _pos("dt", dt), _pos("c", c)
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
        if restart_scope not in ("all", "support"):
            raise ValueError(f"restart_scope must be 'all' or 'support', got {restart_scope!r}")
        self.space = space
        self.dt, self.c, self.c_p = _pos("dt", dt), _pos("c", c), _pos("c_p", c_p)
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
        E = _check_energies(energies, K)
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


# ----------------------------------------------------------------------------------------------
# mean-field limits
# ----------------------------------------------------------------------------------------------
def upwind_generator(space: SemiDiscreteSpace, potential_like: np.ndarray, c: float = 1.0,
                     toward: str = "lower") -> sp.csr_matrix:
    """Generator Q (K, K) of the upwind chain: ``Q[g, g'] = c w (v_g - v_g')_+`` (``toward="lower"``,
    NASGD with v = E) or ``c w (v_g' - v_g)_+`` (``"higher"``, NASAGD with v = phi); rows sum to 0."""
    src, dst, w = space.edges()
    v = np.asarray(potential_like, dtype=float)
    gap = v[src] - v[dst] if toward == "lower" else v[dst] - v[src]
    rate = c * w * np.maximum(gap, 0.0)
    K = space.n_nodes
    Q = sp.coo_matrix((rate, (src, dst)), shape=(K, K)).tocsr()
    return (Q - sp.diags(np.asarray(Q.sum(axis=1)).ravel())).tocsr()


def _energy_at(energies: Any, n: int, K: int) -> np.ndarray:
    E = energies(n) if callable(energies) else np.asarray(energies, dtype=float)[n]
    return _check_energies(E, K)


class _UpwindMeanField:
    """One step of the upwind master equation on the edge list (O(edges) per product, no matrix
    assembly): ``expected`` = ``m + dt Q^T m``; ``ode`` = ``m expm(dt Q)`` (Taylor series)."""

    def __init__(self, space: SemiDiscreteSpace, c: float, toward: str):
        self.src, self.dst, w = space.edges()
        self.cw = c * w
        self.K = space.n_nodes
        self.toward = toward

    def rates(self, v: np.ndarray) -> np.ndarray:
        gap = v[self.src] - v[self.dst] if self.toward == "lower" else v[self.dst] - v[self.src]
        return self.cw * np.maximum(gap, 0.0)

    def _apply(self, m: np.ndarray, r: np.ndarray) -> np.ndarray:
        """Q^T m on the edge list."""
        flux = r * m[self.src]
        return np.bincount(self.dst, flux, self.K) - np.bincount(self.src, flux, self.K)

    def advance(self, m: np.ndarray, v: np.ndarray, dt: float, scheme: str) -> np.ndarray:
        r = self.rates(v)
        if scheme == "expected":
            return m + dt * self._apply(m, r)
        # m expm(dt Q) by its Taylor series on sub-steps with dt_sub * max exit rate <= 1/2
        # (edge-list products only: no dense matrix exponential, no BLAS)
        exit_rate = np.bincount(self.src, r, self.K).max(initial=0.0)
        n_sub = max(1, int(math.ceil(dt * exit_rate / 0.5)))
        h = dt / n_sub
        for _ in range(n_sub):
            term, acc = m, m.copy()
            for k in range(1, 60):
                term = self._apply(term, r) * (h / k)
                acc += term
                if np.abs(term).max(initial=0.0) <= 1e-17 * np.abs(acc).max(initial=1.0):
                    break
            m = acc
        return m


def nasgd_mean_field(space: SemiDiscreteSpace, energies: Any, m0: Any, dt: float, n_steps: int, c: float = 1.0,
                     scheme: str = "ode") -> np.ndarray:
    """Node masses of the NASGD mean field, shape (n_steps + 1, K).

    ``dm_g/dt = sum_g' c w [m_g' (E_g' - E_g)_+ - m_g (E_g - E_g')_+]`` with the energies of step n
    held over [n dt, (n + 1) dt). ``energies``: array (n_steps, K) or callable n -> (K,).
    ``scheme="ode"``: exact solution (matrix exponential per step); ``"expected"``: the exact
    expectation of the explicit particle rule ``m + dt Q^T m`` (O(dt) from the ODE).
    """
    if scheme not in ("ode", "expected"):
        raise ValueError(f"scheme must be 'ode' or 'expected', got {scheme!r}")
    K = space.n_nodes
    m = _check_masses(m0, K, "m0").copy()
    mf = _UpwindMeanField(space, c, "lower")
    out = np.empty((n_steps + 1, K))
    out[0] = m
    for n in range(n_steps):
        m = mf.advance(m, _energy_at(energies, n, K), dt, scheme)
        out[n + 1] = m
    return out


def nasagd_mean_field(space: SemiDiscreteSpace, energies: Any, m0: Any, dt: float, n_steps: int, c: float = 1.0,
                      c_p: float = 2.0, *, restart: bool = True, restart_single_support: bool = False,
                      support_tol: float = 0.0, scheme: str = "expected"):
    """Mean field of NASAGD: returns ``(m, phi, restarts)`` with m, phi of shape (n_steps + 1, K).

    Same order as :class:`NASAGD` (restart check, phi update, transport toward larger phi). The
    restart statistic uses the masses m; "single support" counts nodes with ``m_g > support_tol``
    (off by default: in the mean field every node reached carries some mass).
    """
    if scheme not in ("ode", "expected"):
        raise ValueError(f"scheme must be 'ode' or 'expected', got {scheme!r}")
    K = space.n_nodes
    m = _check_energies(m0, K, "m0").copy()
    mf = _UpwindMeanField(space, c, "higher")
    phi = np.zeros(K)
    ms, phis, restarts = np.empty((n_steps + 1, K)), np.empty((n_steps + 1, K)), []
    ms[0], phis[0] = m, phi
    for n in range(n_steps):
        E = _energy_at(energies, n, K)
        if restart:
            S = restart_statistic(space, E, phi, m, (mf.src, mf.dst))
            if S >= 0 or (restart_single_support and int(np.count_nonzero(m > support_tol)) == 1):
                phi = np.zeros(K)
                restarts.append(n)
        phi = phi - (dt / c_p) * E
        m = mf.advance(m, phi, dt, scheme)
        ms[n + 1], phis[n + 1] = m, phi
    return ms, phis, restarts


# ----------------------------------------------------------------------------------------------
# synthetic landscape
# ----------------------------------------------------------------------------------------------
class QuadraticLadder:
    """Synthetic architecture ladder (spec 7.2): K "depths" on a path graph, node g owning weights
    x_g in R^d trained by gradient descent on ``f(x, g) = a_g |x - m_g|^2 / 2 + c_g``.

    ``energies(n)`` is ``E_g = f(x_g(n), g)`` after n gradient steps of rate ``lr`` (closed form:
    ``x_g(n) - m_g = (1 - lr a_g)^n (x_g(0) - m_g)``), so a NAS run that trains every node once per
    dynamics step sees ``energies(n)`` at step n.
    """

    def __init__(self, a: Any, c: Any, m: Any, x0: Any = None, lr: float = 0.1, weight: float = 1.0):
        self.a = np.asarray(a, dtype=float).ravel()
        self.c = np.asarray(c, dtype=float).ravel()
        K = self.a.size
        self.m = np.asarray(m, dtype=float).reshape(K, -1)
        self.x0 = np.zeros_like(self.m) if x0 is None else np.asarray(x0, dtype=float).reshape(self.m.shape)
        if self.c.size != K:
            raise ValueError(f"a has {K} entries but c has {self.c.size}")
        if np.any(self.a <= 0) or np.any(lr * self.a >= 2):
            raise ValueError("need a_g > 0 and lr * a_g < 2 for gradient descent to converge")
        self.lr = float(lr)
        self.space = SemiDiscreteSpace.path(K, weight=weight)

    @property
    def n_nodes(self) -> int:
        return self.a.size

    def weights(self, n: int) -> np.ndarray:
        """x_g after n gradient steps, shape (K, d)."""
        return self.m + ((1 - self.lr * self.a) ** n)[:, None] * (self.x0 - self.m)

    def energies(self, n: int) -> np.ndarray:
        """E_g = f(x_g(n), g), shape (K,)."""
        d = self.weights(n) - self.m
        return self.a * (d * d).sum(1) / 2 + self.c

    def energy_table(self, n_steps: int) -> np.ndarray:
        """energies(n) for n = 0..n_steps-1, shape (n_steps, K)."""
        return np.stack([self.energies(n) for n in range(n_steps)])

    @property
    def best_node(self) -> int:
        return int(np.argmin(self.c))

    @classmethod
    def slope(cls, K: int = 20, drop: float = 1.0, a: float = 1.0, spread: float = 1.0, lr: float = 0.1,
              d: int = 2) -> "QuadraticLadder":
        """Energies decreasing linearly along the path (c_g = drop (1 - g/(K-1))), weights starting
        at distance ``spread`` from their optimum (a training transient)."""
        c = drop * (1 - np.arange(K) / (K - 1))
        m = np.zeros((K, d))
        m[:, 0] = spread
        return cls(np.full(K, a), c, m, lr=lr)

    @classmethod
    def plateau(cls, K: int = 20, first_drop: float = 1.0, plateau_slope: float = 1e-3, last_drop: float = 1.0,
                a: float = 1.0, spread: float = 0.5, lr: float = 0.1, d: int = 2) -> "QuadraticLadder":
        """A long plateau: node 0 sits ``first_drop`` above node 1, nodes 1..K-2 fall by only
        ``plateau_slope`` per node, and the best node K-1 lies ``last_drop`` below node K-2."""
        c = np.empty(K)
        c[0] = 1.0 + first_drop
        c[1:K - 1] = 1.0 - plateau_slope * np.arange(K - 2)
        c[K - 1] = c[K - 2] - last_drop
        m = np.zeros((K, d))
        m[:, 0] = spread
        return cls(np.full(K, a), c, m, lr=lr)


def steps_to_reach(fractions: np.ndarray, node: int, level: float = 0.5) -> int | None:
    """First step n at which ``fractions[n, node] >= level`` (None when never); fractions (n_steps, K)."""
    arr = np.asarray(fractions)
    hit = np.flatnonzero(arr[:, node] >= level)
    return int(hit[0]) if hit.size else None

