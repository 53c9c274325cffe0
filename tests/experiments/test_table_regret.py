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
