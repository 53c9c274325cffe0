"""Optimisers: the ask/tell contract, evolution's population rules, candidate pools, the distance
cache, the budget check, and exact resume from a state dict (all on NB201 with a Hamming engine)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hotnas.benchmarks.base import Benchmark, Evaluation
from hotnas.candidates import CandidatePool
from hotnas.optimisers import OPTIMISERS, get_optimiser, run_search
from hotnas.optimisers.bo import DistanceCache
from hotnas.spaces.nb201 import OPS, NB201Space, parse_arch


class HammingEngine:
    """Number of differing edge operations; counts the pairs it is asked for."""

    def __init__(self):
        self.n_pairs = 0

    def pairs(self, a, b):
        self.n_pairs += len(a)
        return np.array([sum(x != y for x, y in zip(parse_arch(p), parse_arch(q))) for p, q in zip(a, b)], float)


class SyntheticNB201(Benchmark):
    """A smooth objective on NB201: conv3x3 everywhere is best, each other operation costs its index."""

    name = "synthetic"

    def __init__(self):
        super().__init__()
        self.space = NB201Space()
        self.best = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"

    def _evaluate(self, arch):
        ops = parse_arch(arch)
        v = -float(sum(abs(OPS.index(o) - 3) + 0.1 * i * (o == "none") for i, o in enumerate(ops)))
        return Evaluation(arch, v, test=v - 0.5)

    @property
    def optimum(self):
        return 0.0


SMALL_BO = dict(n_init=6, pool_size=20, top_k=3, n_random=4, refit_every=3, n_restarts=1)


def make(name, seed=0, **kw):
    space = NB201Space()
    if name == "hotnas":
        kw = {**SMALL_BO, "engine": HammingEngine(), **kw}
    return get_optimiser(name, space, seed=seed, **kw)


@pytest.mark.parametrize("name", ["random", "evolution", "hotnas"])
def test_registered_and_proposals_are_distinct_unseen_canonical(name):
    assert name in OPTIMISERS
    kw = {"population_size": 8, "tournament_size": 3} if name == "evolution" else {}
    opt = make(name, **kw)
    bench = SyntheticNB201()
    for n in (3, 1, 4, 2, 5, 5):
        archs = opt.ask(n)
        assert len(archs) == n == len(set(archs))
        assert all(a == opt.space.canonical(a) and a not in opt.X for a in archs)
        opt.tell([bench.query(a) for a in archs])
    assert len(set(opt.X)) == len(opt.X) == 20


def test_hotnas_finds_the_optimum_of_a_smooth_objective():
    res = run_search(make("hotnas", acquisition="kg", seed=1), SyntheticNB201(), budget=40)
    assert res.best_so_far[-1] == 0.0
    assert len(set(res.archs)) == 40


@pytest.mark.parametrize("acq", ["ei", "lcb"])
def test_hotnas_other_acquisitions_and_batches(acq):
    res = run_search(make("hotnas", acquisition=acq, seed=2), SyntheticNB201(), budget=24, batch_size=4)
    assert len(set(res.archs)) == 24 and res.best_so_far[-1] > -3


def test_budget_smaller_than_the_initial_design():
    with pytest.raises(ValueError, match="budget 9 is smaller than the initial design n_init=10"):
        make("hotnas", n_init=10, budget=9)
    with pytest.raises(ValueError, match="budget 5 is smaller than the initial design n_init=10"):
        make("hotnas", n_init=10).check_budget(5)
    make("hotnas", n_init=10, budget=10)  # exactly the initial design is fine


def test_evolution_removal_rules():
    bench = SyntheticNB201()
    for removal in ("oldest", "worst"):
        opt = make("evolution", population_size=5, tournament_size=2, removal=removal)
        evs = [bench.query(a) for a in opt.ask(5)]
        opt.tell(evs)
        child = bench.query(opt.ask(1)[0])
        opt.tell([child])
        kept = {a for a, _ in opt.population}
        gone = evs[0].arch if removal == "oldest" else min(evs + [child], key=lambda e: e.value).arch
        assert len(opt.population) == 5 and gone not in kept
    with pytest.raises(ValueError, match="removal"):
        make("evolution", removal="random")


def test_evolution_mutates_a_tournament_winner():
    opt = make("evolution", population_size=4, tournament_size=4)  # the tournament is the population
    bench = SyntheticNB201()
    opt.tell([bench.query(a) for a in opt.ask(4)])
    best = max(opt.population, key=lambda m: m[1])[0]
    child = opt.ask(1)[0]
    assert child in opt.space.mutations(best)


def test_candidate_pool():
    space = NB201Space()
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(12)]
    values = list(np.arange(12.0))
    excluded = space.mutations(archs[11])[0]
    parents = (set(space.mutations(archs[11])) | set(space.mutations(archs[10]))) - set(archs) - {excluded}
    for size in (60, 30):
        cand = CandidatePool(space, size=size, top_k=2, n_random=5)(archs, values, rng, exclude=[excluded])
        assert len(cand) == len(set(cand)) == size
        assert not set(cand) & set(archs) and excluded not in cand
        n_mut = sum(a in parents for a in cand)
        assert n_mut == (len(parents) if size == 60 else size - 5)  # mutations first, random samples top up


def test_distance_cache_computes_each_pair_once():
    eng = HammingEngine()
    cache = DistanceCache(eng)
    space = NB201Space()
    rng = np.random.default_rng(0)
    a = [space.sample(rng) for _ in range(10)]
    b = a[5:] + [space.sample(rng) for _ in range(5)]
    D = cache.block(a, a)
    assert eng.n_pairs == 45 and np.allclose(D, D.T) and np.all(np.diag(D) == 0)
    E = cache.block(b, a)
    assert eng.n_pairs == 45 + 5 * 10  # only the 5 new rows
    np.testing.assert_array_equal(E, HammingEngine().pairs(np.repeat(b, 10), np.tile(a, 10)).reshape(10, 10))
    cache.block(a + b, b + a)
    assert eng.n_pairs == 45 + 50 + 10  # only the pairs among the 5 new


@pytest.mark.parametrize("name, kw", [("random", {}), ("evolution", {"population_size": 6, "tournament_size": 3}),
                                      ("hotnas", {}), ("hotnas", {"acquisition": "ei"})])
def test_resume_from_state_dict_continues_identically(name, kw):
    bench = SyntheticNB201()

    def drive(opt, steps, batch):
        out = []
        for _ in range(steps):
            archs = opt.ask(batch)
            opt.tell([bench.query(a) for a in archs])
            out += archs
        return out

    ref = make(name, seed=3, **kw)
    drive(ref, 5, 2)
    state = json.loads(json.dumps(ref.state_dict()))  # JSON round trip, as a checkpoint would do
    tail_ref = drive(ref, 6, 2)
    resumed = make(name, seed=99, **kw)  # a different seed: everything must come from the state
    resumed.load_state_dict(state)
    assert drive(resumed, 6, 2) == tail_ref
    assert resumed.state_dict() == ref.state_dict()


def test_hotnas_target_transforms():
    from hotnas.optimisers.bo import TRANSFORMS

    from scipy.stats import norm

    z = TRANSFORMS["copula"](np.array([10.0, 90.0, 91.0, 89.0]))  # ranks 1, 3, 4, 2 of 4
    np.testing.assert_allclose(z, norm.ppf(np.array([0.5, 2.5, 3.5, 1.5]) / 4))
    tied = TRANSFORMS["copula"](np.array([1.0, 5.0, 5.0]))  # ties share their average rank
    assert tied[1] == tied[2] == pytest.approx(norm.ppf(2.0 / 3))
    with pytest.raises(ValueError, match="unknown target transform"):
        make("hotnas", transform="log")
    res = run_search(make("hotnas", transform=None, seed=1), SyntheticNB201(), budget=20)
    assert len(set(res.archs)) == 20
