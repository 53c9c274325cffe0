"""table_regret's paired differences: per seed, method minus reference, on the seeds both ran."""

from __future__ import annotations

import math

import numpy as np
import pytest


def test_paired_differences_use_shared_seeds_only():
    from experiments.studies.table_regret import paired

    regrets = {"ref": {0: np.array([5.0, 2.0]), 1: np.array([4.0, 4.0]), 2: np.array([1.0, 1.0])},
               "a": {0: np.array([3.0, 1.0]), 1: np.array([2.0, 1.0]), 7: np.array([0.0, 0.0])},
               "short": {0: np.array([9.0])}}
    out = paired(regrets, "ref", 2)
    assert set(out) == {"a", "short"}
    d = np.array([1.0 - 2.0, 1.0 - 4.0])                 # seeds 0 and 1; seed 7 has no reference
    assert out["a"]["n"] == 2 and out["a"]["mean"] == pytest.approx(d.mean())
    assert out["a"]["se"] == pytest.approx(d.std(ddof=1) / math.sqrt(2))
    assert out["short"] == {"mean": None, "se": None, "n": 0}   # ran 1 query: nothing at query 2
    assert paired(regrets, "ref", 1)["short"]["mean"] == pytest.approx(4.0)
    with pytest.raises(ValueError, match="'nope'"):
        paired(regrets, "nope", 1)


def test_cells_held_counts_distinct_cells_of_the_logged_masses(tmp_path):
    import json

    from hotnas.spaces.nb201 import NB201Space

    from experiments.studies.table_regret import best_held_regret, cells_held, held_archs

    space = NB201Space()
    # a string and another one of the same cell (the same pruned graph): they must count once
    first: dict[str, str] = {}
    for s in space.enumerate():
        h = space.cell_hash(s)
        if h in first:
            a, twins = first[h], [s]
            break
        first[h] = s
    b = next(s for s in space.enumerate() if space.cell_hash(s) != space.cell_hash(a))
    ev = tmp_path / "events.jsonl"
    lines = [{"kind": "eval", "arch": a, "value": 50.0},
             {"kind": "step", "masses": {a: 0.5, b: 0.5}},
             {"kind": "step", "masses": {twins[0]: 1.0}}]
    ev.write_text("\n".join(json.dumps(x) for x in lines) + "\n{\"kind\": \"st")  # last line cut by a kill
    assert cells_held(ev) == 2
    assert held_archs(ev) == {a, b, twins[0]}

    class Bench:  # regret by hand: b is the better of the two cells held
        def regret(self, arch):
            return {a: 3.0, twins[0]: 3.0, b: 1.25}[arch]

    assert best_held_regret(ev, Bench()) == 1.25
    from experiments.studies.table_regret import logged_masses, mass_regret

    masses = logged_masses(ev)
    assert masses == [{a: 0.5, b: 0.5}, {twins[0]: 1.0}]
    assert mass_regret(masses[0], Bench()) == 0.5 * 3.0 + 0.5 * 1.25 and mass_regret(masses[1], Bench()) == 3.0
    assert mass_regret({a: 1.0, b: 3.0}, Bench()) == (3.0 + 3 * 1.25) / 4  # unnormalised masses are normalised
    from experiments.studies.table_regret import top_network_mass

    # a and its twin are one network: together 0.75 of the population, b 0.25
    assert top_network_mass({a: 0.25, twins[0]: 0.5, b: 0.25}, space.cell_hash) == 0.75
    assert top_network_mass({a: 1.0, b: 3.0}, space.cell_hash) == 0.75 and top_network_mass({b: 2.0}, space.cell_hash) == 1.0
    ev.write_text(json.dumps(lines[0]) + "\n")
    assert cells_held(ev) is None  # no masses logged: not a flow
    assert cells_held(tmp_path / "missing.jsonl") is None
    assert best_held_regret(ev, Bench()) is None and logged_masses(ev) is None
