"""NAS-Bench-201 space: official order, parsing, mutations, edge-to-node conversion."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from hotnas.cells import Cell
from hotnas.data import open_text
from hotnas.spaces import get_space
from hotnas.spaces.nb201 import NB201Space, parse_arch

SPACE = NB201Space()


def test_enumerate_matches_official_index(data_dir):
    archs = list(SPACE.enumerate())
    assert len(archs) == 15625 == len(set(archs))
    with open_text(data_dir / "nb201_cifar10.csv.gz") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 15625
    for r in rows:
        assert archs[int(r["index"])] == r["arch_str"]
        assert SPACE.canonical(r["arch_str"]) == r["arch_str"]  # round trip
    assert SPACE.index(rows[6111]["arch_str"]) == 6111


def test_registry():
    assert isinstance(get_space("nb201"), NB201Space)
    with pytest.raises(ValueError, match="unknown search space"):
        get_space("nb999")


def test_mutations_are_24_distinct_single_edge_changes():
    rng = np.random.default_rng(0)
    for _ in range(20):
        a = SPACE.sample(rng)
        muts = SPACE.mutations(a)
        assert len(muts) == 24 == len(set(muts)) and a not in muts
        pa = parse_arch(a)
        for m in muts:
            assert sum(x != y for x, y in zip(pa, parse_arch(m))) == 1


def test_to_network_structure():
    a = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
    net = SPACE.to_network(a)
    assert net.K == 15
    assert [c.stage for c in net.cells] == [0] * 5 + [1] * 5 + [2] * 5
    assert np.allclose(net.positions, np.arange(15) / 14)
    cell = net.cells[0].cell
    assert cell.n == 8 and cell.n_edges == 10
    assert sorted(cell.ops) == sorted(["input", "output", *parse_arch(a)])


def test_none_deleted_and_dead_nodes_pruned():
    # edge 1<-0 is a conv, but everything leaving node 1 is none: the conv node is a dead end.
    a = "|nor_conv_3x3~0|+|skip_connect~0|none~1|+|none~0|none~1|avg_pool_3x3~2|"
    cell = SPACE.to_cell(a)
    assert cell.ops == ("input", "skip_connect", "avg_pool_3x3", "output")
    # all edges none: input and output only, disconnected
    empty = SPACE.to_cell("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    assert empty.ops == ("input", "output") and empty.n_edges == 0


def test_isomorphic_strings_share_cell_hash():
    # ops on dead edges do not matter once pruned
    a = "|nor_conv_3x3~0|+|skip_connect~0|none~1|+|none~0|none~1|avg_pool_3x3~2|"
    b = "|avg_pool_3x3~0|+|skip_connect~0|none~1|+|none~0|none~1|avg_pool_3x3~2|"
    assert a != b and SPACE.cell_hash(a) == SPACE.cell_hash(b)
    c = "|nor_conv_3x3~0|+|skip_connect~0|none~1|+|none~0|none~1|nor_conv_1x1~2|"
    assert SPACE.cell_hash(a) != SPACE.cell_hash(c)


def test_cell_hash_invariant_under_node_permutation():
    rng = np.random.default_rng(1)
    for _ in range(10):
        cell = SPACE.to_cell(SPACE.sample(rng))
        perm = rng.permutation(cell.n)
        other = cell.permuted(perm)
        assert other.canonical_hash == cell.canonical_hash
        assert other.canonical().ops == cell.canonical().ops
        assert np.array_equal(other.canonical().adjacency, cell.canonical().adjacency)


@pytest.mark.parametrize(
    "bad, match",
    [
        ("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|", "node groups"),
        ("|conv_7x7~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|", "conv_7x7"),
        ("|nor_conv_3x3~0|+|nor_conv_3x3~0|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|", "node 2 .* 1 edges, expected 2"),
        ("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~0|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|", "input index 0, expected 1"),
        ("nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|", "start and end"),
        ("|nor_conv_3x3|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|", "op~input"),
        ("", "node groups"),
    ],
)
def test_malformed_strings(bad, match):
    with pytest.raises(ValueError, match=match):
        SPACE.canonical(bad)


def test_malformed_cells():
    with pytest.raises(ValueError, match="cycle"):
        Cell(np.array([[0, 1, 0], [0, 0, 1], [1, 0, 0]]), ("input", "nor_conv_3x3", "output"))
    with pytest.raises(ValueError, match="square"):
        Cell(np.zeros((2, 3)), ("input", "output"))
    with pytest.raises(ValueError, match="3 nodes but 2"):
        Cell(np.zeros((3, 3)), ("input", "output"))
    with pytest.raises(ValueError, match="self-loop"):
        Cell(np.eye(2, dtype=int), ("input", "output"))
