"""The R^d x G supernet flow as an ask/tell optimiser: ``get_optimiser("supernet-flow", space, ...)``.

Wraps :class:`hotnas.flows.trainable.TrainableFlow` (particles (x, g): weights x of a weight-sharing
supernet on sklearn digits, architecture g on the HOTNN graph; SGD or heavy-ball (``momentum > 0``,
the *accelerated* variant) in x, rate-law jumps on G) so that it runs in a config like every other
optimiser and is compared at **equal training compute**:

- the k-th ask (k = 1, 2, ...) first advances the flow to the largest number of steps whose
  accounted cost fits in ``k * epochs_per_query`` training epochs (a step: N particles x
  ``batch_size`` examples forward and backward; jump evaluations and validation scoring are
  forward-only passes at ``FORWARD_COST = 1/3``; :meth:`TrainableFlow.cost_from_start`);
- it then proposes the flow's current **recommendation** — the architecture with the best
  weight-shared validation accuracy among the particles at the last scoring (then the best seen
  before, then the particles, never one asked before).

With ``retrain_queries = R > 0`` the last R queries of the budget are the standard weight-sharing
protocol's retraining: the supernet phase spans the first ``budget - R`` queries, then each query is a
from-scratch training (by the benchmark, at its cost) of the next-best architecture by weight-shared
validation seen, and the recommendation becomes the best of these by their told values (the only
told values the flow uses). A finalist the supernet phase had already proposed is proposed (and paid
for) again: the one exception to "never asked before".

So after k queries the flow has used at most k * ``epochs_per_query`` epochs, the cost of k from-scratch
trainings of the other optimisers when ``epochs_per_query`` equals the benchmark's training epochs
(``digits-nb201``: 4). The flow **does not use the values it is told** (they are recorded, as by every
optimiser, but neither steer the particles nor pick the recommendation): the query is how the run
records, and a table scores, what the flow recommends after that much compute. Its schedules (lr,
architecture temperature) run over the whole ``budget``.

The state (:meth:`state_dict`) is plain JSON values and numpy arrays — the particles' weights,
velocities, architectures, counters, both random streams — so a run killed between queries resumes
exactly from a data-only checkpoint. A diverging particle follows the flow's NaN policy
(``nonfinite``, logged on the ``hotnas.flow`` logger and in the flow's events).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from sdot.validation import check_positive

from ..optimisers.base import Optimiser
from ..spaces.base import SearchSpace
from ..training import steps_within
from .trainable import TrainableFlow

__all__ = ["SupernetFlowOptimiser"]

#: TrainableFlow's defaults: the flow options below default to them (written once, in TrainableFlow)
_FLOW = {k: p.default for k, p in inspect.signature(TrainableFlow.__init__).parameters.items()}


class SupernetFlowOptimiser(Optimiser):
    """The trainable R^d x G flow behind ask/tell (module docstring).

    Args:
        space: an NB201 space (or :class:`~hotnas.benchmarks.digits_table.NB201SubSpace`).
        seed: seed of every random stream of the flow.
        budget: the number of queries of the run (the schedules span ``budget * epochs_per_query``
            epochs); required (a run passes it), and it must allow at least one flow step.
        epochs_per_query: training epochs the flow may spend per query (default 4: the cost of one
            ``digits-nb201`` training).
        n_particles, lr, lr_schedule, weight_decay, weight_temperature, momentum, law, temperature,
        jump_dt, jump_every, birth_death, batch_size, distance, lengthscale, eval_every, same_init,
        nonfinite, train_neighbours: as in :class:`~hotnas.flows.trainable.TrainableFlow`, whose defaults they take (written
            there only; ``momentum > 0``: accelerated); ``eval_every`` defaults to 10 here (25 there), and
            ``lengthscale`` to ``math.inf`` here (0.1 there): G is the uniform mutation graph (w = 1, no distance
            computed), because on the main job's task the HOTNN-weighted graph (``lengthscale=0.1``) did no
            better — table regret, uniform minus HOTNN, 20 paired seeds: -1.94 +- 1.06 at 6 queries,
            -2.37 +- 1.24 at 12, -1.31 +- 1.03 at 25 (README, issue 19); ``lengthscale=0.1`` restores it.
        channels, n_cells, reduce_after, data_seed: the supernet skeleton and the digits split (the
            ``digits-nb201`` protocol's by default).
        dataset, root, split_file: the data (:func:`hotnas.datasets.load_dataset`): ``"digits"`` or an image
            data set on disk (CIFAR-10/100, ImageNet16-120, a folder) — the weight-sharing protocol on real data.
        device: ``"cpu"`` (default), ``"cuda"``, ... (refused up front when unavailable).
        num_threads: torch threads of the flow's steps.
        retrain_queries: the last queries of the budget spent retraining finalists (module docstring).
        name: label of the optimiser in results.
    """

    name = "supernet-flow"

    def __init__(self, space: SearchSpace, seed: int | np.random.Generator | None = 0, *, budget: int | None = None,
                 epochs_per_query: float = 4.0, n_particles: int = _FLOW["n_particles"], lr: float = _FLOW["lr"],
                 lr_schedule: str = _FLOW["lr_schedule"], weight_decay: float = _FLOW["weight_decay"],
                 weight_temperature: float = _FLOW["weight_temperature"], momentum: float = _FLOW["momentum"],
                 law: str = _FLOW["law"], temperature: float | Sequence[float] = _FLOW["temperature"],
                 jump_dt: float = _FLOW["jump_dt"], jump_every: int = _FLOW["jump_every"],
                 birth_death: float = _FLOW["birth_death"], batch_size: int = _FLOW["batch_size"],
                 distance: str = _FLOW["distance"], lengthscale: float = math.inf, eval_every: int = 10,
                 same_init: bool = _FLOW["same_init"], nonfinite: str = _FLOW["nonfinite"],
                 channels: int = 8, n_cells: int = 2, reduce_after: Sequence[int] = (0,), data_seed: int = 0,
                 dataset: str = "digits", root: str | None = None, split_file: str | None = None,
                 device: str | None = "cpu", num_threads: int | None = _FLOW["num_threads"], retrain_queries: int = 0,
                 train_neighbours: float = _FLOW["train_neighbours"], name: str | None = None):
        if isinstance(seed, np.random.Generator):
            seed = int(seed.integers(2**31 - 1))
        super().__init__(space, seed)
        from ..datasets import load_dataset
        from ..supernet import NetConfig

        if name is not None:
            self.name = str(name)
        check_positive(epochs_per_query=epochs_per_query)
        if budget is not None and (not isinstance(budget, (int, np.integer)) or isinstance(budget, bool) or budget < 1):
            raise ValueError(f"budget must be a positive number of queries, got {budget!r}")
        if isinstance(temperature, (list, tuple)):
            temperature = tuple(float(t) for t in temperature)
        if not isinstance(retrain_queries, (int, np.integer)) or isinstance(retrain_queries, bool) or retrain_queries < 0:
            raise ValueError(f"retrain_queries must be an integer >= 0, got {retrain_queries!r}")
        if budget is not None and retrain_queries >= budget:
            raise ValueError(f"retrain_queries={retrain_queries} leaves no supernet query in a budget of {budget}")
        self.epochs_per_query = float(epochs_per_query)
        self.retrain_queries = int(retrain_queries)
        data = load_dataset(dataset, root, seed=int(data_seed), split_file=split_file)
        self.flow = TrainableFlow(space, data=data,
                                  config=NetConfig(channels=int(channels), n_cells=int(n_cells),
                                                   reduce_after=tuple(reduce_after),
                                                   in_channels=int(data.x_train.shape[1]), n_classes=int(data.n_classes)),
                                  n_particles=n_particles, lr=lr, lr_schedule=lr_schedule, weight_decay=weight_decay,
                                  weight_temperature=weight_temperature, momentum=momentum, law=law,
                                  temperature=temperature, jump_dt=jump_dt, jump_every=jump_every,
                                  birth_death=birth_death, batch_size=batch_size, distance=distance,
                                  lengthscale=lengthscale, eval_every=eval_every, same_init=same_init,
                                  nonfinite=nonfinite, seed=int(seed or 0), num_threads=num_threads, device=device,
                                  train_neighbours=train_neighbours)
        self.budget = None if budget is None else int(budget)
        self.n_asked = 0
        self._asked: list[str] = []
        self._retrained: list[str] = []
        self._retrained_values: dict[str, float] = {}
        if self.budget is not None:
            self._start(self.budget)

    # ------------------------------------------------------------------ schedule
    def _target_steps(self, epochs: float) -> int:
        """The largest step count of the run whose accounted cost from step 0 fits in ``epochs``."""
        return steps_within(self.flow.cost_from_start, epochs)

    def _start(self, budget: int) -> None:
        total = self._target_steps((budget - self.retrain_queries) * self.epochs_per_query)
        if total < 1:
            raise ValueError(f"a budget of {budget} queries x epochs_per_query={self.epochs_per_query} = "
                             f"{budget * self.epochs_per_query:g} epochs allows no step of {self.flow.n_particles} "
                             f"particles (one step costs {self.flow.cost_from_start(1):.3g} epochs); raise the budget "
                             f"or epochs_per_query, or lower n_particles / batch_size")
        self.flow.set_horizon(total)

    def check_budget(self, budget: int) -> None:
        if self._target_steps((budget - self.retrain_queries) * self.epochs_per_query) < 1:
            raise ValueError(f"budget {budget} queries x {self.epochs_per_query:g} epochs allows no flow step")

    def _advance(self, epochs: float) -> None:
        """Step the flow until the next step would exceed ``epochs`` of accounted compute (score at the end)."""
        self.flow.advance_to(min(self._target_steps(epochs), self.flow.total_steps))

    # ------------------------------------------------------------------ ask / tell
    def ask(self, n: int = 1) -> list[str]:
        if self.budget is None:       # run_search without a budget given to the constructor
            self.budget = 10**6
            self._start(self.budget)
        self.n_asked += int(n)
        supernet_queries = self.budget - self.retrain_queries
        retraining = self.n_asked > supernet_queries
        self._advance(min(self.n_asked, supernet_queries) * self.epochs_per_query)
        out: list[str] = []
        # the finalists (best weight-shared validation seen first) may include architectures the supernet
        # phase proposed -- their values were not used -- so only finalists already retrained are excluded
        taken = set(self._retrained) if retraining else set(self._asked) | self._seen
        cells = {self._cell(a) for a in self._retrained}     # finalists are distinct *cells*: strings of
        for a in ([a for a, _ in self.flow.ranking()] + self._candidates() if retraining else self._candidates()):
            if a not in taken and not (retraining and self._cell(a) in cells):   # one cell share its value
                out.append(a)
                taken.add(a)
                if retraining:
                    cells.add(self._cell(a))
            if len(out) == n:
                break
        while len(out) < n:           # every candidate asked before: a random architecture
            a = self.space.sample(self.rng)
            if a not in taken:
                out.append(a)
                taken.add(a)
        self._asked += out
        if retraining:
            self._retrained += out
        return out

    def tell(self, evals: list) -> None:
        super().tell(evals)
        for ev in evals:              # only the finalists' from-scratch values steer the recommendation
            if ev.arch in self._retrained and np.isfinite(ev.value):
                self._retrained_values[ev.arch] = float(ev.value)

    def _cell(self, arch: str) -> str:
        """The computational-graph identity of ``arch`` (``space.cell_hash`` when the space has one)."""
        fn = getattr(self.space, "cell_hash", None)
        return fn(arch) if callable(fn) else arch

    def _current(self) -> list[tuple[str, float]]:
        """Architectures of the particles at the last scoring, by mean weight-shared validation (desc)."""
        if not self.flow.history:
            return [(a, -math.inf) for a in self.flow.archs]
        per: dict[str, list[float]] = {}
        for a, v in self.flow.history[-1]["particles"]:
            per.setdefault(a, []).append(float(v))
        return sorted(((a, float(np.mean(v))) for a, v in per.items()), key=lambda kv: (-kv[1], kv[0]))

    def _candidates(self) -> list[str]:
        return [a for a, _ in self._current()] + [a for a, _ in self.flow.ranking()] + list(self.flow.archs)

    def recommend(self) -> str | None:
        """The best retrained finalist once any was told; before, the flow's own pick (the best
        weight-shared validation accuracy among the current particles)."""
        if self._retrained_values:
            return max(self._retrained_values.items(), key=lambda kv: (kv[1], kv[0]))[0]
        cur = self._current()
        return cur[0][0] if cur else None

    def masses(self) -> dict[str, float]:
        """Fraction of the particles on each architecture."""
        out: dict[str, float] = {}
        for a in self.flow.archs:
            out[a] = out.get(a, 0.0) + 1.0 / len(self.flow.archs)
        return out

    # ------------------------------------------------------------------ persistence
    def state_dict(self) -> dict[str, Any]:
        s = super().state_dict()
        s.update({"flow": self.flow.state_dict(), "n_asked": self.n_asked, "asked": list(self._asked),
                  "budget": self.budget, "retrained": list(self._retrained),
                  "retrained_values": dict(self._retrained_values)})
        return s

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        if state["budget"] is not None and state["budget"] != self.budget:
            self.budget = int(state["budget"])
            self._start(self.budget)
        self.flow.load_state_dict(state["flow"])
        self.n_asked = int(state["n_asked"])
        self._asked = list(state["asked"])
        self._retrained = list(state.get("retrained", []))
        self._retrained_values = {str(k): float(v) for k, v in dict(state.get("retrained_values", {})).items()}
