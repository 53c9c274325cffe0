"""What the two trainable-mode flows share: :class:`hotnas.flows.trainable.TrainableFlow` (weights of a
weight-sharing supernet per particle) and :class:`hotnas.flows.independent.IndependentFlow` (a
stand-alone network per particle), and their one result type :class:`FlowResult`.

Both evolve N particles (x_i, g_i) on sklearn digits by Lie splitting of the same semi-discrete flow
[spec ``semi-discrete-flow.md`` 4.3, 7.2]: a diffusion step in x on one minibatch shared by all
particles, a jump on G every ``jump_every`` steps at the architecture temperature T, validation
scoring every ``eval_every`` steps, and at the end a from-scratch retraining of the best
architectures seen. :class:`FlowBase` holds the model-free part — settings checks, random streams,
initial architectures, the T and learning-rate schedules, the minibatch stream, the NaN policy, the
step / evaluation loop with its compute accounting, and the final retraining — and a subclass
supplies the model through the hooks ``_diffuse``, ``_jump``, ``_score_validation``,
``_select_state``, ``_copy_state`` and :meth:`FlowBase.steps_for_epochs`. Both jump through
:func:`sdot.jump.propose_accept` (one acceptance, one overflow policy) with proposals from
:meth:`hotnas.graph.ArchitectureGraph.propose`.

Compute is counted in training epochs (:mod:`hotnas.training`: examples passed forward and backward /
training-set size; a forward-only pass costs ``FORWARD_COST = 1/3`` of that).
"""

from __future__ import annotations

import logging
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from sdot.rates import RateLaw, get_rate_law
from sdot.validation import check_nonnegative, check_positive, one_of

from ..benchmarks.trainable import torch_threads
from ..datasets import DigitsData, load_digits_splits
from ..spaces.nb201 import NB201Space
from ..supernet import NetConfig
from ..training import FORWARD_COST, LR_SCHEDULES, MinibatchStream, learning_rate, retrain_finalists
from .schedules import temperature_schedule

__all__ = ["FlowBase", "FlowResult", "FORWARD_COST", "NONFINITE_POLICIES", "LR_SCHEDULES", "check_positive",
           "check_nonnegative", "jump_rate_law"]

log = logging.getLogger("hotnas.flow")

NONFINITE_POLICIES = ("reset", "kill", "raise")


def jump_rate_law(law: str | RateLaw) -> RateLaw:
    """The :mod:`sdot.rates` law named ``law``; ValueError for a nonlinear law (it has no jump rate)."""
    rate_law = get_rate_law(law)
    if not rate_law.linear:
        raise ValueError(f"rate law {law!r} has no jump rate (nonlinear); use glauber, metropolis or upwind")
    return rate_law


@dataclass
class FlowResult:
    """Outcome of :meth:`FlowBase.run` (both trainable flows; the one result type).

    ``best_arch``: the retrained architecture with the best validation accuracy; ``val_acc``,
    ``test_acc``: its from-scratch numbers (%); ``candidates``: every retrained architecture as
    ``(arch, val % seen during the flow, retrained val %, retrained test %)``; ``epochs``: total compute
    (flow phase + retraining) in training epochs; ``flow_epochs`` (the flow phase: supernet training for
    the supernet flow; ``supernet_epochs`` is a read-only alias), ``retrain_epochs``; ``seconds``: wall
    clock; ``history``: per evaluation the step, epochs, temperature and the particles' (arch, val %, ...);
    ``events``: NaN handling and other incidents; ``n_proposed``, ``n_accepted``: jump counts; ``jumps``:
    one record per proposal where the flow keeps them (the independent flow: step, particle, from, to,
    f_from, f_to, p, accepted, copied, distance_before / distance_after, init_seconds, and with
    ``track_jump_val`` val_loss_before / val_loss_after on accepted jumps); ``jump_init``: the jump
    kernel of the independent flow (None for the supernet flow, whose weights travel with the particle).
    """

    best_arch: str | None
    val_acc: float | None
    test_acc: float | None
    candidates: list[tuple[str, float, float, float | None]] = field(default_factory=list)
    epochs: float = 0.0
    flow_epochs: float = 0.0
    retrain_epochs: float = 0.0
    seconds: float = 0.0
    history: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    jumps: list[dict[str, Any]] = field(default_factory=list)
    n_proposed: int = 0
    n_accepted: int = 0
    jump_init: str | None = None

    @property
    def supernet_epochs(self) -> float:
        """Read-only alias of :attr:`flow_epochs` (the name of the supernet flow's results before issue 14)."""
        return self.flow_epochs

    def accepted_jumps(self) -> list[dict[str, Any]]:
        return [j for j in self.jumps if j["accepted"]]

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class FlowBase(ABC):
    """Model-free scaffolding of a trainable-mode flow (module docstring).

    State shared by the subclasses: ``archs`` (N architecture strings), ``rng`` (numpy: proposals,
    donors, acceptance draws), ``gen`` (torch: minibatch order and noise), ``step_count`` /
    ``total_steps``, ``epochs`` / ``seconds`` (accounted compute, wall clock), ``val_seen`` (arch ->
    best validation accuracy seen), ``history``, ``events``, ``n_proposed`` / ``n_accepted``.
    """

    #: Prefix of the NaN-policy warnings on the ``hotnas.flow`` logger.
    _log_name = "flow"
    #: What a non-finite diffusion step is reported as (NaN policy).
    _diffusion_failure = "loss or weights"
    #: The jump kernel reported in the result (the independent flow's ``jump_init``).
    jump_init: str | None = None

    archs: list[str]

    # ------------------------------------------------------------------ set-up
    def _setup(self, space: NB201Space | None, data: DigitsData | None, config: NetConfig | None, *,
               n_particles: int, lr: float, lr_schedule: str, weight_decay: float, weight_temperature: float,
               law: str, temperature: float | tuple[float, float] | Callable[[float], float], jump_dt: float,
               jump_every: int, batch_size: int, eval_every: int, nonfinite: str, seed: int,
               num_threads: int | None) -> None:
        """Check and store the settings both flows share; seed ``rng`` and ``gen`` from ``seed``.

        Raises ValueError naming the bad value: N not a positive integer; lr, jump_dt not finite > 0;
        weight_temperature, weight_decay not finite >= 0; batch_size < 2 or above the training set;
        jump_every, eval_every < 1; an unknown lr_schedule, nonfinite policy or rate law; a nonlinear
        law (no jump rate); T = 0 with a law that needs T > 0 (upwind needs none); a bad schedule.
        """
        if not isinstance(n_particles, (int, np.integer)) or isinstance(n_particles, bool) or n_particles < 1:
            raise ValueError(f"n_particles must be a positive integer, got {n_particles!r}")
        check_positive(lr=lr, jump_dt=jump_dt)
        check_nonnegative(weight_temperature=weight_temperature, weight_decay=weight_decay)
        if batch_size < 2:
            raise ValueError(f"batch_size must be >= 2, got {batch_size!r}")
        if jump_every < 1 or eval_every < 1:
            raise ValueError(f"jump_every and eval_every must be >= 1, got {jump_every!r} and {eval_every!r}")
        one_of("lr_schedule", lr_schedule, LR_SCHEDULES)
        one_of("nonfinite", nonfinite, NONFINITE_POLICIES)
        self.law = jump_rate_law(law)
        self._zero_T = isinstance(temperature, (int, float)) and not isinstance(temperature, bool) and temperature == 0
        if self._zero_T and self.law.needs_temperature:
            raise ValueError(f"temperature=0 needs law='upwind'; rate law {self.law.name!r} needs T > 0")
        self._temperature = temperature
        self._T = None if self._zero_T else temperature_schedule(temperature, 1)  # validates early
        self.space = space or NB201Space()
        self.data = data if data is not None else load_digits_splits(0)
        if batch_size > self.n_train:
            raise ValueError(f"batch_size={batch_size} exceeds the {self.n_train} training images")
        self.config = config or NetConfig()
        self.n_particles = int(n_particles)
        self.lr, self.lr_schedule = float(lr), lr_schedule
        self.weight_decay, self.weight_temperature = float(weight_decay), float(weight_temperature)
        self.jump_dt, self.jump_every = float(jump_dt), int(jump_every)
        self.batch_size, self.eval_every = int(batch_size), int(eval_every)
        self.nonfinite = nonfinite
        self.num_threads = num_threads
        self.seed = int(seed)
        self.rng = np.random.default_rng(seed)
        self.gen = torch.Generator().manual_seed(int(seed))

    def _initial_archs(self, init: str | Sequence[str]) -> list[str]:
        """``"random"``: N distinct architectures drawn from ``rng`` (repeats only once the space is
        exhausted); else the N given architectures, canonicalised."""
        if isinstance(init, str):
            if init != "random":
                raise ValueError(f"init must be 'random' or a list of architectures, got {init!r}")
            archs: list[str] = []
            while len(archs) < self.n_particles:
                a = self.space.sample(self.rng)
                if a not in archs or len(archs) >= len(self.space):
                    archs.append(a)
            return archs
        archs = [self.space.canonical(a) for a in init]
        if len(archs) != self.n_particles:
            raise ValueError(f"init lists {len(archs)} architectures for {self.n_particles} particles")
        return archs

    def _start_counters(self) -> None:
        """Zero the counters and logs; draw the first minibatch order from ``gen``."""
        self.step_count = 0
        self.total_steps = 1
        self.epochs = 0.0
        self.seconds = 0.0
        self.val_seen: dict[str, float] = {}     # arch -> best validation accuracy seen
        self.history: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.n_accepted = 0
        self.n_proposed = 0
        self.jumps: list[dict[str, Any]] = []  # per-proposal records, where a flow keeps them
        self._stream = MinibatchStream(self.n_train, self.batch_size, self.gen)

    # ------------------------------------------------------------------ helpers
    @property
    def n_train(self) -> int:
        return int(self.data.x_train.shape[0])

    def temperature(self) -> float:
        """Architecture temperature T at the current step: the schedule at progress
        ``step_count / total_steps`` (0 for a zero-temperature run)."""
        if self._zero_T:
            return 0.0
        T = float(self._T(min(1.0, self.step_count / max(1, self.total_steps)), self.step_count))
        if not math.isfinite(T) or T <= 0:
            raise ValueError(f"the temperature schedule returned T = {T!r}")
        return T

    def _lr(self) -> float:
        """:func:`hotnas.training.learning_rate` at progress ``step_count / total_steps``."""
        if self.lr_schedule == "constant":
            return self.lr
        return learning_rate(self.lr, self.lr_schedule, self.step_count / max(1, self.total_steps))

    def _minibatch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The next ``batch_size`` training examples (:class:`hotnas.training.MinibatchStream`)."""
        idx = self._stream.next()
        return self.data.x_train[idx], self.data.y_train[idx]

    def set_horizon(self, total_steps: int) -> None:
        """The run spans ``total_steps`` steps: the temperature and lr schedules anneal over them."""
        self.total_steps = int(total_steps)
        if not self._zero_T:
            self._T = temperature_schedule(self._temperature, self.total_steps)

    def _event(self, kind: str, **info: Any) -> None:
        self.events.append({"kind": kind, "step": self.step_count, **info})

    # ------------------------------------------------------------------ NaN policy
    def _handle_nonfinite(self, bad: Sequence[int], what: str) -> None:
        """Apply the NaN policy to particles ``bad`` (indices): raise, kill them, or reset each to a copy
        of a healthy particle drawn uniformly (with replacement) from ``rng``."""
        bad = [int(i) for i in bad]
        if not bad:
            return
        if self.nonfinite == "raise":
            raise FloatingPointError(f"particles {bad} met a non-finite {what} at step {self.step_count}")
        drop = set(bad)
        healthy = [i for i in range(len(self.archs)) if i not in drop]
        if self.nonfinite == "kill":
            if not healthy:
                raise RuntimeError(f"every particle met a non-finite {what}; nothing left to run")
            self._select_particles(healthy)
            self._event("nonfinite_kill", particles=bad, what=what)
            log.warning("%s: killed particle(s) %s (non-finite %s)", self._log_name, bad, what)
            return
        if not healthy:
            raise RuntimeError(f"every particle met a non-finite {what}; nothing to reset from")
        donors = [healthy[int(k)] for k in self.rng.integers(len(healthy), size=len(bad))]
        for i, j in zip(bad, donors):
            self.archs[i] = self.archs[j]
        self._copy_state(bad, donors)
        self._event("nonfinite_reset", particles=bad, donors=donors, what=what)
        log.warning("%s: reset particle(s) %s to copies of %s (non-finite %s)", self._log_name, bad, donors, what)

    def _select_particles(self, idx: Sequence[int]) -> None:
        """The particles ``idx`` (in that order, repeats allowed) become the population."""
        self.archs = [self.archs[int(j)] for j in idx]
        self._select_state(idx)

    @abstractmethod
    def _select_state(self, idx: Sequence[int]) -> None:
        """Re-index the per-particle model state by ``idx`` (as :meth:`_select_particles`)."""

    @abstractmethod
    def _copy_state(self, dst: list[int], src: list[int]) -> None:
        """Particle ``dst[k]`` takes an independent copy of the model state of ``src[k]``."""

    # ------------------------------------------------------------------ one step
    def step(self) -> None:
        """One diffusion step of every particle (and a jump step when due), on ``num_threads`` threads."""
        with torch_threads(self.num_threads):
            self._step()

    def _step(self) -> None:
        t0 = time.perf_counter()
        xb, yb = self._minibatch()
        N = len(self.archs)
        bad = self._diffuse(xb, yb, self._lr())
        self.epochs += N * self.batch_size / self.n_train
        self._handle_nonfinite(bad, self._diffusion_failure)
        self.step_count += 1
        if self.step_count % self.jump_every == 0:
            self._jump(xb, yb)
            self._after_jump()
        self.seconds += time.perf_counter() - t0

    @abstractmethod
    def _diffuse(self, xb: torch.Tensor, yb: torch.Tensor, lr: float) -> Sequence[int]:
        """One step in x of every particle on the minibatch (xb, yb) at step size ``lr``; returns the
        particles whose loss or weights became non-finite (left for the NaN policy)."""

    @abstractmethod
    def _jump(self, xb: torch.Tensor, yb: torch.Tensor) -> None:
        """One jump step on G, proposals evaluated on the minibatch (xb, yb)."""

    def _after_jump(self) -> None:
        """Called after every jump step (no-op here)."""

    # ------------------------------------------------------------------ validation scoring
    def evaluate(self) -> list[float]:
        """Validation accuracy (%) of every particle with its own weights; records the history."""
        t0 = time.perf_counter()
        accs, rows = self._score_validation()
        self.epochs += FORWARD_COST * len(self.archs) * self.data.x_val.shape[0] / self.n_train
        per_arch: dict[str, list[float]] = {}
        for a, v in zip(self.archs, accs):
            per_arch.setdefault(a, []).append(v)
        for a, vs in per_arch.items():
            m = float(np.mean(vs))
            if math.isfinite(m) and m > self.val_seen.get(a, -math.inf):
                self.val_seen[a] = m
        self.history.append({"step": self.step_count, "epochs": self.epochs, "T": self.temperature(),
                             "particles": rows})
        self.seconds += time.perf_counter() - t0
        return accs

    @abstractmethod
    def _score_validation(self) -> tuple[list[float], list[list[Any]]]:
        """(validation accuracy % per particle, the history row ``[arch, acc, ...]`` per particle)."""

    # ------------------------------------------------------------------ driver
    @abstractmethod
    def steps_for_epochs(self, epochs: float) -> int:
        """Number of steps whose accounted cost fits in ``epochs``."""

    def run(self, steps: int | None = None, *, epochs: float | None = None, benchmark: Any = None,
            n_final: int = 2, callback: Callable[[Any], None] | None = None) -> FlowResult:
        """Run the flow for ``steps`` (or the steps whose cost fits in ``epochs``), then retrain the
        ``n_final`` best architectures by validation accuracy seen (weight-shared for the supernet flow)
        with ``benchmark`` (``benchmark.query(arch)`` must train from scratch and return an Evaluation;
        None skips retraining; it trains under its own thread setting). Raises ValueError when the budget
        does not allow one step."""
        if (steps is None) == (epochs is None):
            raise ValueError("give exactly one of steps= or epochs=")
        if steps is None:
            steps = self.steps_for_epochs(float(epochs))
        if steps < 1:
            raise ValueError(f"the budget allows {steps} steps; the flow needs at least one "
                             f"(raise epochs= or lower n_particles={self.n_particles})")
        if n_final < 0:
            raise ValueError(f"n_final must be >= 0, got {n_final}")
        self.set_horizon(self.step_count + int(steps))
        self.advance_to(self.total_steps, callback)
        return self._finalise(benchmark, n_final)

    def advance_to(self, step: int, callback: Callable[[Any], None] | None = None) -> None:
        """Step (on ``num_threads`` threads) until ``step_count == step``, scoring every ``eval_every`` steps
        and at the last step of the run (``callback(self)`` after each scoring)."""
        with torch_threads(self.num_threads):
            while self.step_count < step:
                self._step()
                if self.step_count % self.eval_every == 0 or self.step_count == self.total_steps:
                    self.evaluate()
                    if callback is not None:
                        callback(self)

    def ranking(self) -> list[tuple[str, float]]:
        """Architectures by best validation accuracy seen (descending, ties by name)."""
        return sorted(self.val_seen.items(), key=lambda kv: (-kv[1], kv[0]))

    def _finalise(self, benchmark: Any, n_final: int) -> FlowResult:
        """Retrain the ``n_final`` first of :meth:`ranking`; the best by retrained validation accuracy wins."""
        ranked = self.ranking()[:n_final] if benchmark is not None else []
        cands, retrain_epochs, retrain_seconds = retrain_finalists(benchmark, ranked)
        best = max(cands, key=lambda c: c[2]) if cands else None
        return FlowResult(
            best_arch=best[0] if best else (self.ranking()[0][0] if self.val_seen else None),
            val_acc=best[2] if best else None, test_acc=best[3] if best else None, candidates=cands,
            epochs=self.epochs + retrain_epochs, flow_epochs=self.epochs, retrain_epochs=retrain_epochs,
            seconds=self.seconds + retrain_seconds, history=list(self.history), events=list(self.events),
            jumps=[dict(j) for j in self.jumps], n_proposed=self.n_proposed, n_accepted=self.n_accepted,
            jump_init=self.jump_init)
