"""experiments.studies.jko_studies --ccww --smoke: the two CCWW-class 1-d examples (issue 16, item 4).

FP: nonlinear Fokker-Planck (x rho)_x + (rho^2)_xx relaxes to its closed-form compactly supported steady
state; AD: porous-medium aggregation-diffusion with an attractive Gaussian kernel merges two unequal bumps
into one symmetric, compactly supported, unimodal steady state (Burger, Di Francesco & Franek 2013).
"""

import numpy as np

from experiments.studies import jko_studies


def test_jko_ccww_smoke(tmp_path, capsys):
    out = jko_studies.main(["--ccww", "--smoke", "--out", str(tmp_path)])["ccww"]
    assert (tmp_path / "ccww.png").exists() and (tmp_path / "ccww_ad_energy.csv").exists()
    FP, AD = out["FP"], out["AD"]
    for R in (FP, AD):
        assert R["monotone"] and np.all(np.diff(R["F"]) <= 1e-12 * abs(R["F"][0]))  # energy decreases
        assert R["mass_drift"] < 1e-12 and R["min"] >= 0.0  # mass and positivity kept
        assert R["F"][-1] < R["F"][0] - 0.03  # and really decreases
    # FP: the closed-form steady state (C - x^2/2)_+ / 2, half-width 3^(1/3), peak 3^(2/3) / 4
    assert abs(FP["peak"] - FP["peak_exact"]) < 0.02 and FP["l1"] < 0.02
    assert abs(FP["support"][1] - FP["half_width_exact"]) <= FP["grid"].h
    assert abs(FP["support"][0] + FP["half_width_exact"]) <= FP["grid"].h
    # AD: one compactly supported bump, symmetric about the (kept) centre of mass, decreasing from it
    lo, hi = AD["support"]
    assert AD["grid"].lower + 1.0 < lo and hi < AD["grid"].upper - 1.0  # compact support, away from the walls
    assert 0.8 < (hi - lo) / 2 < 1.2 and abs((lo + hi) / 2 - AD["c"]) <= AD["grid"].h
    assert AD["asym"] < 0.03 and AD["unimodal"] and abs(AD["c"] - AD["c0"]) < 0.01
    assert AD["el_spread"] < 0.01 and AD["el_gap"] > 0  # Euler-Lagrange: a steady state
    assert "Euler-Lagrange check" in capsys.readouterr().out
