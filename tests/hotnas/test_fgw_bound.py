"""The FGW lower bound that lets a pair stop taking starts (issue 17), and the degeneracy test of the
CG's LPs, against independent references: POT's GW values, random couplings, closed forms, networkx."""

from __future__ import annotations

import networkx as nx
import numpy as np
import ot
import pytest

from hotnas.distances import ifgw
from hotnas.distances.fgw_cg import _unique_lp, fgw_values, gw_lower_bound
from hotnas.distances.ifgw import ACCURATE_STARTS, IFGWOptions, ifgw_pairs
from nb201_pairs import edge_pairs as _edge_pairs


def _uniform(B, n):
    return np.full((B, n), 1.0 / n)


def _random_coupling(rng, n, m):
    """A feasible coupling of the uniform measures: a mixture of random permutation-like plans (Sinkhorn)."""
    K = rng.random((n, m)) ** 4
    return ot.sinkhorn(np.full(n, 1 / n), np.full(m, 1 / m), -np.log(K + 1e-3), 0.5, numItermax=2000, stopThr=1e-14)


@pytest.mark.parametrize("n,m", [(3, 4), (4, 4), (6, 5), (2, 7)])
def test_gw_lower_bound_below_pot_and_every_coupling(n, m):
    rng = np.random.default_rng(n * 10 + m)
    B = 30
    C1, C2 = rng.random((B, n, n)), rng.random((B, m, m))
    lb = gw_lower_bound(C1, C2, _uniform(B, n), _uniform(B, m))
    assert (lb > 0).all()  # informative on random matrices
    for b in range(B):
        pot = ot.gromov.gromov_wasserstein2(C1[b], C2[b], np.full(n, 1 / n), np.full(m, 1 / m),
                                            loss_fun="square_loss", symmetric=False)
        assert lb[b] <= pot + 1e-12
        for _ in range(5):
            T = _random_coupling(rng, n, m)
            val = fgw_values(np.zeros((1, n, m)), C1[b : b + 1], C2[b : b + 1], np.full((1, n), 1 / n),
                             np.full((1, m), 1 / m), 1.0, T[None])[0]
            assert lb[b] <= val + 1e-9  # the coupling's marginals are exact to ~1e-10


def test_gw_lower_bound_closed_forms():
    # one point each: GW = (c1 - c2)^2 and the bound is exact
    C1, C2 = np.array([[[0.3]]]), np.array([[[1.0]]])
    assert gw_lower_bound(C1, C2, np.ones((1, 1)), np.ones((1, 1)))[0] == pytest.approx(0.49, abs=1e-15)
    # isomorphic matrices: GW = 0, so the bound is 0
    rng = np.random.default_rng(0)
    C = rng.random((5, 5))
    P = np.eye(5)[rng.permutation(5)]
    assert gw_lower_bound(C[None], (P @ C @ P.T)[None], _uniform(1, 5), _uniform(1, 5))[0] == pytest.approx(0, abs=1e-12)
    # constant matrices c and d of any sizes: every row is a point mass, GW = (c - d)^2 exactly
    lb = gw_lower_bound(np.full((1, 3, 3), 2.0), np.full((1, 5, 5), 0.5), _uniform(1, 3), _uniform(1, 5))
    assert lb[0] == pytest.approx(2.25, abs=1e-12)


def test_gw_lower_bound_refuses_non_uniform_masses():
    with pytest.raises(ValueError, match="uniform"):
        gw_lower_bound(np.zeros((1, 2, 2)), np.zeros((1, 2, 2)), np.array([[0.3, 0.7]]), _uniform(1, 2))


def test_unique_lp_is_the_forest_test():
    """Unique optimum <=> the arcs of zero reduced cost form a forest (networkx counts the cycles)."""
    rng = np.random.default_rng(3)
    for n, m in [(2, 3), (4, 4), (8, 7), (1, 5)]:
        R = rng.integers(0, 3, (300, n, m)).astype(float)
        got = _unique_lp(R)
        for b in range(R.shape[0]):
            g = nx.Graph()
            g.add_nodes_from(range(n + m))
            g.add_edges_from((i, n + j) for i, j in zip(*np.nonzero(R[b] <= 1e-12)))
            assert got[b] == nx.is_forest(g)
        assert 0 < got.sum() < R.shape[0] or n == 1


@pytest.mark.parametrize("starts", ["fast", "accurate"])
def test_skip_at_bound_keeps_the_minimum_and_skips_runs(monkeypatch, starts):
    fa, fb = _edge_pairs(300, seed=11)
    kw = {} if starts == "fast" else {"starts": ACCURATE_STARTS}
    full = ifgw_pairs(fa, fb, IFGWOptions(skip_at_bound=False, **kw))
    rows = []
    orig = ifgw.fgw_cg_batch
    monkeypatch.setattr(ifgw, "fgw_cg_batch", lambda *a, **k: (rows.append(a[0].shape[0]), orig(*a, **k))[1])
    skipped = ifgw_pairs(fa, fb, IFGWOptions(skip_at_bound=True, **kw))
    n_skip = sum(rows)
    rows.clear()
    ifgw_pairs(fa, fb, IFGWOptions(skip_at_bound=False, **kw))
    assert np.abs(skipped - full).max() <= 1e-12
    assert n_skip < 0.9 * sum(rows)  # the bound does stop starts


def test_the_default_runs_every_start(monkeypatch):
    """skip_at_bound is opt-in: the default never consults the bound, so its values are those of every
    start, bit for bit (published runs reproduce from their saved configs)."""
    assert IFGWOptions().skip_at_bound is False
    fa, fb = _edge_pairs(100, seed=12)

    def refuse(*a, **k):
        raise AssertionError("the default consulted the lower bound")

    monkeypatch.setattr(ifgw, "gw_lower_bound", refuse)
    ifgw_pairs(fa, fb, IFGWOptions())
    with pytest.raises(AssertionError, match="consulted"):
        ifgw_pairs(fa, fb, IFGWOptions(skip_at_bound=True))
