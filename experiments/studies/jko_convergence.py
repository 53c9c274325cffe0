"""Study: JKO -> PDE convergence in the step size, grid convergence in h, densities per node over time.

    python -m experiments.studies.jko_convergence            # full study
    python -m experiments.studies.jko_convergence --smoke    # seconds (CI)
    python -m experiments.studies.jko_convergence --out DIR  # PNG and tables (default results/jko_convergence)
    (old command, still working: python -m experiments.jko_convergence)

Table 1: iterated dynamic JKO steps (d = 0, K = 3 path graph, theta = logmean_pi, so the limit is the
linear glauber flow) against the expm reference at t = 1: error and fitted log-log slope (expected 1);
the implicit-Euler grid solver on the same problem for comparison.
Table 2: the d = 1 product case f = a x^2 / 2 + c_g (3 nodes) on grids of spacing h, exact in time
(expm): errors of the node masses, per-node means and variances against the closed forms of spec 8.4-8.5
(expected slope 2 in h).
Figure: densities per node over time for a d = 1, 3-node problem with asymmetric quadratic wells.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from sdot import QuadraticPotential, SemiDiscreteSpace
from sdot.grid import Grid, GridSolver
from sdot.jko import JKOStep


def step_size_table(taus: list[float]) -> tuple[list[tuple], float, float]:
    space = SemiDiscreteSpace.path(3, weight=1.2)
    pot = QuadraticPotential(a=np.ones(3), c=[0.0, 0.5, 0.2])
    J = JKOStep(space, pot, Grid(dim=0), 0.5, theta="logmean_pi")
    ref_solver = J.limit_solver()
    rho0 = np.array([[0.7], [0.2], [0.1]])
    ref = ref_solver.evolve(rho0, 1.0, 1.0, method="expm")
    rows = []
    for tau in taus:
        e_jko = float(np.abs(J.evolve(rho0, 1.0, tau) - ref).max())
        e_ie = float(np.abs(ref_solver.evolve(rho0, 1.0, tau) - ref).max())
        rows.append((tau, e_jko, e_ie))
    lt = np.log(taus)
    return rows, np.polyfit(lt, np.log([r[1] for r in rows]), 1)[0], np.polyfit(lt, np.log([r[2] for r in rows]), 1)[0]


def spacing_table(ns: list[int], t: float = 0.5) -> tuple[list[tuple], np.ndarray]:
    from scipy.stats import norm

    a, T, w, L = 1.0, 0.5, 0.4, 5.0
    c = np.array([0.0, 0.3, 0.1])
    m0, s0 = 0.8, 0.2
    space = SemiDiscreteSpace.path(3, weight=w, dim=1)
    pot = QuadraticPotential(a=[a] * 3, c=c, m=np.zeros((3, 1)))
    p0 = np.array([0.6, 0.3, 0.1])
    rows = []
    for n in ns:
        grid = Grid(-L, L, n, 1)
        s = GridSolver(space, pot, grid, T)
        edges = np.linspace(-L, L, n + 1)
        g0 = np.diff(norm.cdf(edges, m0, np.sqrt(s0))) / grid.h
        g0 /= g0.sum() * grid.h
        rho = s.evolve(p0[:, None] * g0[None, :], t, 1.0, method="expm")
        x = grid.centers[:, 0]
        mass = s.node_masses(rho)
        mean = (rho * x).sum(1) * grid.h / mass
        var = (rho * (x[None, :] - mean[:, None]) ** 2).sum(1) * grid.h / mass - grid.h**2 / 12
        # closed forms: p' = Q_G^T p (x-independent rates), OU moments per node
        k = T * w * np.exp((c[:, None] - c[None, :]) / (2 * T)) * (np.abs(np.subtract.outer(range(3), range(3))) == 1)
        G = k - np.diag(k.sum(1))
        from scipy.linalg import expm

        p_ex = p0 @ expm(G * t)
        m_ex = m0 * np.exp(-a * t)
        v_ex = T / a + (s0 - T / a) * np.exp(-2 * a * t)
        rows.append((n, grid.h, float(np.abs(mass - p_ex).max()), float(np.abs(mean - m_ex).max()),
                     float(np.abs(var - v_ex).max())))
    h = np.log([r[1] for r in rows])
    slopes = np.array([np.polyfit(h, np.log([r[j] for r in rows]), 1)[0] for j in (3, 4)])
    return rows, slopes


def density_figure(path: Path, n: int, times: list[float]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    space = SemiDiscreteSpace.path(3, weight=0.5, dim=1)
    pot = QuadraticPotential(a=[4.0, 1.0, 0.3], c=[0.0, 0.15, 0.35], m=[[-1.5], [0.0], [1.5]])
    grid = Grid(-4, 4, n, 1)
    s = GridSolver(space, pot, grid, T=0.4)
    x = grid.centers[:, 0]
    rho = np.zeros((3, n))
    rho[1] = np.exp(-((x - 2.0) ** 2) / 0.1)
    rho /= rho.sum() * grid.h
    snaps, t_prev = [], 0.0
    for t in times:
        rho = s.evolve(rho, t - t_prev, 0.02) if t > t_prev else rho
        snaps.append((t, rho.copy()))
        t_prev = t
    pi = s.gibbs()
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), sharey=True)
    cmap = plt.get_cmap("viridis")
    for g, ax in enumerate(axes):
        for j, (t, r) in enumerate(snaps):
            ax.plot(x, r[g], color=cmap(j / max(1, len(snaps) - 1)), lw=1.3, label=f"t = {t:g}")
        ax.plot(x, pi[g], "k--", lw=1, label="Gibbs")
        ax.set_title(f"node {g}: a = {pot.a[g]:g}, c = {pot.c[g]:g}, m = {pot.m[g, 0]:g}")
        ax.set_xlabel("x")
    axes[0].set_ylabel("density rho_g(t, x)")
    axes[-1].legend(fontsize=7, loc="upper left")
    fig.suptitle("Grid flow on R x G (path of 3 nodes, glauber, T = 0.4, implicit Euler tau = 0.02)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--out", default="results/jko_convergence")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    taus = [0.2, 0.1, 0.05] if args.smoke else [0.2, 0.1, 0.05, 0.025, 0.0125]
    ns = [20, 40, 80] if args.smoke else [20, 40, 80, 160, 320]
    lines = []
    rows, s_jko, s_ie = step_size_table(taus)
    lines.append("Table 1: step size vs max error at t = 1 (d = 0, K = 3, theta = logmean_pi vs expm)")
    lines.append(f"{'tau':>8}  {'JKO error':>12}  {'implicit Euler':>14}")
    lines += [f"{t:8.4f}  {e1:12.4e}  {e2:14.4e}" for t, e1, e2 in rows]
    lines.append(f"fitted slope: JKO {s_jko:.3f}, implicit Euler {s_ie:.3f} (expected 1)")
    rows2, slopes = spacing_table(ns)
    lines.append("")
    lines.append("Table 2: grid spacing vs error at t = 0.5 (d = 1 product case, 3 nodes, exact in time)")
    lines.append(f"{'n':>6}  {'h':>8}  {'node masses':>12}  {'means':>10}  {'variances':>10}")
    lines += [f"{n:6d}  {h:8.4f}  {em:12.3e}  {e1:10.3e}  {e2:10.3e}" for n, h, em, e1, e2 in rows2]
    lines.append(f"fitted slope in h: means {slopes[0]:.3f}, variances {slopes[1]:.3f} (expected 2); "
                 "node masses exact (x-independent rates)")
    text = "\n".join(lines)
    print(text)
    (out / "tables.txt").write_text(text + "\n")
    png = out / "densities_per_node.png"
    times = [0, 0.1, 0.5, 2, 8] if args.smoke else [0, 0.05, 0.2, 0.5, 1, 2, 4, 10]
    density_figure(png, 80 if args.smoke else 200, times)
    print(f"wrote {png} and {out / 'tables.txt'}")
    if not (0.8 <= s_jko <= 1.2 and np.all(slopes > 1.8)):
        raise SystemExit(f"convergence orders off: JKO slope {s_jko:.3f}, h slopes {slopes}")


if __name__ == "__main__":
    main()
