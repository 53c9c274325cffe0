"""The sdot studies run in their --smoke mode (tables, PNG, benchmark at tiny sizes)."""

from experiments.studies import jko_convergence
from experiments.bench import bench_grid


def test_jko_convergence_smoke(tmp_path, capsys):
    jko_convergence.main(["--smoke", "--out", str(tmp_path)])
    assert (tmp_path / "densities_per_node.png").stat().st_size > 10_000
    text = (tmp_path / "tables.txt").read_text()
    assert "fitted slope: JKO" in text and "fitted slope in h" in text


def test_bench_grid_smoke(capsys):
    bench_grid.main(["--smoke"])
    assert "one step after factorisation" in capsys.readouterr().out
