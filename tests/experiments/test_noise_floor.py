"""The one-training noise floor (issue 12): closed-form cases of the argmax regret, and the shipped table's floor."""

from __future__ import annotations

import numpy as np
import pytest

from experiments.studies.noise_floor import argmax_regret, exhaustive_floor, main


def test_argmax_regret_closed_forms():
    # a lucky training of a worse cell wins the argmax: regret = its gap to the optimum
    assert argmax_regret([90.0, 99.0, 95.0], [96.0, 93.0, 95.0], 96.0) == pytest.approx(3.0)
    # the best cell's training wins: no regret
    assert argmax_regret([97.0, 91.0], [96.0, 93.0], 96.0) == 0.0
    # exact ties: the mean of the tied candidates' regrets
    assert argmax_regret([97.0, 97.0, 10.0], [96.0, 92.0, 50.0], 96.0) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="equal non-empty"):
        argmax_regret([1.0, 2.0], [1.0], 2.0)
    with pytest.raises(ValueError, match="equal non-empty"):
        argmax_regret([], [], 0.0)


def test_floor_of_the_shipped_table_is_positive_and_below_the_worst_cell():
    r = exhaustive_floor(epochs=4, seeds=2)
    assert r["strings"] == 729 and len(r["floors"]) == 2
    # seed noise puts a lucky training of a worse cell on top at least once in the pair of seeds measured
    assert r["mean"] > 0.0 and max(r["floors"]) < 10.0


def test_cli_refuses_a_length_without_a_table(capsys):
    with pytest.raises(SystemExit):
        main(["--epochs", "99", "--seeds", "1"])
    assert "no shipped table for --epochs [99]" in capsys.readouterr().err
