"""The tuning rule of issue 13 on hand-made variant folders: score = mean regret after the initial design,
a variant replaces the default only when it is better by more than one paired standard error."""

import json

import pytest

from experiments.studies.tuning_table import tuning_table, variant_scores


def _folder(root, name, regrets_by_seed, label="flow-bo", cpu=1.0):
    d = root / name
    d.mkdir()
    with open(d / "trials.jsonl", "w") as f:
        for seed, regrets in regrets_by_seed.items():
            best = [10.0 - r for r in regrets]
            f.write(json.dumps(dict(benchmark="t", label=label, seed=seed, budget=len(regrets), optimum=10.0,
                                    values=best, best_so_far=best, cpu_seconds=cpu)) + "\n")
    return d


def test_scores_and_verdicts(tmp_path):
    # budget 4, initial design = the first 2 queries (score over queries 3..4)
    _folder(tmp_path, "default", {0: [5, 4, 2, 2], 1: [5, 4, 3, 1], 2: [5, 4, 2, 0]})
    _folder(tmp_path, "better", {0: [5, 4, 1, 1], 1: [5, 4, 2, 0], 2: [5, 4, 1, 1]})   # -1, -1, 0 -> -0.667 ± 0.333
    _folder(tmp_path, "noisy", {0: [5, 4, 0, 0], 1: [5, 4, 4, 4], 2: [5, 4, 2, 0]})    # -2, +2, 0 -> 0 ± 1.155
    sc, M, cpu = variant_scores(tmp_path / "default", 3)
    assert sc == {0: 2.0, 1: 2.0, 2: 1.0} and M.shape == (3, 4) and cpu == 1.0
    md = tuning_table(tmp_path, "default", first=3, checkpoints=(3, 4))
    rows = {line.split("|")[1].strip(): line for line in md.splitlines()[2:]}
    assert "replaces the default" in rows["better"] and "-0.667 ± 0.333" in rows["better"]
    assert "default stays" in rows["noisy"] and "+0.000 ± 1.155" in rows["noisy"]
    assert "1.667 ± 0.333" in rows["default"]  # score: mean of 2, 2, 1
    assert "| 2.333 | 1.000 |" in rows["default"]  # regret at query 3 (2, 3, 2) and at query 4 (2, 1, 0)


def test_bad_input_is_named(tmp_path):
    _folder(tmp_path, "default", {0: [1, 0]})
    with pytest.raises(ValueError, match="no reference folder 'base'"):
        tuning_table(tmp_path, "base")
    with pytest.raises(ValueError, match="--from must lie in 1..2"):
        variant_scores(tmp_path / "default", 5)
    d = _folder(tmp_path, "two", {0: [1, 0]})
    with open(d / "trials.jsonl", "a") as f:
        f.write(json.dumps(dict(benchmark="t", label="other", seed=0, budget=2, optimum=1.0, values=[1, 1],
                                best_so_far=[1, 1])) + "\n")
    with pytest.raises(ValueError, match="holds one method"):
        variant_scores(d, 1)
