"""The space contract: check_space, mutation symmetry checked at registration and graph building."""

from __future__ import annotations

import numpy as np
import pytest

from hotnas.cells import Cell, Network
from hotnas.spaces import MutationAsymmetry, SPACES, check_mutation_symmetry, check_space, get_space, register_space
from hotnas.spaces.base import SearchSpace


class OneWay(SearchSpace):
    """Ten architectures on a ring, mutations only clockwise: every pair is one-way."""

    name = "t18-oneway"

    def canonical(self, arch):
        if arch not in {f"a{i}" for i in range(10)}:
            raise ValueError(f"not an architecture: {arch!r}")
        return arch

    def sample(self, rng):
        return f"a{int(rng.integers(10))}"

    def mutations(self, arch):
        return [f"a{(int(arch[1:]) + 1) % 10}"]

    def to_network(self, arch):
        A = np.array([[0, 1, 0], [0, 0, 1], [0, 0, 0]])
        return Network.from_cells([Cell(A, ("input", "nor_conv_3x3" if arch < "a5" else "avg_pool_3x3", "output"))])


class TwoWay(OneWay):
    name = "t18-twoway"

    def mutations(self, arch):
        i = int(arch[1:])
        return [f"a{(i + 1) % 10}", f"a{(i - 1) % 10}"]


def test_one_way_mutations_refused_at_registration_with_the_pairs():
    with pytest.raises(MutationAsymmetry, match=r"'a\d' -> 'a\d'"):
        register_space("t18-oneway", OneWay)
    assert "t18-oneway" not in SPACES
    register_space("t18-oneway", OneWay, check=False)  # on purpose
    SPACES.unregister("t18-oneway")
    register_space("t18-twoway", TwoWay)
    assert SPACES.load("t18-twoway") is TwoWay
    SPACES.unregister("t18-twoway")


def test_graph_built_on_one_way_space_warns():
    from hotnas.graph import ArchitectureGraph

    with pytest.warns(UserWarning, match="not symmetric"):
        ArchitectureGraph(OneWay(), distance=lambda a, b: np.ones(len(a)), lengthscale=1.0)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ArchitectureGraph(TwoWay(), distance=lambda a, b: np.ones(len(a)), lengthscale=1.0)


def test_nb101_mutations_symmetric():
    """Before: flipping edges of the pruned cell only was one-way (329 pairs in 200 samples)."""
    assert check_mutation_symmetry(get_space("nb101"), n=3, seed=0, per_sample=None) == []


@pytest.mark.parametrize("name", ["nb201", "darts"])
def test_builtin_spaces_symmetric_on_a_sample(name):
    assert check_mutation_symmetry(get_space(name), n=10, seed=1) == []


def test_check_space_reports_what_works_and_what_does_not():
    rep = check_space(get_space("nb201"), n=4, distances=False)
    assert rep.passed, str(rep)
    for item in ("hamming", "enumerate/__len__: 15625", "symmetric", "declared features"):
        assert item in str(rep)
    rep = check_space(TwoWay(), n=4)
    assert rep.passed, str(rep)
    assert "distance 'otmann': finite, symmetric" in str(rep) and "hamming' unavailable" in str(rep)
    bad = check_space(OneWay(), n=4, distances=False)
    assert not bad.passed and "not symmetric" in str(bad)
    assert "no encoding()" in str(bad) and "infinite space" in str(bad)
