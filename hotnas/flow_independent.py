"""Gradient-flow NAS with real training, **independent-networks variant**: no supernet.

Each of N particles carries an architecture g (an NB201 cell) and **its own stand-alone network**
:class:`hotnas.supernet.DigitsNet` of that architecture (weights x_i in R^{d(g_i)}: the dimension
depends on g). The potential is the minibatch training loss

    f(x, g) = CE(net_g(x_b; x), y_b) + (weight_decay / 2) |x|^2

[spec ``semi-discrete-flow.md`` 4.3, 7.2]. One step (Lie splitting):

1. **Diffusion in x**: each particle's network takes one optimiser step on one minibatch shared by
   all particles: Adam (default), or SGD ``x <- x - lr grad_x f`` which becomes unadjusted Langevin
   ``x <- x - lr grad_x f + sqrt(2 lr T_x) xi`` with ``weight_temperature = T_x > 0`` (Langevin is
   refused with Adam: unpreconditioned noise after a preconditioned step samples no known law).
2. **Jump on G** every ``jump_every`` steps. Particle i at g proposes g' with probability
   q(g'|g) = w(g, g') / deg(g): by default uniformly among the 24 single-edge mutations
   (:meth:`hotnas.spaces.nb201.NB201Space.mutations`, unit weights w = 1, q = 1/24), or from an
   :class:`hotnas.graph.ArchitectureGraph` when ``graph`` is given. Since the weight spaces of g and
   g' differ, "the same x" is given a meaning by the **jump kernel**
   :func:`hotnas.transfer.init_after_jump` (``jump_init``): ``"transfer"`` (carry-over of every
   weight of equal name and shape, then OT representation transfer from the old network on a fixed
   probe batch, spec ``representation-transfer.md`` 3), ``"carry"`` (carry-over alone) or
   ``"fresh"`` (seeded fresh initialisation). f(x, g) and f(x', g') are evaluated **on the same
   minibatch** as step 1, and the move is accepted with probability

       P(accept) = 1 - exp(-jump_dt * k(g -> g'; x) / q(g'|g)),
       k(g -> g') = rate law of :mod:`sdot.rates` with w = w(g, g'):
           glauber    T w exp((f_g - f_g') / (2T))
           metropolis T w min(1, exp((f_g - f_g') / T))
           upwind     w (f_g - f_g')_+          (T = 0: only strictly downhill jumps are ever accepted)

   To first order in ``jump_dt`` this is the exact jump law P(g -> g') = jump_dt k(g -> g'), with
   only the proposed architecture evaluated. The architecture temperature T is constant, annealed
   geometrically (T0, T1) or a callable of progress (:func:`hotnas.optimisers.flow.temperature_schedule`);
   ``temperature=0`` is allowed with ``law="upwind"`` only. An accepted jump replaces the particle's
   network by the candidate and starts a fresh optimiser state.

Every ``eval_every`` steps each particle is scored on the validation split with its own network;
at the end the ``n_final`` architectures with the best validation accuracy seen are **retrained
from scratch** by a benchmark (:class:`hotnas.benchmarks.trainable.DigitsBenchmark`) and the best by
retrained validation accuracy is reported with its test accuracy — the same protocol and the same
result type (:class:`IndependentFlowResult`, a :class:`hotnas.flow_trainable.TrainableFlowResult`
with the jump log added) as :class:`hotnas.flow_trainable.TrainableFlow`.

**Loops, not vmap.** ``torch.func.vmap`` cannot batch networks of *different* architectures (their
parameter shapes and computation graphs differ), so steps loop over the particles in Python. This is
meant for a handful of particles of small networks; per-step work is kept small by running torch on
``num_threads = 1`` (default) — one step of the default network on a batch of 64 takes about 10 ms
of one core, an OT transfer (20 steps on 128 probe images) 0.3-0.5 s.

**Compute accounting** (:attr:`IndependentFlow.epochs`, in training epochs = examples passed forward
and backward / training-set size; a forward-only pass counts ``FORWARD_COST = 1/3``): diffusion
N B / n; jump evaluation 2 N B / 3n (old and candidate network on the minibatch); in ``transfer``
mode each proposal also costs ``transfer_steps * P / n`` (forward + backward of the candidate on the
P probe images per Adam step) plus ``3 P / 3n`` (teacher activations once, distance before and
after); validation scoring N n_val / 3n. Every proposal is built whether accepted or not, so the
cost per step is deterministic and :meth:`IndependentFlow.steps_for_epochs` is exact: runs of the
three ``jump_init`` modes under one ``epochs`` budget spend the same compute (transfer mode then
gets fewer steps). The optional diagnostic ``track_jump_val`` (validation loss of the old and the
new network at every accepted jump) is not charged.

**NaN policy** (``nonfinite``): a particle whose training loss or weights become NaN/inf is
``"reset"`` (default) to a deep copy (network, architecture, optimiser state) of a uniformly chosen
healthy particle, or ``"kill"``-ed (removed; a RuntimeError when none is left), or the run raises
``FloatingPointError`` (``"raise"``). Every case is logged (``logging`` warning on
``hotnas.flow`` and :attr:`events`). A candidate network whose minibatch loss is non-finite is
rejected and logged. Impossible settings (N < 1, non-positive lr / jump_dt / batch size, an
unknown optimiser, law or jump_init, a nonlinear law, T = 0 with a law that needs T > 0, Langevin
noise with Adam, a step budget below one step) raise ValueError up front.

    >>> flow = IndependentFlow(n_particles=3, jump_init="transfer", seed=0)          # doctest: +SKIP
    >>> result = flow.run(steps=40, benchmark=DigitsBenchmark(epochs=4), n_final=1)  # doctest: +SKIP
    >>> [j for j in result.jumps if j["accepted"]][0]["distance_after"]              # doctest: +SKIP
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from sdot.rates import get_rate_law

from .benchmarks.trainable import torch_threads
from .datasets import DigitsData, load_digits_splits
from .flow_trainable import FORWARD_COST, TrainableFlowResult
from .optimisers.flow import temperature_schedule
from .spaces.nb201 import NB201Space
from .supernet import DigitsNet, NetConfig, arch_seed
from .transfer import init_after_jump

__all__ = ["IndependentFlow", "IndependentFlowResult", "JUMP_INITS", "OPTIMIZERS"]

log = logging.getLogger("hotnas.flow")

JUMP_INITS = ("transfer", "carry", "fresh")
OPTIMIZERS = ("adam", "sgd")
NONFINITE_POLICIES = ("reset", "kill", "raise")


@dataclass
class IndependentFlowResult(TrainableFlowResult):
    """:class:`~hotnas.flow_trainable.TrainableFlowResult` of the independent-networks flow.

    ``supernet_epochs`` holds the compute of the flow phase (there is no supernet here; the name is
    kept so both flows return the same type). Added: ``jumps``, one record per proposal with keys
    step, particle, from, to, f_from, f_to, p (acceptance probability), accepted, copied (tensors
    carried over), distance_before / distance_after (summed OT distance on the probe batch, transfer
    mode only), init_seconds, and with ``track_jump_val`` on accepted jumps val_loss_before /
    val_loss_after; ``n_proposed``, ``n_accepted``; ``jump_init``.
    """

    jumps: list[dict[str, Any]] = field(default_factory=list)
    n_proposed: int = 0
    n_accepted: int = 0
    jump_init: str = "transfer"

    @property
    def flow_epochs(self) -> float:
        return self.supernet_epochs

    def accepted_jumps(self) -> list[dict[str, Any]]:
        return [j for j in self.jumps if j["accepted"]]


class IndependentFlow:
    """The independent-networks trainable flow (module docstring).

    Args:
        space: NB201 search space (default :class:`~hotnas.spaces.nb201.NB201Space`).
        data: :class:`~hotnas.datasets.DigitsData` (default ``load_digits_splits(0)``).
        config: network skeleton (:class:`~hotnas.supernet.NetConfig`), the same as the benchmark's.
        n_particles: N.
        optimizer: ``"adam"`` or ``"sgd"`` (per particle; a fresh state after each accepted jump).
        lr: learning rate; ``lr_schedule``: ``"constant"`` (default: a network born late in the run must
            still be able to learn) or ``"cosine"`` (to 0 over the run).
        weight_decay: of the potential (L2 term in f, so also in the jump comparison).
        weight_temperature: T_x of the Langevin step (0 = no noise; > 0 needs ``optimizer="sgd"``).
        law: ``"glauber"`` | ``"metropolis"`` | ``"upwind"``; ``temperature``: architecture temperature
            T (constant, (T0, T1) annealed geometrically, or callable progress -> T), in loss units;
            0 only with upwind.
        jump_dt, jump_every: jump time per jump step and steps between jump steps.
        jump_init: ``"transfer"`` | ``"carry"`` | ``"fresh"`` (the jump kernel, module docstring).
        transfer_steps, transfer_lr, transfer_lam, probe_size, morph: options of
            :func:`~hotnas.transfer.init_after_jump` (probe: ``probe_size`` training images drawn once
            from the seed).
        batch_size: minibatch shared by all particles in a step.
        graph: optional :class:`~hotnas.graph.ArchitectureGraph` for the proposals (None: the NB201
            mutation graph with unit weights).
        eval_every: steps between validation scorings (and always at the end).
        track_jump_val: record the validation loss of the old and the new network at accepted jumps.
        init: ``"random"`` (distinct random architectures) or a list of N architectures.
        nonfinite: ``"reset"`` | ``"kill"`` | ``"raise"``.
        seed: seed of every random stream (numpy for G and the network seeds, torch for minibatches,
            probe and noise). Same seed, thread count and machine: the same run, bit for bit.
        num_threads: torch threads during the run (default 1; None = leave as is).
    """

    def __init__(self, space: NB201Space | None = None, *, data: DigitsData | None = None,
                 config: NetConfig | None = None, n_particles: int = 4, optimizer: str = "adam",
                 lr: float = 0.01, lr_schedule: str = "constant", weight_decay: float = 0.0,
                 weight_temperature: float = 0.0, law: str = "glauber",
                 temperature: float | tuple[float, float] | Callable[[float], float] = (0.3, 0.03),
                 jump_dt: float = 0.05, jump_every: int = 10, jump_init: str = "transfer",
                 transfer_steps: int = 20, transfer_lr: float = 0.02, transfer_lam: float = 1.0,
                 probe_size: int = 128, morph: bool = False, batch_size: int = 64, graph: Any = None,
                 eval_every: int = 25, track_jump_val: bool = False, init: str | Sequence[str] = "random",
                 nonfinite: str = "reset", seed: int = 0, num_threads: int | None = 1):
        if not isinstance(n_particles, (int, np.integer)) or isinstance(n_particles, bool) or n_particles < 1:
            raise ValueError(f"n_particles must be a positive integer, got {n_particles!r}")
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
        if jump_init not in JUMP_INITS:
            raise ValueError(f"jump_init must be one of {JUMP_INITS}, got {jump_init!r}")
        for nm, v in (("lr", lr), ("jump_dt", jump_dt), ("transfer_lr", transfer_lr)):
            if not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                raise ValueError(f"{nm} must be a finite number > 0, got {v!r}")
        for nm, v in (("weight_temperature", weight_temperature), ("weight_decay", weight_decay),
                      ("transfer_lam", transfer_lam)):
            if not math.isfinite(v) or v < 0:
                raise ValueError(f"{nm} must be a finite number >= 0, got {v!r}")
        if weight_temperature > 0 and optimizer != "sgd":
            raise ValueError(f"weight_temperature={weight_temperature} (Langevin noise) needs optimizer='sgd', "
                             f"got optimizer={optimizer!r}")
        if batch_size < 2:
            raise ValueError(f"batch_size must be >= 2, got {batch_size!r}")
        if jump_every < 1 or eval_every < 1:
            raise ValueError(f"jump_every and eval_every must be >= 1, got {jump_every!r} and {eval_every!r}")
        if transfer_steps < 0:
            raise ValueError(f"transfer_steps must be >= 0, got {transfer_steps!r}")
        if probe_size < 2:
            raise ValueError(f"probe_size must be >= 2 (batch statistics), got {probe_size!r}")
        if lr_schedule not in ("constant", "cosine"):
            raise ValueError(f"lr_schedule must be 'constant' or 'cosine', got {lr_schedule!r}")
        if nonfinite not in NONFINITE_POLICIES:
            raise ValueError(f"nonfinite must be one of {NONFINITE_POLICIES}, got {nonfinite!r}")
        self.law = get_rate_law(law)
        if not self.law.linear:
            raise ValueError(f"rate law {law!r} has no jump rate; use glauber, metropolis or upwind")
        self._zero_T = isinstance(temperature, (int, float)) and not isinstance(temperature, bool) \
            and temperature == 0
        if self._zero_T and self.law.needs_temperature:
            raise ValueError(f"temperature=0 needs law='upwind'; rate law {self.law.name!r} needs T > 0")
        self._temperature = temperature
        self._T = None if self._zero_T else temperature_schedule(temperature, 1)  # validates early
        self.space = space or NB201Space()
        self.data = data if data is not None else load_digits_splits(0)
        if batch_size > self.data.x_train.shape[0]:
            raise ValueError(f"batch_size={batch_size} exceeds the {self.data.x_train.shape[0]} training images")
        self.config = config or NetConfig()
        self.n_particles = int(n_particles)
        self.optimizer, self.lr, self.lr_schedule = optimizer, float(lr), lr_schedule
        self.weight_decay, self.weight_temperature = float(weight_decay), float(weight_temperature)
        self.jump_dt, self.jump_every, self.jump_init = float(jump_dt), int(jump_every), jump_init
        self.transfer_steps, self.transfer_lr, self.transfer_lam = int(transfer_steps), float(transfer_lr), \
            float(transfer_lam)
        self.morph = bool(morph)
        self.batch_size, self.eval_every = int(batch_size), int(eval_every)
        self.track_jump_val = bool(track_jump_val)
        self.nonfinite = nonfinite
        self.num_threads = num_threads
        self.graph = graph
        self.seed = int(seed)
        self.rng = np.random.default_rng(seed)
        self.gen = torch.Generator().manual_seed(int(seed))
        n = self.data.x_train.shape[0]
        self.probe = self.data.x_train[torch.randperm(n, generator=self.gen)[:min(int(probe_size), n)]]
        if isinstance(init, str):
            if init != "random":
                raise ValueError(f"init must be 'random' or a list of architectures, got {init!r}")
            archs: list[str] = []
            while len(archs) < self.n_particles:
                a = self.space.sample(self.rng)
                if a not in archs or len(archs) >= len(self.space):
                    archs.append(a)
        else:
            archs = [self.space.canonical(a) for a in init]
            if len(archs) != self.n_particles:
                raise ValueError(f"init lists {len(archs)} architectures for {self.n_particles} particles")
        self.archs: list[str] = archs
        self.nets: list[DigitsNet] = [DigitsNet(a, self.config, seed=arch_seed(self.seed + 7919 * i, a))
                                      for i, a in enumerate(archs)]
        self.opts = [self._make_opt(net) for net in self.nets]
        self.step_count = 0
        self.total_steps = 1
        self.epochs = 0.0
        self.seconds = 0.0
        self.val_seen: dict[str, float] = {}
        self.history: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.jumps: list[dict[str, Any]] = []
        self.n_accepted = 0
        self.n_proposed = 0
        self._order = torch.randperm(n, generator=self.gen)
        self._pos = 0

    # ------------------------------------------------------------------ helpers
    @property
    def n_train(self) -> int:
        return int(self.data.x_train.shape[0])

    def _make_opt(self, net: DigitsNet) -> torch.optim.Optimizer:
        params = list(net.parameters())
        if self.optimizer == "adam":
            return torch.optim.Adam(params, lr=self.lr)
        return torch.optim.SGD(params, lr=self.lr)

    def temperature(self) -> float:
        if self._zero_T:
            return 0.0
        T = float(self._T(min(1.0, self.step_count / max(1, self.total_steps)), self.step_count))
        if not math.isfinite(T) or T <= 0:
            raise ValueError(f"the temperature schedule returned T = {T!r}")
        return T

    def _lr(self) -> float:
        if self.lr_schedule == "constant":
            return self.lr
        s = min(1.0, self.step_count / max(1, self.total_steps))
        return max(1e-6 * self.lr, 0.5 * self.lr * (1.0 + math.cos(math.pi * s)))

    def _minibatch(self) -> tuple[torch.Tensor, torch.Tensor]:
        n = self.n_train
        if self._pos + self.batch_size > n:
            self._order, self._pos = torch.randperm(n, generator=self.gen), 0
        idx = self._order[self._pos:self._pos + self.batch_size]
        self._pos += self.batch_size
        return self.data.x_train[idx], self.data.y_train[idx]

    def _potential(self, net: DigitsNet, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        value = F.cross_entropy(net(xb), yb)
        if self.weight_decay:
            value = value + 0.5 * self.weight_decay * sum((p * p).sum() for p in net.parameters())
        return value

    def _event(self, kind: str, **info: Any) -> None:
        self.events.append({"kind": kind, "step": self.step_count, **info})

    def _neighbours(self, arch: str) -> tuple[list[str], np.ndarray]:
        if self.graph is not None:
            names, w = self.graph.neighbours(arch)
            return list(names), np.asarray(w, dtype=float)
        names = self.space.mutations(arch)
        return names, np.ones(len(names))

    @staticmethod
    def _finite_net(net: DigitsNet) -> bool:
        return all(bool(torch.isfinite(p).all()) for p in net.parameters())

    def _handle_nonfinite(self, bad: list[int], what: str) -> None:
        """Apply the NaN policy to particles ``bad`` (indices)."""
        if not bad:
            return
        if self.nonfinite == "raise":
            raise FloatingPointError(f"particles {bad} met a non-finite {what} at step {self.step_count}")
        N = len(self.archs)
        healthy = [i for i in range(N) if i not in set(bad)]
        if self.nonfinite == "kill":
            if not healthy:
                raise RuntimeError(f"every particle met a non-finite {what}; nothing left to run")
            self.archs = [self.archs[i] for i in healthy]
            self.nets = [self.nets[i] for i in healthy]
            self.opts = [self.opts[i] for i in healthy]
            self._event("nonfinite_kill", particles=bad, what=what)
            log.warning("independent flow: killed particle(s) %s (non-finite %s)", bad, what)
            return
        if not healthy:
            raise RuntimeError(f"every particle met a non-finite {what}; nothing to reset from")
        donors = [healthy[int(k)] for k in self.rng.integers(len(healthy), size=len(bad))]
        for i, j in zip(bad, donors):
            self.archs[i] = self.archs[j]
            self.nets[i] = copy.deepcopy(self.nets[j])
            opt = self._make_opt(self.nets[i])
            # same optimiser state (moments), copied, mapped onto the copy's parameters in order
            opt.load_state_dict(copy.deepcopy(self.opts[j].state_dict()))
            self.opts[i] = opt
        self._event("nonfinite_reset", particles=bad, donors=donors, what=what)
        log.warning("independent flow: reset particle(s) %s to copies of %s (non-finite %s)", bad, donors, what)

    # ------------------------------------------------------------------ one step
    def step(self) -> None:
        """One diffusion step for every particle (and a jump step when due), on ``num_threads`` threads."""
        with torch_threads(self.num_threads):
            self._step()

    def _step(self) -> None:
        t0 = time.perf_counter()
        xb, yb = self._minibatch()
        lr = self._lr()
        noise_scale = math.sqrt(2.0 * lr * self.weight_temperature) if self.weight_temperature > 0 else 0.0
        bad = []
        for i, (net, opt) in enumerate(zip(self.nets, self.opts)):
            for group in opt.param_groups:
                group["lr"] = lr
            loss = self._potential(net, xb, yb)
            if not torch.isfinite(loss):
                bad.append(i)
                continue
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if noise_scale:
                with torch.no_grad():
                    for p in net.parameters():
                        p.add_(torch.randn(p.shape, generator=self.gen, dtype=p.dtype), alpha=noise_scale)
            if not self._finite_net(net):
                bad.append(i)
        self.epochs += len(self.nets) * self.batch_size / self.n_train
        self._handle_nonfinite(bad, "loss or weights")
        self.step_count += 1
        if self.step_count % self.jump_every == 0:
            self._jump(xb, yb)
        self.seconds += time.perf_counter() - t0

    def _jump_cost(self) -> float:
        """Accounted epochs of one proposal (module docstring)."""
        cost = 2 * FORWARD_COST * self.batch_size / self.n_train
        if self.jump_init == "transfer":
            P = self.probe.shape[0]
            cost += (self.transfer_steps + 3 * FORWARD_COST) * P / self.n_train
        return cost

    def _val_loss(self, net: DigitsNet) -> float:
        with torch.no_grad():
            return float(F.cross_entropy(net(self.data.x_val), self.data.y_val))

    def _jump(self, xb: torch.Tensor, yb: torch.Tensor) -> None:
        T = self.temperature()
        for i in range(len(self.archs)):
            a = self.archs[i]
            names, w = self._neighbours(a)
            if not names:
                continue
            deg = float(w.sum())
            j = int(self.rng.choice(len(names), p=w / deg))
            b, w_j = names[j], float(w[j])
            q = w_j / deg
            net_seed = int(self.rng.integers(2**31 - 1))
            cand, info = init_after_jump(self.nets[i], a, b, self.jump_init, probe=self.probe,
                                         steps=self.transfer_steps, lam=self.transfer_lam, lr=self.transfer_lr,
                                         morph=self.morph, seed=net_seed, config=self.config)
            with torch.no_grad():
                f_from = float(self._potential(self.nets[i], xb, yb))
                f_to = float(self._potential(cand, xb, yb))
            self.epochs += self._jump_cost()
            rec: dict[str, Any] = {"step": self.step_count, "particle": i, "from": a, "to": b, "f_from": f_from,
                                   "f_to": f_to, "copied": info["copied"],
                                   "distance_before": info["distance_before"],
                                   "distance_after": info["distance_after"], "init_seconds": info["seconds"]}
            if not (math.isfinite(f_to) and math.isfinite(f_from)):
                if not math.isfinite(f_to):
                    self._event("nonfinite_proposal", particle=i, arch=b)
                    log.warning("independent flow: candidate %s of particle %d gave a non-finite loss; rejected", b, i)
                p = 0.0
            else:
                gap = f_from - f_to
                if self.law.needs_temperature:
                    gap = float(np.clip(gap, -1000 * T, 1000 * T))   # glauber rates overflow beyond ~700 T
                with np.errstate(over="ignore"):
                    k = float(self.law.rate(np.float64(gap), np.float64(0.0), w_j, T))
                    p = float(-np.expm1(-self.jump_dt * k / q))
                p = p if math.isfinite(p) else 0.0
            u = float(self.rng.random())
            accepted = u < p
            rec["p"], rec["accepted"] = p, bool(accepted)
            if accepted:
                if self.track_jump_val:
                    rec["val_loss_before"] = self._val_loss(self.nets[i])
                    rec["val_loss_after"] = self._val_loss(cand)
                self.archs[i], self.nets[i] = b, cand
                self.opts[i] = self._make_opt(cand)
                self.n_accepted += 1
            self.n_proposed += 1
            self.jumps.append(rec)

    # ------------------------------------------------------------------ validation scoring
    def evaluate(self) -> list[float]:
        """Validation accuracy (%) of every particle's own network; records the history."""
        t0 = time.perf_counter()
        accs, losses = [], []
        with torch.no_grad():
            for net in self.nets:
                logits = net(self.data.x_val)
                losses.append(float(F.cross_entropy(logits, self.data.y_val)))
                accs.append(100.0 * float((logits.argmax(1) == self.data.y_val).double().mean()))
        self.epochs += FORWARD_COST * len(self.nets) * self.data.x_val.shape[0] / self.n_train
        per_arch: dict[str, list[float]] = {}
        for a, v in zip(self.archs, accs):
            per_arch.setdefault(a, []).append(v)
        for a, vs in per_arch.items():
            m = float(np.mean(vs))
            if math.isfinite(m) and m > self.val_seen.get(a, -math.inf):
                self.val_seen[a] = m
        self.history.append({"step": self.step_count, "epochs": self.epochs, "T": self.temperature(),
                             "particles": [[a, v, l] for a, v, l in zip(self.archs, accs, losses)]})
        self.seconds += time.perf_counter() - t0
        return accs

    # ------------------------------------------------------------------ driver
    def steps_for_epochs(self, epochs: float) -> int:
        """Number of steps whose accounted cost (training, jumps, validation) fits in ``epochs``."""
        N = self.n_particles
        per_step = N * self.batch_size / self.n_train + N * self._jump_cost() / self.jump_every
        per_step += FORWARD_COST * N * self.data.x_val.shape[0] / self.n_train / self.eval_every
        return int(epochs // per_step)

    def run(self, steps: int | None = None, *, epochs: float | None = None, benchmark: Any = None,
            n_final: int = 2, callback: Callable[["IndependentFlow"], None] | None = None) -> IndependentFlowResult:
        """Run the flow for ``steps`` (or the steps whose cost fits in ``epochs``), then retrain the
        ``n_final`` best architectures by validation accuracy with ``benchmark`` (``benchmark.query(arch)``
        trains from scratch and returns an Evaluation; None skips retraining). Raises ValueError when
        the budget does not allow one step."""
        if (steps is None) == (epochs is None):
            raise ValueError("give exactly one of steps= or epochs=")
        if steps is None:
            steps = self.steps_for_epochs(float(epochs))
        if steps < 1:
            raise ValueError(f"the budget allows {steps} steps; the flow needs at least one "
                             f"(raise epochs= or lower n_particles={self.n_particles})")
        if n_final < 0:
            raise ValueError(f"n_final must be >= 0, got {n_final}")
        before = torch.get_num_threads()
        if self.num_threads is not None:
            torch.set_num_threads(int(self.num_threads))
        try:
            self.total_steps = self.step_count + int(steps)
            if not self._zero_T:
                self._T = temperature_schedule(self._temperature, self.total_steps)
            while self.step_count < self.total_steps:
                self._step()
                if self.step_count % self.eval_every == 0 or self.step_count == self.total_steps:
                    self.evaluate()
                    if callback is not None:
                        callback(self)
            return self._finalise(benchmark, n_final, self.epochs, self.seconds)
        finally:
            torch.set_num_threads(before)

    def ranking(self) -> list[tuple[str, float]]:
        """Architectures by best validation accuracy seen (descending, ties by name)."""
        return sorted(self.val_seen.items(), key=lambda kv: (-kv[1], kv[0]))

    def _finalise(self, benchmark: Any, n_final: int, flow_epochs: float, seconds: float) -> IndependentFlowResult:
        ranked = self.ranking()[:n_final] if benchmark is not None else []
        cands, retrain_epochs = [], 0.0
        t0 = time.perf_counter()
        for a, seen in ranked:
            ev = benchmark.query(a)
            retrain_epochs += float(ev.cost)
            cands.append((a, seen, float(ev.value), ev.test))
        seconds += time.perf_counter() - t0
        best = max(cands, key=lambda c: c[2]) if cands else None
        return IndependentFlowResult(
            best_arch=best[0] if best else (self.ranking()[0][0] if self.val_seen else None),
            val_acc=best[2] if best else None, test_acc=best[3] if best else None, candidates=cands,
            epochs=flow_epochs + retrain_epochs, supernet_epochs=flow_epochs, retrain_epochs=retrain_epochs,
            seconds=seconds, history=list(self.history), events=list(self.events),
            jumps=[dict(j) for j in self.jumps], n_proposed=self.n_proposed, n_accepted=self.n_accepted,
            jump_init=self.jump_init)
