"""Graph constructions of issue 19 (hotnas.graph_builders) against closed forms, and the study's smoke run."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from hotnas.graph_builders import (FixedGraph, PoolSpace, build_fixed_graph, encoding_knn_pairs, kernel_weights,
                                   knn_select, mutation_pairs, union_pairs, within_row_spread)
from hotnas.spaces.base import SearchSpace


class Cube(SearchSpace):
    """Binary strings of length L; a mutation flips one bit (the hypercube graph)."""

    name = "cube"

    def __init__(self, L: int):
        self.L = L

    def canonical(self, arch: str) -> str:
        if not isinstance(arch, str) or len(arch) != self.L or set(arch) - {"0", "1"}:
            raise ValueError(f"bad cube string {arch!r}")
        return arch

    def sample(self, rng):
        return "".join(rng.choice(["0", "1"], size=self.L))

    def mutations(self, arch):
        return [arch[:k] + ("1" if arch[k] == "0" else "0") + arch[k + 1:] for k in range(self.L)]

    def to_network(self, arch):
        raise NotImplementedError

    def encoding(self, arch):
        return np.array([int(c) for c in arch])

    def enumerate(self):
        return ("".join(t) for t in itertools.product("01", repeat=self.L))

    def __len__(self):
        return 2 ** self.L


def test_mutation_pairs_hypercube_counts():
    L = 6
    sp = Cube(L)
    archs = list(sp.enumerate())
    i1, j1 = mutation_pairs(sp, archs, 1)
    i2, j2 = mutation_pairs(sp, archs, 2)
    assert len(i1) == 2 ** L * L // 2                      # L-regular graph
    assert len(i2) == 2 ** L * math.comb(L, 2) // 2       # pairs at Hamming distance exactly 2
    ham = lambda i, j: np.array([sum(a != b for a, b in zip(archs[x], archs[y])) for x, y in zip(i, j)])
    assert np.all(ham(i1, j1) == 1) and np.all(ham(i2, j2) == 2) and np.all(i1 < j1) and np.all(i2 < j2)
    with pytest.raises(ValueError, match="closed"):
        mutation_pairs(sp, archs[:10], 1)
    with pytest.raises(ValueError, match="radius"):
        mutation_pairs(sp, archs, 3)


def test_encoding_knn_on_full_cube_is_the_mutation_graph():
    sp = Cube(5)
    archs = list(sp.enumerate())
    i, j = encoding_knn_pairs(sp, archs, k=5)            # each node has exactly 5 nodes at Hamming 1
    i1, j1 = mutation_pairs(sp, archs, 1)
    assert set(zip(i.tolist(), j.tolist())) == set(zip(i1.tolist(), j1.tolist()))


def test_knn_select_union_symmetrisation_and_zero_exclusion():
    # star-like candidates: node 0 close to everybody; node 3 has only far candidates
    i = np.array([0, 0, 0, 1, 1, 2])
    j = np.array([1, 2, 3, 2, 3, 3])
    d = np.array([0.1, 0.2, 0.9, 0.0, 0.8, 0.7])
    keep = knn_select(i, j, d, 4, k=1)
    # nearest (d > 0): 0 -> 1 (0.1); 1 -> 0 (0.1; (1,2) has d = 0, excluded); 2 -> 0 (0.2); 3 -> 2 (0.7)
    assert keep.tolist() == [True, True, False, False, False, True]
    keep0 = knn_select(i, j, d, 4, k=1, min_distance=-1.0)     # d = 0 allowed: 1 -> 2 now
    assert keep0[3]
    with pytest.raises(ValueError, match="k must"):
        knn_select(i, j, d, 4, k=0)
    with pytest.raises(ValueError, match="itself"):
        knn_select(np.array([1]), np.array([1]), np.array([0.5]), 4, k=1)


def test_union_pairs():
    a = (np.array([0, 1]), np.array([1, 2]))
    b = (np.array([2, 0]), np.array([1, 3]))               # (2, 1) is (1, 2) reversed
    i, j = union_pairs(a, b)
    assert list(zip(i.tolist(), j.tolist())) == [(0, 1), (0, 3), (1, 2)]


def test_within_row_spread_closed_form():
    # triangle with d = (0, 1, 1): rows {0, 1}, {0, 1}, {1, 1}: variances 1/4, 1/4, 0
    i, j, d = np.array([0, 0, 1]), np.array([1, 2, 2]), np.array([0.0, 1.0, 1.0])
    assert within_row_spread(i, j, d, 3) == pytest.approx(math.sqrt(1 / 6), abs=1e-15)
    assert within_row_spread(i, j, np.full(3, 0.7), 3) == 0.0
    assert within_row_spread(i, j, np.full(3, 1 / 6), 3) == 0.0      # Hamming on NB201 mutation edges; no rounding residue
    # an isolated node does not count
    assert within_row_spread(i, j, d, 5) == pytest.approx(math.sqrt(1 / 6), abs=1e-15)


def test_kernel_weights_ratios_normalisation_and_scale_freedom():
    rng = np.random.default_rng(0)
    d = rng.uniform(0, 0.3, size=50)
    s = 0.07
    for beta in (-3.0, -1.0, 0.5, 2.0):
        w = kernel_weights(d, beta, s)
        assert w.mean() == pytest.approx(1.0, rel=1e-12)
        # ratio of any two weights is exp(-beta (d_a - d_b) / s)
        assert w[3] / w[7] == pytest.approx(math.exp(-beta * (d[3] - d[7]) / s), rel=1e-12)
        # scale-free: distances and spread in other units give the same weights
        assert np.allclose(kernel_weights(40.0 * d, beta, 40.0 * s), w, rtol=1e-12)
    assert np.all(kernel_weights(d, 0.0, s) == 1.0) and np.all(kernel_weights(d, 2.0, 0.0) == 1.0)
    raw = kernel_weights(d, 1.0, 0.1, normalise=False)
    assert np.allclose(raw, np.exp(-d / 0.1), rtol=1e-12)            # l = s / beta = 0.1
    assert np.all(np.isfinite(kernel_weights(np.array([0.0, 1e4]), -5.0, 1.0)))   # no overflow
    with pytest.raises(ValueError, match="distances"):
        kernel_weights(np.array([-0.1]), 1.0, 1.0)
    with pytest.raises(ValueError, match="spread"):
        kernel_weights(d, 1.0, -1.0)


def test_weight_scale_is_a_time_rescaling():
    """lambda * w over dt and w over lambda * dt are the same jump chain (same uniforms, same jumps)."""
    from sdot.particles import ParticleState, jump_step
    from sdot.space import SemiDiscreteSpace

    from hotnas.optimisers.flow import table_potential

    W = np.array([[0, 0.3, 0.1], [0.3, 0, 0.6], [0.1, 0.6, 0]])
    pot = table_potential(np.array([0.4, 0.0, 0.2]))
    lam, dt, T = 3.0, 0.7, 0.25
    outs = []
    for Wm, step in ((lam * W, dt), (W, lam * dt)):
        st = ParticleState.from_labels(np.repeat([0, 1, 2], 2000), rng=np.random.default_rng(5))
        jump_step(st, SemiDiscreteSpace(Wm), pot, "glauber", T, step, method="exact")
        outs.append(np.asarray(st.g).copy())
    assert np.array_equal(outs[0], outs[1])


def test_fixed_graph_rows_proposals_and_subgraph():
    sp = Cube(4)
    archs = list(sp.enumerate())
    i, j = mutation_pairs(sp, archs, 1)
    d = np.array([0.1 * (1 + (a + b) % 3) for a, b in zip(i, j)])
    G = build_fixed_graph(sp, archs, i, j, d, beta=1.0)
    assert isinstance(G, FixedGraph) and G.mean_degree() == 4.0
    names, w = G.neighbours(archs[0])
    assert sorted(names) == sorted(sp.mutations(archs[0]))
    s = within_row_spread(i, j, d, len(archs))
    ref = np.exp(-d / s)
    ref /= ref.mean()
    assert G.weight(archs[i[0]], archs[j[0]]) == pytest.approx(ref[0], rel=1e-12)
    assert G.weight(archs[0], archs[-1]) == 0.0
    # proposals follow w / deg (chi-square bound at 5 sigma-ish)
    rng = np.random.default_rng(1)
    draws = G.sample_neighbour(archs[0], rng, size=20000)
    p = w / w.sum()
    freq = np.array([draws.count(h) for h in names]) / 20000
    assert np.all(np.abs(freq - p) < 5 * np.sqrt(p * (1 - p) / 20000))
    S = G.subgraph(archs[:4])
    Wd = S.weights.toarray()
    assert Wd.shape == (4, 4) and np.allclose(Wd, Wd.T)
    k01 = (archs[0], archs[1])
    assert Wd[0, 1] == pytest.approx(G.weight(*k01), rel=1e-12)
    with pytest.raises(KeyError, match="not a node"):
        FixedGraph(sp, archs[:2], np.array([0]), np.array([1]), np.array([1.0])).neighbours(archs[5])
    with pytest.raises(ValueError, match="> 0"):
        FixedGraph(sp, archs, i, j, np.zeros(len(i)))


def test_pool_space_and_flow_on_fixed_graph():
    from hotnas.benchmarks.base import Evaluation
    from hotnas.optimisers import get_optimiser

    base = Cube(6)
    rng = np.random.default_rng(0)
    pool = [a for a in base.enumerate() if rng.random() < 0.5]
    space = PoolSpace(base, pool)
    assert len(space) == len(pool) and space.sample(rng) in set(pool)
    outside = next(a for a in base.enumerate() if a not in set(pool))
    with pytest.raises(ValueError, match="not in the pool"):
        space.canonical(outside)
    i, j = encoding_knn_pairs(base, space.pool, k=3)
    G = build_fixed_graph(space, space.pool, i, j, None)
    value = {a: float(a.count("1")) for a in space.pool}              # best = most ones
    opt = get_optimiser("flow", space, seed=0, budget=30, graph=G, n_particles=5)
    for _ in range(30):
        asked = opt.ask(1)
        if not asked:
            break
        assert asked[0] in value
        opt.tell([Evaluation(asked[0], value[asked[0]])])
    assert max(opt.values.values()) >= 5.0


@pytest.mark.slow
def test_study_smoke(tmp_path):
    from experiments.studies.graph_ablation import main

    res = main(["--smoke", "--out", str(tmp_path)])
    assert (tmp_path / "table.md").is_file() and (tmp_path / "delta25.png").is_file()
    rep = res["report"]["smoke"]
    base = rep["mutations / uniform"]
    assert base["d@25"] == (0.0, 0.0) and base["n"] == 3
    for row in rep.values():
        assert 0.0 <= row["@40"][0] <= row["@25"][0] + 1e-12     # regret never increases with budget
