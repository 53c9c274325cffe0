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


# ---------------------------------------------------------------- a space's own operations (issue 18)
def _unique_ops(tag: str) -> tuple[str, str]:
    return f"t18_{tag}_x", f"t18_{tag}_y"


def test_otmann_unknown_operations_not_contracted_and_warned():
    """Before: unknown labels were contracted like skip, so OTMANN was 0 between any two such cells."""
    x, y = _unique_ops("otmann_unknown")
    a, b = Cell(CHAIN, ("input", x, "output")), Cell(CHAIN, ("input", y, "output"))
    with pytest.warns(UserWarning, match=f"{x}.*{y}|{y}.*{x}"):
        d = otmann_distance(a, b)
    # each unknown op is a conv-like layer of mass 16*16 that cannot be matched ("infinite"
    # mismatch): both go to the dummy node at cost nu_nas = 1; ip and op (0.1 x 256 each) match
    m = 16.0 * 16.0
    assert d == pytest.approx(2 * m / (2 * (m + 0.2 * m)), rel=1e-12)  # = 0.8333
    # the reproducer: 300 random pairs of cells made of unknown labels were all 0
    assert otmann_distance(Cell(CHAIN, ("input", "gcn_t18", "output")),
                           Cell(CHAIN, ("input", "gat_t18", "output"))) > 0.8


def test_declared_operations_used_by_otmann_tw_hotnn():
    from hotnas.operations import Operation, declare_operations, pair_cost, weight_of

    x, y = _unique_ops("declared")
    declare_operations({x: Operation("t18fam", weight=0.5, family_cost=0.3),
                        y: Operation("t18fam", weight=0.5, family_cost=0.3)})
    assert pair_cost(x, y) == 0.3 and weight_of(x) == 0.5
    a, b = Cell(CHAIN, ("input", x, "output")), Cell(CHAIN, ("input", y, "output"))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # declared: no warning
        d_ot = otmann_distance(a, b)
        d_tw = distance(a, b, method="tw")
        d_hot = distance(a, b, method="hotnn")
    m = 16.0 * 16.0
    assert d_ot == pytest.approx(0.3 * m / (2 * (m + 0.2 * m)), rel=1e-12)  # matched at nu_nas * 0.3
    assert d_tw == pytest.approx(2 * 0.1, rel=1e-12)  # two leaves (alpha each) of one family node
    # HOTNN: identical structures and weights, so the identity plan costs (1 - alpha) lambda_op C / 3
    assert d_hot == pytest.approx(0.5 * 0.5 * 0.3 / 3, rel=1e-9)
    # a declared passthrough label is contracted by OTMANN, like skip
    z = "t18_declared_skip"
    declare_operations({z: Operation("t18skip", weight=0.0, params=False, passthrough=True)})
    assert otmann_distance(Cell(CHAIN, ("input", z, "output")), Cell(CHAIN, ("input", "skip_connect", "output"))) == 0.0


def test_hotnn_tw_undeclared_operations_warn_once_and_use_documented_defaults():
    x, y = _unique_ops("hotnn_defaults")
    a, b = Cell(CHAIN, ("input", x, "output")), Cell(CHAIN, ("input", y, "output"))
    with pytest.warns(UserWarning, match="no declared features") as rec:
        d = distance(a, b, method="hotnn")
    assert any(x in str(w.message) and y in str(w.message) for w in rec)
    assert d == pytest.approx(0.5 * 0.5 * 1.0 / 3, rel=1e-9)  # documented default cost 1 -> 0.0833
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once per label: no second warning
        assert distance(a, b, method="hotnn") == pytest.approx(d)
    x2, y2 = _unique_ops("tw_defaults")
    with pytest.warns(UserWarning, match=x2):
        assert distance(Cell(CHAIN, ("input", x2, "output")), Cell(CHAIN, ("input", y2, "output")),
                        method="tw") == pytest.approx(2.0)


def test_conflicting_declarations_refused():
    from hotnas.operations import Operation, declare_operations

    declare_operations({"t18_conflict": Operation("a")})
    declare_operations({"t18_conflict": Operation("a")})  # the same features again: fine
    with pytest.raises(ValueError, match="already registered"):
        declare_operations({"t18_conflict": Operation("b")})
    with pytest.raises(ValueError, match="already registered"):
        declare_operations({"nor_conv_3x3": Operation("conv", weight=2.0, size=3)})


def test_to_network_called_once_per_architecture_on_the_pair_by_pair_path():
    """Before: twice per pair (as_network on both sides of every pair)."""
    from hotnas.spaces.nb201 import NB201Space

    calls = []

    class Counting(NB201Space):
        def to_network(self, arch):
            calls.append(arch)
            return super().to_network(arch)

    space = Counting()
    rng = np.random.default_rng(0)
    archs = list(dict.fromkeys(space.sample(rng) for _ in range(12)))
    eng = PairwiseDistances(space, method="tw")
    D = eng.matrix(archs)
    assert D.shape == (len(archs), len(archs))
    assert len(calls) == len(archs)
