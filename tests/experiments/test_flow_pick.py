"""The replayed pick rules of experiments.studies.flow_pick (issue 12), on hand-made finalists."""

from __future__ import annotations

from experiments.studies.flow_pick import confirm_pick, finalist_sets, pick_with_shared


def test_pick_with_shared_moves_from_the_value_to_the_shared_score():
    values = {"a": 97.0, "b": 95.0, "c": 90.0}
    shared = {"a": 10.0, "b": 60.0, "c": 30.0}
    assert pick_with_shared(values, shared, 0.0) == "a"      # the flow's own pick: best one-training value
    assert pick_with_shared(values, shared, 100.0) == "b"    # the shared score dominates
    # z(values) = (1.02, 0.34, -1.36), z(shared) = (-1.14, 1.30, -0.16): b beats a from w = 0.68 / 2.43 = 0.28 on
    assert pick_with_shared(values, shared, 0.25) == "a" and pick_with_shared(values, shared, 0.3) == "b"
    assert pick_with_shared({"x": 1.0, "y": 1.0}, {}, 1.0) == "y"   # ties: the larger string, as the flow


def test_finalist_sets_are_distinct_cells_in_their_orders():
    cell = {"a": "A", "a2": "A", "b": "B", "c": "C", "d": "D"}.__getitem__
    val_seen = {"a": 0.9, "a2": 0.8, "b": 0.7, "c": 0.6, "d": 0.5}
    held = {"a2": 3.0, "d": 5.0, "c": 1.0}
    sets = finalist_sets(val_seen, held, 2, cell)
    assert sets["val_seen (the flow's rule)"] == ["a", "b"]          # a2 shares a's cell
    assert sets["val_seen among cells held"] == ["a2", "c"]
    assert sets["held longest"] == ["d", "a2"]
    assert set(sets["every cell held"]) == set(held) and set(sets["every cell seen"]) == set(val_seen)


def test_confirm_pick_averages_the_retrainings():
    trainings = {"a": [96.0, 90.0, 90.0], "b": [95.0, 95.0], "c": [94.0, 99.0], "d": [93.0, 93.0]}
    train = lambda a, i: trainings[a][i]  # noqa: E731
    order = ["a", "b", "c", "d"]
    assert confirm_pick(order, 4, 0, train) == "a"       # k = 0: the best single value
    # k = 1: finalists a, b, c; a (the best mean) trained again -> 93 < b's 95
    assert confirm_pick(order, 4, 1, train) == "b"
    # k = 2: finalists a, b; a again (mean 93), then the second best mean, which is a again (92) -> b
    assert confirm_pick(order, 4, 2, train) == "b"
    # a finalist trained k times over: k = 3 of 4 leaves a alone
    assert confirm_pick(order, 4, 3, lambda a, i: trainings[a][min(i, 2)]) == "a"
