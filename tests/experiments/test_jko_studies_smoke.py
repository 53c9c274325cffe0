"""experiments.studies.jko_studies --smoke: the three examples run, tables print, the figure is written."""

import numpy as np

from experiments.studies import jko_studies


def test_jko_studies_smoke(tmp_path, capsys):
    out = jko_studies.main(["--smoke", "--out", str(tmp_path)])
    assert (tmp_path / "jko_studies.png").exists()
    A, B, C = out["A"], out["B"], out["C"]
    assert 0.7 <= A["order_jko"] <= 1.3 and A["order_cn"] >= 1.6
    assert np.all(np.diff(B["F"]) <= 1e-12 * abs(B["F"][0])) and np.all(np.diff(C["F"]) <= 1e-12 * abs(C["F"][0]))
    assert C["m"][-1][1] > 0.2 and abs(C["m"].sum(1) - 1).max() < 1e-12  # mass jumped between nodes, kept
    assert "fitted order in tau" in capsys.readouterr().out
