"""Optuna peers, the surrogate-guided flow (flow-bo), table-subset benchmarks, and the flow's one budget
and temperature units (issues 13 and 18)."""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pytest

from hotnas.benchmarks.base import Benchmark, Evaluation
from hotnas.optimisers import get_optimiser, run_search
from hotnas.optimisers.flow import FlowOptimiser, robust_spread
from hotnas.optimisers.flow_bo import FlowBO, ThompsonChoice, metropolis_accept
from hotnas.acquisition import Posterior

from toy_components import BitSpace, ToyBenchmark


def hamming(A, B):
    return np.array([sum(x != y for x, y in zip(a, b)) for a, b in zip(A, B)], dtype=float)


class Hamming:
    def pairs(self, A, B):
        return hamming(A, B)


class CodeSpace(BitSpace):
    """3 ternary variables; codes whose first entry is 2 collapse onto first entry 0 (two codes per
    architecture there), so a sampler suggests architectures it has already seen."""

    name = "toy-codes"

    def __init__(self):
        super().__init__(3)

    def canonical(self, arch):
        if len(arch) != 3 or set(arch) - set("01"):
            raise ValueError(f"bad arch {arch!r}")
        return arch

    def categorical_encoding(self):
        return (("a", (0, 1, 2)), ("b", (0, 1, 2)), ("c", (0, 1, 2)))

    def decode(self, codes):
        a, b, c = (int(x) for x in codes)
        return "".join(str(min(v, 1) if v < 2 else 0) for v in (a, b, c))

    def encoding(self, arch):
        return np.array([int(ch) for ch in arch])


class Counting(Benchmark):
    def __init__(self, space):
        super().__init__()
        self.space = space
        self.asked = []

    def _evaluate(self, arch):
        self.asked.append(arch)
        return Evaluation(arch, float(arch.count("1")) + 0.1 * (arch[0] == "1"), None, 1.0)

    @property
    def optimum(self):
        return 3.1


# ------------------------------------------------------------------ Optuna peers
@pytest.mark.parametrize("name", ["optuna-tpe", pytest.param("optuna-gp", marks=pytest.mark.slow)])
def test_peer_counts_each_distinct_architecture_once_and_reaches_every_one(name):
    pytest.importorskip("optuna")
    space = CodeSpace()
    bench = Counting(space)
    opt = get_optimiser(name, space, seed=0, max_repeats=3)
    res = run_search(opt, bench, budget=8)  # all 8 architectures of the space
    assert len(bench.asked) == len(set(bench.asked)) == 8 == len(res.values)
    assert res.best_so_far[-1] == pytest.approx(3.1)
    # 27 codes for 8 architectures: the sampler repeats itself; repeats were answered from the cache
    assert opt.n_suggestions == opt.n_cached + 8 - opt.n_fallbacks
    assert opt.n_cached > 0
    done = [t for t in opt._study.trials if t.value is not None]
    assert len(done) == opt.n_suggestions + opt.n_fallbacks  # every suggestion (and fallback) was told
    for t in done:  # each trial told its architecture's value
        arch = space.decode([t.params["a"], t.params["b"], t.params["c"]])
        assert t.value == pytest.approx(bench._evaluate(arch).value)


def test_optuna_gp_is_registered_and_answers_repeats_from_the_cache():
    pytest.importorskip("optuna")
    space = CodeSpace()
    bench = Counting(space)
    opt = get_optimiser("optuna-gp", space, seed=0)  # its first 10 suggestions are random (Optuna default)
    res = run_search(opt, bench, budget=4)
    assert len(set(bench.asked)) == len(bench.asked) == 4 == len(res.values)
    assert opt.n_suggestions == opt.n_cached + 4


def test_peer_state_round_trip_and_batches():
    pytest.importorskip("optuna")
    space = CodeSpace()
    bench = Counting(space)
    a = get_optimiser("optuna-tpe", space, seed=1)
    run_search(a, bench, budget=4, batch_size=2)
    b = get_optimiser("optuna-tpe", space, seed=9)
    b.load_state_dict(a.state_dict())
    assert b.X == a.X and len(b._study.trials) == len(a._study.trials)
    more = run_search(b, bench, budget=4)
    assert not set(more.archs) & set(a.X)


def test_peer_refuses_a_space_without_categorical_encoding():
    pytest.importorskip("optuna")
    with pytest.raises(TypeError, match="categorical encoding"):
        get_optimiser("optuna-tpe", BitSpace(4), seed=0)


def test_peer_without_optuna_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)  # import optuna -> ImportError
    with pytest.raises(ImportError, match=r"sdot-nas\[peers\]"):
        get_optimiser("optuna-gp", CodeSpace(), seed=0)


def test_nb201_declares_6_edges_of_5_operations_and_decode_inverts_encoding():
    from hotnas.spaces.nb201 import NB201Space

    sp = NB201Space()
    enc = sp.categorical_encoding()
    assert len(enc) == 6 and all(len(c) == 5 for _, c in enc)
    rng = np.random.default_rng(0)
    for _ in range(20):
        a = sp.sample(rng)
        assert sp.decode(sp.encoding(a)) == sp.canonical(a)
    with pytest.raises(ValueError, match="6 entries"):
        sp.decode([0, 1])


# ------------------------------------------------------------------ surrogate-guided flow
def test_metropolis_acceptance_has_the_gibbs_measure_invariant_on_an_irregular_graph():
    # a star (centre 0) with a tail 4-5: degrees 4,1,1,2,2,1 (unit weights); the chain with proposal
    # uniform over neighbours and the MH acceptance must converge to exp(-f/T)/Z, not to deg*exp(-f/T)
    nbrs = {0: [1, 2, 3, 4], 1: [0], 2: [0], 3: [0], 4: [0, 5], 5: [4]}
    f = np.array([0.0, 0.5, -0.3, 0.2, 0.1, -0.6])
    T = 0.4
    deg = np.array([len(nbrs[g]) for g in range(6)], float)
    table = np.full((6, 4), -1)
    for x, nb in nbrs.items():
        table[x, :len(nb)] = nb
    rng = np.random.default_rng(0)
    N = 40_000
    g = rng.integers(6, size=N)
    for _ in range(120):
        prop = table[g, (rng.random(N) * deg[g]).astype(int)]
        ok = metropolis_accept(f[g], f[prop], deg[g], deg[prop], T, rng)
        g = np.where(ok, prop, g)
    pi = np.exp(-f / T) / np.exp(-f / T).sum()
    emp = np.bincount(g, minlength=6) / N
    assert np.all(np.abs(emp - pi) < 5 * np.sqrt(pi * (1 - pi) / N) + 2e-3)


def test_thompson_choice_draws_from_the_posterior():
    rng = np.random.default_rng(0)
    mean = np.array([1.0, -1.0, 0.5])
    cov = np.array([[1.0, 0.8, 0.0], [0.8, 1.0, 0.0], [0.0, 0.0, 0.0]])
    tc = ThompsonChoice(rng)
    post = Posterior(mean=mean, var=np.diag(cov), cov=cov)
    draws = np.array([tc(post) for _ in range(4000)])
    assert np.allclose(draws[:, 2], 0.5)  # zero variance: the mean exactly
    assert np.allclose(draws.mean(0), mean, atol=0.07)  # 4.4 standard errors
    assert np.allclose(np.cov(draws[:, :2].T), cov[:2, :2], atol=0.1)


@pytest.mark.parametrize("kw", [{}, {"guide": "mean"}, {"guide": "ts", "select": "ts"}])
def test_flow_bo_spends_its_budget_on_distinct_architectures_and_finds_the_optimum(kw):
    bench = ToyBenchmark(6)
    opt = get_optimiser("flow-bo", bench.space, seed=0, engine=Hamming(), n_init=6, n_particles=6,
                        inner_rounds=4, n_random=2, refit_every=5, **kw)
    assert isinstance(opt, FlowBO)
    res = run_search(opt, bench, budget=30)
    assert len(res.archs) == len(set(res.archs)) == 30
    assert res.best_so_far[-1] == pytest.approx(bench.optimum)
    assert opt.stats["proposed"] == (30 - 6) * 6 * 4  # every inner round of every query ran
    assert 0 < opt.stats["accepted"] <= opt.stats["proposed"]


def test_flow_bo_refuses_bad_options():
    for kw, msg in [({"guide": "x"}, "guide"), ({"select": "kg"}, "select"), ({"temperature": 0}, "temperature"),
                    ({"n_particles": 0}, "n_particles"), ({"beta": -1}, "beta")]:
        with pytest.raises(ValueError, match=msg):
            FlowBO(BitSpace(4), seed=0, engine=Hamming(), **kw)


# ------------------------------------------------------------------ the flow's one budget (#18)
def test_flow_without_budget_takes_run_search_budget_and_anneals_fully():
    bench = ToyBenchmark(7)
    opt = FlowOptimiser(bench.space, seed=0, engine=hamming, lengthscale=1.0, n_particles=6,
                        temperature=(1.0, 0.01), birth_death=0.0)
    res = run_search(opt, bench, budget=30)
    assert opt.budget == 30 and len(res.values) == 30
    assert opt.temperature() == pytest.approx(0.01)  # the schedule ended where it should


def test_flow_budget_smaller_than_run_search_raises_naming_both():
    bench = ToyBenchmark(7)
    opt = FlowOptimiser(bench.space, seed=0, engine=hamming, lengthscale=1.0, n_particles=6, budget=40)
    with pytest.raises(ValueError, match=r"budget=100.*budget=40"):
        run_search(opt, bench, budget=100)
    with pytest.warns(UserWarning, match="smaller than the flow's budget=40"):
        run_search(opt, bench, budget=20)


def test_flow_driven_by_hand_without_budget_warns():
    opt = FlowOptimiser(BitSpace(5), seed=0, engine=hamming, lengthscale=1.0, n_particles=4)
    with pytest.warns(UserWarning, match="without budget"):
        opt.ask(1)


# ------------------------------------------------------------------ temperature units (#18)
class Scaled(ToyBenchmark):
    def __init__(self, factor):
        super().__init__(7)
        self.factor = factor

    def _evaluate(self, arch):
        ev = super()._evaluate(arch)
        return Evaluation(arch, ev.value * self.factor, None, 1.0)


def test_spread_units_make_the_flow_invariant_to_the_value_scale():
    runs = []
    for factor in (1.0, 0.01):  # accuracy in %, and the same table in fractions
        opt = FlowOptimiser(BitSpace(7), seed=3, engine=hamming, lengthscale=1.0, n_particles=8,
                            temperature=(0.5, 0.05), temperature_units="spread")
        runs.append(run_search(opt, Scaled(factor), budget=35).archs)
    assert runs[0] == runs[1]


def test_value_units_warn_when_the_temperature_dwarfs_the_spread_of_values():
    opt = FlowOptimiser(BitSpace(7), seed=3, engine=hamming, lengthscale=1.0, n_particles=8, temperature=(0.5, 0.05))
    with pytest.warns(UserWarning, match="value units"):
        run_search(opt, Scaled(0.01), budget=20)
    assert any(e["kind"] == "units_warning" for e in opt.events)
    opt = FlowOptimiser(BitSpace(7), seed=3, engine=hamming, lengthscale=1.0, n_particles=8, temperature=(0.5, 0.05))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # percent-like spread: no warning
        run_search(opt, Scaled(10.0), budget=20)


def test_robust_spread_is_the_normal_sd_and_ignores_a_tail():
    rng = np.random.default_rng(0)
    x = rng.normal(0, 2.0, 20000)
    assert robust_spread(x) == pytest.approx(2.0, rel=0.03)
    assert robust_spread(np.r_[x, -1e6 * np.ones(50)]) == pytest.approx(2.0, rel=0.05)
    assert robust_spread(np.ones(5)) == 1.0


# ------------------------------------------------------------------ table subsets
def test_subset_space_neighbours_are_symmetric_in_table_hamming_knn():
    from hotnas.benchmarks.subsets import SubsetSpace
    from hotnas.spaces.nb201 import NB201Space

    base = NB201Space()
    rng = np.random.default_rng(1)
    archs = list(dict.fromkeys(base.sample(rng) for _ in range(60)))
    sp = SubsetSpace(base, archs, k=3)
    E = np.stack([base.encoding(a) for a in archs])
    for i, a in enumerate(sp.enumerate()):
        nb = sp.mutations(a)
        assert a not in nb and set(nb) <= set(archs)
        assert all(a in sp.mutations(b) for b in nb)  # symmetric
        h = (E != E[i]).sum(1).astype(float)
        h[i] = np.inf
        kth = np.sort(h)[2]
        assert all(h[archs.index(b)] <= kth for b in nb if archs.index(b) in np.argsort(h, kind="stable")[:3])
        assert sum(h[archs.index(b)] <= kth for b in nb) >= 3  # its own 3 nearest are there
    with pytest.raises(ValueError, match="not one of"):
        sp.mutations(next(a for a in (base.sample(rng) for _ in range(1000)) if a not in archs))


def test_nb101_500_merges_isomorphic_duplicates_and_searches_inside_the_table():
    from hotnas.benchmarks import get_benchmark

    b = get_benchmark("nb101-500")
    assert 0 < len(b) <= 500 and len(set(b.archs)) == len(b)
    opt = get_optimiser("evolution", b.space, seed=0, population_size=10, tournament_size=3)
    res = run_search(opt, b, budget=40)  # every proposal is a table member, or the look-up would raise
    assert len(res.values) == 40


# ------------------------------------------------------------------ comparison outputs
def _trial(label, seed, best):
    best = list(map(float, best))
    return dict(benchmark="toy", label=label, seed=seed, budget=len(best), optimum=10.0, values=best,
                best_so_far=best, cpu_seconds=1.0)


def test_comparison_outputs_tidy_csv_and_paired_standard_errors(tmp_path):
    from experiments.studies.compare_tabular import curves_frame, paired_table, summary_table, write_csv

    rng = np.random.default_rng(0)
    A = np.maximum.accumulate(rng.uniform(5, 10, (4, 50)), axis=1)
    B = np.maximum.accumulate(rng.uniform(5, 10, (5, 50)), axis=1)
    trials = [_trial("a", s, A[s]) for s in range(4)] + [_trial("b", s, B[s]) for s in range(5)]
    path = write_csv(trials, tmp_path / "curves.csv")
    lines = path.read_text().splitlines()
    assert lines[0] == "benchmark,method,seed,query,value,best_so_far,regret" and len(lines) == 1 + 9 * 50
    # paired over the 4 common seeds, at query 50: mean and s.e. of (regret_a - regret_b)
    d = (10 - A[:, 49]) - (10 - B[:4, 49])
    want = f"{d.mean():+.3f} ± {d.std(ddof=1) / 2:.3f}"
    table = paired_table(trials, "a", checkpoints=(50,))
    assert "b (n=4)" in table and want in table
    reg = 10 - B[:, 24]
    assert f"{reg.mean():.3f} ± {reg.std(ddof=1) / np.sqrt(5):.3f}" in summary_table(trials, checkpoints=(25,))
    pd = pytest.importorskip("pandas")
    df = curves_frame(trials)
    assert isinstance(df, pd.DataFrame) and len(df) == 450
    assert df.groupby("method")["seed"].nunique().to_dict() == {"a": 4, "b": 5}
