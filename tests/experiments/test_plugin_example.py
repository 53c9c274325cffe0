"""The worked plugin example (examples/gnn_space) through the CLI with ``plugins = [...]``."""

from __future__ import annotations

import json
import os
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from experiments.cli import main
from experiments.config import ConfigError, import_plugins

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "gnn_space"
PLUGIN = EXAMPLE / "gnn_space.py"


@pytest.fixture(scope="module")
def gnn():
    import_plugins([str(PLUGIN)])
    return sys.modules["gnn_space"]


def _config(tmp_path: Path, plugin: str, methods: str) -> Path:
    cfg = tmp_path / "cfg" / "gnn.toml"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text(f'name = "gnn-test"\nplugins = ["{plugin}"]\n[benchmark]\nname = "gnn4-synthetic"\n'
                   f"[search]\nbudget = 10\nseeds = [0]\n{methods}")
    return cfg


def test_plugin_path_relative_to_config_cli_run_agrees_with_api(tmp_path, monkeypatch, gnn):
    rel = os.path.relpath(PLUGIN, tmp_path / "cfg")  # "../../.../examples/gnn_space/gnn_space.py"
    methods = ('[[methods]]\noptimiser = "evolution"\noptions = { population_size = 4, tournament_size = 2 }\n'
               '[[methods]]\noptimiser = "random"\n[[methods]]\noptimiser = "flow"\noptions = { n_particles = 4 }\n')
    cfg = _config(tmp_path, rel, methods)
    monkeypatch.chdir(tmp_path)  # not the config's folder, not the repository
    out = tmp_path / "run"
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # declared operations: no default-features warning
        assert main(["run", str(cfg), "--out", str(out), "--no-progress", "--no-report"]) == 0
    stored = (out / "config.toml").read_text()
    assert str(PLUGIN) in stored  # resolved to an absolute path: resumes from anywhere
    from hotnas import get_benchmark, get_optimiser, run_search

    for label, opts in (("evolution", {"population_size": 4, "tournament_size": 2}), ("random", {}),
                        ("flow", {"n_particles": 4, "budget": 10})):
        for seed in (0,):
            res = json.loads((out / "trials" / f"{label}__seed{seed}" / "result.json").read_text())
            bench = get_benchmark("gnn4-synthetic")
            api = run_search(get_optimiser(label, bench.space, seed=seed, **opts), bench, budget=10)
            assert res["archs"] == list(api.archs), (label, seed)  # architecture by architecture
            assert np.allclose(res["values"], api.values)
            assert all(gnn.GNNSpace().canonical(a) == a for a in res["archs"])
    # resume of a finished run finds nothing to do and changes nothing
    assert main(["run", str(out), "--resume", "--no-progress", "--no-report"]) == 0


def test_list_loads_plugins_and_reimport_does_not_raise(capsys, gnn):
    assert main(["list", "--plugin", str(PLUGIN)]) == 0
    assert main(["list", "--config", str(EXAMPLE / "gnn4.toml")]) == 0  # the same plugin again
    out = capsys.readouterr().out
    assert "gnn4-synthetic" in out and "gnn4" in out.split("spaces", 1)[1]
    import_plugins([str(PLUGIN), str(PLUGIN)])
    sys.path.insert(0, str(EXAMPLE))
    try:
        import_plugins(["gnn_space"])  # by module name: the same module, no second registration
    finally:
        sys.path.remove(str(EXAMPLE))


def test_plugin_not_found_says_where_it_looked(tmp_path):
    with pytest.raises(ConfigError) as e:
        import_plugins(["no_such_plugin_t18"], "cfg.toml: plugins", base=tmp_path)
    msg = str(e.value)
    assert "no_such_plugin_t18" in msg and "sys.path" in msg and str(tmp_path / "no_such_plugin_t18.py") in msg
    with pytest.raises(ConfigError, match="looked for .*missing.py.*relative to the config's folder"):
        import_plugins(["sub/missing.py"], "cfg.toml: plugins", base=tmp_path)
    (tmp_path / "my_local_ext.py").write_text("VALUE = 18\n")
    resolved = import_plugins(["my_local_ext"], base=tmp_path)  # a module name found beside the config
    assert resolved == [str((tmp_path / "my_local_ext.py").resolve())]


def test_distance_accepts_a_registered_space_name_and_says_which_spaces_parse(gnn):
    import hotnas

    a, b = "gcn<0|gat<1|sage<0|skip<2", "cheb<0|gat<1|sage<0|skip<2"
    d = hotnas.distance(a, b, method="hotnn", space="gnn4")
    assert d > 0 and d == hotnas.distance(b, a, method="hotnn", space="gnn4")
    # gcn and cheb are declared in one family (cost 0.3): nearer than gcn and fc (different families)
    assert d < hotnas.distance(a, "fc<0|gat<1|sage<0|skip<2", method="hotnn", space="gnn4")
    with pytest.raises(ValueError, match="registered spaces that parse it: gnn4"):
        hotnas.distance(a, b, method="hotnn")
    for method in ("otmann", "tw", "hamming"):
        assert hotnas.distance(a, b, method=method, space="gnn4") > 0


def test_synthetic_table_matches_its_documented_formula(gnn):
    # val = 60 + sum_i q[op_i] 0.9^(d_i - 1) + 1.5 F - 0.8 (D - 2.5)^2 + 0.5 u: by hand for a chain
    arch = "gat<0|gin<1|sage<2|fc<3"  # depths 1, 2, 3, 4; families attention, spatial, linear
    u = np.random.default_rng(18).uniform(-1.0, 1.0, (2, 157464))[:, gnn.index_of(arch)]
    q = 3.5 + 3.4 * 0.9 + 3.2 * 0.81 + 1.0 * 0.729
    val = 60 + q + 1.5 * 3 - 0.8 * (4 - 2.5) ** 2 + 0.5 * u[0]
    v, t = gnn.synthetic_value(arch)
    assert v == pytest.approx(val, abs=1e-12) and t == pytest.approx(val - 0.3 + 0.3 * u[1], abs=1e-12)
    vals, _ = gnn.synthetic_table()
    assert len(vals) == len(gnn.GNNSpace()) == 157464 and vals[gnn.index_of(arch)] == pytest.approx(v, abs=1e-12)
    assert gnn.SyntheticGNNBenchmark().optimum == pytest.approx(vals.max())


def test_kernel_quality_study_takes_the_plugin_space(tmp_path, gnn):
    from experiments.studies.kernel_quality import main as kq

    res = kq(["--smoke", "--plugin", str(PLUGIN), "--spaces", "gnn4", "--table", "gnn4=gnn4-synthetic",
              "--methods", "tw", "hamming", "--psd", "cap", "clip", "--n-jobs", "1", "--out", str(tmp_path)])
    rows = res["rows"]
    assert {(r["space"], r["method"], r["psd"]) for r in rows} == {
        ("gnn4", m, p) for m in ("tw", "hamming") for p in ("cap", "clip")}
    assert all(np.isfinite(r["spearman_mean"]) and np.isfinite(r["nll_mean"]) for r in rows)
    assert "| psd |" in (tmp_path / "table.md").read_text()
