"""The particle studies run in their --smoke mode (tables, PNGs, benchmark at a small size)."""

from experiments.bench import bench_particles
from experiments.studies import nas_ladder, particles_vs_grid


def test_particles_vs_grid_smoke(tmp_path, capsys):
    particles_vs_grid.main(["--smoke", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert "worst |dm| sqrt(N)" in out
    assert (tmp_path / "quadratic_glauber.png").stat().st_size > 0 and (tmp_path / "table.md").exists()


def test_nas_ladder_smoke(tmp_path, capsys):
    nas_ladder.main(["--smoke", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert "fewer with the velocity potential" in out
    assert (tmp_path / "plateau.png").stat().st_size > 0


def test_bench_particles_smoke(capsys):
    bench_particles.main(["--smoke", "--dtype", "float64"])
    out = capsys.readouterr().out
    assert "one full step (Langevin + jumps)" in out and "ratio to K = 10" in out
