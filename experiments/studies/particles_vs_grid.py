"""Particles against the grid solver on the same problem (issue 3, spec semi-discrete-flow.md 1.2, 7.2).

    python -m experiments.studies.particles_vs_grid            # N = 20,000, four problems (about a minute)
    python -m experiments.studies.particles_vs_grid --smoke    # N = 4,000, one problem, seconds (CI)
    python -m experiments.studies.particles_vs_grid --out DIR  # where the PNGs and the table go
                                                       # (default results/particles_vs_grid)

Problem: d = 1, K = 3 (complete graph), T = 0.5, an asymmetric quadratic and an asymmetric double
well, glauber and metropolis rates, initial datum ``rho_g(0, x) = p_g N(x; 0.5, 0.6^2)``. The grid
reference is implicit Euler (tau = 1e-3) on 300 cells of [-4.5, 4.5]; the particles use Strang
splitting (dt = 0.01) with the exact OU move for the quadratic and Euler-Maruyama for the double
well, and exact jumps at fixed x. For each problem one PNG shows, per time (rows) and node
(columns), the grid density ``rho_g(t, x)`` over the particle histogram (particles at g per unit
length over N, so both integrate to the node mass m_g). The table lists node masses, their
difference in units of 1/sqrt(N) (the tests ask for < 4) and the per-node W1 distance between the
particle cloud and the grid's conditional law (the tests ask for < 0.05).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from scipy.stats import norm, wasserstein_distance

from sdot import DoubleWellPotential, QuadraticPotential, SemiDiscreteSpace
from sdot.grid import Grid, GridSolver
from sdot.particles import ParticleState, gibbs_node_masses, strang_step

from experiments.plots import pyplot, save_figure
from experiments.studies.common import parse_study_args, study_parser

T = 0.5
P0, M0, S0 = np.array([0.6, 0.3, 0.1]), 0.5, 0.6
POTENTIALS = {
    "quadratic": QuadraticPotential([1.0, 2.5, 0.6], [0.0, 0.4, 0.2], [[-1.0], [0.3], [1.2]]),
    "double_well": DoubleWellPotential([1.0, 1.5, 0.8], [1.0, 0.8, 1.2], [0.3, -0.2, 0.1], [0.0, 0.2, -0.1], dim=1),
}


def compare(name: str, law: str, n_particles: int, times: tuple[float, ...], dt: float = 0.01, seed: int = 1):
    """Run grid and particles side by side; returns (grid, {t: rho}, {t: (x, g)}, rows)."""
    space = SemiDiscreteSpace.complete(3, dim=1)
    f = POTENTIALS[name]
    grid = Grid(lower=-4.5, upper=4.5, n_cells=300, dim=1)
    rho0 = P0[:, None] * norm.pdf(grid.centers[:, 0], M0, S0)[None, :]
    rho0 /= rho0.sum() * grid.cell_volume
    solver = GridSolver(space, f, grid, T, law=law)
    s = ParticleState.sample(n_particles, P0, [M0], S0, rng=seed)
    diffusion = "ou" if isinstance(f, QuadraticPotential) else "langevin"
    rhos, clouds, rows = {}, {}, []
    rho, t_prev = rho0, 0.0
    for t in times:
        rho = solver.evolve(rho, t - t_prev, 1e-3, method="implicit")
        t_prev = t
        while s.t < t - 1e-9:
            strang_step(s, space, f, law, T, dt, diffusion=diffusion)
        rhos[t], clouds[t] = rho, (s.x[:, 0].copy(), s.g.copy())
        m_grid, m_part = solver.node_masses(rho), s.node_fractions(3)
        for k in range(3):
            w1 = wasserstein_distance(s.x[s.g == k, 0], grid.centers[:, 0], v_weights=np.clip(rho[k], 0, None))
            rows.append({"problem": name, "law": law, "t": t, "node": k, "m_grid": m_grid[k], "m_particles": m_part[k],
                         "dev_sqrtN": abs(m_part[k] - m_grid[k]) * np.sqrt(n_particles), "W1": w1})
    return grid, rhos, clouds, rows


def plot(grid, rhos, clouds, n_particles: int, path: Path, title: str) -> Path:
    plt = pyplot()
    times = list(rhos)
    x = grid.centers[:, 0]
    bins = np.linspace(grid.lower, grid.upper, 91)
    width = bins[1] - bins[0]
    fig, axes = plt.subplots(len(times), 3, figsize=(10, 2.1 * len(times)), sharex=True, squeeze=False)
    for i, t in enumerate(times):
        xs, gs = clouds[t]
        for k in range(3):
            ax = axes[i, k]
            h, _ = np.histogram(xs[gs == k], bins)
            ax.bar(bins[:-1], h / (n_particles * width), width=width, align="edge", color="tab:orange", alpha=0.5,
                   label="particles")
            ax.plot(x, rhos[t][k], color="tab:blue", lw=1.5, label="grid")
            ax.set_title(f"t = {t:g}, node {k}: m = {rhos[t][k].sum() * grid.cell_volume:.3f}", fontsize=8)
            if i == len(times) - 1:
                ax.set_xlabel("x")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    return save_figure(fig, path)


def stationary(n_particles: int, seed: int = 3) -> list[dict]:
    """Long run from node 0 to the Gibbs node masses (closed form) for both laws."""
    space = SemiDiscreteSpace.complete(3, dim=1)
    f = QuadraticPotential([1.0, 2.5, 0.6], [0.0, 0.4, 0.2], [[-0.4], [0.2], [0.5]])
    p = gibbs_node_masses(f, T)
    rows = []
    for law in ("glauber", "metropolis"):
        s = ParticleState.sample(n_particles, [1.0, 0.0, 0.0], [0.0], 0.5, rng=seed)
        while s.t < 10.0:
            strang_step(s, space, f, law, T, 0.05, diffusion="ou")
        m = s.node_fractions(3)
        for k in range(3):
            rows.append({"law": law, "node": k, "gibbs": p[k], "particles": m[k],
                         "z": (m[k] - p[k]) / np.sqrt(p[k] * (1 - p[k]) / n_particles)})
    return rows


def main(argv=None) -> None:
    ap = study_parser(__doc__, "N = 4,000, one problem, two times", config=None, out="results/particles_vs_grid")
    ap.add_argument("-n", "--particles", type=int, default=None)
    args = parse_study_args(ap, argv)
    out = Path(args.out)
    n = args.particles or (4000 if args.smoke else 20_000)
    times = (0.5, 2.0) if args.smoke else (0.25, 0.5, 1.0, 2.0)
    problems = [("quadratic", "glauber")] if args.smoke else [
        (p, law) for p in ("quadratic", "double_well") for law in ("glauber", "metropolis")]
    all_rows = []
    for name, law in problems:
        t0 = time.perf_counter()
        grid, rhos, clouds, rows = compare(name, law, n, times)
        png = plot(grid, rhos, clouds, n, out / f"{name}_{law}.png",
                   f"{name}, {law}, T = {T}, N = {n:,}: grid density (line) vs particle histogram")
        print(f"{name:12s} {law:10s} {time.perf_counter() - t0:6.1f} s  -> {png}")
        all_rows += rows
    lines = ["| problem | law | t | node | m grid | m particles | |dm| sqrt(N) | W1 |", "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['problem']} | {r['law']} | {r['t']:g} | {r['node']} | {r['m_grid']:.4f} | {r['m_particles']:.4f} | "
              f"{r['dev_sqrtN']:.2f} | {r['W1']:.4f} |" for r in all_rows]
    worst = max(r["dev_sqrtN"] for r in all_rows), max(r["W1"] for r in all_rows)
    lines.append(f"\nworst |dm| sqrt(N) = {worst[0]:.2f} (tolerance 4), worst W1 = {worst[1]:.4f} (tolerance 0.05 at N = 20,000; the sampling part scales as 1/sqrt(N))")
    if not args.smoke:
        st = stationary(n)
        lines += ["", "Stationary node masses (t = 10, dt = 0.05, exact OU + exact jumps):",
                  "| law | node | Gibbs closed form | particles | z |", "|---|---|---|---|---|"]
        lines += [f"| {r['law']} | {r['node']} | {r['gibbs']:.4f} | {r['particles']:.4f} | {r['z']:+.2f} |" for r in st]
    table = "\n".join(lines)
    print(table)
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.md").write_text(table + "\n")


if __name__ == "__main__":
    main()
