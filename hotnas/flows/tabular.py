"""Gradient-flow NAS on a tabular benchmark (d = 0): particles on the architecture graph G.

A population of N particles sits on architectures (nodes of :class:`hotnas.graph.ArchitectureGraph`,
weights ``w = k(d)`` from HOTNN by default) and follows the discretised flow of ``sdot`` with
potential ``f(g) = -value(g) / potential_scale`` (value = validation accuracy, higher is better; or,
with ``potential="copula"``, minus the normal score of its rank among the evaluated values)
[spec ``semi-discrete-flow.md`` 4.3-4.5, 6.4-6.5, 7.2]. Only architectures that particles *propose*
are queried, and each distinct architecture costs exactly one query (values are cached), so the
dynamics advances between :meth:`~FlowOptimiser.ask` and :meth:`~FlowOptimiser.tell`.

One round (the flow time advances by ``dt``; T = T(progress), progress = queries spent / budget):

1. **Birth-death** (optional, ``birth_death > 0``; :func:`sdot.particles.birth_death_step` for a
   time ``birth_death * dt``): particle k dies (beta_k > 0) or duplicates (beta_k < 0) with
   probability ``1 - exp(-birth_death dt |beta_k|)``,
   ``beta_k = log(N_g/N) + f(g)/T - mean`` — a Fisher-Rao (Hellinger) reaction toward the Gibbs
   measure pi_T ∝ exp(-f/T) restricted to the occupied nodes, *a different geometry from the graph
   transport* (an accelerator, clearly labelled as such in the spec, 7.2).
2. **Proposals:** every particle at g draws one neighbour g' with probability ``w(g, g') / deg(g)``;
   the proposals not evaluated yet are what :meth:`ask` returns (deduplicated, never beyond the
   budget). When no proposal is new the round is free.
3. **Jumps**, once the proposals are evaluated, on the subgraph of G induced by the occupied nodes
   and their *evaluated* neighbours (:meth:`hotnas.graph.ArchitectureGraph.subgraph`), by ``rule``:

   * ``"flow"`` — :func:`sdot.particles.jump_step` (exact fixed-x chain for time dt) with a rate
     law of :mod:`sdot.rates`: ``glauber`` ``T w exp((f_g - f_g')/2T)``, ``metropolis``
     ``T w min(1, exp((f_g - f_g')/T))`` (both leave pi_T invariant) or ``upwind``
     ``w (f_g - f_g')_+``;
   * ``"nasgd"`` — :func:`sdot.nas_rules.nasgd_step`, the explicit upwind T = 0 rule of NASGD,
     ``P(g -> g') = dt c w (E_g - E_g')_+`` with E = f;
   * ``"nasagd"`` — :class:`sdot.nas_rules.NASAGD`, the accelerated rule of NASAGD: a velocity
     potential ``phi_g <- phi_g - (dt / c_p) E_g`` kept per architecture across rounds, jumps with
     ``P = dt c w (phi_g' - phi_g)_+`` and the adaptive (gradient) restart ``phi <- 0`` when
     ``S = sum (E_g' - E_g)(phi_g' - phi_g) N_g' >= 0``. phi integrates energies, so their baseline
     matters: ``E = f - min f`` over the evaluated architectures (>= 0, zero at the best, like the
     reference code's cross-entropy) [engineering choice].

   Unevaluated neighbours carry no rate this round (the flow on the revealed part of G).

**Surrogate hybrid** (``surrogate="gp"``, :mod:`hotnas.flows.tabular_surrogate`): the GP posterior mean
is the potential on unevaluated neighbours, so step 2 becomes a jump over the whole neighbourhood.

**Stalls and restarts.** When ``stall_rounds`` consecutive rounds propose nothing new (the mass
sits on fully explored local optima at low T), a fraction ``restart_fraction`` of the particles
is moved to fresh random architectures (logged in :attr:`events`). Optionally (``patience``), when the
best value has not improved for ``patience`` queries the whole population restarts at random and the
schedule anneals again over the remaining budget.

**Temperature schedule** [engineering choice]: ``temperature`` is a constant, a pair (T0, T1)
annealed geometrically ``T = T0 (T1/T0)^progress`` over the query budget, or a callable
``progress -> T``. **Units** (``temperature_units``): ``"value"`` (default) — T is in the units of
``f`` (accuracy points divided by ``potential_scale``; the defaults assume accuracies in %); after
the initial population the flow warns once (a ``units_warning`` event) when T0 exceeds the robust
spread (IQR / 1.349) of the values seen, the signature of a table in other units (e.g. fractions).
``"spread"`` — scale-free: ``f = -value / (potential_scale * s0)`` with s0 the robust spread of the
initial population's values, frozen for the run, so T is relative to that spread and a table in
fractions gives exactly the run it gives in percent (``potential="copula"`` is scale-free too).

**Budget**: one number. A flow built without ``budget`` takes :func:`run_search`'s budget (via
:meth:`check_budget`); one built with a budget smaller than what run_search asks for raises
ValueError naming both (it used to stop early without a word); driven by hand without any budget it
warns and anneals over ``DEFAULT_BUDGET`` = 200 queries.

**NaN policy** (``nonfinite``): an evaluation whose value is NaN/inf (diverged training) marks that
architecture *failed*: it counts as a spent query, is never proposed again, carries f = +inf (no
rate law moves mass into it), and is logged (``logging`` warning and an entry in :attr:`events`).
A particle sitting on a failed architecture is ``"reset"`` (default: moved to the node of a
uniformly chosen healthy particle, N fixed — the sdot particle policy) or ``"kill"``-ed (removed;
an empty population is re-seeded at random architectures); ``"raise"`` raises ValueError.

**Refused up front:** ``n_particles < 1`` (``< 2`` with birth-death), a budget smaller than the
initial population plus one proposal, unknown rules /
laws / policies, non-positive dt or temperatures.

Defaults (N = 20, glauber, T 0.3 -> 0.03 accuracy points, birth-death rate 1, HOTNN weights with l = 0.1 on the
mutation graph; written once, in the constructor: ``hotnas.flows.defaults("flow")``) are engineering choices picked
on NB201-CIFAR-10 (200 queries, 50 seeds of a stream disjoint from the one reported, README). The state (particles,
values, pending proposals, phi, RNG) is saved and restored exactly by :meth:`state_dict` / :meth:`load_state_dict`.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from sdot.jump import cap_potential
from sdot.nas_rules import NASAGD, nasgd_step
from sdot.particles import ParticleState, birth_death_step, jump_step
from sdot.validation import check_positive, one_of

from ..benchmarks.base import Evaluation
from ..graph import ArchitectureGraph
from ..optimisers.base import Optimiser
from ..optimisers.bo import TRANSFORMS, DistanceCache
from ..spaces.base import SearchSpace
from .base import jump_rate_law
from .potentials import robust_spread, table_potential
from .schedules import temperature_schedule
from .tabular_surrogate import SurrogateHybrid

__all__ = ["FlowOptimiser", "RULES", "NONFINITE_POLICIES", "TEMPERATURE_UNITS", "temperature_schedule",
           "table_potential", "robust_spread"]

log = logging.getLogger("hotnas.flow")

RULES = ("flow", "nasgd", "nasagd")
NONFINITE_POLICIES = ("reset", "kill", "raise")
SURROGATES = (None, "gp")
POTENTIALS = ("value", "copula")
TEMPERATURE_UNITS = ("value", "spread")
#: the annealing horizon of a flow that was given no budget and is driven without run_search (warned)
DEFAULT_BUDGET = 200


class FlowOptimiser(SurrogateHybrid, Optimiser):
    """Particles on G driven by an sdot rate law (or the NASGD / NASAGD rules); see the module doc.

    Args:
        space: the search space.
        seed: seed or numpy Generator (the single random stream of the run).
        budget: queries this optimiser may spend (it never asks beyond); the temperature schedule
            runs over it. None (default): run_search's budget (module docstring, "Budget").
        n_particles: population size N.
        rule: ``"flow"`` | ``"nasgd"`` | ``"nasagd"``.
        law: rate law of ``rule="flow"`` (``"glauber"``, ``"metropolis"``, ``"upwind"``).
        temperature: T, (T0, T1) or callable progress -> T (module docstring).
        dt: flow time per round.
        birth_death: rate multiplier of the birth-death step (0 disables it).
        c, c_p: NASGD/NASAGD coefficients (mutation coefficient c, "momentum" c_p).
        graph: a prebuilt :class:`~hotnas.graph.ArchitectureGraph` (else one is built from
            ``distance``, ``engine``, ``kernel``, ``lengthscale``, ``neighbours``, ``k``).
            Default: the mutation graph with HOTNN-Laplace weights exp(-d / 0.1). ``lengthscale=math.inf``
            gives the uniform mutation graph (w = 1, no distance computed, about 30x less CPU per run);
            the graph-weight ablation (issue 19, README) found the two equal within 2 s.e. on every
            shipped table (on 50 NB201 seeds: uniform - HOTNN = -0.021 +- 0.032 at 100 queries,
            +0.034 +- 0.022 at 200), so the default is kept and the figures measured with it reproduce.
        distance: distance method name when no engine/graph is given (``"hotnn"``).
        engine: a :class:`~hotnas.distances.engine.PairwiseDistances` (shared caches) or callable.
        potential: ``"value"`` (f = -value / potential_scale) or ``"copula"`` (f = -normal score of
            the value's rank among the evaluated ones / potential_scale; changes as data arrive).
        potential_scale: divides the potential (T is in its units).
        temperature_units: ``"value"`` or ``"spread"`` (module docstring, "Units").
        surrogate: None or ``"gp"`` (the flow-with-surrogate hybrid).
        gp_options: keyword arguments of :class:`hotnas.gp.DistanceGP`.
        refit_every: refit GP hyperparameters every this many new evaluations (condition on the
            data with the last hyperparameters in between).
        stall_rounds, restart_fraction: the stall rule (module docstring).
        patience: queries without improvement before the whole population restarts (None: never).
        jump_method: ``"exact"`` (the fixed-x chain for time dt on the revealed subgraph) or
            ``"single"`` (at most one jump per round, :func:`sdot.particles.jump_step`).
        nonfinite: ``"reset"`` | ``"kill"`` | ``"raise"`` (NaN policy).
        record_mass: keep the node occupancy after every round in :attr:`history`.
        name: label of the optimiser in results (default ``"flow"``).
    """

    name = "flow"

    def __init__(self, space: SearchSpace, seed: int | np.random.Generator | None = 0, *, budget: int | None = None,
                 n_particles: int = 20, rule: str = "flow", law: str = "glauber",
                 temperature: float | tuple[float, float] | Callable[[float], float] = (0.3, 0.03),
                 dt: float = 1.0, birth_death: float = 1.0, c: float = 1.0, c_p: float = 2.0,
                 graph: ArchitectureGraph | None = None, distance: str = "hotnn", engine: Any = None,
                 kernel: str = "laplace", lengthscale: float = 0.1, neighbours: str = "mutations",
                 k: int | None = None, potential: str = "value", potential_scale: float = 1.0,
                 surrogate: str | None = None, temperature_units: str = "value",
                 gp_options: dict | None = None, refit_every: int = 10, stall_rounds: int = 50,
                 restart_fraction: float = 0.5, patience: int | None = None, jump_method: str = "exact",
                 nonfinite: str = "reset", record_mass: bool = True, name: str | None = None):
        super().__init__(space, seed)
        if name is not None:
            self.name = str(name)
        one_of("rule", rule, RULES)
        one_of("surrogate", surrogate, SURROGATES)
        one_of("nonfinite", nonfinite, NONFINITE_POLICIES)
        self.law = jump_rate_law(law)
        if not isinstance(n_particles, (int, np.integer)) or isinstance(n_particles, bool) or n_particles < 1:
            raise ValueError(f"n_particles must be a positive integer, got {n_particles!r}")
        if birth_death < 0 or not math.isfinite(birth_death):
            raise ValueError(f"birth_death must be a finite rate >= 0, got {birth_death!r}")
        if birth_death > 0 and n_particles < 2:
            raise ValueError(f"birth-death needs at least 2 particles, got n_particles={n_particles}; "
                             "pass birth_death=0 for a single particle")
        try:
            size = len(space)
        except TypeError:
            size = None
        self.n_particles = int(n_particles)
        if budget is not None:
            self._check_budget_value(budget)
        check_positive(dt=dt, c=c, c_p=c_p, potential_scale=potential_scale)
        one_of("jump_method", jump_method, ("exact", "single"))
        self.jump_method = jump_method
        if not 0 < restart_fraction <= 1:
            raise ValueError(f"restart_fraction must lie in (0, 1], got {restart_fraction!r}")
        if patience is not None and (not isinstance(patience, (int, np.integer)) or patience < 1):
            raise ValueError(f"patience must be None or a positive number of queries, got {patience!r}")
        if stall_rounds < 1 or refit_every < 1:
            raise ValueError("stall_rounds and refit_every must be >= 1")
        one_of("temperature_units", temperature_units, TEMPERATURE_UNITS)
        self.temperature_units = temperature_units
        self._spread: float | None = None      # "spread" units: robust spread of the initial values
        self._units_checked = False
        self._temperature_spec = temperature
        self._budget_given = budget is not None
        self.budget = int(budget) if budget is not None else DEFAULT_BUDGET
        self._T = temperature_schedule(temperature, self.budget)
        self._T(0.0, 0)  # validate a callable early
        self.rule, self.dt, self.birth_death, self.c, self.c_p = rule, float(dt), float(birth_death), float(c), float(c_p)
        one_of("potential", potential, POTENTIALS)
        self.potential = potential
        self.potential_scale = float(potential_scale)
        self._scores_n = -1
        self._scores: dict[str, float] = {}
        self._dcache: DistanceCache | None = None
        self._gp_cache: tuple[int, Any, dict[str, float]] | None = None
        self.surrogate = surrogate
        self.gp_options = dict(gp_options or {})
        self.refit_every = int(refit_every)
        self.stall_rounds, self.restart_fraction = int(stall_rounds), float(restart_fraction)
        self.patience = None if patience is None else int(patience)
        self.nonfinite, self.record_mass = nonfinite, bool(record_mass)
        self._space_size = size
        if graph is None:
            graph = ArchitectureGraph(space, distance=engine if engine is not None else distance, kernel=kernel,
                                      lengthscale=lengthscale, neighbours=neighbours, k=k)
        self.graph = graph
        # evolving state (everything below is in state_dict)
        self.particles: list[str] = []
        self.values: dict[str, float] = {}     # evaluated architecture -> value (finite)
        self.failed: dict[str, str] = {}       # architecture -> repr of its non-finite value
        self._pending: list[str] = []          # needed by the current round, not yet asked
        self._asked: list[str] = []            # asked, not yet told
        self._phase = "init"                   # "init" | "await" (a round waits for values) | "idle"
        self._prev: list[str] | None = None    # surrogate mode: positions before the jump
        self.round = 0
        self.t = 0.0
        self._free_rounds = 0
        self._epoch_start = 0                  # queries spent when the current annealing epoch began
        self._best = -math.inf                 # best value seen
        self._best_at = 0                      # queries spent when it was found
        self.phi: dict[str, float] = {}        # NASAGD velocity potential per architecture
        self.restarts: list[int] = []          # rounds at which NASAGD reset phi
        self.history: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self._gp_hyper: dict[str, float] | None = None
        self._gp_fit_at = 0
        self._gp_seed = int(self.rng.integers(2**31 - 1))

    # ------------------------------------------------------------------ budget
    def _check_budget_value(self, budget: Any) -> None:
        if not isinstance(budget, (int, np.integer)) or isinstance(budget, bool):
            raise ValueError(f"budget must be an integer, got {budget!r}")
        if budget < self.n_particles + 1:
            raise ValueError(f"budget={budget} cannot work with n_particles={self.n_particles}: the initial "
                             f"population alone costs {self.n_particles} queries and the flow needs at least "
                             "one more; raise the budget or lower n_particles")

    def set_budget(self, budget: int) -> None:
        """Set the query budget (and the annealing horizon) before any query is spent."""
        self._check_budget_value(budget)
        if self.n_spent or self._pending:
            raise ValueError(f"the flow's budget can only be set before its first query; {self.n_spent} are spent")
        self.budget, self._budget_given = int(budget), True
        self._T = temperature_schedule(self._temperature_spec, self.budget)

    def check_budget(self, budget: int) -> None:
        """Called by :func:`~hotnas.optimisers.base.run_search` with its budget (one source of truth).

        * a flow built without ``budget`` adopts ``budget`` (its schedule anneals over it);
        * a flow built with a budget too small for the rest of the run raises ValueError naming both
          numbers (it would otherwise stop early);
        * a run_search budget smaller than what is left, on a fresh flow, warns (the schedule anneals
          over the flow's budget, so it ends part-annealed) — resuming a run in pieces is legitimate.
        """
        budget = int(budget)
        if not self._budget_given and not self.n_spent:
            self.set_budget(budget)
            return
        left = self.budget - self.n_spent
        if budget > left:
            raise ValueError(f"run_search was given budget={budget} but this flow was built with budget="
                             f"{self.budget} ({self.n_spent} spent, {left} left): it would stop after {left} "
                             "queries. Build the flow without budget= (run_search sets it) or with the same budget")
        if budget < left and not self.n_spent:
            warnings.warn(f"run_search budget={budget} is smaller than the flow's budget={self.budget}: the "
                          f"temperature schedule anneals over {self.budget} queries and ends at progress "
                          f"{budget / self.budget:.2f}", UserWarning, stacklevel=3)

    # ------------------------------------------------------------------ bookkeeping
    @property
    def n_spent(self) -> int:
        """Queries spent or committed: evaluated + failed + asked and not yet told."""
        return len(self.values) + len(self.failed) + len(self._asked)

    def _known(self, a: str) -> bool:
        return a in self.values or a in self.failed

    def _progress(self) -> float:
        spent = len(self.values) + len(self.failed)
        return min(1.0, max(0.0, (spent - self._epoch_start) / max(1, self.budget - self._epoch_start)))

    def temperature(self) -> float:
        """The current temperature T(progress, queries spent in this annealing epoch)."""
        k = len(self.values) + len(self.failed) - self._epoch_start
        T = float(self._T(self._progress(), k))
        if not math.isfinite(T) or T <= 0:
            raise ValueError(f"the temperature schedule returned T = {T!r} at progress {self._progress():.3f}")
        return T

    def f(self, a: str) -> float:
        """The potential of an evaluated architecture (+inf when it failed)."""
        if a in self.failed:
            return math.inf
        if self.potential == "copula":
            if self._scores_n != len(self.values):
                X = list(self.values)
                z = TRANSFORMS["copula"](np.array([self.values[x] for x in X]))
                self._scores, self._scores_n = dict(zip(X, z.tolist())), len(X)
            return -self._scores[a] / self.potential_scale
        return -self.values[a] / self._unit()

    def _unit(self) -> float:
        """What divides a value to make the potential: ``potential_scale``, times (``"spread"`` units)
        the robust spread of the values observed when the dynamics first needs it (the initial
        population), frozen for the run."""
        if self.temperature_units == "spread" and self.potential == "value":
            if self._spread is None:
                self._spread = robust_spread(np.array(list(self.values.values())))
            return self.potential_scale * self._spread
        return self.potential_scale

    def _check_units(self) -> None:
        """Value units: warn once when the initial temperature exceeds the robust spread of the first
        values (the Boltzmann weights are then nearly flat: e.g. a table in fractions read with
        temperatures meant for percentages)."""
        if self._units_checked or self.temperature_units != "value" or self.potential != "value":
            return
        self._units_checked = True
        if len(self.values) < 2:
            return
        spread = robust_spread(np.array(list(self.values.values()))) / self.potential_scale
        T0 = self.temperature()
        if T0 > spread:
            msg = (f"flow: the temperature T={T0:.3g} exceeds the robust spread {spread:.3g} of the first "
                   f"{len(self.values)} values (potential units): the flow is close to a random walk. "
                   "Temperatures are in value units (the defaults assume accuracies in %); for values in "
                   "other units pass temperature_units='spread' or rescale the temperature")
            self._event("units_warning", T=T0, spread=spread)
            warnings.warn(msg, UserWarning, stacklevel=2)

    def _exhausted(self) -> bool:
        return self._space_size is not None and len(self.values) + len(self.failed) + len(self._asked) + len(
            self._pending) >= self._space_size

    def _random_unknown(self, taken: set[str]) -> str | None:
        """A uniformly random architecture neither evaluated nor in ``taken`` (None when none is left)."""
        if self._space_size is not None and len(self.values) + len(self.failed) + len(taken) >= self._space_size:
            if all(self._known(a) or a in taken for a in self.space.enumerate()):
                return None
        for _ in range(256):
            a = self.space.sample(self.rng)
            if not self._known(a) and a not in taken:
                return a
        if self._space_size is not None:  # nearly exhausted finite space: enumerate what is left
            left = [a for a in self.space.enumerate() if not self._known(a) and a not in taken]
            if left:
                return left[int(self.rng.integers(len(left)))]
        return None

    def _queue(self, archs: Sequence[str]) -> None:
        """Add new architectures to the pending list, in order, without duplicates, within budget."""
        room = self.budget - self.n_spent - len(self._pending)
        for a in archs:
            if room <= 0:
                break
            if not self._known(a) and a not in self._pending and a not in self._asked:
                self._pending.append(a)
                room -= 1

    # ------------------------------------------------------------------ ask / tell
    def ask(self, n: int = 1) -> list[str]:
        if n < 1:
            return []
        if not self._budget_given:
            warnings.warn(f"flow built without budget= and driven without run_search: annealing over "
                          f"{DEFAULT_BUDGET} queries; pass budget= (or call set_budget) to say otherwise",
                          UserWarning, stacklevel=2)
            self._budget_given = True
        out: list[str] = []
        free_guard = 0
        while len(out) < n and self.n_spent < self.budget:
            if self._pending:
                a = self._pending.pop(0)
                self._asked.append(a)
                out.append(a)
                continue
            if self._asked or self._exhausted():
                break  # the current round waits for values, or nothing is left to evaluate
            before = len(self._pending)
            self._advance()
            if len(self._pending) == before:
                free_guard += 1
                if free_guard > 10 * (self.stall_rounds + 2):  # pragma: no cover - defensive
                    log.warning("flow: no new proposal after %d free rounds; stopping", free_guard)
                    break
        return out

    def tell(self, evals: list[Evaluation]) -> None:
        evals = self.check_evaluations(evals)
        good = []
        for ev in evals:
            if ev.arch in self._asked:
                self._asked.remove(ev.arch)
            if ev.arch in self._pending:
                self._pending.remove(ev.arch)
            if not math.isfinite(ev.value):
                if self.nonfinite == "raise":
                    raise ValueError(f"evaluation of {ev.arch!r} is not finite: {ev.value!r} (nonfinite='raise')")
                self.failed[ev.arch] = repr(ev.value)
                self._seen.add(ev.arch)
                self._event("nonfinite", arch=ev.arch, value=repr(ev.value))
                log.warning("flow: %s evaluated to %r; marked failed (policy %r)", ev.arch, ev.value, self.nonfinite)
                continue
            good.append(ev)
            self.values[ev.arch] = float(ev.value)
            if ev.value > self._best:
                self._best, self._best_at = float(ev.value), len(self.values) + len(self.failed)
        super().tell(good)
        if not self._asked and not self._pending and self._phase == "await":
            self._finish_round()

    def _event(self, kind: str, **info: Any) -> None:
        self.events.append({"kind": kind, "round": self.round, "n_queries": len(self.values) + len(self.failed),
                            **info})

    # ------------------------------------------------------------------ the dynamics
    def _advance(self) -> None:
        """Start the next round (the previous one is finished); may queue proposals."""
        if self._phase == "init":
            taken: set[str] = set()
            room = self.budget - self.n_spent - len(self._pending)
            evaluated = list(self.values)
            for _ in range(self.n_particles):
                # distinct unevaluated architectures while the budget pays for them; else evaluated
                # ones (a warm start that told values up front, a re-seed late in the run), shared
                # when N exceeds what is available
                a = self._random_unknown(taken) if room > 0 else None
                if a is not None:
                    room -= 1
                elif evaluated:
                    a = evaluated[int(self.rng.integers(len(evaluated)))]
                else:
                    break
                taken.add(a)
                self.particles.append(a)
            self._queue(self.particles)
            self._phase = "await"
            if not self._pending:
                self._finish_round()
            return
        self._start_round()

    def _start_round(self) -> None:
        spent = len(self.values) + len(self.failed)
        if (self.patience is not None and spent - max(self._best_at, self._epoch_start) >= self.patience
                and self.budget - spent > self.n_particles):
            self._new_epoch()
            return
        T = self.temperature()
        if self.birth_death > 0 and len(self.particles) >= 2:
            self._birth_death(T)
        if self.surrogate == "gp":
            self._surrogate_jump(T)
        else:
            props = [self.graph.sample_neighbour(a, self.rng) for a in self.particles]
            self._queue([p for p in props if not self._known(p)])
        self._phase = "await"
        if self._pending:
            self._free_rounds = 0
        else:
            self._free_rounds += 1
            if self._free_rounds >= self.stall_rounds:
                self._restart()
        if not self._pending:
            self._finish_round()

    def _finish_round(self) -> None:
        """All values of the round are in: handle failures, jump (unless done already), record."""
        self._phase = "idle"
        self._check_units()
        self._handle_failed_particles()
        if self.round > 0 and self.surrogate is None and self.particles:
            self._jump(self.temperature())
        self._prev = None
        self.round += 1
        self.t += self.dt
        if self.record_mass:
            counts: dict[str, int] = {}
            for a in self.particles:
                counts[a] = counts.get(a, 0) + 1
            self.history.append({"round": self.round, "n_queries": len(self.values) + len(self.failed),
                                 "T": self.temperature(), "mass": counts})

    def _handle_failed_particles(self) -> None:
        bad = [i for i, a in enumerate(self.particles) if a in self.failed]
        if not bad:
            return
        if self._prev is not None:  # surrogate mode: step back to where the particle came from
            for i in bad:
                self.particles[i] = self._prev[i]
            self._event("nonfinite_step_back", particles=bad)
            bad = [i for i, a in enumerate(self.particles) if a in self.failed]
            if not bad:
                return
        healthy = [i for i in range(len(self.particles)) if i not in set(bad)]
        if self.nonfinite == "kill" or not healthy:
            self.particles = [self.particles[i] for i in healthy]
            self._event("nonfinite_kill", particles=bad)
            log.warning("flow: killed %d particle(s) on failed architectures", len(bad))
            if not self.particles:
                self._event("reseed", reason="population empty")
                log.warning("flow: every particle died; re-seeding the population at random")
                self._phase = "init"
                self.particles = []
            return
        for i in bad:
            self.particles[i] = self.particles[healthy[int(self.rng.integers(len(healthy)))]]
        self._event("nonfinite_reset", particles=bad)
        log.warning("flow: reset %d particle(s) on failed architectures to healthy ones", len(bad))

    def _new_epoch(self) -> None:
        """No improvement for ``patience`` queries: the whole population restarts at random
        architectures (the cache of values is kept) and the schedule anneals again over the rest
        of the budget."""
        self._epoch_start = len(self.values) + len(self.failed)
        self._T = temperature_schedule(self._temperature_spec, self.budget - self._epoch_start)
        self._event("epoch", reason=f"no improvement in {self.patience} queries")
        self.particles = []
        self.phi = {}
        self._free_rounds = 0
        self._phase = "init"
        self._advance()

    def _restart(self) -> None:
        room = self.budget - self.n_spent - len(self._pending)
        n = min(room, max(1, int(round(self.restart_fraction * len(self.particles)))))
        if n <= 0:
            return
        idx = self.rng.choice(len(self.particles), size=n, replace=False)
        taken: set[str] = set(self._pending)
        moved = []
        for i in sorted(int(j) for j in idx):
            a = self._random_unknown(taken)
            if a is None:
                break
            taken.add(a)
            self.particles[i] = a
            moved.append(i)
        self._queue([self.particles[i] for i in moved])
        self._free_rounds = 0
        self._event("restart", particles=moved)

    # --- sdot steps on the exported subgraph ---------------------------------------------------
    def _local(self, include_unknown: bool) -> tuple[list[str], dict[str, int]]:
        """Occupied nodes and their (evaluated, or all) neighbours, occupied first, in a fixed order."""
        nodes = list(dict.fromkeys(self.particles))
        for a in list(nodes):
            names, _ = self.graph.neighbours(a)
            for h in names:
                if h in self.failed:
                    continue
                if include_unknown or h in self.values:
                    nodes.append(h)
        nodes = list(dict.fromkeys(nodes))
        return nodes, {a: i for i, a in enumerate(nodes)}

    def _state(self, index: dict[str, int]) -> ParticleState:
        return ParticleState.from_labels(np.array([index[a] for a in self.particles], dtype=np.int64), rng=self.rng)

    def _birth_death(self, T: float) -> None:
        nodes = list(dict.fromkeys(self.particles))
        index = {a: i for i, a in enumerate(nodes)}
        space = self.graph.subgraph(nodes)
        fvals = np.array([self.f(a) for a in nodes])
        pot = table_potential(fvals)
        st = self._state(index)
        birth_death_step(st, space, pot, T, self.birth_death * self.dt, density="kde", nonfinite="freeze")
        self.particles = [nodes[int(i)] for i in st.g]

    def _jump(self, T: float) -> None:
        nodes, index = self._local(include_unknown=False)
        if len(nodes) < 2:
            return
        space = self.graph.subgraph(nodes)
        fvals = np.array([self.f(a) for a in nodes])
        st = self._state(index)
        self._apply_rule(st, space, nodes, fvals, T)
        self.particles = [nodes[int(i)] for i in st.g]

    def _apply_rule(self, st: ParticleState, space: Any, nodes: list[str], fvals: np.ndarray, T: float) -> None:
        """One jump step of the configured rule on the exported subgraph (labels in ``st``)."""
        if self.rule == "flow":
            jump_step(st, space, table_potential(self._capped(fvals, T)), self.law, T, self.dt,
                      method=self.jump_method, nonfinite="freeze")
            return
        with warnings.catch_warnings():
            # the explicit NAS rules split a step whose probabilities sum past 1 into sub-steps
            warnings.simplefilter("ignore", RuntimeWarning)
            if self.rule == "nasgd":
                nasgd_step(st, space, fvals, self.dt, self.c, nonfinite="freeze")
                return
            # NASAGD integrates energies into phi, so their baseline matters: E = f - min f >= 0 over the
            # evaluated architectures (a loss-like energy, zero at the best, as the reference code's
            # cross-entropy); new architectures enter with phi = 0
            energies = fvals - self._f_min()
            rule = NASAGD(space, dt=self.dt, c=self.c, c_p=self.c_p, nonfinite="freeze")
            rule.phi = np.array([self.phi.get(a, 0.0) for a in nodes])
            rule.step(st, energies)
        if rule.restarts:
            self.restarts.append(self.round)
        for a, v in zip(nodes, rule.phi):
            self.phi[a] = float(v)

    def _f_min(self) -> float:
        return min((self.f(a) for a in self.values), default=0.0)

    def _capped(self, fvals: np.ndarray, T: float) -> np.ndarray:
        """The one overflow policy of :mod:`sdot.jump` on the table of node values (glauber: capped at
        ``min f + GAP_CAP T``, a rate of exp(500) being instantaneous at any dt; other laws unchanged)."""
        return cap_potential(fvals, T, self.law)

    def advance(self, rounds: int) -> int:
        """Run up to ``rounds`` rounds that need no new evaluation (the dynamics on the evaluated part
        of G, e.g. after a warm start that told every architecture); stops at the first round that
        proposes an unevaluated architecture (it is then pending for :meth:`ask`). Returns the number
        of rounds completed."""
        done = 0
        while done < rounds and not self._pending and not self._asked:
            start = self.round
            self._advance()
            if self.round == start:
                break
            done += 1
        return done

    # ------------------------------------------------------------------ diagnostics
    def mass(self) -> dict[str, float]:
        """Current node masses N_g / N of the occupied architectures."""
        out: dict[str, float] = {}
        for a in self.particles:
            out[a] = out.get(a, 0.0) + 1.0 / len(self.particles)
        return out

    # ------------------------------------------------------------------ persistence
    def state_dict(self) -> dict[str, Any]:
        s = super().state_dict()
        s.update({
            "particles": list(self.particles), "values": dict(self.values), "failed": dict(self.failed),
            "pending": list(self._pending), "asked": list(self._asked), "phase": self._phase,
            "prev": None if self._prev is None else list(self._prev), "round": self.round, "t": self.t,
            "free_rounds": self._free_rounds, "epoch_start": self._epoch_start, "best": self._best if math.isfinite(self._best) else None,
            "best_at": self._best_at, "phi": dict(self.phi), "restarts": list(self.restarts),
            "history": [dict(h, mass=dict(h["mass"])) for h in self.history],
            "events": [dict(e) for e in self.events], "gp_hyper": None if self._gp_hyper is None else dict(self._gp_hyper),
            "gp_fit_at": self._gp_fit_at, "gp_seed": self._gp_seed, "seen": sorted(self._seen),
            "budget": self.budget, "budget_given": self._budget_given, "spread": self._spread,
            "units_checked": self._units_checked,
        })
        return s

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.particles = list(state["particles"])
        self.values = {a: float(v) for a, v in state["values"].items()}
        self.failed = dict(state["failed"])
        self._pending, self._asked = list(state["pending"]), list(state["asked"])
        self._phase = state["phase"]
        self._prev = None if state["prev"] is None else list(state["prev"])
        self.round, self.t, self._free_rounds = int(state["round"]), float(state["t"]), int(state["free_rounds"])
        self._epoch_start, self._best_at = int(state["epoch_start"]), int(state["best_at"])
        if "budget" in state:
            self.budget, self._budget_given = int(state["budget"]), bool(state["budget_given"])
            self._spread = None if state["spread"] is None else float(state["spread"])
            self._units_checked = bool(state["units_checked"])
        self._T = temperature_schedule(self._temperature_spec, self.budget - self._epoch_start)
        self._best = -math.inf if state["best"] is None else float(state["best"])
        self.phi = {a: float(v) for a, v in state["phi"].items()}
        self.restarts = list(state["restarts"])
        self.history = [dict(h, mass=dict(h["mass"])) for h in state["history"]]
        self.events = [dict(e) for e in state["events"]]
        self._gp_hyper = None if state["gp_hyper"] is None else dict(state["gp_hyper"])
        self._gp_fit_at, self._gp_seed = int(state["gp_fit_at"]), int(state["gp_seed"])
        self._seen = set(state["seen"])
