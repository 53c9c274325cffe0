"""The one trial loop: run_search's hooks, in-memory resume with replay, the run directory driving it, and the
benchmark counters' public API (issue 14)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

import toy_components  # noqa: F401 - registers toy-bits, toy-evolve, toy-random
from experiments.config import config_from_dict
from experiments.rundir import ResumeWarning, TrialSpec, read_log, run_trial
from hotnas.benchmarks import get_benchmark
from hotnas.benchmarks.base import Evaluation
from hotnas.optimisers.base import (OPTIMISERS, LoggedEvaluation, LoggedStep, ReplayDiverged, SearchHooks, SearchState,
                                    get_optimiser, run_search)


def _bench():
    return get_benchmark("toy-bits", n_bits=7)


def _opt(bench, seed=0):
    return get_optimiser("toy-evolve", bench.space, seed=seed, population=4)


def _plain(res):
    d = res.to_dict()
    d.pop("wall_clock")
    return d


class Recorder(SearchHooks):
    def __init__(self):
        self.calls, self.states = [], []

    def on_ask(self, step, asked, archs):
        self.calls.append(("ask", step, asked, len(archs)))

    def on_evaluation(self, step, asked, archs, index, evaluation, wall, seconds):
        assert evaluation.arch == archs[index] and wall >= 0 and seconds >= 0
        self.calls.append(("eval", step, index))

    def on_tell(self, step, asked, archs, evals, recommendation, kind):
        self.calls.append(("tell", step, kind, len(evals)))

    def on_resumed(self, result):
        self.calls.append(("resumed", len(result.values)))

    def on_checkpoint(self, state):
        self.calls.append(("checkpoint", state.n_steps, state.finished))
        self.states.append(SearchState(n_steps=state.n_steps, finished=state.finished,
                                       optimiser=json.loads(json.dumps(state.optimiser)),
                                       benchmark=dict(state.benchmark), result=_copy(state.result)))


def _copy(res):
    from hotnas.optimisers.base import SearchResult

    return SearchResult.from_dict(json.loads(json.dumps(res.to_dict())))


def test_hooks_hear_every_ask_evaluation_tell_and_checkpoint_in_order():
    bench = _bench()
    rec = Recorder()
    res = run_search(_opt(bench), bench, budget=7, batch_size=3, hooks=rec, checkpoint_every=2)
    assert len(res.values) == 7 and bench.n_queries == 7
    assert rec.calls[:6] == [("resumed", 0), ("ask", 0, 3, 3), ("eval", 0, 0), ("eval", 0, 1), ("eval", 0, 2),
                             ("tell", 0, "live", 3)]
    assert [c for c in rec.calls if c[0] == "checkpoint"] == [("checkpoint", 2, False), ("checkpoint", 3, True)]
    assert [c for c in rec.calls if c[0] == "ask"][-1] == ("ask", 2, 1, 1)      # the last ask is what is left


def test_no_hooks_means_no_state_dict_calls_and_the_old_result():
    class NoState(type(_opt(_bench()))):
        def state_dict(self):
            raise AssertionError("a plain run_search must not checkpoint")

    bench = _bench()
    plain = run_search(NoState(bench.space, seed=0, population=4), bench, budget=6, batch_size=2)
    bench2 = _bench()
    again = run_search(_opt(bench2), bench2, budget=6, batch_size=2, hooks=SearchHooks())
    assert _plain(plain) == _plain(again)


@pytest.mark.parametrize("cut", [1, 2])
def test_resume_from_a_checkpoint_with_replayed_and_open_steps_equals_an_uninterrupted_search(cut):
    bench = _bench()
    full = run_search(_opt(bench), bench, budget=10, batch_size=3)
    # a first run that checkpoints after step 1, then records steps 2 .. cut+1 as a "log"
    bench = _bench()
    rec = Recorder()
    part = run_search(_opt(bench), bench, budget=3 * (cut + 1), batch_size=3, hooks=rec, checkpoint_every=1)
    saved = rec.states[0]                                        # after step 1 (3 evaluations)
    assert saved.n_steps == 1 and len(saved.result.values) == 3
    replay = [LoggedStep(3, 3, [LoggedEvaluation(i, Evaluation(part.archs[k], part.values[k], part.tests[k],
                                                               part.costs[k]), part.wall_clock[k])
                                for i, k in enumerate(range(3 * s, 3 * s + 3))]) for s in range(1, cut + 1)]
    replay[-1] = LoggedStep(3, 3, replay[-1].evaluations[:2], closed=False)   # the last step was cut short
    bench = _bench()
    queried = []
    bench.query = lambda a, _q=bench.query: queried.append(a) or _q(a)
    rec2 = Recorder()
    state = SearchState(n_steps=saved.n_steps, optimiser=saved.optimiser, benchmark=saved.benchmark,
                        result=saved.result, replay=replay)
    res = run_search(_opt(bench, seed=123), bench, budget=10, batch_size=3, hooks=rec2, resume=state)
    assert _plain(res) == _plain(full)
    assert bench.n_queries == 10
    assert queried == full.archs[3 * cut + 2:]                   # nothing logged is queried again
    kinds = [c[2] for c in rec2.calls if c[0] == "tell"]
    assert kinds[:cut] == ["replayed"] * (cut - 1) + ["completed"]


def test_a_diverging_replay_raises_with_what_was_lost():
    bench = _bench()
    good = run_search(_opt(bench), bench, budget=6, batch_size=3)
    wrong = LoggedStep(3, 3, [LoggedEvaluation(i, Evaluation("0000000", 1.0), 0.0) for i in range(3)])
    bench = _bench()
    first = LoggedStep(3, 3, [LoggedEvaluation(i, Evaluation(good.archs[i], good.values[i], good.tests[i]), 0.0)
                              for i in range(3)])
    with pytest.raises(ReplayDiverged) as info:
        run_search(_opt(bench), bench, budget=6, batch_size=3, resume=SearchState(replay=[first, wrong]))
    assert (info.value.n_steps, info.value.n_evaluations, info.value.lost, info.value.open_step) == (1, 3, 3, False)


def test_benchmark_counters_api():
    bench = _bench()
    ev = bench.query("1111111")
    assert bench.counters() == {"n_queries": 1, "total_cost": 1.0}
    bench.count([ev, Evaluation("0000000", 2.0, None, 2.5)])
    assert bench.counters() == {"n_queries": 3, "total_cost": 4.5}
    saved = bench.counters()
    bench.reset_counters()
    assert (bench.n_queries, bench.total_cost) == (0, 0.0)
    bench.load_counters(saved)
    assert bench.counters() == saved


class Crash(Exception):
    """The process 'dies' (raised from a progress hook, after a step was logged)."""


def crash_after(n_evaluations):
    """An ``on_step`` progress hook that raises :class:`Crash` once ``n_evaluations`` are done."""
    done = []

    def on_step(k):
        done.append(k)
        if sum(done) >= n_evaluations:
            raise Crash
    return on_step


class _Drifting(toy_components.ToyRandom):
    """Not deterministic given its state: every process draws from fresh entropy."""

    name = "t-drifting"

    def ask(self, n=1):
        self.rng = np.random.default_rng()
        return super().ask(n)


def test_a_non_deterministic_optimiser_resumes_with_the_rest_of_its_log_discarded(tmp_path):
    OPTIMISERS.register("t-drifting", _Drifting, replace=True)
    try:
        raw = {"name": "drift", "plugins": ["toy_components"],
               "benchmark": {"name": "toy-bits", "options": {"n_bits": 7}},
               "search": {"budget": 8, "seeds": [0], "checkpoint_every": 100, "batch_size": 2},
               "methods": [{"optimiser": "t-drifting"}]}
        s = TrialSpec.from_config(config_from_dict(raw))[0]
        with pytest.raises(Crash):
            run_trial(s, tmp_path / "t", on_step=crash_after(6))
        events, _ = read_log(tmp_path / "t" / "events.jsonl")
        assert len(events) == 6
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            out = run_trial(s, tmp_path / "t", resume=True)
        assert any(isinstance(x.message, ResumeWarning) and "not deterministic" in str(x.message) for x in w)
        assert len(out["values"]) == 8 == len(set(out["archs"]))
        assert (tmp_path / "t" / "events.discarded.jsonl").exists()
        assert len(read_log(tmp_path / "t" / "events.jsonl")[0]) == 8
    finally:
        OPTIMISERS.unregister("t-drifting")


class _NeedsFive(toy_components.ToyRandom):
    """Refuses a budget below 5 (like an initial design): a resumed trial must not be re-checked with what is left."""

    name = "t-needs-five"

    def check_budget(self, budget):
        if budget < 5:
            raise ValueError(f"budget {budget} is smaller than the initial design 5")


def test_a_resumed_trial_is_not_checked_again_against_the_budget_left(tmp_path):
    OPTIMISERS.register("t-needs-five", _NeedsFive, replace=True)
    try:
        raw = {"name": "five", "plugins": ["toy_components"],
               "benchmark": {"name": "toy-bits", "options": {"n_bits": 7}},
               "search": {"budget": 8, "seeds": [0], "checkpoint_every": 1},
               "methods": [{"optimiser": "t-needs-five"}]}
        s = TrialSpec.from_config(config_from_dict(raw))[0]
        reference = run_trial(s, tmp_path / "ref")
        with pytest.raises(Crash):
            run_trial(s, tmp_path / "t", on_step=crash_after(7))
        out = run_trial(s, tmp_path / "t", resume=True)
        assert out["archs"] == reference["archs"] and out["values"] == reference["values"]
        with pytest.raises(ValueError, match="initial design"):
            run_trial(TrialSpec(**{**s.__dict__, "budget": 4}), tmp_path / "small")
    finally:
        OPTIMISERS.unregister("t-needs-five")
