"""A tiny search space, benchmark and optimisers for the experiments tests (imported as a config plugin).

Space: bit strings of length ``n_bits`` (canonical form: the string itself), mutations flip one bit.
Benchmark ``toy-bits``: value = 10 * (fraction of ones) + a deterministic per-string offset in [0, 1);
test = value - 0.5; cost 1. ``delay`` sleeps per query (to kill runs mid-way); ``ledger`` appends every
*actual* evaluation to a file (to prove that a resumed run repeats none).
Optimisers: ``toy-random`` (uniform samples) and ``toy-evolve`` (mutates its population's best,
with a population, an RNG and a ``masses()`` trace — the state a checkpoint must capture).
"""

from __future__ import annotations

import hashlib
import os
import time

import numpy as np

import hotnas.benchmarks as _benchmarks
from hotnas.benchmarks.base import Benchmark, Evaluation
from hotnas.optimisers.base import OPTIMISERS, Optimiser
from hotnas.spaces.base import SearchSpace

class BitSpace(SearchSpace):
    name = "toy-bits"

    def __init__(self, n_bits: int = 8):
        self.n_bits = n_bits

    def canonical(self, arch: str) -> str:
        if len(arch) != self.n_bits or set(arch) - {"0", "1"}:
            raise ValueError(f"not a {self.n_bits}-bit string: {arch!r}")
        return arch

    def sample(self, rng: np.random.Generator) -> str:
        return "".join(rng.choice(["0", "1"], size=self.n_bits))

    def mutations(self, arch: str) -> list[str]:
        return [arch[:i] + ("1" if arch[i] == "0" else "0") + arch[i + 1:] for i in range(self.n_bits)]

    def to_network(self, arch: str):  # pragma: no cover - not needed by these tests
        raise NotImplementedError

    def enumerate(self):
        for i in range(2 ** self.n_bits):
            yield format(i, f"0{self.n_bits}b")

    def __len__(self) -> int:
        return 2 ** self.n_bits


class ToyBenchmark(Benchmark):
    name = "toy-bits"

    def __init__(self, n_bits: int = 8, delay: float = 0.0, ledger: str = "", seed: int = 0):
        super().__init__()
        self.space = BitSpace(n_bits)
        self.delay = delay
        self.ledger = ledger
        self.seed = seed

    def _evaluate(self, arch: str) -> Evaluation:
        if self.delay:
            time.sleep(self.delay)
        if self.ledger:
            with open(self.ledger, "a") as fh:
                fh.write(f"{os.getpid()} {self.seed} {arch}\n")
        h = int(hashlib.sha256(f"{self.seed}:{arch}".encode()).hexdigest()[:8], 16) / 16**8
        value = 10.0 * arch.count("1") / len(arch) + h
        return Evaluation(arch, value, value - 0.5, 1.0)

    @property
    def optimum(self) -> float | None:
        return max(self._evaluate_quiet(a) for a in self.space.enumerate())

    def _evaluate_quiet(self, arch: str) -> float:
        h = int(hashlib.sha256(f"{self.seed}:{arch}".encode()).hexdigest()[:8], 16) / 16**8
        return 10.0 * arch.count("1") / len(arch) + h


class ToyRandom(Optimiser):
    name = "toy-random"

    def ask(self, n: int = 1) -> list[str]:
        out: list[str] = []
        for _ in range(1000 * n):
            if len(out) == n:
                break
            a = self.space.sample(self.rng)
            if a not in self._seen and a not in out:
                out.append(a)
        return out


class ToyEvolve(Optimiser):
    """Keeps a population (the last ``population`` evaluations); proposes mutations of its best."""

    name = "toy-evolve"

    def __init__(self, space, seed=0, population: int = 4, n_init: int = 3):
        super().__init__(space, seed)
        if population < 1:
            raise ValueError(f"population must be >= 1, got {population}")
        self.population_size = population
        self.n_init = n_init
        self.population: list[tuple[str, float]] = []

    def ask(self, n: int = 1) -> list[str]:
        out: list[str] = []
        for _ in range(1000 * n):
            if len(out) == n:
                break
            if len(self.X) + len(out) < self.n_init or not self.population:
                a = self.space.sample(self.rng)
            else:
                parent = max(self.population, key=lambda p: p[1])[0]
                a = self.space.mutate(parent, self.rng)
                if a in self._seen or a in out:
                    a = self.space.sample(self.rng)
            if a not in self._seen and a not in out:
                out.append(a)
        return out

    def tell(self, evals) -> None:
        super().tell(evals)
        for ev in evals:
            self.population.append((ev.arch, float(ev.value)))
        self.population = self.population[-self.population_size:]

    def masses(self) -> dict[str, float]:
        m: dict[str, float] = {}
        for a, _ in self.population:
            m[a] = m.get(a, 0.0) + 1.0 / len(self.population)
        return m

    def state_dict(self):
        s = super().state_dict()
        s["population"] = [list(p) for p in self.population]
        return s

    def load_state_dict(self, state) -> None:
        super().load_state_dict(state)
        self.population = [(a, float(v)) for a, v in state["population"]]


if "toy-random" not in OPTIMISERS:
    OPTIMISERS["toy-random"] = ToyRandom
    OPTIMISERS["toy-evolve"] = ToyEvolve
if "toy-bits" not in _benchmarks.BENCHMARKS:
    _benchmarks.register_benchmark("toy-bits", ToyBenchmark)


def raw_config(ledger: str = "", delay: float = 0.0, budget: int = 10, seeds=(0, 1), batch_size: int = 1,
               checkpoint_every: int = 3) -> dict:
    """A two-method run config on the toy table (the run-directory tests' common case)."""
    return {
        "name": "toy",
        "plugins": ["toy_components"],
        "benchmark": {"name": "toy-bits", "options": {"n_bits": 7, "ledger": ledger, "delay": delay}},
        "search": {"budget": budget, "seeds": list(seeds), "batch_size": batch_size,
                   "checkpoint_every": checkpoint_every},
        "methods": [{"optimiser": "toy-evolve", "options": {"population": 4}}, {"optimiser": "toy-random"}],
    }
