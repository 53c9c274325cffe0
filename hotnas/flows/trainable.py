"""Gradient-flow NAS with real training (d > 0): particles (x, g) on R^d x G over a weight-sharing supernet.

Each of N particles carries an architecture g (a node of :class:`hotnas.graph.ArchitectureGraph`)
and its **own copy** x of the shared weights of :class:`hotnas.supernet.SuperNet` (d = ``SuperNet.dim``).
The potential is the minibatch training loss ``f(x, g) = CE(net(x_b; x, g), y_b) + wd/2 |x|^2``
[spec ``semi-discrete-flow.md`` 4.3, 7.2]. One step (Lie splitting, vectorised over particles with
``torch.func.vmap`` inside the supernet):

1. **Diffusion in x** for every particle at its own architecture, on one shared minibatch:
   SGD ``x <- x - lr grad_x f`` (``weight_temperature = 0``) or unadjusted Langevin
   ``x <- x - lr grad_x f + sqrt(2 lr T_x) xi`` (``SuperNet.step``); with ``momentum > 0`` the
   accelerated (second-order) variant, heavy ball / damped Langevin with a velocity per particle.
2. **Jump on G** every ``jump_every`` steps, at fixed x (weights travel with the particle, the
   semi-discrete "same x" transfer): each particle proposes g' with probability w(g, g')/deg(g);
   f(x, g) and f(x, g') are evaluated **on the same minibatch with the particle's own weights** (one
   vmapped call over 2N pairs); the move is accepted with probability
   ``1 - exp(-jump_dt * k(g -> g'; x) / q(g'|g))``, ``q = w/deg``, where k is a rate law of
   :mod:`sdot.rates` (glauber, metropolis, upwind) at the architecture temperature T (annealed
   geometrically from T0 to T1 over the run). To first order in ``jump_dt`` this is the exact jump
   law ``P(g -> g') = jump_dt k(g -> g'; x)`` of :func:`sdot.particles.jump_step`, while only the
   *proposed* architecture is evaluated (not all of g's neighbours).
3. **Birth-death** (optional, ``birth_death > 0``): :func:`sdot.particles.birth_death_step` on the
   particles with ``log(rho/pi_T)`` estimated by ``f_i / T`` alone (a flat density estimate: a KDE is
   meaningless in d ~ 10^4), i.e. a Fisher-Rao selection that copies (x, g) of low-loss particles
   over high-loss ones — a different geometry from the graph transport, an accelerator.

Every ``eval_every`` steps each particle is scored on the validation split with its own weights;
at the end the ``n_final`` architectures with the best weight-shared validation accuracy are
**retrained from scratch** by a benchmark (:class:`hotnas.benchmarks.trainable.DigitsBenchmark`,
the same protocol as every other optimiser's queries) and the best by validation is reported with
its test accuracy.

**Compute accounting** (:attr:`TrainableFlow.epochs`): training epochs = examples passed forward
and backward / training-set size; a forward-only pass (jump evaluations, validation scoring)
counts 1/3 of that. Wall-clock seconds are kept alongside (:attr:`TrainableFlow.seconds`). A
supernet pass computes every operation of the cell, so per epoch it costs more wall clock than a
stand-alone network; both numbers are reported.

The model-free scaffolding (settings checks, schedules, minibatches, NaN policy, the step / evaluation
loop, retraining, the result type) is shared with :mod:`hotnas.flows.independent` through
:class:`hotnas.flows.base.FlowBase`; the acceptance is :func:`sdot.jump.propose_accept` (rate form).

**NaN policy** (``nonfinite``): a particle whose loss, gradient or weights become NaN/inf (diverged
training) is ``"reset"`` (default) to a copy (x, g) of a uniformly chosen healthy particle, or
``"kill"``-ed (removed; when none is left a RuntimeError is raised), or the run raises
(``"raise"``); every case is logged (``logging`` warning and :attr:`events`). A proposed
architecture whose loss is NaN is rejected and logged. Unworkable settings (``n_particles < 1``,
fewer than 2 with birth-death, a step budget below one step, non-positive lr / batch size /
temperatures) are refused up front.

    >>> flow = TrainableFlow(n_particles=4, seed=0, distance=lambda a, b: np.ones(len(a)))  # doctest: +SKIP
    >>> result = flow.run(steps=20, benchmark=DigitsBenchmark(epochs=1), n_final=1)         # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from sdot.jump import propose_accept
from sdot.particles import ParticleState, birth_death_step
from sdot.space import SemiDiscreteSpace

from ..benchmarks.trainable import torch_threads
from ..datasets import DigitsData
from ..graph import ArchitectureGraph
from ..spaces.nb201 import NB201Space
from ..supernet import NetConfig, SuperNet, encode_arch, resolve_device
from ..training import steps_within
from .base import FORWARD_COST, NONFINITE_POLICIES, FlowBase, FlowResult  # noqa: F401  (re-exported)
from .potentials import table_potential

__all__ = ["TrainableFlow", "TrainableFlowResult", "FORWARD_COST"]

log = logging.getLogger("hotnas.flow")

#: The result of :meth:`TrainableFlow.run`: the one result type of the trainable flows (old name kept).
TrainableFlowResult = FlowResult


class TrainableFlow(FlowBase):
    """The trainable-mode flow (module docstring).

    Args:
        space: NB201-style search space (default :class:`~hotnas.spaces.nb201.NB201Space`).
        data: :class:`~hotnas.datasets.DigitsData` (default ``load_digits_splits(0)``).
        config: supernet skeleton (:class:`~hotnas.supernet.NetConfig`), the same as the benchmark's.
        n_particles: N.
        lr: SGD / Langevin step on x (default 1.0: the convolutions feed batch normalisation without
            affine parameters, so they are scale-invariant and plain SGD needs a large step — with
            lr = 0.1 a particle is near chance after 60 steps, with lr = 1 at ~80 % validation);
            ``lr_schedule``: ``"constant"`` or ``"cosine"`` (to 0 over the run).
        weight_decay: of the potential (keeps Langevin confining in unused coordinates).
        weight_temperature: T_x of the Langevin step (0 = SGD).
        momentum: heavy-ball coefficient mu in [0, 1) — the *accelerated* (second-order) variant:
            ``v <- mu v - lr grad f (+ sqrt(2 lr T_x) xi)``, ``x <- x + v``, an explicit discretisation of
            damped Langevin dynamics (friction (1 - mu)/lr); velocities travel with the particle.
        law: rate law of the jumps; ``temperature``: architecture temperature T (constant, (T0, T1)
            annealed geometrically over the run, or callable progress -> T), in loss units; 0 with
            ``law="upwind"`` only (strictly downhill jumps), and then without birth-death.
        jump_dt, jump_every: jump time per jump step and steps between jump steps.
        birth_death: rate of the birth-death selection (0 = off).
        batch_size: minibatch shared by all particles in a step.
        graph / distance / lengthscale: the graph G (as in :class:`~hotnas.flows.tabular.FlowOptimiser`).
        eval_every: steps between validation scorings (and always at the end).
        init: ``"random"`` (distinct random architectures) or a list of N architectures.
        same_init: start every particle from the same weights (else independent initialisations).
        nonfinite: ``"reset"`` | ``"kill"`` | ``"raise"``.
        seed: seed of every random stream of the run (numpy for G, torch for minibatches and noise).
        num_threads: torch threads during the run (None = leave as is).
        train_neighbours: probability p that a particle's weights are trained, in a step, on a neighbour
            g' ~ q(.|g) of its architecture instead of g itself: the x-drift then follows the
            neighbourhood-smoothed potential (1 - p) f(x, g) + p E_q f(x, g') [derived — our choice, against the
            weights specialising to g so that every proposed neighbour looks worse and the particles stop
            moving (README, issue 12)]; 0 (default) = the plain flow.
        device: where the supernet, the particles' weights and the data live (``"cpu"``, ``"cuda"``,
            ``"cuda:1"``); an unavailable device is refused up front (ValueError naming it). The random
            streams stay on the CPU (noise is drawn there and moved), so a seed gives the same draws
            on every device.
    """

    _diffusion_failure = "loss, gradient or weights"

    def __init__(self, space: NB201Space | None = None, *, data: DigitsData | None = None,
                 config: NetConfig | None = None, n_particles: int = 8, lr: float = 1.0,
                 lr_schedule: str = "cosine", weight_decay: float = 1e-4, weight_temperature: float = 0.0,
                 momentum: float = 0.0,
                 law: str = "glauber", temperature: float | tuple[float, float] | Callable[[float], float] = (0.3, 0.03),
                 jump_dt: float = 1.0, jump_every: int = 5, birth_death: float = 0.0, batch_size: int = 64,
                 graph: ArchitectureGraph | None = None, distance: Any = "hotnn", lengthscale: float = 0.1,
                 eval_every: int = 25, init: str | Sequence[str] = "random", same_init: bool = False,
                 nonfinite: str = "reset", seed: int = 0, num_threads: int | None = 1,
                 device: str | None = None, train_neighbours: float = 0.0):
        self.device = resolve_device(device)
        self._setup(space, data, config, n_particles=n_particles, lr=lr, lr_schedule=lr_schedule,
                    weight_decay=weight_decay, weight_temperature=weight_temperature, law=law,
                    temperature=temperature, jump_dt=jump_dt, jump_every=jump_every, batch_size=batch_size,
                    eval_every=eval_every, nonfinite=nonfinite, seed=seed, num_threads=num_threads)
        if birth_death < 0 or not math.isfinite(birth_death):
            raise ValueError(f"birth_death must be a finite rate >= 0, got {birth_death!r}")
        if birth_death > 0 and n_particles < 2:
            raise ValueError(f"birth-death needs at least 2 particles, got n_particles={n_particles}")
        if birth_death > 0 and self._zero_T:
            raise ValueError("birth-death needs a temperature T > 0 (it weighs particles by exp(-f/T)); "
                             "got temperature=0")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must lie in [0, 1), got {momentum!r}")
        if not (isinstance(train_neighbours, (int, float)) and 0.0 <= train_neighbours <= 1.0):
            raise ValueError(f"train_neighbours must be a probability in [0, 1], got {train_neighbours!r}")
        self.train_neighbours = float(train_neighbours)
        if self.device.type != "cpu":
            self.data = dataclasses.replace(self.data, **{k: getattr(self.data, k).to(self.device) for k in (
                "x_train", "y_train", "x_val", "y_val", "x_test", "y_test")})
        self.supernet = SuperNet(self.config, weight_decay=weight_decay)
        self.supernet.module.to(self.device)
        self.momentum = float(momentum)
        self.birth_death = float(birth_death)
        self.graph = graph if graph is not None else ArchitectureGraph(self.space, distance=distance,
                                                                       lengthscale=lengthscale)
        self.archs: list[str] = self._initial_archs(init)
        self.theta = self.supernet.init(self.n_particles, seed=int(seed), same=same_init).to(self.device)
        self.velocity = torch.zeros_like(self.theta) if self.momentum > 0 else None
        self._start_counters()
        self.loss_ema = np.full(self.n_particles, np.nan)

    # ------------------------------------------------------------------ NaN policy (FlowBase hooks)
    def _select_state(self, idx) -> None:
        t = torch.as_tensor(idx)
        self.theta = self.theta[t].clone()
        if self.velocity is not None:
            self.velocity = self.velocity[t].clone()
        self.loss_ema = self.loss_ema[idx]

    def _copy_state(self, dst: list[int], src: list[int]) -> None:
        self.theta[torch.as_tensor(dst)] = self.theta[torch.as_tensor(src)]
        if self.velocity is not None:
            self.velocity[torch.as_tensor(dst)] = self.velocity[torch.as_tensor(src)]
        self.loss_ema[dst] = self.loss_ema[src]

    # ------------------------------------------------------------------ one step
    def _trained_archs(self) -> list[str]:
        """The architecture each particle's weights are trained on this step: its own, or with probability
        ``train_neighbours`` a neighbour drawn from the jump proposal q(g'|g) = w(g, g')/deg(g)."""
        if self.train_neighbours <= 0.0:
            return self.archs
        out = list(self.archs)
        for i in np.flatnonzero(self.rng.random(len(out)) < self.train_neighbours).tolist():
            if self.graph.degree(out[i]) > 0:
                out[i] = self.graph.propose(out[i], self.rng)[0]
        return out

    def _diffuse(self, xb: torch.Tensor, yb: torch.Tensor, lr: float) -> np.ndarray:
        A = encode_arch(self._trained_archs()).to(self.device)
        if self.velocity is None and self.device.type == "cpu":
            new, values = self.supernet.step(self.theta, A, xb, yb, lr=lr, temperature=self.weight_temperature,
                                             generator=self.gen)
        elif self.velocity is None:      # same update; the noise is drawn on the CPU stream and moved
            values, grads = self.supernet.loss_and_grad(self.theta, A, xb, yb)
            new = self.theta - lr * grads
            if self.weight_temperature > 0:
                noise = torch.randn(self.theta.shape, generator=self.gen, dtype=self.theta.dtype)
                new = new + math.sqrt(2.0 * lr * self.weight_temperature) * noise.to(self.device)
        else:  # heavy ball: the explicit discretisation of damped (underdamped) Langevin dynamics
            values, grads = self.supernet.loss_and_grad(self.theta, A, xb, yb)
            vel = self.momentum * self.velocity - lr * grads
            if self.weight_temperature > 0:
                noise = torch.randn(self.theta.shape, generator=self.gen, dtype=self.theta.dtype)
                vel = vel + math.sqrt(2.0 * lr * self.weight_temperature) * noise.to(self.device)
            new = self.theta + vel
            okv = torch.isfinite(vel).all(dim=1)
            self.velocity = torch.where(okv[:, None], vel, self.velocity)
        ok = torch.isfinite(values) & torch.isfinite(new).all(dim=1)
        self.theta = torch.where(ok[:, None], new, self.theta)
        v = values.detach().cpu().numpy().astype(float)
        fin = np.isfinite(v)
        self.loss_ema = np.where(np.isnan(self.loss_ema), v, 0.9 * self.loss_ema + 0.1 * v)
        return np.flatnonzero(~ok.cpu().numpy() | ~fin)

    def _after_jump(self) -> None:
        if self.birth_death > 0 and len(self.archs) >= 2:
            self._birth_death()

    def _jump(self, xb: torch.Tensor, yb: torch.Tensor) -> None:
        N = len(self.archs)
        T = self.temperature()
        props, deg = [], np.empty(N)
        for i, a in enumerate(self.archs):
            b, deg[i] = self.graph.propose(a, self.rng)
            props.append(b)
        both = encode_arch(self.archs + props).to(self.device)
        f = self.supernet.losses(torch.cat([self.theta, self.theta]), both, xb, yb).double().cpu().numpy()
        self.epochs += FORWARD_COST * 2 * N * self.batch_size / self.n_train
        f_from, f_to = f[:N], f[N:]
        bad_to = ~np.isfinite(f_to)
        if bad_to.any():
            self._event("nonfinite_proposal", particles=np.flatnonzero(bad_to).tolist(),
                        archs=[props[i] for i in np.flatnonzero(bad_to)])
            log.warning("flow: %d proposed architecture(s) gave a non-finite loss; rejected", int(bad_to.sum()))
        # proposing with q = w / deg and accepting with 1 - exp(-dt deg k) jumps at rate w k (sdot.jump)
        acc = np.flatnonzero(propose_accept(f_from, f_to, T, self.law, self.rng, degree=deg, dt=self.jump_dt).accepted)
        for i in acc:
            self.archs[int(i)] = props[int(i)]
        self.n_proposed += N
        self.n_accepted += int(acc.size)

    def _birth_death(self) -> None:
        N = len(self.archs)
        f = self.loss_ema
        if not np.all(np.isfinite(f)):
            return
        # every particle is its own node; log(rho/pi_T) ~ f/T (flat density estimate, see module doc)
        space = SemiDiscreteSpace(np.zeros((N, N)), dim=0)
        st = ParticleState.from_labels(np.arange(N), rng=self.rng)
        birth_death_step(st, space, table_potential(f), self.temperature(), self.birth_death * self.jump_every,
                         density="kde")
        src = st.g.copy()
        if np.any(src != np.arange(N)):
            self._select_particles(src)

    # ------------------------------------------------------------------ validation scoring
    def _score_validation(self) -> tuple[list[float], list[list[Any]]]:
        A = encode_arch(self.archs).to(self.device)
        with torch_threads(self.num_threads):
            _, acc = self.supernet.evaluate(self.theta, A, self.data.x_val, self.data.y_val)
        accs = acc.double().cpu().numpy().tolist()
        return accs, [[a, v] for a, v in zip(self.archs, accs)]

    # ------------------------------------------------------------------ driver
    def cost_of_steps(self, steps: int) -> float:
        """Accounted cost in epochs of ``steps`` steps from now (training, jumps, validation scoring)."""
        N, n, B = self.n_particles, self.n_train, self.batch_size
        s0, s1 = self.step_count, self.step_count + int(steps)
        n_jumps = s1 // self.jump_every - s0 // self.jump_every
        n_evals = s1 // self.eval_every - s0 // self.eval_every + (1 if steps > 0 and s1 % self.eval_every else 0)
        return (steps * N * B / n + n_jumps * FORWARD_COST * 2 * N * B / n
                + n_evals * FORWARD_COST * N * self.data.x_val.shape[0] / n)

    def cost_from_start(self, steps: int) -> float:
        """Accounted cost in epochs of the first ``steps`` steps of a run (as :meth:`cost_of_steps` from step 0)."""
        saved = self.step_count
        self.step_count = 0
        try:
            return self.cost_of_steps(steps)
        finally:
            self.step_count = saved

    def steps_for_epochs(self, epochs: float) -> int:
        """The largest number of steps whose accounted cost fits in ``epochs`` (with N particles)."""
        return steps_within(self.cost_of_steps, epochs)

    # ------------------------------------------------------------------ persistence
    def state_dict(self) -> dict[str, Any]:
        """Everything that evolves (weights, velocities, architectures, counters, both random streams), as
        plain JSON values and numpy arrays (float32 weights, the torch generator's state as uint8):
        what a data-only checkpoint (JSON + npz, no pickle) stores. A copy: later steps do not change it."""
        def arr(t: torch.Tensor | None) -> np.ndarray | None:
            return None if t is None else t.detach().cpu().numpy().copy()

        rng = self.rng.bit_generator.state
        return {"theta": arr(self.theta), "archs": list(self.archs), "velocity": arr(self.velocity),
                "step_count": self.step_count, "total_steps": self.total_steps, "epochs": self.epochs,
                "seconds": self.seconds, "loss_ema": self.loss_ema.copy(), "val_seen": dict(self.val_seen),
                "history": [dict(h) for h in self.history], "events": [dict(e) for e in self.events],
                "n_accepted": self.n_accepted, "n_proposed": self.n_proposed,
                "rng": {"bit_generator": rng["bit_generator"], "state": {k: int(v) for k, v in rng["state"].items()},
                        "has_uint32": int(rng["has_uint32"]), "uinteger": int(rng["uinteger"])},
                "gen": arr(self.gen.get_state()), "order": arr(self._stream.order), "pos": self._stream.pos}

    def load_state_dict(self, s: dict[str, Any]) -> None:
        """Inverse of :meth:`state_dict` (numpy arrays or torch tensors accepted); weights go to :attr:`device`."""
        def tensor(v: Any, dtype: torch.dtype | None = None) -> torch.Tensor:
            t = v.detach().cpu().clone() if isinstance(v, torch.Tensor) else torch.from_numpy(np.array(v, copy=True))
            return t if dtype is None else t.to(dtype)

        self.theta = tensor(s["theta"]).to(self.device)
        self.velocity = None if s["velocity"] is None else tensor(s["velocity"]).to(self.device)
        self.archs = list(s["archs"])
        self.step_count, self.total_steps = int(s["step_count"]), int(s["total_steps"])
        self.epochs, self.seconds = float(s["epochs"]), float(s["seconds"])
        self.loss_ema = np.array(s["loss_ema"], dtype=float)
        self.val_seen = {str(k): float(v) for k, v in dict(s["val_seen"]).items()}
        self.history = [dict(h) for h in s["history"]]
        self.events = [dict(e) for e in s["events"]]
        self.n_accepted, self.n_proposed = int(s["n_accepted"]), int(s["n_proposed"])
        self.rng.bit_generator.state = s["rng"]
        self.gen.set_state(tensor(s["gen"], torch.uint8))
        self._stream.order, self._stream.pos = tensor(s["order"], torch.int64), int(s["pos"])
