"""The kernel-quality study runs end to end in --smoke mode."""

from __future__ import annotations

import json

import numpy as np


def test_kernel_quality_smoke(tmp_path):
    from experiments.studies.kernel_quality import main

    res = main(["--smoke", "--spaces", "nb101", "darts", "--n-jobs", "1", "--out", str(tmp_path)])
    rows = res["rows"]
    assert {r["method"] for r in rows} == {"hotnn", "otmann", "tw", "hamming"}
    assert all(np.isfinite(r["spearman_mean"]) and np.isfinite(r["nll_mean"]) for r in rows)
    assert json.loads((tmp_path / "results.json").read_text())["rows"] == rows
    assert (tmp_path / "table.md").read_text().startswith("| space |")
