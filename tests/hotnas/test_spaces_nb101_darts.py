"""NAS-Bench-101 and DARTS spaces: round trips on the data files, networks, mutations, bad input, fuzz."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hotnas.data import load_table
from hotnas.spaces import get_space
from hotnas.spaces.darts import DartsSpace, format_genotype, parse_genotype
from hotnas.spaces.nb101 import NB101Space, format_spec, parse_spec
from hotnas.spaces.nb201 import NB201Space

DARTS, NB101, NB201 = DartsSpace(), NB101Space(), NB201Space()


def _darts_archs(data_dir):
    return load_table("darts")[0]


def _nb101_archs(data_dir):
    return load_table("nb101")[0]


# -- round trips on the data files ---------------------------------------------------------------
def test_darts_round_trip_on_data(data_dir):
    archs = _darts_archs(data_dir)
    assert len(archs) == 725
    for a in archs:
        assert format_genotype(parse_genotype(a)) == a
        c = DARTS.canonical(a)
        assert DARTS.canonical(c) == c
        assert [x.cell.canonical_hash for x in DARTS.to_network(c).cells] == [
            x.cell.canonical_hash for x in DARTS.to_network(a).cells
        ]


def test_nb101_round_trip_on_data(data_dir):
    archs = _nb101_archs(data_dir)
    assert len(archs) == 500
    for a in archs:
        A, ops = parse_spec(a)
        assert format_spec(A, ops) == a
        c = NB101.canonical(a)
        assert NB101.canonical(c) == c
        assert NB101.to_cell(c).canonical_hash == NB101.to_cell(a).canonical_hash
        cell = NB101.to_cell(a)
        assert cell.n <= 7 and cell.n_edges <= 9  # the file's cells satisfy the limits once pruned


def test_registry():
    assert isinstance(get_space("darts"), DartsSpace) and isinstance(get_space("nb101"), NB101Space)


# -- networks -------------------------------------------------------------------------------------
def test_darts_network_skeleton():
    net = DARTS.to_network(DARTS.sample(np.random.default_rng(0)))
    assert net.K == 8
    assert net.cell_types == ["normal", "normal", "reduction", "normal", "normal", "reduction", "normal", "normal"]
    assert [c.stage for c in net.cells] == [0, 0, 1, 1, 1, 2, 2, 2]
    assert np.allclose(net.positions, np.arange(8) / 7)
    cell = net.cells[0].cell
    assert cell.n <= 15 and cell.ops.count("sum") == 4 and cell.ops[-1] == "output"
    light = DartsSpace(sum_nodes=False).to_network(DARTS.sample(np.random.default_rng(0))).cells[0].cell
    assert light.n <= 11 and "sum" not in light.ops


def test_nb101_network_and_pruning():
    # node 2 is a dead end (no path to the output): pruned
    A = np.zeros((4, 4), dtype=int)
    A[0, 1] = A[1, 3] = A[0, 2] = 1
    cell = NB101.to_cell(format_spec(A, (0, 2, 3, 1)))
    assert cell.ops == ("input", "conv3x3-bn-relu", "output")
    net = NB101.to_network(format_spec(A, (0, 2, 3, 1)))
    assert net.K == 9 and [c.stage for c in net.cells] == [0] * 3 + [1] * 3 + [2] * 3


def test_isomorphic_nb101_specs_share_canonical_string():
    from hotnas.cells import Cell

    rng = np.random.default_rng(1)
    for _ in range(20):
        cell = NB101.to_cell(NB101.sample(rng))
        perm = rng.permutation(cell.n)
        other = cell.permuted(perm)  # same graph, nodes renumbered (not upper triangular any more)
        assert isinstance(other, Cell) and other.canonical_hash == cell.canonical_hash
        # and a topologically ordered renumbering gives the same canonical string
        order = list(other.topological_order)
        again = other.permuted(order)
        from hotnas.spaces.nb101 import _ID_OF

        spec = format_spec(again.adjacency, [_ID_OF[o] for o in again.ops])
        assert NB101.canonical(spec) == NB101.canonical(format_spec(cell.adjacency, [_ID_OF[o] for o in cell.ops]))


@pytest.mark.parametrize("space", [DARTS, NB101, NB201], ids=["darts", "nb101", "nb201"])
def test_mutations_valid_distinct(space):
    rng = np.random.default_rng(2)
    for _ in range(5):
        a = space.sample(rng)
        muts = space.mutations(a)
        assert muts and len(muts) == len(set(muts)) and a not in muts
        for m in muts[:10]:
            assert space.canonical(m) == m


# -- bad input ------------------------------------------------------------------------------------
GOOD_DARTS = "[[(0, 0), (1, 5), (1, 1), (0, 1), (1, 3), (0, 3), (1, 3), (3, 2)], [(1, 0), (0, 2), (1, 3), (0, 3), (3, 0), (0, 1), (2, 0), (3, 6)]]"


@pytest.mark.parametrize(
    "bad, match",
    [
        ("[[(0, 0), (1, 5)]]", "2 cells"),
        (GOOD_DARTS.replace("(3, 2)]", "(3, 9)]", 1), "normal cell pair 7 .*unknown op id 9"),
        (GOOD_DARTS.replace("(1, 3), (3, 2)]", "(1, 3), (5, 2)]", 1), "node 5 takes input 5.*cycle"),
        (GOOD_DARTS.replace("[(1, 0), (0, 2),", "[(1, 0),", 1), "reduction cell must list 8"),
        (GOOD_DARTS.replace("(0, 0), (1, 5)", "(1, 0), (1, 5)", 1), "node 2 takes input 1 twice"),
        ("[[(0, 0), (1, 5)", "not a list literal"),
        (GOOD_DARTS.replace("(0, 0)", "(0, 'x')", 1), "two integers"),
    ],
)
def test_malformed_darts(bad, match):
    with pytest.raises(ValueError, match=match):
        DARTS.canonical(bad)


GOOD_101 = format_spec(np.triu(np.ones((3, 3), dtype=int), 1), (0, 2, 1))


@pytest.mark.parametrize(
    "bad, match",
    [
        ("(0, 1, 0)", "3 integers; expected n\\*n \\+ n"),
        (GOOD_101.replace("(0, 1, 1", "(0, 1, 2", 1), "entry \\(0, 2\\) is 2"),
        (format_spec(np.array([[0, 1, 1], [1, 0, 1], [0, 0, 0]]), (0, 2, 1)), "backward edge \\(cycle\\)"),
        (format_spec(np.array([[1, 1, 1], [0, 0, 1], [0, 0, 0]]), (0, 2, 1)), "self-loop"),
        (format_spec(np.triu(np.ones((3, 3), dtype=int), 1), (0, 7, 1)), "node 1 has unknown op id 7"),
        (format_spec(np.triu(np.ones((3, 3), dtype=int), 1), (2, 0, 1)), "must be the input"),
        (format_spec(np.zeros((3, 3), dtype=int), (0, 2, 1)), "does not reach the output"),
        ("(0, 1, 'a')", "sequence of integers"),
    ],
)
def test_malformed_nb101(bad, match):
    with pytest.raises(ValueError, match=match):
        NB101.canonical(bad)


def test_nb101_strict_limits():
    A = np.triu(np.ones((7, 7), dtype=int), 1)  # 21 edges
    with pytest.raises(ValueError, match="21 edges after pruning; at most 9"):
        NB101.canonical(format_spec(A, (0, 2, 2, 2, 2, 2, 1)), strict=True)


# -- fuzz: parsers either accept or raise ValueError, never anything else -------------------------------
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet="|~+_0123456789abcdefghijklmnoprstuvwxyz", max_size=90))
def test_fuzz_nb201_parser(s):
    try:
        c = NB201.canonical(s)
    except ValueError:
        return
    assert NB201.canonical(c) == c


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(st.tuples(st.integers(-2, 7), st.integers(-2, 8)), min_size=0, max_size=9), max_size=3))
def test_fuzz_darts_parser(g):
    try:
        c = DARTS.canonical(repr(g))
    except ValueError:
        return
    assert DARTS.canonical(c) == c


@settings(max_examples=150, deadline=None)
@given(st.integers(2, 7).flatmap(lambda n: st.lists(st.integers(-1, 5), min_size=n * n + n - 1, max_size=n * n + n + 1)))
def test_fuzz_nb101_parser(t):
    try:
        c = NB101.canonical(repr(tuple(t)))
    except ValueError:
        return
    assert NB101.canonical(c) == c


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_fuzz_nb101_random_valid_graphs(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 8))
    A = np.triu(rng.integers(0, 2, size=(n, n)), 1)
    ops = (0,) + tuple(int(x) for x in rng.integers(2, 5, size=n - 2)) + (1,)
    try:
        c = NB101.canonical(format_spec(A, ops))
    except ValueError as e:
        assert "does not reach" in str(e)
        return
    assert NB101.canonical(c) == c
