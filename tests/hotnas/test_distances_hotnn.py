"""HOTNN / iFGW: closed forms, invariances, agreement with POT, the pairwise engine (spec 10)."""

from __future__ import annotations

import numpy as np
import ot
import pytest

from hotnas.cells import Cell, CellInstance, Network
from hotnas.distances import distance
from hotnas.distances.engine import PairwiseDistances
from hotnas.distances.features import feature_cost_matrix, information_flow, structural_features
from hotnas.distances.hotnn import network_distance
from hotnas.distances.ifgw import (
    IFGWOptions,
    cell_distance,
    cell_distance_pot,
    features_cached,
    fgw_cg_batch,
    fgw_objective,
    ifgw_pairs,
)
from hotnas.spaces.nb201 import NB201Space

NB201 = NB201Space()
CHAIN = np.array([[0, 1, 0], [0, 0, 1], [0, 0, 0]])
C3 = Cell(CHAIN, ("input", "nor_conv_3x3", "output"))
C1 = Cell(CHAIN, ("input", "nor_conv_1x1", "output"))


def _pairs(n, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        a = NB201.sample(rng)
        b = NB201.mutate(a, rng) if rng.random() < 0.7 else NB201.sample(rng)
        out.append((NB201.to_cell(a), NB201.to_cell(b)))
    return out


# -- closed forms ---------------------------------------------------------------------------------
def test_alpha0_is_emd_on_features_hand_computed():
    # input and output match only themselves: identity plan, d = lambda_op * 0.2 / 3
    d = cell_distance(C3, C1, alpha=0.0, lambda_op=0.5)
    assert d == pytest.approx(0.5 * 0.2 / 3, abs=1e-15)
    f3, f1 = features_cached(C3, IFGWOptions().features), features_cached(C1, IFGWOptions().features)
    M = feature_cost_matrix(f3, f1, 0.5)
    assert d == pytest.approx(ot.emd2(f3.masses, f1.masses, M), abs=1e-15)


def test_alpha_half_equal_weights_and_reference_weights():
    # equal operation weights: the flow matrices coincide, d = (1 - alpha) lambda_op 0.2 / 3
    same = cell_distance(C3, C1, alpha=0.5, op_weights={"nor_conv_1x1": 1.0, "nor_conv_3x3": 1.0})
    assert same == pytest.approx(0.5 * 0.5 * 0.2 / 3, abs=1e-15)
    # default weights (conv1x1 = 0.5): the spec's reference measurement 0.01709
    assert cell_distance(C3, C1, alpha=0.5) == pytest.approx(0.01709, abs=5e-6)


def test_alpha1_isomorphic_structures_give_zero():
    rng = np.random.default_rng(3)
    for _ in range(10):
        a = NB201.sample(rng)
        ops = a.replace("nor_conv_3x3", "X").replace("avg_pool_3x3", "nor_conv_3x3").replace("X", "avg_pool_3x3")
        ca, cb = NB201.to_cell(a), NB201.to_cell(ops)
        # same graph, operations relabelled but with equal operation weights: GW term only
        w = {"nor_conv_3x3": 1.0, "avg_pool_3x3": 1.0}
        assert cell_distance(ca, cb, alpha=1.0, op_weights=w) == pytest.approx(0.0, abs=1e-12)


# -- identity, symmetry, permutation ----------------------------------------------------------------
def test_identity_with_and_without_short_circuit():
    opt = IFGWOptions()
    for ca, _ in _pairs(20):
        assert cell_distance(ca, ca) == 0.0
        f = features_cached(ca, opt.features)
        M = feature_cost_matrix(f, f, opt.lambda_op)
        v, _G = fgw_cg_batch(M[None], f.flow[None], f.flow[None], f.masses[None], f.masses[None], opt.alpha,
                             np.diag(f.masses)[None])
        assert abs(v[0]) < 1e-8
        # product start, the hard case
        v2, _ = fgw_cg_batch(M[None], f.flow[None], f.flow[None], f.masses[None], f.masses[None], opt.alpha,
                             np.outer(f.masses, f.masses)[None])
        assert v2[0] < 1e-8 or v2[0] >= 0  # a local optimum; never negative
        assert v2[0] >= -1e-12


def test_exact_symmetry():
    for ca, cb in _pairs(60, seed=1):
        assert cell_distance(ca, cb) == cell_distance(cb, ca)
        assert cell_distance(ca, cb, alpha=0.8, lambda_op=0.2) == cell_distance(cb, ca, alpha=0.8, lambda_op=0.2)


def test_node_permutation_invariance():
    rng = np.random.default_rng(2)
    for ca, cb in _pairs(25, seed=2):
        perm = rng.permutation(ca.n)
        pa = ca.permuted(perm)
        assert cell_distance(pa, ca) == 0.0
        assert cell_distance(pa, cb) == cell_distance(ca, cb)
        # features computed on the permuted cell equal the canonical ones
        fa, fp = features_cached(ca, IFGWOptions().features), features_cached(pa, IFGWOptions().features)
        assert np.array_equal(fa.flow, fp.flow) and np.array_equal(fa.struct, fp.struct)


# -- agreement with POT ------------------------------------------------------------------------------
def test_equal_or_lower_than_pot_both_orientations_and_feasible_plans():
    pairs = [(a, b) for a, b in _pairs(150, seed=4) if a.canonical_hash != b.canonical_hash]
    opt = IFGWOptions()
    fa = [features_cached(a, opt.features) for a, _ in pairs]
    fb = [features_cached(b, opt.features) for _, b in pairs]
    vals, plans = ifgw_pairs(fa, fb, opt, return_plans=True)
    for (a, b), v, T, f, g in zip(pairs, vals, plans, fa, fb):
        pot_ab, _ = cell_distance_pot(a, b)
        pot_ba, _ = cell_distance_pot(b, a)
        assert v <= pot_ab + 1e-9 and v <= pot_ba + 1e-9
        assert np.allclose(T.sum(1), f.masses, atol=1e-12) and np.allclose(T.sum(0), g.masses, atol=1e-12)
        assert T.min() >= 0
        assert fgw_objective(a, b, T) == pytest.approx(v, abs=1e-12)


def test_emd_start_can_beat_product_start():
    # the multi-start is not a no-op: some pairs reach a lower value than POT's default start
    pairs = _pairs(300, seed=5)
    lower = sum(cell_distance(a, b) < cell_distance_pot(a, b)[0] - 1e-9 for a, b in pairs)
    assert lower > 0


# -- features ------------------------------------------------------------------------------------------
def test_information_flow_and_structure_scaled():
    for ca, _ in _pairs(20, seed=6):
        P = information_flow(ca)
        assert P.min() >= 0 and P.max() == pytest.approx(1.0) and np.all(np.diag(P) == 0)
        S = structural_features(ca)
        assert S.shape == (ca.n, 8) and S.min() >= 0 and S.max() <= 1


# -- network level -----------------------------------------------------------------------------------
def test_single_cell_networks_equal_cell_distance():
    for ca, cb in _pairs(10, seed=7):
        na, nb = Network.from_cells([ca]), Network.from_cells([cb])
        assert network_distance(na, nb) == cell_distance(ca, cb)


def test_single_type_equal_depth_is_cell_distance_and_short_circuit_matches_outer_ot():
    rng = np.random.default_rng(8)
    for _ in range(10):
        a, b = NB201.sample(rng), NB201.sample(rng)
        d = distance(a, b, method="hotnn")
        assert d == cell_distance(NB201.to_cell(a), NB201.to_cell(b))
        # the full outer OT gives the same value
        na, nb = NB201.to_network(a), NB201.to_network(b)
        K = na.K
        G = np.full((K, K), cell_distance(na.cells[0].cell, nb.cells[0].cell))
        G = G + 0.5 * np.abs(na.positions[:, None] - nb.positions[None, :])
        assert d == pytest.approx(ot.emd2(np.full(K, 1 / K), np.full(K, 1 / K), G), abs=1e-12)


def _typed_network(cells_types):
    K = len(cells_types)
    return Network(tuple(CellInstance(c, k / (K - 1), t, None) for k, (c, t) in enumerate(cells_types)))


def test_mu_effect_when_cells_are_reordered():
    normal, reduction = NB201.to_cell(NB201.sample(np.random.default_rng(9))), C3
    base = [(normal, "normal")] * 2 + [(reduction, "reduction")] + [(normal, "normal")] * 5
    moved = [(normal, "normal")] * 5 + [(reduction, "reduction")] + [(normal, "normal")] * 2
    a, b = _typed_network(base), _typed_network(moved)
    # mu = 0: cell order is ignored
    assert network_distance(a, b, mu=0.0) == pytest.approx(0.0, abs=1e-12)
    assert network_distance(a, _typed_network(base[::-1]), mu=0.0) == pytest.approx(0.0, abs=1e-12)
    # mu > 0: moving the reduction cell costs, and more mu costs more
    d1, d2 = network_distance(a, b, mu=0.5), network_distance(a, b, mu=1.0)
    assert 0 < d1 < d2
    # tau penalises matching cells of different types
    assert network_distance(a, b, mu=0.5, tau=1.0) >= d1


# -- front door and engine --------------------------------------------------------------------------
def test_front_door_errors():
    with pytest.raises(ValueError, match="unknown distance method"):
        distance(C3, C1, method="nope")
    with pytest.raises(ValueError, match="alpha"):
        distance(C3, C1, method="ifgw", alpha=2.0)


def test_engine_matrix_pairs_grow_and_parallel():
    rng = np.random.default_rng(10)
    archs = [NB201.sample(rng) for _ in range(14)]
    eng = PairwiseDistances(NB201, method="hotnn")
    D = eng.matrix(archs)
    assert np.array_equal(D, D.T) and np.all(np.diag(D) == 0)
    for i, j in [(0, 1), (3, 7), (5, 13)]:
        assert D[i, j] == distance(archs[i], archs[j])
    assert np.array_equal(eng.pairs(archs[:5], archs[5:10]), D[np.arange(5), np.arange(5, 10)])
    g = PairwiseDistances(NB201, method="hotnn")
    g.grow(archs[:6])
    solved = g.stats["network_pairs"]
    Dg = g.grow(archs[6:])
    assert np.array_equal(Dg, D)
    assert g.stats["network_pairs"] - solved <= 6 * 8 + 8 * 7 // 2  # only new rows
    par = PairwiseDistances(NB201, method="hotnn", n_jobs=2, min_parallel=1)
    assert np.array_equal(par.matrix(archs), D)
    B = eng.matrix(archs[:3], archs[3:8])
    assert np.array_equal(B, D[:3, 3:8])


def test_engine_prepare_solves_nothing_and_changes_nothing():
    rng = np.random.default_rng(11)
    archs = [NB201.sample(rng) for _ in range(10)]
    cold = PairwiseDistances(NB201, method="hotnn").matrix(archs)
    eng = PairwiseDistances(NB201, method="hotnn")
    eng.prepare(archs)
    assert eng.stats["cell_pairs_solved"] == 0 and eng.stats["network_pairs"] == 0
    assert np.array_equal(eng.matrix(archs), cold)


@pytest.mark.parametrize("flow", ["shortest", "longest", "random_walk"])
@pytest.mark.parametrize("symmetrise", [False, True])
def test_batched_features_equal_per_cell_features_bit_for_bit(flow, symmetrise):
    """cell_features_many (Phi batched over cells of one graph) gives cell_features' arrays exactly,
    on NB201 cells (many share a graph) and DARTS cells (two inputs), with compute masses too."""
    from hotnas.distances.features import FeatureOptions, cell_features, cell_features_many
    from hotnas.spaces import get_space

    rng = np.random.default_rng(11)
    nb = NB201Space()
    darts = get_space("darts")
    cells = [nb.to_cell(nb.sample(rng)) for _ in range(150)]
    cells += [c for a in (darts.sample(rng) for _ in range(10)) for c in darts.to_network(a).unique_cells().values()]
    opt = FeatureOptions(flow=flow, symmetrise=symmetrise, masses="compute" if symmetrise else "uniform")
    many = cell_features_many(cells, opt)
    shared = {}
    for c, f in zip(cells, many):
        one = cell_features(c, opt)
        assert f.hash == one.hash and f.ops == one.ops
        for x, y in ((f.flow, one.flow), (f.struct, one.struct), (f.masses, one.masses)):
            assert x.shape == y.shape and x.tobytes() == y.tobytes()
        shared.setdefault(c.canonical().adjacency.tobytes(), 0)
        shared[c.canonical().adjacency.tobytes()] += 1
    assert max(shared.values()) > 5  # the batch path did batch
