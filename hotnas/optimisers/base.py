"""The ask/tell interface shared by every optimiser, and the search driver with its one result type.

    opt = get_optimiser("hotnas", space, seed=0)
    result = run_search(opt, benchmark, budget=200)

``ask(n)`` proposes architectures (canonical strings) not yet evaluated by this optimiser;
``tell(evals)`` feeds their evaluations back; ``recommend()`` is the optimiser's current answer
(by default the best validation value seen). ``state_dict()``/``load_state_dict()`` capture the
whole state, RNG included, so a checkpointed run resumes exactly.

:func:`run_search` is the one trial loop of the project: a run directory (``experiments.rundir``) is the
same call with :class:`SearchHooks` that log each evaluation and write checkpoints, and a
:class:`SearchState` to resume from.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from sdot.registry import Registry

from ..benchmarks.base import Benchmark, Evaluation
from ..spaces.base import SearchSpace

__all__ = ["Optimiser", "SearchResult", "run_search", "SearchHooks", "SearchState", "LoggedStep", "LoggedEvaluation",
           "ReplayDiverged", "serial_evaluate", "benchmark_state", "load_benchmark_state", "OPTIMISERS",
           "register_optimiser", "get_optimiser", "rng_state", "set_rng_state", "write_csv"]


def rng_state(rng: np.random.Generator) -> dict:
    """JSON-able state of a numpy Generator."""
    return rng.bit_generator.state


def set_rng_state(rng: np.random.Generator, state: dict) -> None:
    rng.bit_generator.state = state


class Optimiser(ABC):
    """Base class: keeps the observations; subclasses implement ``ask``.

    Parameters
    ----------
    space : SearchSpace
    seed : int or numpy Generator
    """

    name: str = "optimiser"

    def __init__(self, space: SearchSpace, seed: int | np.random.Generator | None = 0):
        self.space = space
        self.rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        self.X: list[str] = []      # evaluated architectures, in order
        self.y: list[float] = []    # their validation values (higher is better)
        self._seen: set[str] = set()

    @abstractmethod
    def ask(self, n: int = 1) -> list[str]:
        """Propose ``n`` distinct architectures not evaluated before."""

    def tell(self, evals: list[Evaluation]) -> None:
        """Record evaluations (any order, any subset of what was asked).

        Raises TypeError for anything but a list of evaluations (objects with ``arch`` and ``value``),
        ValueError for an architecture the space rejects or a non-finite value."""
        for ev in self.check_evaluations(evals):
            if not np.isfinite(ev.value):
                raise ValueError(f"evaluation of {ev.arch!r} is not finite: {ev.value!r}")
            self.X.append(ev.arch)
            self.y.append(float(ev.value))
            self._seen.add(ev.arch)

    def check_evaluations(self, evals: Any) -> list[Evaluation]:
        """``evals`` as a list after checking it: a list (or other iterable, not a string) of
        :class:`Evaluation`-like objects with a string ``arch`` valid in the space and a real ``value``."""
        import numbers

        if isinstance(evals, (str, bytes, Evaluation)) or not hasattr(evals, "__iter__"):
            raise TypeError(f"{type(self).__name__}.tell() takes a list of Evaluation objects, got "
                            f"{type(evals).__name__} {evals!r:.60}")
        out = list(evals)
        for ev in out:
            arch, value = getattr(ev, "arch", None), getattr(ev, "value", None)
            if not isinstance(arch, str) or isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise TypeError(f"{type(self).__name__}.tell() takes Evaluation objects (a string arch and a real "
                                f"value), got {type(ev).__name__} {ev!r:.80}")
            try:
                self.space.canonical(arch)
            except ValueError as exc:
                raise ValueError(f"{type(self).__name__}.tell(): {arch!r} is not an architecture of search space "
                                 f"{getattr(self.space, 'name', type(self.space).__name__)!r}: {exc}") from None
        return out

    def check_budget(self, budget: int) -> None:
        """Refuse a budget this optimiser cannot work with (e.g. smaller than its initial design).

        The default accepts any positive budget; subclasses raise ValueError naming both numbers.
        """

    def recommend(self) -> str | None:
        """Current recommendation: the best validation value seen (subclasses may override)."""
        if not self.y:
            return None
        return self.X[int(np.argmax(self.y))]

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume exactly (JSON-able)."""
        return {"X": list(self.X), "y": list(self.y), "rng": rng_state(self.rng)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.X = list(state["X"])
        self.y = [float(v) for v in state["y"]]
        self._seen = set(self.X)
        set_rng_state(self.rng, state["rng"])


@dataclass
class SearchResult:
    """One run of one optimiser on one benchmark.

    Lists are per query, in order: the architecture, its validation and test values, its cost,
    the best validation value so far, the test value of the best-so-far architecture, and the
    optimiser's recommendation after that query.
    """

    method: str
    seed: int | None
    archs: list[str] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    tests: list[float | None] = field(default_factory=list)
    costs: list[float] = field(default_factory=list)
    best_so_far: list[float] = field(default_factory=list)
    test_of_best: list[float | None] = field(default_factory=list)
    recommendations: list[str | None] = field(default_factory=list)
    wall_clock: list[float] = field(default_factory=list)
    optimum: float | None = None

    def add(self, ev: Evaluation, recommendation: str | None, wall: float) -> None:
        self.archs.append(ev.arch)
        self.values.append(ev.value)
        self.tests.append(ev.test)
        self.costs.append(ev.cost)
        if not self.best_so_far or ev.value > self.best_so_far[-1]:
            self.best_so_far.append(ev.value)
            self.test_of_best.append(ev.test)
        else:
            self.best_so_far.append(self.best_so_far[-1])
            self.test_of_best.append(self.test_of_best[-1])
        self.recommendations.append(recommendation)
        self.wall_clock.append(wall)

    def regret(self) -> np.ndarray:
        """Validation regret per query: optimum - best so far (needs a known optimum)."""
        if self.optimum is None:
            raise ValueError("this benchmark has no known optimum, so regret is undefined")
        return self.optimum - np.asarray(self.best_so_far)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    #: Columns of :meth:`rows`, :meth:`to_csv` and :meth:`to_frame`, in order.
    COLUMNS = ("method", "seed", "query", "arch", "value", "test", "cost", "cumulative_cost", "best_so_far",
               "test_of_best", "regret", "recommendation", "wall_clock")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SearchResult":
        """A result from :meth:`to_dict` output (extra keys, e.g. a run directory's, are ignored)."""
        names = [f for f in cls.__dataclass_fields__]
        return cls(**{k: (list(d[k]) if isinstance(d[k], list) else d[k]) for k in names if k in d})

    def rows(self) -> list[dict[str, Any]]:
        """One tidy row per query (like Optuna's ``trials_dataframe``): ``query`` counts from 1,
        ``cumulative_cost`` sums ``cost``, ``regret`` is ``optimum - best_so_far`` (None without a
        known optimum), ``recommendation`` the optimiser's answer after that query."""
        out = []
        total = 0.0
        for i, arch in enumerate(self.archs):
            total += float(self.costs[i])
            out.append({"method": self.method, "seed": self.seed, "query": i + 1, "arch": arch,
                        "value": self.values[i], "test": self.tests[i], "cost": self.costs[i],
                        "cumulative_cost": total, "best_so_far": self.best_so_far[i],
                        "test_of_best": self.test_of_best[i],
                        "regret": None if self.optimum is None else self.optimum - self.best_so_far[i],
                        "recommendation": self.recommendations[i], "wall_clock": self.wall_clock[i]})
        return out

    def to_csv(self, path: Any) -> Any:
        """Write :meth:`rows` as a CSV with a header (:attr:`COLUMNS`; None is an empty cell); returns ``path``.
        ``path`` may also be an open text file."""
        write_csv(self.rows(), path, self.COLUMNS)
        return path

    def to_frame(self) -> Any:
        """:meth:`rows` as a ``pandas.DataFrame`` (pandas is optional: ImportError saying how to install it)."""
        pd = _pandas("SearchResult.to_frame()")
        return pd.DataFrame(self.rows(), columns=list(self.COLUMNS))


def _pandas(what: str) -> Any:
    try:
        import pandas
    except ImportError:
        raise ImportError(f"{what} needs pandas, which is not installed: pip install pandas "
                          f"(or pip install 'sdot-nas[pandas]'); to_csv() needs nothing more") from None
    return pandas


def write_csv(rows: list[dict[str, Any]], path: Any, columns: Any) -> None:
    """Write dict rows as a CSV with the header ``columns`` (None -> empty cell, floats in full precision)."""
    import csv
    import os

    def cell(v: Any) -> Any:
        if v is None:
            return ""
        if isinstance(v, (float, np.floating)):
            return repr(float(v))
        if isinstance(v, np.integer):
            return int(v)
        return v

    own = isinstance(path, (str, os.PathLike))
    fh = open(path, "w", newline="", encoding="utf-8") if own else path
    try:
        w = csv.writer(fh)
        w.writerow(list(columns))
        for r in rows:
            w.writerow([cell(r.get(c)) for c in columns])
    finally:
        if own:
            fh.close()


# ---------------------------------------------------------------------------------------------------
# the search driver: the one trial loop (plain searches and run directories alike)
#
#     for each step:  archs = ask(min(batch_size, left))  ->  evaluate (logged ones replayed)
#                     ->  tell(evals)  ->  recommend()  ->  hooks: on_ask, on_evaluation, on_tell, on_checkpoint


@dataclass
class LoggedEvaluation:
    """An evaluation finished before a resume (a run directory's log holds them): told again, never re-queried.

    ``index``: its place in the step's ask; ``wall``: its wall clock (seconds since the search began);
    ``proposed``: the architecture the optimiser asked for, when the benchmark canonicalised it to another."""

    index: int
    evaluation: Evaluation
    wall: float
    proposed: str | None = None

    @property
    def asked_for(self) -> str:
        return self.evaluation.arch if self.proposed is None else self.proposed


@dataclass
class LoggedStep:
    """One step done (``closed``: told) or begun (its evaluations that finished) before a resume.

    ``asked``: the argument of its ``ask``; ``size``: how many architectures that ask returned."""

    asked: int
    size: int
    evaluations: list[LoggedEvaluation]
    closed: bool = True


@dataclass
class SearchState:
    """Where :func:`run_search` resumes from, and what its checkpoint hook receives.

    ``optimiser`` / ``benchmark``: :meth:`Optimiser.state_dict` / :func:`benchmark_state` at the
    checkpoint (None: take them as they are); ``result``: the result up to the checkpoint; ``n_steps``:
    the steps taken; ``finished``: the budget is spent or the optimiser ran out; ``replay``: the steps done
    after the checkpoint, in order (the last may be open), replayed before the search goes on live."""

    n_steps: int = 0
    finished: bool = False
    optimiser: dict[str, Any] | None = None
    benchmark: dict[str, Any] | None = None
    result: SearchResult | None = None
    replay: list[LoggedStep] = field(default_factory=list)


class ReplayDiverged(RuntimeError):
    """On resume the optimiser proposed other architectures than the logged ones (it is not deterministic
    given its state). ``n_steps`` / ``n_evaluations``: the consistent steps and evaluations before it;
    ``lost``: logged evaluations from there on; ``proposed`` / ``logged``: the two proposals; ``open_step``:
    it happened at the open last step."""

    def __init__(self, n_steps: int, n_evaluations: int, proposed: list[str], logged: list[str], lost: int,
                 open_step: bool) -> None:
        self.n_steps, self.n_evaluations, self.proposed, self.logged = n_steps, n_evaluations, proposed, logged
        self.lost, self.open_step = lost, open_step
        super().__init__(f"on replay the optimiser proposed {proposed[:3]} where the log has {logged[:3]} "
                         f"(step {n_steps})")


class SearchHooks:
    """What :func:`run_search` tells its caller besides the result (override what you need; all are no-ops).

    ``step`` counts the steps from 0 over the whole search (resumed ones included); ``asked`` is what
    was passed to ``ask``; ``archs`` what it returned."""

    def on_ask(self, step: int, asked: int, archs: list[str]) -> None:
        """A step's architectures were proposed (live or on replay)."""

    def on_evaluation(self, step: int, asked: int, archs: list[str], index: int, evaluation: Evaluation,
                      wall: float, seconds: float) -> None:
        """``evaluation`` of ``archs[index]`` finished (the moment it did; not called for replayed ones).
        ``wall``: the search's wall clock; ``seconds``: since the previous one of this step finished."""

    def on_tell(self, step: int, asked: int, archs: list[str], evals: list[Evaluation], recommendation: str | None,
                kind: str) -> None:
        """A step was told. ``kind``: ``"live"``, ``"replayed"`` (a closed logged step, nothing evaluated)
        or ``"completed"`` (the open logged step, its missing evaluations run now)."""

    def on_resumed(self, result: SearchResult) -> None:
        """The replayed steps are done (and checkpointed); the search goes on live (called once)."""

    def on_checkpoint(self, state: SearchState) -> None:
        """Save ``state`` (data only: ``state.result`` is the live result object, not a copy)."""


def benchmark_state(benchmark: Benchmark) -> dict[str, Any]:
    """The benchmark's part of a checkpoint: its ``state_dict()`` when it has one, else its counters."""
    if hasattr(benchmark, "state_dict"):
        return {"state_dict": benchmark.state_dict()}
    return benchmark.counters()


def load_benchmark_state(benchmark: Benchmark, state: dict[str, Any]) -> None:
    """Inverse of :func:`benchmark_state`."""
    if "state_dict" in state:
        benchmark.load_state_dict(state["state_dict"])
    else:
        benchmark.load_counters(state)


def serial_evaluate(benchmark: Benchmark, archs: list[str],
                    on_result: Callable[[int, Evaluation], None] | None = None) -> list[Evaluation]:
    """The default evaluator: ``benchmark.query`` one architecture after the other, each reported as it finishes."""
    out = []
    for i, a in enumerate(archs):
        ev = benchmark.query(a)
        if on_result is not None:
            on_result(i, ev)
        out.append(ev)
    return out


def takes_keyword(fn: Any, name: str) -> bool:
    """True when ``fn`` can be called with the keyword ``name`` (it names it, or takes ``**kwargs``)."""
    import inspect

    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def run_search(optimiser: Optimiser, benchmark: Benchmark, budget: int, batch_size: int = 1,
               seed: int | None = None,
               callback: Callable[[SearchResult, Evaluation], None] | None = None, *,
               evaluate: Callable[..., list[Evaluation]] | None = None, hooks: SearchHooks | None = None,
               resume: SearchState | None = None, checkpoint_every: int = 0,
               method: str | None = None) -> SearchResult:
    """Drive ``optimiser`` on ``benchmark`` for ``budget`` queries (asks of ``batch_size``).

    ``callback(result, evaluation)`` after each evaluation is added. The rest is for drivers that
    persist a search (``experiments.rundir``): ``evaluate(benchmark, archs[, on_result])`` evaluates a
    step (default :func:`serial_evaluate`; with ``on_result`` each is reported as it finishes);
    ``hooks`` (:class:`SearchHooks`) hear every ask, evaluation, tell and checkpoint — a checkpoint
    every ``checkpoint_every`` steps (0: none), after a replay and at the end; ``resume`` starts from a
    :class:`SearchState`, telling its logged evaluations instead of querying them again (raises
    :class:`ReplayDiverged` when the optimiser proposes something else); ``method`` names the result
    (default: the optimiser's name). A resumed search gives the result of an uninterrupted one.
    """
    from sdot.validation import nonnegative_int, positive_int

    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)):
        raise ValueError(f"budget must be a positive integer, got {budget!r}")
    budget = positive_int("budget", budget)
    batch_size = positive_int("batch_size", batch_size)
    checkpoint_every = nonnegative_int("checkpoint_every", checkpoint_every)
    state = resume if resume is not None else SearchState()
    if state.optimiser is not None:
        optimiser.load_state_dict(state.optimiser)
    if state.benchmark is not None:
        load_benchmark_state(benchmark, state.benchmark)
    res = SearchResult(method=method or optimiser.name, seed=seed, optimum=benchmark.optimum)
    for k, arch in enumerate(state.result.archs if state.result is not None else []):
        r = state.result
        res.add(Evaluation(arch, r.values[k], r.tests[k], r.costs[k]), r.recommendations[k], r.wall_clock[k])
    n_done = len(res.values)
    if state.optimiser is None and not n_done and not state.finished:
        optimiser.check_budget(budget)  # a resumed optimiser was checked when its search began
    evaluate = evaluate or serial_evaluate
    streams = takes_keyword(evaluate, "on_result")
    n_steps, finished = state.n_steps, state.finished
    clock = [res.wall_clock[-1] if res.wall_clock else 0.0, time.perf_counter()]   # wall offset, its start

    def checkpoint() -> None:
        if hooks is not None:
            hooks.on_checkpoint(SearchState(n_steps=n_steps, finished=finished, optimiser=optimiser.state_dict(),
                                            benchmark=benchmark_state(benchmark), result=res))

    def step(asked: int, archs: list[str], known: dict[int, tuple[Evaluation, float]], kind: str) -> None:
        """Evaluate what ``known`` lacks (each reported as it finishes), tell, recommend, record."""
        nonlocal n_steps
        n = len(archs)
        evals: list[Any] = [None] * n
        walls = [0.0] * n
        for i, (ev, wall) in known.items():
            evals[i], walls[i] = ev, wall
        missing = [i for i in range(n) if evals[i] is None]
        if missing:
            last = [time.perf_counter()]

            def record(k: int, ev: Evaluation) -> None:
                i = missing[k]
                now = time.perf_counter()
                evals[i], walls[i] = ev, clock[0] + now - clock[1]
                if hooks is not None:
                    hooks.on_evaluation(n_steps, asked, archs, i, ev, walls[i], now - last[0])
                last[0] = time.perf_counter()

            sub = [archs[i] for i in missing]
            if streams:
                got = evaluate(benchmark, sub, on_result=record)
                for k, ev in enumerate(got):        # an evaluator that did not report them all
                    if evals[missing[k]] is None:
                        record(k, ev)
            else:
                for k, ev in enumerate(evaluate(benchmark, sub)):
                    record(k, ev)
        optimiser.tell(evals)
        rec = optimiser.recommend()
        for ev, wall in zip(evals, walls):
            res.add(ev, rec, wall)
            if callback is not None:
                callback(res, ev)
        if hooks is not None:
            hooks.on_tell(n_steps, asked, archs, evals, rec, kind)
        n_steps += 1

    # replay the steps logged after the checkpoint: ask again (deterministic given the state), tell the log
    replay = list(state.replay)
    for g, logged in enumerate(replay):
        archs = list(optimiser.ask(logged.asked))
        if hooks is not None:
            hooks.on_ask(n_steps, logged.asked, archs)
        done = {e.index: e for e in logged.evaluations}
        if logged.closed:
            want = [done[i].asked_for for i in sorted(done)]
            ok = archs == want
        else:
            want = [e.evaluation.arch for e in logged.evaluations]
            ok = len(archs) == logged.size and all(archs[i] == e.asked_for for i, e in done.items())
        if not ok:
            lost = sum(len(s.evaluations) for s in replay[g:])
            raise ReplayDiverged(n_steps, len(res.values), archs, want, lost, not logged.closed)
        benchmark.count([e.evaluation for e in logged.evaluations])
        if not logged.closed:
            clock[:] = [max([res.wall_clock[-1] if res.wall_clock else 0.0] + [e.wall for e in done.values()]),
                        time.perf_counter()]
        step(logged.asked, archs, {i: (e.evaluation, e.wall) for i, e in done.items()},
             "replayed" if logged.closed else "completed")
    if len(res.values) > n_done:
        checkpoint()
    clock[:] = [res.wall_clock[-1] if res.wall_clock else 0.0, time.perf_counter()]
    if hooks is not None:
        hooks.on_resumed(res)

    while not finished and len(res.values) < budget:
        asked = min(batch_size, budget - len(res.values))
        archs = list(optimiser.ask(asked))
        if not archs:
            break
        if hooks is not None:
            hooks.on_ask(n_steps, asked, archs)
        step(asked, archs, {}, "live")
        if checkpoint_every and n_steps % checkpoint_every == 0:
            checkpoint()
    finished = True
    checkpoint()
    return res


#: name -> optimiser class (one :class:`sdot.registry.Registry`: duplicates refused, did-you-mean errors).
OPTIMISERS: Registry = Registry("optimiser", hint="add one with @hotnas.optimisers.register_optimiser(name)")


def register_optimiser(name: str, **meta: Any):
    """Class decorator adding an optimiser factory to the registry under ``name`` (same class again: no-op).

    ``meta`` declares what the conformance tests need to know: ``spaces=("nb201",)`` for an optimiser
    tied to some spaces (default: any space), ``heavy=True`` for one that trains networks (its
    conformance test then runs only with ``pytest -m slow``)."""

    def deco(cls):
        OPTIMISERS.register(name, cls, **meta)
        return cls

    return deco


def get_optimiser(name: str, space: SearchSpace, seed: int | None = 0, **kwargs: Any) -> Optimiser:
    """Build a registered optimiser by name; unknown names raise a ValueError naming the closest choice."""
    return OPTIMISERS.load(name)(space, seed=seed, **kwargs)
