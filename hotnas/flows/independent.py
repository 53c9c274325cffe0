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
   (:meth:`hotnas.spaces.nb201.NB201Space.mutations`, unit weights w = 1, q = 1/24: the
   :class:`hotnas.graph.ArchitectureGraph` with ``lengthscale=inf``), or from the graph given as ``graph``. Since the weight spaces of g and
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
   only the proposed architecture evaluated (:func:`sdot.jump.propose_accept`, rate form, with its one
   overflow policy). The architecture temperature T is constant, annealed
   geometrically (T0, T1) or a callable of progress (:func:`hotnas.flows.schedules.temperature_schedule`);
   ``temperature=0`` is allowed with ``law="upwind"`` only. An accepted jump replaces the particle's
   network by the candidate and starts a fresh optimiser state.

Every ``eval_every`` steps each particle is scored on the validation split with its own network;
at the end the ``n_final`` architectures with the best validation accuracy seen are **retrained
from scratch** by a benchmark (:class:`hotnas.benchmarks.trainable.DigitsBenchmark`) and the best by
retrained validation accuracy is reported with its test accuracy — the same protocol and the same
result type (:class:`hotnas.flows.base.FlowResult`, here with the jump log) as
:class:`hotnas.flows.trainable.TrainableFlow`, whose model-free scaffolding (settings checks,
schedules, minibatches, NaN policy, the step / evaluation loop, retraining) it shares through
:class:`hotnas.flows.base.FlowBase`.

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
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from sdot.jump import propose_accept
from sdot.validation import check_nonnegative, check_positive, one_of

from ..datasets import DigitsData
from ..graph import ArchitectureGraph
from ..spaces.nb201 import NB201Space
from ..supernet import DigitsNet, NetConfig, arch_seed
from ..transfer import init_after_jump
from .base import FORWARD_COST, NONFINITE_POLICIES, FlowBase, FlowResult  # noqa: F401  (re-exported)

__all__ = ["IndependentFlow", "IndependentFlowResult", "JUMP_INITS", "OPTIMIZERS"]

log = logging.getLogger("hotnas.flow")

JUMP_INITS = ("transfer", "carry", "fresh")
OPTIMIZERS = ("adam", "sgd")

#: The result of :meth:`IndependentFlow.run`: the one result type of the trainable flows, with ``jumps``,
#: ``n_proposed``, ``n_accepted``, ``jump_init`` filled in (old name kept).
IndependentFlowResult = FlowResult


class IndependentFlow(FlowBase):
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

    _log_name = "independent flow"

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
        one_of("optimizer", optimizer, OPTIMIZERS)
        one_of("jump_init", jump_init, JUMP_INITS)
        check_positive(transfer_lr=transfer_lr)
        check_nonnegative(transfer_lam=transfer_lam)
        if transfer_steps < 0:
            raise ValueError(f"transfer_steps must be >= 0, got {transfer_steps!r}")
        if probe_size < 2:
            raise ValueError(f"probe_size must be >= 2 (batch statistics), got {probe_size!r}")
        self._setup(space, data, config, n_particles=n_particles, lr=lr, lr_schedule=lr_schedule,
                    weight_decay=weight_decay, weight_temperature=weight_temperature, law=law,
                    temperature=temperature, jump_dt=jump_dt, jump_every=jump_every, batch_size=batch_size,
                    eval_every=eval_every, nonfinite=nonfinite, seed=seed, num_threads=num_threads)
        if weight_temperature > 0 and optimizer != "sgd":
            raise ValueError(f"weight_temperature={weight_temperature} (Langevin noise) needs optimizer='sgd', "
                             f"got optimizer={optimizer!r}")
        self.optimizer, self.jump_init = optimizer, jump_init
        self.transfer_steps, self.transfer_lr, self.transfer_lam = int(transfer_steps), float(transfer_lr), \
            float(transfer_lam)
        self.morph = bool(morph)
        self.track_jump_val = bool(track_jump_val)
        # default G: the space's mutation graph with unit weights (no distance computed)
        self.graph = graph if graph is not None else ArchitectureGraph(self.space, distance="hamming",
                                                                       lengthscale=math.inf)
        n = self.n_train
        self.probe = self.data.x_train[torch.randperm(n, generator=self.gen)[:min(int(probe_size), n)]]
        self.archs: list[str] = self._initial_archs(init)
        self.nets: list[DigitsNet] = [DigitsNet(a, self.config, seed=arch_seed(self.seed + 7919 * i, a))
                                      for i, a in enumerate(self.archs)]
        self.opts = [self._make_opt(net) for net in self.nets]
        self._start_counters()

    # ------------------------------------------------------------------ helpers
    def _make_opt(self, net: DigitsNet) -> torch.optim.Optimizer:
        params = list(net.parameters())
        if self.optimizer == "adam":
            return torch.optim.Adam(params, lr=self.lr)
        return torch.optim.SGD(params, lr=self.lr)

    def _potential(self, net: DigitsNet, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        value = F.cross_entropy(net(xb), yb)
        if self.weight_decay:
            value = value + 0.5 * self.weight_decay * sum((p * p).sum() for p in net.parameters())
        return value

    @staticmethod
    def _finite_net(net: DigitsNet) -> bool:
        return all(bool(torch.isfinite(p).all()) for p in net.parameters())

    # ------------------------------------------------------------------ NaN policy (FlowBase hooks)
    def _select_state(self, idx) -> None:
        self.nets = [self.nets[int(i)] for i in idx]
        self.opts = [self.opts[int(i)] for i in idx]

    def _copy_state(self, dst: list[int], src: list[int]) -> None:
        for i, j in zip(dst, src):
            self.nets[i] = copy.deepcopy(self.nets[j])
            opt = self._make_opt(self.nets[i])
            # same optimiser state (moments), copied, mapped onto the copy's parameters in order
            opt.load_state_dict(copy.deepcopy(self.opts[j].state_dict()))
            self.opts[i] = opt

    # ------------------------------------------------------------------ one step
    def _diffuse(self, xb: torch.Tensor, yb: torch.Tensor, lr: float) -> list[int]:
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
        return bad

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
            if self.graph.degree(a) <= 0:
                continue
            b, deg = self.graph.propose(a, self.rng)
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
            if not math.isfinite(f_to):
                self._event("nonfinite_proposal", particle=i, arch=b)
                log.warning("independent flow: candidate %s of particle %d gave a non-finite loss; rejected", b, i)
            decision = propose_accept(f_from, f_to, T, self.law, self.rng, degree=deg, dt=self.jump_dt)
            p, accepted = float(decision.p), bool(decision.accepted)
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
    def _score_validation(self) -> tuple[list[float], list[list[Any]]]:
        accs, losses = [], []
        with torch.no_grad():
            for net in self.nets:
                logits = net(self.data.x_val)
                losses.append(float(F.cross_entropy(logits, self.data.y_val)))
                accs.append(100.0 * float((logits.argmax(1) == self.data.y_val).double().mean()))
        return accs, [[a, v, l] for a, v, l in zip(self.archs, accs, losses)]

    # ------------------------------------------------------------------ driver
    def steps_for_epochs(self, epochs: float) -> int:
        """Number of steps whose accounted cost (training, jumps, validation) fits in ``epochs``."""
        N = self.n_particles
        per_step = N * self.batch_size / self.n_train + N * self._jump_cost() / self.jump_every
        per_step += FORWARD_COST * N * self.data.x_val.shape[0] / self.n_train / self.eval_every
        return int(epochs // per_step)

