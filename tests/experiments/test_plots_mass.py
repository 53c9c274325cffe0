"""The mass plot sums the strings of one network (issue 12): a population on two strings of one NB201 cell is
one band, not two."""

from __future__ import annotations

import pytest


def test_group_masses_sums_strings_of_one_cell_and_names_the_heaviest():
    from experiments.plots import group_masses

    cell = {"a": "A", "a2": "A", "a3": "A", "b": "B"}.__getitem__
    trace = [(0, {"a": 0.25, "b": 0.75}), (1, {"a2": 0.5, "a3": 0.25, "b": 0.25}), (2, {"a2": 1.0})]
    out, merged = group_masses(trace, cell)
    # a2 has the largest peak mass (1.0) of cell A: it names the group, which absorbed a and a3
    assert merged == {"a2": 2, "b": 0}
    assert out == [(0, {"a2": 0.25, "b": 0.75}), (1, {"a2": 0.75, "b": 0.25}), (2, {"a2": 1.0})]
    for (_, m), (_, g) in zip(trace, out):
        assert sum(g.values()) == pytest.approx(sum(m.values()))  # no mass lost or made


def test_plot_mass_by_cell_on_nb201_strings(tmp_path):
    from hotnas.spaces.nb201 import NB201Space

    from experiments.plots import group_masses, plot_mass

    space = NB201Space()
    first: dict[str, str] = {}
    for s in space.enumerate():  # two strings of one cell
        h = space.cell_hash(s)
        if h in first:
            a, twin = first[h], s
            break
        first[h] = s
    trace = [(0, {a: 0.5, twin: 0.5}), (1, {twin: 1.0})]
    out, merged = group_masses(trace, space.cell_hash)
    assert [m for _, m in out] == [{twin: 1.0}, {twin: 1.0}] and merged == {twin: 1}
    path = plot_mass(trace, tmp_path / "mass.png", group=space.cell_hash)
    assert path.is_file() and path.stat().st_size > 1000
