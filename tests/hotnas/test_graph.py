"""The architecture graph G: lazy rows, kernel weights, k-nearest neighbours, export to sdot."""

from __future__ import annotations

import numpy as np
import pytest

from hotnas.graph import ArchitectureGraph
from hotnas.spaces.nb201 import NB201Space, parse_arch
from sdot import SemiDiscreteSpace

from toy_components import BitSpace


def hamming_nb201(A, B):
    return np.array([sum(x != y for x, y in zip(parse_arch(a), parse_arch(b))) / 6 for a, b in zip(A, B)])


def hamming_bits(A, B):
    return np.array([sum(x != y for x, y in zip(a, b)) for a, b in zip(A, B)], dtype=float)


def test_mutation_rows_have_kernel_weights_and_are_lazy():
    space = NB201Space()
    G = ArchitectureGraph(space, distance=hamming_nb201, lengthscale=0.5)
    assert G.cached_rows() == 0  # nothing is built up front
    a = space.sample(np.random.default_rng(0))
    names, w = G.neighbours(a)
    assert sorted(names) == sorted(space.mutations(a))
    np.testing.assert_allclose(w, np.exp(-(1 / 6) / 0.5))
    assert G.cached_rows() == 1
    G.neighbours(a)
    assert G.cached_rows() == 1 and G.stats["distances"] == 24  # cached, not recomputed
    assert G.degree(a) == pytest.approx(w.sum())
    assert G.weight(a, names[3]) == pytest.approx(w[3]) and G.weight(a, a) == 0.0


def test_rbf_and_callable_kernels():
    space = NB201Space()
    a = space.sample(np.random.default_rng(1))
    rbf = ArchitectureGraph(space, distance=hamming_nb201, kernel="rbf", lengthscale=0.2)
    np.testing.assert_allclose(rbf.neighbours(a)[1], np.exp(-(1 / 6) ** 2 / (2 * 0.04)))
    custom = ArchitectureGraph(space, distance=hamming_nb201, kernel=lambda d: 1.0 / (1.0 + d))
    np.testing.assert_allclose(custom.neighbours(a)[1], 1.0 / (1.0 + 1 / 6))


def test_subgraph_is_the_induced_sdot_space():
    space = NB201Space()
    G = ArchitectureGraph(space, distance=hamming_nb201, lengthscale=0.3)
    a = space.sample(np.random.default_rng(2))
    nbrs = space.mutations(a)
    far = space.sample(np.random.default_rng(3))
    nodes = [a, nbrs[0], nbrs[5], nbrs[20], far]
    S = G.subgraph(nodes)
    assert isinstance(S, SemiDiscreteSpace) and S.labels == nodes and S.dim == 0
    W = S.weights.toarray()
    np.testing.assert_allclose(W, W.T)
    w = np.exp(-(1 / 6) / 0.3)
    assert W[0, 1] == pytest.approx(w) and W[0, 2] == pytest.approx(w) and W[0, 3] == pytest.approx(w)
    # two single-edge mutations of a are adjacent iff they differ in exactly one edge
    assert (W[1, 2] > 0) == (hamming_nb201([nbrs[0]], [nbrs[5]])[0] == 1 / 6)
    assert (W[1, 3] > 0) == (hamming_nb201([nbrs[0]], [nbrs[20]])[0] == 1 / 6)
    if sum(x != y for x, y in zip(parse_arch(a), parse_arch(far))) > 1:
        assert W[0, 4] == 0.0
    with pytest.raises(ValueError, match="distinct"):
        G.subgraph([a, a])


def test_knn_union_is_symmetric_and_mutual_is_a_subset():
    space = BitSpace(5)
    pool = list(space.enumerate())
    rng = np.random.default_rng(0)
    offsets = {a: rng.random() * 0.5 for a in pool}  # break ties so that the kNN relation is not symmetric

    def dist(A, B):
        return hamming_bits(A, B) + np.array([abs(offsets[a] - offsets[b]) for a, b in zip(A, B)])

    union = ArchitectureGraph(space, distance=dist, neighbours="knn", k=3, pool=pool, lengthscale=1.0)
    mutual = ArchitectureGraph(space, distance=dist, neighbours="knn", k=3, pool=pool, lengthscale=1.0,
                               symmetrize="mutual")
    Su, Sm = union.subgraph(pool), mutual.subgraph(pool)
    Wu, Wm = Su.weights.toarray(), Sm.weights.toarray()
    np.testing.assert_allclose(Wu, Wu.T)
    assert np.all((Wu > 0).sum(1) >= 3)                 # every node keeps its own 3 nearest
    assert np.all((Wm > 0) <= (Wu > 0)) and np.all((Wm > 0).sum(1) <= 3)
    # the lazy row of a node agrees with the exported matrix
    names, w = union.neighbours(pool[7])
    idx = [pool.index(h) for h in names]
    np.testing.assert_allclose(Wu[7, idx], w)
    assert (Wu[7] > 0).sum() == len(names)


def test_proposals_follow_the_weights():
    space = NB201Space()
    a = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
    nbrs = space.mutations(a)
    heavy = set(nbrs[:4])

    def dist(A, B):  # the first four mutations are close, the others far
        return np.array([0.0 if b in heavy or a2 in heavy else 1.0 for a2, b in zip(A, B)])

    G = ArchitectureGraph(space, distance=dist, lengthscale=0.5)
    draws = G.sample_neighbour(a, np.random.default_rng(0), size=20000)
    p_heavy = 4 * 1.0 / (4 * 1.0 + 20 * np.exp(-2.0))
    assert np.mean([d in heavy for d in draws]) == pytest.approx(p_heavy, abs=0.015)


def test_bad_inputs_are_refused():
    space = NB201Space()
    with pytest.raises(ValueError, match="neighbours"):
        ArchitectureGraph(space, distance=hamming_nb201, neighbours="ball")
    with pytest.raises(ValueError, match="lengthscale"):
        ArchitectureGraph(space, distance=hamming_nb201, lengthscale=0.0)
    with pytest.raises(ValueError, match="k >= 1"):
        ArchitectureGraph(space, distance=hamming_nb201, neighbours="knn")
    G = ArchitectureGraph(space, distance=lambda A, B: -np.ones(len(A)))
    with pytest.raises(ValueError, match="finite and >= 0"):
        G.neighbours(space.sample(np.random.default_rng(0)))
    G = ArchitectureGraph(space, distance=lambda A, B: np.ones(len(A) + 1))
    with pytest.raises(ValueError, match="shape"):
        G.neighbours(space.sample(np.random.default_rng(0)))
    with pytest.raises(TypeError):
        ArchitectureGraph(space, distance=3.0).neighbours(space.sample(np.random.default_rng(0)))


def test_infinite_lengthscale_is_the_uniform_mutation_graph_without_distances():
    import math

    from hotnas.graph import ArchitectureGraph
    from hotnas.spaces import get_space

    sp = get_space("nb201")

    def no_distance(a, b):
        raise AssertionError("a uniform graph must not compute distances")

    G = ArchitectureGraph(sp, distance=no_distance, lengthscale=math.inf)
    a = sp.sample(np.random.default_rng(0))
    names, w = G.neighbours(a)
    assert sorted(names) == sorted(set(m for m in sp.mutations(a) if m != a)) and np.all(w == 1.0)
    with pytest.raises(ValueError, match="needs neighbours='mutations'"):
        ArchitectureGraph(sp, lengthscale=math.inf, neighbours="knn", k=3)
    with pytest.raises(ValueError, match="lengthscale"):
        ArchitectureGraph(sp, lengthscale=float("nan"))
