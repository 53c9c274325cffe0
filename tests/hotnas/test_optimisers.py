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


# ---------------------------------------------------------------------------------------------------
# issue 15: input validation, the README's example, data-only checkpoints of every optimiser, tidy export


def test_readme_example_every_optimiser_takes_a_budget():
    space = NB201Space()
    for name in ("random", "evolution", "hotnas", "flow"):
        opt = get_optimiser(name, space, seed=0, budget=200)        # raised TypeError for evolution and random
        assert opt.ask(1)


@pytest.mark.parametrize("name", ["random", "evolution", "hotnas"])
def test_tell_refuses_garbage(name):
    opt = make(name)
    with pytest.raises(TypeError, match="list of Evaluation"):
        opt.tell("garbage")
    with pytest.raises(TypeError, match="Evaluation objects"):
        opt.tell(["garbage"])
    with pytest.raises(TypeError, match="Evaluation objects"):
        opt.tell([Evaluation(NB201Space().sample(np.random.default_rng(0)), "90")])
    with pytest.raises(ValueError, match="'garbage' is not an architecture of search space"):
        opt.tell([Evaluation("garbage", 90.0)])
    assert opt.X == [] and opt.y == []                                # nothing half-recorded


@pytest.mark.parametrize("name", ["flow", "optuna-tpe"])
def test_flow_and_peer_tell_refuse_garbage(name):
    if name.startswith("optuna"):
        pytest.importorskip("optuna")  # installed by the test extra
    from hotnas.optimisers import get_optimiser

    opt = get_optimiser(name, NB201Space(), seed=0, budget=30)
    with pytest.raises(TypeError, match="list of Evaluation"):
        opt.tell("garbage")
    with pytest.raises(ValueError, match="'garbage' is not an architecture of search space"):
        opt.tell([Evaluation("garbage", 90.0)])


def test_evolution_warns_when_the_population_leaves_no_evolution():
    """population_size >= budget used to become random search silently."""
    from hotnas.optimisers.evolution import RandomSearchWarning

    space = NB201Space()
    with pytest.warns(RandomSearchWarning, match=r"budget \(20\) is not larger than population_size \(50\).*random search"):
        get_optimiser("evolution", space, seed=0, budget=20)
    with pytest.warns(RandomSearchWarning, match=r"budget \(8\) is not larger than population_size \(8\)"):
        run_search(make("evolution", population_size=8, tournament_size=3), SyntheticNB201(), budget=8)
    with pytest.raises(ValueError, match="population_size must be a positive integer"):
        make("evolution", population_size=0)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = run_search(make("evolution", population_size=8, tournament_size=3), SyntheticNB201(), budget=9)
    assert len(res.values) == 9


@pytest.mark.parametrize("name, kw", [("random", {}), ("evolution", {"population_size": 6, "tournament_size": 3}),
                                      ("hotnas", {}), ("flow", {"n_particles": 4, "budget": 40})])
def test_state_dict_survives_a_data_only_checkpoint(name, kw):
    """What a run directory stores (experiments.rundir.encode_checkpoint: JSON + npz, no pickle)."""
    from experiments.rundir import decode_checkpoint, encode_checkpoint

    bench = SyntheticNB201()

    def drive(opt, steps):
        out = []
        for _ in range(steps):
            archs = opt.ask(2)
            opt.tell([bench.query(a) for a in archs])
            out += archs
        return out

    ref = make(name, seed=3, **kw) if name != "flow" else get_optimiser("flow", NB201Space(), seed=3, **kw)
    drive(ref, 4)
    state = decode_checkpoint(encode_checkpoint(ref.state_dict()))
    resumed = make(name, seed=99, **kw) if name != "flow" else get_optimiser("flow", NB201Space(), seed=99, **kw)
    resumed.load_state_dict(state)
    assert drive(resumed, 5) == drive(ref, 5)


def _small_result():
    from hotnas.optimisers.base import SearchResult

    res = SearchResult(method="m", seed=3, optimum=10.0)
    for arch, v, t, c in (("a", 5.0, 4.0, 2.0), ("b", 7.5, None, 1.0), ("c", 6.0, 5.5, 0.5)):
        res.add(Evaluation(arch, v, t, c), "b" if v > 5 else "a", wall=0.1 * len(res.values))
    return res


def test_search_result_to_csv_is_tidy(tmp_path):
    import csv

    res = _small_result()
    res.to_csv(tmp_path / "r.csv")
    rows = list(csv.DictReader(open(tmp_path / "r.csv")))
    assert list(rows[0]) == list(res.COLUMNS)
    assert [r["query"] for r in rows] == ["1", "2", "3"] and [r["arch"] for r in rows] == ["a", "b", "c"]
    assert [float(r["best_so_far"]) for r in rows] == [5.0, 7.5, 7.5]
    assert [float(r["regret"]) for r in rows] == [5.0, 2.5, 2.5]
    assert [float(r["cumulative_cost"]) for r in rows] == [2.0, 3.0, 3.5]
    assert rows[1]["test"] == "" and rows[2]["test_of_best"] == ""      # None -> empty cell
    assert {r["method"] for r in rows} == {"m"} and {r["seed"] for r in rows} == {"3"}


def test_search_result_to_frame(monkeypatch):
    res = _small_result()
    pd = pytest.importorskip("pandas")
    df = res.to_frame()
    assert isinstance(df, pd.DataFrame) and list(df.columns) == list(res.COLUMNS) and len(df) == 3
    assert df["best_so_far"].tolist() == [5.0, 7.5, 7.5] and df["query"].tolist() == [1, 2, 3]


def test_search_result_to_frame_without_pandas(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pandas", None)       # as if pandas were not installed
    with pytest.raises(ImportError, match=r"needs pandas.*pip install pandas"):
        _small_result().to_frame()
