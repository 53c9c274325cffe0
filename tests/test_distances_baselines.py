"""OTMANN, tree-Wasserstein and Hamming baselines: hand-computed values, symmetry, identity (spec 10.10-11)."""

from __future__ import annotations

import numpy as np
import pytest

from hotnas.cells import Cell
from hotnas.distances import distance
from hotnas.distances.engine import PairwiseDistances
from hotnas.distances.otmann import label_mismatch, layer_graph, otmann_distance
from hotnas.distances.tw import chain_tw, degree_histograms, tw_op
from hotnas.spaces import get_space

CHAIN = np.array([[0, 1, 0], [0, 0, 1], [0, 0, 0]])


def test_otmann_one_conv_label_differs_hand_computed():
    a = Cell(CHAIN, ("input", "sep_conv_3x3", "output"))
    b = Cell(CHAIN, ("input", "sep_conv_5x5", "output"))
    units = 16.0
    m = units * units  # conv mass: incoming channels x units
    assert otmann_distance(a, b, units=units, normalise=False) == pytest.approx(0.2 * m, rel=1e-12)
    t = m + 2 * 0.1 * m  # conv + ip + op
    assert otmann_distance(a, b, units=units) == pytest.approx(0.2 * m / (2 * t), rel=1e-12)


def test_otmann_mismatch_table():
    labels = ["conv1", "conv3", "conv5", "max-pool", "avg-pool", "ip", "op"]
    T = np.array([[label_mismatch(x, y) for y in labels] for x in labels])
    assert np.array_equal(T, T.T) and np.all(np.diag(T) == 0)
    assert label_mismatch("conv1", "conv3") == pytest.approx(0.2)
    assert label_mismatch("conv3", "conv5") == pytest.approx(0.2)
    assert label_mismatch("max-pool", "avg-pool") == 0.5
    assert label_mismatch("conv3", "max-pool") > 1e5


def test_otmann_contracts_skips_and_flattens_networks():
    nb201 = get_space("nb201")
    g = layer_graph(nb201.to_network("|skip_connect~0|+|nor_conv_3x3~0|skip_connect~1|+|none~0|none~1|avg_pool_3x3~2|"))
    assert g.labels[0] == "ip" and g.labels[-1] == "op" and "skip_connect" not in g.labels
    darts = get_space("darts")
    gd = layer_graph(darts.to_network(darts.sample(np.random.default_rng(0))))  # 8 cells flattened
    assert len(gd.labels) > 8 * 4


def test_tw_hand_computed():
    alpha = 0.1
    assert tw_op({"nor_conv_3x3": 1.0}, {"nor_conv_1x1": 1.0}, alpha) == pytest.approx(2 * alpha)
    assert tw_op({"conv3x3-bn-relu": 1.0}, {"maxpool3x3": 1.0}, alpha) == pytest.approx(alpha + 1 + (1 - alpha))
    assert chain_tw([1, 0], [0, 1]) == pytest.approx(0.5)
    assert chain_tw([1, 0, 0], [0, 0, 1]) == pytest.approx(2 / 3)
    assert chain_tw([0.3, 0.7], [0.3, 0.7]) == 0.0
    assert tw_op({"a": 0.5, "nor_conv_3x3": 0.5}, {"a": 0.5, "nor_conv_3x3": 0.5}) == 0.0


def test_tw_degree_histograms():
    hin, hout = degree_histograms(Cell(CHAIN, ("input", "nor_conv_3x3", "output")))
    assert np.allclose(hin, [0, 0.5, 0.5]) and np.allclose(hout, [0.5, 0.5, 0])


@pytest.mark.parametrize("space_name", ["nb201", "nb101", "darts"])
@pytest.mark.parametrize("method", ["otmann", "tw", "hamming"])
def test_baselines_identity_symmetry_range(space_name, method):
    space = get_space(space_name)
    rng = np.random.default_rng(3)
    archs = [space.sample(rng) for _ in range(6)]
    for a in archs:
        assert distance(a, a, method=method, space=space) == 0.0
    for a, b in zip(archs, archs[1:]):
        d = distance(a, b, method=method, space=space)
        assert d == distance(b, a, method=method, space=space) and d >= 0


def test_hamming_nb201_counts_edges():
    s = get_space("nb201")
    a = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
    for m in s.mutations(a):
        assert distance(a, m, method="hamming") == pytest.approx(1 / 6)


def test_engine_generic_methods():
    s = get_space("nb101")
    rng = np.random.default_rng(4)
    archs = [s.sample(rng) for _ in range(8)]
    for method in ("tw", "otmann", "hamming"):
        eng = PairwiseDistances(s, method=method)
        D = eng.matrix(archs)
        assert np.array_equal(D, D.T) and D[0, 1] == distance(archs[0], archs[1], method=method, space=s)


def test_tw_rejects_ngram2():
    with pytest.raises(ValueError, match="ngram"):
        distance(Cell(CHAIN, ("input", "nor_conv_3x3", "output")), Cell(CHAIN, ("input", "nor_conv_3x3", "output")),
                 method="tw", ngram=2)
