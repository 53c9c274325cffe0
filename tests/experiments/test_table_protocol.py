"""The protocol pilot of the digits table: the 4-epoch rows are the shipped table's values, and a rerun resumes."""

from __future__ import annotations

import json

import numpy as np
import pytest


def test_sample_is_seeded_distinct_and_inside_the_complete_sub_space():
    from hotnas.benchmarks.digits_table import load_digits_table

    from experiments.studies.table_protocol import sample_cells

    a, b = sample_cells(20, 0), sample_cells(20, 0)
    assert a == b and len(set(a)) == 20 and a != sample_cells(20, 1)
    assert load_digits_table().done[a].all()  # the sub-space is complete in the shipped table
    with pytest.raises(ValueError, match="exceeds"):
        sample_cells(10**6, 0)


def test_table_protocol_reproduces_the_table_and_resumes(tmp_path, capsys):
    from hotnas.benchmarks.digits_table import load_digits_table

    from experiments.studies.table_protocol import main, sample_cells

    assert main(["--cells", "3", "--epochs", "4", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "max |diff| vs the shipped table 0.00e+00" in out
    (f,) = tmp_path.glob("epochs_4_*.json")
    row = json.loads(f.read_text())
    cells = sample_cells(3, 0)
    assert np.array_equal(np.asarray(row["val"]), load_digits_table().val[cells])  # same seeds, same code
    assert row["ratio"] == pytest.approx(row["median_seed_std"] / row["std_across_cells"])
    before = f.stat().st_mtime_ns
    assert main(["--cells", "3", "--epochs", "4", "--out", str(tmp_path)]) == 0
    assert f.stat().st_mtime_ns == before  # done: not recomputed
    with pytest.raises(SystemExit):
        main(["--cells", "2", "--out", str(tmp_path)])
