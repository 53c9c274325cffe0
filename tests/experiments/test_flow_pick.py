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


def test_pick_by_model_smooths_a_lone_value_towards_its_neighbours():
    import numpy as np

    from experiments.studies.flow_pick import pick_by_model

    # two clusters of three finalists: a's 97 sits among two 90s, b's 96 among two 96s; the raw best is a
    archs = ["a", "a1", "a2", "b", "b1", "b2"]
    values = {"a": 97.0, "a1": 90.0, "a2": 90.0, "b": 96.0, "b1": 96.0, "b2": 96.0}
    assert max(values, key=values.get) == "a"
    grp = np.array([0, 0, 0, 1, 1, 1])

    def dist(inside):
        D = np.where(grp[:, None] == grp[None, :], inside, 1.0)
        np.fill_diagonal(D, 0.0)
        return D

    # tight clusters (0.01 inside, 1 across): the posterior mean pools each cluster, b's wins (ties: b2)
    assert pick_by_model(values, dist(0.01), archs) == "b2"
    assert pick_by_model(values, dist(0.01), archs, noise_sd=2.0) == "b2"
    # a small pinned noise (1 point) leaves a's 97 standing; looser clusters (0.1): ML-II interpolates
    assert pick_by_model(values, dist(0.01), archs, noise_sd=1.0) == "a"
    assert pick_by_model(values, dist(0.1), archs) == "a"


def test_bo_retrain_starts_from_the_shared_ranking_and_returns_the_best_trained():
    import numpy as np

    from experiments.studies.flow_pick import bo_retrain

    val_seen = {"a": 0.9, "a2": 0.85, "b": 0.8, "c": 0.7, "d": 0.6, "e": 0.5}
    cell = {"a": "A", "a2": "A", "b": "B", "c": "C", "d": "D", "e": "E"}.__getitem__
    truth = {"a": 90.0, "b": 91.0, "c": 80.0, "d": 85.0, "e": 99.0}
    trained: list[str] = []

    def train(x, i):
        assert i == 0
        trained.append(x)
        return truth[x]

    pts = {"a": 0.0, "b": 1.0, "c": 2.0, "d": 3.0, "e": 4.0}
    dist = lambda xs: np.abs(np.subtract.outer([pts[x] for x in xs], [pts[x] for x in xs]))  # noqa: E731
    # R = k0: the top distinct cells by val_seen only (a2 shares a's cell), best of them
    assert bo_retrain(val_seen, 2, 2, train, cell, dist) == "b" and trained == ["a", "b"]
    trained.clear()
    # R = every distinct cell: each trained once, whatever the GP proposes, and the best (e) returned
    assert bo_retrain(val_seen, 5, 1, train, cell, dist) == "e"
    assert sorted(trained) == ["a", "b", "c", "d", "e"] and trained[0] == "a"
