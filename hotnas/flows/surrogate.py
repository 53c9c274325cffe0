"""Surrogate-guided flow: the HOTNAS loop with a particle flow on G as its acquisition optimiser.

HOTNAS (:class:`~hotnas.optimisers.bo.HotnasBO`) scores a *fixed-shape* candidate pool — single-step
mutations of the top-k observed architectures plus random ones. ``flow-bo`` keeps its GP (HOTNN
distance kernel, copula targets, ML-II) and its final acquisition (KG by default), and replaces the
pool by the architectures that a population of particles visits while it flows on the architecture
graph G under a potential computed from the GP. Derivation (spec style, docs/surrogate-flow.md):

**Potential** [derived; engineering choice of the options]. After t queries the GP gives, at any
node g of G, the posterior mean mu_t(g) and standard deviation s_t(g) of the standardised target
(normal scores of the value ranks, so the potential has no units). The potential is
``f_t(g) = -a_t(g)`` with ``guide``:

* ``"mean"``  a = mu_t (the flow seeks the predicted best);
* ``"ucb"``   a = mu_t + beta s_t (optimism);
* ``"ts"``    a = mu_t + s_t xi_g, xi_g ~ N(0, 1) drawn once per node and per query (a *marginal*
  Thompson perturbation — independent across nodes, not a joint GP sample; the joint sample is
  the ``select="ts"`` option below).

**Dynamics** (the inner flow, costs no query). N particles start on the N best observed
architectures (repeated cyclically when fewer). For ``inner_rounds`` rounds every particle at g
proposes g' ~ w(g, .)/deg(g) (the flow's proposal on G, weights w = k(d) from the graph) and moves
with the Metropolis-Hastings probability

    A(g -> g') = min(1, exp(-(f_t(g') - f_t(g)) / T) deg(g) / deg(g')).

With w symmetric, q(g -> g') = w/deg(g) and this acceptance satisfy detailed balance for
pi_T(g) ∝ exp(-f_t(g)/T) = exp(a_t(g)/T): the **invariant measure** is the Gibbs measure of the
acquisition-like potential on the (connected component of) G — the discrete-time jump chain of the
Metropolis rate law of spec 4.3 (d = 0). T is in units of the standardised target (scale-free).

**What it queries.** The candidate set is every *unevaluated* node the particles visited (the
proposals included), ranked by a_t, the best ``max_candidates`` kept, plus ``n_random`` uniform
ones; HOTNAS's acquisition (``select="acquisition"``: KG over candidates + observed, as
``hotnas``) or a joint Thompson sample over the candidates (``select="ts"``: one draw from the GP
posterior N(mu, Sigma) over the set, its argmax) picks the one architecture queried. Batches of
q > 1 use HOTNAS's kriging believer. Each distinct architecture costs one query.

Cost per query: a GP fit (as HOTNAS) plus predictions at the visited nodes (their distances to the
t observations; cached across queries and seeds by the engine) and one graph row per visited node.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from sdot.jump import propose_accept
from sdot.validation import check_nonnegative, check_positive, one_of

from ..acquisition import Acquisition, Posterior
from ..graph import ArchitectureGraph
from ..optimisers.bo import TRANSFORMS, HotnasBO
from ..optimisers.random import sample_unseen
from ..spaces.base import SearchSpace

__all__ = ["FlowBO", "FlowPool", "ThompsonChoice", "metropolis_accept", "GUIDES", "SELECTS"]

GUIDES = ("mean", "ucb", "ts")
SELECTS = ("acquisition", "ts")


def metropolis_accept(f_cur: np.ndarray, f_prop: np.ndarray, deg_cur: np.ndarray, deg_prop: np.ndarray, T: float,
                      rng: np.random.Generator) -> np.ndarray:
    """Metropolis-Hastings acceptance of proposals drawn with q(g -> g') = w(g, g') / deg(g), all (N,):
    accept with probability ``min(1, exp(-(f' - f)/T) deg(g)/deg(g'))``, which makes
    pi_T ∝ exp(-f/T) invariant (detailed balance, w symmetric): :func:`sdot.jump.propose_accept` in its
    Metropolis-Hastings form with the metropolis law. Returns a boolean mask (N,)."""
    return propose_accept(f_cur, f_prop, T, "metropolis", rng, degree=deg_cur, degree_to=deg_prop).accepted


class ThompsonChoice(Acquisition):
    """One joint draw from the posterior N(mean, cov) over the set A; scores = the draw."""

    name = "thompson"
    needs_cov = True

    def __init__(self, rng: np.random.Generator):
        self.rng = rng

    def __call__(self, post: Posterior, candidates=None) -> np.ndarray:
        idx = self._idx(post, candidates)
        C = 0.5 * (post.cov + post.cov.T)
        w, V = np.linalg.eigh(C)
        z = self.rng.standard_normal(len(w))
        draw = post.mean + V @ (np.sqrt(np.clip(w, 0.0, None)) * z)
        return draw[idx]


class FlowPool:
    """The candidate pool of :class:`FlowBO`: the unevaluated nodes visited by the inner flow."""

    def __init__(self, owner: "FlowBO"):
        self.owner = owner
        self.last_visited = 0

    def __call__(self, X, y, rng: np.random.Generator, exclude=()) -> list[str]:
        return self.owner._flow_candidates(rng, set(exclude))

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


class FlowBO(HotnasBO):
    """HOTNAS with a surrogate-guided particle flow on G as the acquisition optimiser (module doc).

    Args (besides :class:`~hotnas.optimisers.bo.HotnasBO`'s, which keep their meaning and defaults):
        guide: ``"mean"`` | ``"ucb"`` | ``"ts"`` — the potential f = -a of the inner flow.
        beta: the optimism of ``"ucb"``.
        n_particles: particles of the inner flow.
        inner_rounds: proposal rounds per query.
        temperature: T of the inner Metropolis flow (units of the standardised target).
        max_candidates: visited unevaluated nodes passed on to the selection (best by a).
        n_random: uniform random candidates added (HOTNAS's pool has 10).
        select: ``"acquisition"`` (HOTNAS's, KG by default) or ``"ts"`` (joint Thompson sample).
        graph: a prebuilt (weighted) :class:`~hotnas.graph.ArchitectureGraph`; default: the space's
            mutation graph with w = 1 (no distances spent on edge weights; a table subset's mutations
            are its in-table neighbours).
    """

    name = "flow-bo"

    def __init__(self, space: SearchSpace, seed: int | np.random.Generator | None = 0, *, guide: str = "ucb",
                 beta: float = 1.0, n_particles: int = 10, inner_rounds: int = 6, temperature: float = 0.2,
                 max_candidates: int = 100, n_random: int = 10, select: str = "acquisition",
                 graph: ArchitectureGraph | None = None, device: str | None = None, **hotnas: Any):
        super().__init__(space, seed, n_random=n_random, **hotnas)  # device: unused (no torch), accepted for runners
        one_of("guide", guide, GUIDES)
        one_of("select", select, SELECTS)
        for nm, v, lo in (("n_particles", n_particles, 1), ("inner_rounds", inner_rounds, 1),
                          ("max_candidates", max_candidates, 1)):
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < lo:
                raise ValueError(f"{nm} must be an integer >= {lo}, got {v!r}")
        check_positive(temperature=temperature)
        check_nonnegative(beta=beta)
        self.guide, self.select, self.beta = guide, select, float(beta)
        self.n_particles, self.inner_rounds = int(n_particles), int(inner_rounds)
        self.temperature, self.max_candidates, self.n_random = float(temperature), int(max_candidates), int(n_random)
        self._graph = graph
        self.pool = FlowPool(self)  # type: ignore[assignment]
        if select == "ts":
            self.acquisition = ThompsonChoice(self.rng)
        self._gp = None
        self.stats = {"visited": 0, "candidates": 0, "accepted": 0, "proposed": 0}

    # ------------------------------------------------------------------ plumbing
    @property
    def graph(self) -> ArchitectureGraph:
        """G of the inner flow: the graph given, else the space's mutation graph with w = 1 (built on first use)."""
        if self._graph is None:
            self._graph = ArchitectureGraph(self.space, distance="hamming", lengthscale=math.inf)
        return self._graph

    def fit_model(self):
        self._gp = super().fit_model()
        return self._gp

    def _score(self, archs: list[str], memo: dict[str, float], xi: dict[str, float], rng) -> None:
        """a_t at the nodes of ``archs`` not in ``memo`` (one batched GP prediction)."""
        new = [a for a in dict.fromkeys(archs) if a not in memo]
        if not new:
            return
        mu, var = self._gp.predict(self._distances(new, self.X))
        s = np.sqrt(np.maximum(var, 0.0))
        if self.guide == "mean":
            a = mu
        elif self.guide == "ucb":
            a = mu + self.beta * s
        else:
            z = rng.standard_normal(len(new))
            a = mu + s * z
        memo.update(zip(new, np.asarray(a, float).tolist()))

    # ------------------------------------------------------------------ the inner flow
    def _flow_candidates(self, rng: np.random.Generator, exclude: set[str]) -> list[str]:
        order = np.argsort(-np.asarray(self.y), kind="stable")
        starts = [self.X[i] for i in order[: self.n_particles]]
        particles = [starts[k % len(starts)] for k in range(self.n_particles)]
        memo: dict[str, float] = {}
        self._score(particles, memo, {}, rng)
        G = self.graph
        deg = {a: G.degree(a) for a in dict.fromkeys(particles)}
        visited: dict[str, None] = {}
        T = self.temperature
        for _ in range(self.inner_rounds):
            props = [G.propose(a, rng)[0] for a in particles]
            self._score(props, memo, {}, rng)
            for b in props:
                if b not in deg:
                    deg[b] = G.degree(b)
                visited[b] = None
            accept = metropolis_accept(-np.array([memo[a] for a in particles]), -np.array([memo[b] for b in props]),
                                       np.array([deg[a] for a in particles]), np.array([deg[b] for b in props]),
                                       T, rng)
            particles = [b if ok else a for a, b, ok in zip(particles, props, accept)]
            self.stats["accepted"] += int(accept.sum())
            self.stats["proposed"] += len(props)
        cand = [a for a in visited if a not in exclude]
        cand.sort(key=lambda a: -memo[a])
        cand = cand[: self.max_candidates]
        if self.n_random:
            cand += sample_unseen(self.space, rng, exclude.union(cand), self.n_random)
        self.stats["visited"] += len(visited)
        self.stats["candidates"] += len(cand)
        return cand

    def state_dict(self) -> dict[str, Any]:
        s = super().state_dict()
        s["flow_stats"] = dict(self.stats)
        return s

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.stats = dict(state.get("flow_stats", self.stats))


_ = TRANSFORMS  # the GP targets are HOTNAS's (copula by default)
