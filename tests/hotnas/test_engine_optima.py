"""Optima of the distance engine against POT as the independent reference (issue 17): never above
POT's conditional gradient (either orientation), and not above POT's converged entropic FGW
polished by CG; the entropic starts do find lower optima than the vertex starts alone."""

from __future__ import annotations

import warnings

import numpy as np
import ot
import pytest

from hotnas.distances.features import feature_cost_matrix
from hotnas.distances.ifgw import ACCURATE_STARTS, FAST_STARTS, IFGWOptions, ifgw_pairs
from nb201_pairs import edge_pairs as _edge_pairs

KW = dict(loss_fun="square_loss", symmetric=False, alpha=0.5)


def _pot_cg(f, g):
    M = feature_cost_matrix(f, g, 0.5)
    fwd = ot.gromov.fused_gromov_wasserstein2(M, f.flow, g.flow, f.masses, g.masses, **KW)
    rev = ot.gromov.fused_gromov_wasserstein2(M.T, g.flow, f.flow, g.masses, f.masses, **KW)
    return float(fwd), float(rev)


def _pot_entropic_polish(f, g, eps):
    M = feature_cost_matrix(f, g, 0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        T = np.asarray(ot.gromov.entropic_fused_gromov_wasserstein(M, f.flow, g.flow, f.masses, g.masses,
                                                                   epsilon=eps, max_iter=200, **KW))
    # round onto the exact marginals (POT's CG checks them)
    T = T * np.minimum(f.masses / T.sum(1), 1.0)[:, None]
    T = T * np.minimum(g.masses / T.sum(0), 1.0)[None, :]
    ea, eb = f.masses - T.sum(1), g.masses - T.sum(0)
    if ea.sum() > 0:
        T = T + np.outer(ea, eb) / ea.sum()
    return float(ot.gromov.fused_gromov_wasserstein2(M, f.flow, g.flow, f.masses, g.masses, G0=T, **KW))


def _check_never_above_pot(n: int, seed: int) -> tuple[int, int]:
    fa, fb = _edge_pairs(n, seed)
    ours = ifgw_pairs(fa, fb, IFGWOptions())  # the default (FAST_STARTS): one of its runs is POT's
    ref = np.array([_pot_cg(f, g) for f, g in zip(fa, fb)])
    higher = int((ours > ref.min(1) + 1e-9).sum())
    lower = int((ours < ref.min(1) - 1e-9).sum())
    return higher, lower


def test_never_above_pot_cg_on_a_few_hundred_edges():
    higher, lower = _check_never_above_pot(300, seed=21)
    assert higher == 0
    assert lower > 0  # the extra vertex starts do find better optima than POT's single run


def _above_entropic_polish(n: int, seed: int) -> np.ndarray:
    """Per pair: ACCURATE_STARTS' value minus the reference min(POT CG both ways, entropic + CG polish)."""
    fa, fb = _edge_pairs(n, seed)
    ours = ifgw_pairs(fa, fb, IFGWOptions(starts=ACCURATE_STARTS))
    ref = [min(*_pot_cg(f, g), _pot_entropic_polish(f, g, 0.01), _pot_entropic_polish(f, g, 0.05)) for f, g in zip(fa, fb)]
    return ours - np.asarray(ref)


def test_not_above_pot_entropic_polish():
    assert np.all(_above_entropic_polish(5, seed=22) <= 1e-9)  # POT's entropic FGW takes ~0.1 s a pair: few pairs


@pytest.mark.slow
def test_not_above_pot_entropic_polish_200_edges():
    # The goal (issue 17) is an optimum rate >= 99.9 %; it is measured on 3,200 pairs by
    # experiments.studies.optimum_rate (3,197 at the reference; README).  200 pairs cannot resolve 0.1 %,
    # so this sample checks the rate at 99 % (the FAST_STARTS default is at ~94 %) and that a miss is a
    # near-tie (the three misses known, all 5-node vs 8-node cells, are 6.7e-5 to 1.8e-3 above).
    above = _above_entropic_polish(200, seed=25)
    assert (above > 1e-9).sum() <= 2
    assert above.max() < 5e-3


def test_entropic_starts_lower_than_vertex_starts_and_never_higher():
    fa, fb = _edge_pairs(400, seed=23)
    full = ifgw_pairs(fa, fb, IFGWOptions(starts=ACCURATE_STARTS))
    fast = ifgw_pairs(fa, fb, IFGWOptions(starts=FAST_STARTS))
    assert np.all(full <= fast + 1e-12)  # the vertex starts are among ACCURATE_STARTS' runs
    assert (full < fast - 1e-6).sum() >= 5  # ~5 % of mutation edges measured
    # symmetry survives the extra starts
    back = ifgw_pairs(fb[:100], fa[:100], IFGWOptions(starts=ACCURATE_STARTS))
    assert np.array_equal(back, full[:100])


@pytest.mark.slow
def test_never_above_pot_cg_on_20000_edges():
    higher, _ = _check_never_above_pot(20000, seed=24)
    assert higher == 0
