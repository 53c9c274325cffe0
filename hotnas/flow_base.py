"""What the two trainable-mode flows share: :class:`hotnas.flow_trainable.TrainableFlow` (weights of a
weight-sharing supernet per particle) and :class:`hotnas.flow_independent.IndependentFlow` (a
stand-alone network per particle).

Both evolve N particles (x_i, g_i) on sklearn digits by Lie splitting of the same semi-discrete flow
[spec ``semi-discrete-flow.md`` 4.3, 7.2]: a diffusion step in x on one minibatch shared by all
particles, a jump on G every ``jump_every`` steps at the architecture temperature T, validation
scoring every ``eval_every`` steps, and at the end a from-scratch retraining of the best
architectures seen. :class:`FlowBase` holds the model-free part — settings checks, random streams,
initial architectures, the T and learning-rate schedules, the minibatch stream, the NaN policy, the
step / evaluation loop with its compute accounting, and the final retraining — and a subclass
supplies the model through the hooks ``_diffuse``, ``_jump``, ``_score_validation``,
``_select_state``, ``_copy_state``, ``_result`` and :meth:`FlowBase.steps_for_epochs`.

Compute is counted in training epochs (examples passed forward and backward / training-set size);
a forward-only pass costs ``FORWARD_COST = 1/3`` of that.
"""

from __future__ import annotations

import logging
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from sdot.rates import RateLaw, get_rate_law

from .benchmarks.trainable import torch_threads
from .datasets import DigitsData, load_digits_splits
from .optimisers.flow import temperature_schedule
from .spaces.nb201 import NB201Space
from .supernet import NetConfig

if TYPE_CHECKING:
    from .flow_trainable import TrainableFlowResult

__all__ = ["FlowBase", "FORWARD_COST", "NONFINITE_POLICIES", "LR_SCHEDULES", "check_positive",
           "check_nonnegative", "jump_rate_law"]

log = logging.getLogger("hotnas.flow")

#: Cost of a forward-only pass relative to a forward + backward pass (epoch accounting).
FORWARD_COST = 1.0 / 3.0
NONFINITE_POLICIES = ("reset", "kill", "raise")
LR_SCHEDULES = ("constant", "cosine")


def _is_finite(v: Any) -> bool:
    try:
        return math.isfinite(v)
    except TypeError:  # not a number: refused with the caller's ValueError
        return False


def check_positive(**values: Any) -> None:
    """Raise ValueError naming the first of ``values`` that is not a finite number > 0."""
    for name, v in values.items():
        if not _is_finite(v) or v <= 0:
            raise ValueError(f"{name} must be a finite number > 0, got {v!r}")


def check_nonnegative(**values: Any) -> None:
    """Raise ValueError naming the first of ``values`` that is not a finite number >= 0."""
    for name, v in values.items():
        if not _is_finite(v) or v < 0:
            raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")


def jump_rate_law(law: str) -> RateLaw:
    """The :mod:`sdot.rates` law named ``law``; ValueError for a nonlinear law (it has no jump rate)."""
    rate_law = get_rate_law(law)
    if not rate_law.linear:
        raise ValueError(f"rate law {law!r} has no jump rate; use glauber, metropolis or upwind")
    return rate_law


class FlowBase(ABC):
    """Model-free scaffolding of a trainable-mode flow (module docstring).

    State shared by the subclasses: ``archs`` (N architecture strings), ``rng`` (numpy: proposals,
    donors, acceptance draws), ``gen`` (torch: minibatch order and noise), ``step_count`` /
    ``total_steps``, ``epochs`` / ``seconds`` (accounted compute, wall clock), ``val_seen`` (arch ->
    best validation accuracy seen), ``history``, ``events``, ``n_proposed`` / ``n_accepted``.
    """

    #: Prefix of the NaN-policy warnings on the ``hotnas.flow`` logger.
    _log_name = "flow"
    #: Whether ``temperature=0`` is accepted (then only with a law that needs no T, i.e. upwind).
    _zero_temperature_ok = False
    #: Whether the final retraining runs under the flow's ``num_threads`` (else the caller's setting).
    _retrain_in_flow_threads = False
    #: What a non-finite diffusion step is reported as (NaN policy).
    _diffusion_failure = "loss or weights"

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
        law (no jump rate); T = 0 where not allowed or with a law that needs T > 0; a bad schedule.
        """
        if not isinstance(n_particles, (int, np.integer)) or isinstance(n_particles, bool) or n_particles < 1:
            raise ValueError(f"n_particles must be a positive integer, got {n_particles!r}")
        check_positive(lr=lr, jump_dt=jump_dt)
        check_nonnegative(weight_temperature=weight_temperature, weight_decay=weight_decay)
        if batch_size < 2:
            raise ValueError(f"batch_size must be >= 2, got {batch_size!r}")
        if jump_every < 1 or eval_every < 1:
            raise ValueError(f"jump_every and eval_every must be >= 1, got {jump_every!r} and {eval_every!r}")
        for name, value, options in (("lr_schedule", lr_schedule, LR_SCHEDULES),
                                     ("nonfinite", nonfinite, NONFINITE_POLICIES)):
            if value not in options:
                raise ValueError(f"{name} must be one of {options}, got {value!r}")
        self.law = jump_rate_law(law)
        self._zero_T = self._zero_temperature_ok and isinstance(temperature, (int, float)) \
            and not isinstance(temperature, bool) and temperature == 0
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
        self._order = torch.randperm(self.n_train, generator=self.gen)
        self._pos = 0

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
        """``lr`` (constant) or ``max(1e-6 lr, lr (1 + cos(pi s)) / 2)``, s = step_count / total_steps (cosine)."""
        if self.lr_schedule == "constant":
            return self.lr
        s = min(1.0, self.step_count / max(1, self.total_steps))
        return max(1e-6 * self.lr, 0.5 * self.lr * (1.0 + math.cos(math.pi * s)))

    def _minibatch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The next ``batch_size`` training examples of a random order drawn anew once it runs out."""
        n = self.n_train
        if self._pos + self.batch_size > n:
            self._order, self._pos = torch.randperm(n, generator=self.gen), 0
        idx = self._order[self._pos:self._pos + self.batch_size]
        self._pos += self.batch_size
        return self.data.x_train[idx], self.data.y_train[idx]

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
            n_final: int = 2, callback: Callable[[Any], None] | None = None) -> "TrainableFlowResult":
        """Run the flow for ``steps`` (or the steps whose cost fits in ``epochs``), then retrain the
        ``n_final`` best architectures by validation accuracy seen (weight-shared for the supernet flow)
        with ``benchmark`` (``benchmark.query(arch)`` must train from scratch and return an Evaluation;
        None skips retraining). Raises ValueError when the budget does not allow one step."""
        if (steps is None) == (epochs is None):
            raise ValueError("give exactly one of steps= or epochs=")
        if steps is None:
            steps = self.steps_for_epochs(float(epochs))
        if steps < 1:
            raise ValueError(f"the budget allows {steps} steps; the flow needs at least one "
                             f"(raise epochs= or lower n_particles={self.n_particles})")
        if n_final < 0:
            raise ValueError(f"n_final must be >= 0, got {n_final}")
        with torch_threads(self.num_threads):
            self.total_steps = self.step_count + int(steps)
            if not self._zero_T:
                self._T = temperature_schedule(self._temperature, self.total_steps)
            while self.step_count < self.total_steps:
                self._step()
                if self.step_count % self.eval_every == 0 or self.step_count == self.total_steps:
                    self.evaluate()
                    if callback is not None:
                        callback(self)
            if self._retrain_in_flow_threads:
                return self._finalise(benchmark, n_final)
        return self._finalise(benchmark, n_final)

    def ranking(self) -> list[tuple[str, float]]:
        """Architectures by best validation accuracy seen (descending, ties by name)."""
        return sorted(self.val_seen.items(), key=lambda kv: (-kv[1], kv[0]))

    def _finalise(self, benchmark: Any, n_final: int) -> "TrainableFlowResult":
        """Retrain the ``n_final`` first of :meth:`ranking`; the best by retrained validation accuracy wins."""
        flow_epochs, seconds = self.epochs, self.seconds
        ranked = self.ranking()[:n_final] if benchmark is not None else []
        cands, retrain_epochs = [], 0.0
        t0 = time.perf_counter()
        for a, seen in ranked:
            ev = benchmark.query(a)
            retrain_epochs += float(ev.cost)
            cands.append((a, seen, float(ev.value), ev.test))
        seconds += time.perf_counter() - t0
        best = max(cands, key=lambda c: c[2]) if cands else None
        return self._result(
            best_arch=best[0] if best else (self.ranking()[0][0] if self.val_seen else None),
            val_acc=best[2] if best else None, test_acc=best[3] if best else None, candidates=cands,
            epochs=flow_epochs + retrain_epochs, supernet_epochs=flow_epochs, retrain_epochs=retrain_epochs,
            seconds=seconds, history=list(self.history), events=list(self.events))

    @abstractmethod
    def _result(self, **fields: Any) -> "TrainableFlowResult":
        """The run's result object from the fields of :class:`~hotnas.flow_trainable.TrainableFlowResult`."""
