"""Study: JKO steps for general free energies (issue 16) — two examples of the CCWW class and one semi-discrete one.

    python -m experiments.studies.jko_studies                 # full study (tables + PNG)
    python -m experiments.studies.jko_studies --smoke         # seconds (CI)
    python -m experiments.studies.jko_studies --bench         # time per JKO step at the issue's two sizes
    python -m experiments.studies.jko_studies --out DIR       # default results/jko_studies
    python -m experiments.studies.jko_studies --ccww [--smoke] # the CCWW part only: results/jko_studies/ccww.png
    (old command, still working: python -m experiments.jko_studies; old vs new timings: experiments.bench.bench_jko)

Examples of the equation class of Carrillo, Craig, Wang & Wei (FoCM 2022, eq. (1)),
``rho_t = div(rho grad V) + div(rho grad W * rho) + nu Δ rho^m`` (parameters ours, chosen for closed forms):

A. 1-d porous medium equation ``rho_t = (rho^2)_xx`` from the Barenblatt profile at t0 = 0.1 to t1 = 0.3:
   L1 error against the exact Barenblatt solution vs tau (JKO and the Crank–Nicolson-type option) and
   vs h, fitted orders; density snapshots, energy and dissipation over time; Newton iterations per step.
B. 2-d aggregation–diffusion, W = |x|^2 / 2 with linear diffusion T Δ rho (m = 1): relaxation of a
   bumpy start to the closed-form steady state ``rho = N(c, T I)`` (c = centre of mass, kept);
   energy decrease and dissipation. (The same problem with nu Δ rho^2 converges since the interaction's
   GMRES is preconditioned by the exact local LU, but the barrier path takes ~120 Newton iterations per
   step: too slow for this study at 48 x 48; tested at 12 x 12 in tests/sdot/test_jko_package.py.)
CCWW part (``ccww``): two 1-d equations of the two families CCWW simulate in their numerical section
(nonlinear Fokker–Planck with a confining drift; porous-medium aggregation–diffusion with an attractive
kernel). The paper's Section 5 text (figure numbers, exact rho_0, grid, tau) could not be read here, so
the parameters are ours and every comparison is qualitative or against a closed form / published theorem:
FP. ``rho_t = (x rho)_x + (rho^2)_xx`` (V = x^2/2, m = 2) on [-3, 3] from two bumps: the steady state is
    the closed-form compactly supported profile rho = (C - x^2/2)_+ / 2, half-width 3^(1/3), peak 3^(2/3)/4.
AD. ``rho_t = (rho (W' * rho))_x + nu (rho^2)_xx`` with W = -G, G a unit-mass Gaussian (sigma 0.5), nu = 1/4
    (eps = 2 nu = 0.5 < |G|_1 = 1) on [-3, 3] from two unequal bumps: a nontrivial steady state exists,
    is unique up to translation, symmetric about the centre of mass, compactly supported and decreasing
    from its centre (Burger, Di Francesco & Franek 2013); the bumps merge into it.
C. Semi-discrete: porous-medium spreading on each of 3 nodes (path graph, arithmetic theta) with node
   offsets c_g pulling mass towards the lowest node while every node's density spreads.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from experiments.bench.bench_jko import PROBLEMS, measure
from sdot import QuadraticPotential, SemiDiscreteSpace
from sdot.free_energy import (
    Entropy,
    GeneralFreeEnergy,
    PorousMedium,
    gaussian_kernel,
    quadratic_kernel,
)
from sdot.grid import Grid
from sdot.jko import JKOStep

BC = (3 / (4 * np.sqrt(12))) ** (2 / 3)


def barenblatt_cells(grid: Grid, t: float) -> np.ndarray:
    """Exact cell averages of the unit-mass Barenblatt profile of rho_t = (rho^2)_xx (d = 1)."""
    e = grid.lower + np.arange(grid.n_cells + 1) * grid.h
    a = np.sqrt(12 * BC) * t ** (1 / 3)
    lo, hi = np.clip(e[:-1], -a, a), np.clip(e[1:], -a, a)
    F = lambda x: t ** (-1 / 3) * (BC * x - x**3 / (36 * t ** (2 / 3)))
    return (F(hi) - F(lo)) / grid.h


def _pme(n: int, scheme: str = "jko") -> tuple[JKOStep, Grid]:
    grid = Grid(-2.5, 2.5, n, 1)
    E = GeneralFreeEnergy(None, PorousMedium(2.0), n_nodes=1)
    # the porous medium's compact support goes through the barrier path: up to ~100 Newton its per step
    return JKOStep(SemiDiscreteSpace.path(1, dim=1), E, grid, scheme=scheme, max_iter=400), grid


def _run(J: JKOStep, rho: np.ndarray, t: float, tau: float):
    n = max(1, int(np.ceil(t / tau - 1e-9)))
    dt = t / n
    ts, rhos, F, D, its = [0.0], [rho], [J.free_energy(rho.ravel()) * J.grid.cell_volume], [J.dissipation(rho)], []
    for k in range(n):
        res = J.step(rho, dt)
        rho = res.rho
        ts.append((k + 1) * dt), rhos.append(rho), its.append(res.iterations)
        F.append(res.info["free_energy"]), D.append(J.dissipation(rho))
    return np.array(ts), np.array(rhos), np.array(F), np.array(D), its


def slope(x, y) -> float:
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def example_a(smoke: bool) -> dict:
    t0, t1 = 0.1, 0.3
    n = 30 if smoke else 100
    taus = [0.04, 0.02] if smoke else [0.04, 0.02, 0.01, 0.005]
    J, grid = _pme(n)
    Jc = _pme(n, "crank_nicolson")[0]
    r0 = barenblatt_cells(grid, t0)[None]
    ref = Jc.evolve(r0, t1 - t0, taus[-1] / 2)
    rows = []
    for tau in taus:
        _, rj, _, _, its = _run(J, r0, t1 - t0, tau)
        _, rc, _, _, itc = _run(Jc, r0, t1 - t0, tau)
        rows.append((tau, float(np.abs(rj[-1] - ref).sum() * grid.h), float(np.abs(rc[-1] - ref).sum() * grid.h),
                     float(np.mean(its)), float(np.mean(itc))))
    ns = [20, 40] if smoke else [25, 50, 100, 200]
    hrows = []
    for m in ns:
        Jn, g = _pme(m, "crank_nicolson")
        r = Jn.evolve(barenblatt_cells(g, t0)[None], t1 - t0, 0.01)
        hrows.append((g.h, float(np.abs(r[0] - barenblatt_cells(g, t1)).sum() * g.h)))
    ts, rhos, F, D, _ = _run(J, r0, t1 - t0, taus[-1])
    return {"grid": grid, "rows": rows, "hrows": hrows, "ts": ts + t0, "rhos": rhos, "F": F, "D": D,
            "exact": barenblatt_cells(grid, t1),
            "order_jko": slope([r[0] for r in rows], [r[1] for r in rows]),
            "order_cn": slope([r[0] for r in rows], [r[2] for r in rows]),
            "order_h": slope([r[0] for r in hrows], [r[1] for r in hrows])}


def example_b(smoke: bool) -> dict:
    T = 0.3
    n = 16 if smoke else 48
    grid = Grid(-2.5, 2.5, n, 2)
    E = GeneralFreeEnergy(None, Entropy(T), interaction=quadratic_kernel(1.0), n_nodes=1)
    J = JKOStep(SemiDiscreteSpace.path(1, dim=2), E, grid, theta="logmean")
    x = grid.centers
    r = np.exp(-np.sum((x - [0.3, -0.2]) ** 2, axis=1) / 0.3) * (1 + 0.5 * np.cos(3 * x[:, 0]))
    r = r[None] / (r.sum() * grid.cell_volume)
    c = (x * r[0][:, None]).sum(0) * grid.cell_volume
    ts, rhos, F, D, its = _run(J, r, 2.0 if smoke else 6.0, 0.25)
    exact = np.exp(-np.sum((x - c) ** 2, axis=1) / (2 * T))
    exact /= exact.sum() * grid.cell_volume
    return {"grid": grid, "ts": ts, "rhos": rhos, "F": F, "D": D, "its": its, "exact": exact,
            "l1": float(np.abs(rhos[-1][0] - exact).sum() * grid.cell_volume)}


def example_c(smoke: bool) -> dict:
    K, n = 3, (30 if smoke else 120)
    grid = Grid(-3, 3, n, 1)
    pot = QuadraticPotential(a=[0.2, 0.2, 0.2], c=[0.6, 0.3, 0.0], m=[[-1.0], [0.0], [1.0]])
    E = GeneralFreeEnergy(pot, PorousMedium(2.0, nu=0.5))
    J = JKOStep(SemiDiscreteSpace.path(K, weight=2.0, dim=1), E, grid, theta="arithmetic", max_iter=400)
    x = grid.centers[:, 0]
    r = np.zeros((K, n))
    r[0] = np.maximum(0.3 - (x + 1.0) ** 2, 0)
    r /= r.sum() * grid.h
    ts, rhos, F, D, its = _run(J, r, 0.6 if smoke else 4.0, 0.05)
    m = rhos.sum(axis=2) * grid.h
    return {"grid": grid, "ts": ts, "rhos": rhos, "F": F, "D": D, "its": its, "m": m}


def _support(p: np.ndarray, x: np.ndarray, tol: float = 1e-4) -> tuple[float, float]:
    on = x[p > tol * p.max()]
    return float(on.min()), float(on.max())


def _asymmetry(p: np.ndarray, x: np.ndarray, c: float) -> float:
    """L1 distance between rho(c + y) and rho(c - y) (linear interpolation), relative to the mass."""
    h = x[1] - x[0]
    return float(np.abs(p - np.interp(2 * c - x, x, p, left=0.0, right=0.0)).sum() * h / (p.sum() * h))


def ccww_fp(smoke: bool) -> dict:
    """Nonlinear Fokker–Planck rho_t = (x rho)_x + (rho^2)_xx from two bumps; closed-form steady state."""
    n, t_end, tau = (40, 2.0, 0.1) if smoke else (150, 4.0, 0.05)
    grid = Grid(-3, 3, n, 1)
    E = GeneralFreeEnergy(QuadraticPotential(a=[1.0], c=[0.0], m=[[0.0]]), PorousMedium(2.0), n_nodes=1)
    J = JKOStep(SemiDiscreteSpace.path(1, dim=1), E, grid, max_iter=400)
    x = grid.centers[:, 0]
    r = np.exp(-(x - 1.0) ** 2 / 0.1) + np.exp(-(x + 1.0) ** 2 / 0.1)
    r = r[None] / (r.sum() * grid.h)
    ts, rhos, F, D, its = _run(J, r, t_end, tau)
    a = 3 ** (1 / 3)  # steady state (C - x^2/2)_+ / 2 with unit mass: 2C = 3^(2/3), half-width sqrt(2C)
    e = grid.lower + np.arange(n + 1) * grid.h
    lo, hi = np.clip(e[:-1], -a, a), np.clip(e[1:], -a, a)
    G = lambda y: (a * a / 2 * y - y**3 / 6) / 2
    exact = (G(hi) - G(lo)) / grid.h
    Finf = float(E(exact[None], grid))
    p = rhos[-1][0]
    return {"grid": grid, "ts": ts, "rhos": rhos, "F": F, "D": D, "its": its, "exact": exact, "F_inf": Finf,
            "l1": float(np.abs(p - exact).sum() * grid.h), "peak": float(p.max()), "peak_exact": a * a / 4,
            "support": _support(p, x), "half_width_exact": a, "asym": _asymmetry(p, x, 0.0),
            "mass": rhos.sum(axis=2)[:, 0] * grid.h, "min": float(rhos.min())}


def ccww_ad(smoke: bool) -> dict:
    """Aggregation–diffusion rho_t = (rho (W' * rho))_x + nu (rho^2)_xx, W = -unit Gaussian, nu = 1/4."""
    n, t_end, tau = (40, 10.0, 0.5) if smoke else (150, 20.0, 0.25)
    grid = Grid(-3, 3, n, 1)
    s = 0.5
    E = GeneralFreeEnergy(None, PorousMedium(2.0, nu=0.25),
                          interaction=gaussian_kernel(s, -1 / (np.sqrt(2 * np.pi) * s)), n_nodes=1)
    J = JKOStep(SemiDiscreteSpace.path(1, dim=1), E, grid, max_iter=400)
    x = grid.centers[:, 0]
    r = np.exp(-(x - 0.7) ** 2 / 0.2) + 0.6 * np.exp(-(x + 0.7) ** 2 / 0.2)
    r = r[None] / (r.sum() * grid.h)
    ts, rhos, F, D, its = _run(J, r, t_end, tau)
    p = rhos[-1][0]
    c0, c = float((x * r[0]).sum() * grid.h), float((x * p).sum() * grid.h)
    k = int(np.argmax(p))
    tol = 1e-4 * p.max()  # the barrier leaves ~1e-5 ripples outside the support
    mono = bool(np.all(np.diff(p[: k + 1]) >= -tol) and np.all(np.diff(p[k:]) <= tol))
    half = len(ts) // 2
    # Euler-Lagrange condition of a steady state: U'(rho) + W * rho is constant on the support, larger outside
    fv = E.first_variation(rhos[-1], grid)[0]
    on = p > 1e-3 * p.max()
    return {"grid": grid, "ts": ts, "rhos": rhos, "F": F, "D": D, "its": its, "c0": c0, "c": c,
            "el_spread": float(np.ptp(fv[on])), "el_gap": float(fv[~on].min() - fv[on].max()),
            "peak": float(p.max()), "support": _support(p, x), "asym": _asymmetry(p, x, c), "unimodal": mono,
            "l1_half": float(np.abs(rhos[half][0] - p).sum() * grid.h), "t_half": float(ts[half]),
            "mass": rhos.sum(axis=2)[:, 0] * grid.h, "min": float(rhos.min())}


def _plot_ccww(FP, AD, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(2, 2, figsize=(11, 8))
    for R, row, name in ((FP, 0, "FP: (x rho)_x + (rho^2)_xx"), (AD, 1, "AD: -Gaussian kernel + (rho^2)_xx / 4")):
        x = R["grid"].centers[:, 0]
        for k in np.unique(np.linspace(0, len(R["ts"]) - 1, 5).astype(int)):
            ax[row, 0].plot(x, R["rhos"][k][0], label=f"t={R['ts'][k]:.2f}")
        if "exact" in R:
            ax[row, 0].plot(x, R["exact"], "k--", label="steady state (exact)")
        ax[row, 0].set_title(name), ax[row, 0].legend(fontsize=7)
        ax[row, 1].semilogy(R["ts"][:-1], np.maximum(R["F"][:-1] - R["F"][-1], 1e-16), label="F - F(end)")
        ax[row, 1].semilogy(R["ts"], np.maximum(R["D"], 1e-16), label="dissipation")
        ax[row, 1].set_title(f"{name.split(':')[0]}: energy and dissipation"), ax[row, 1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "ccww.png", dpi=90)
    plt.close(fig)


def _print_profiles(R: dict, n: int = 5) -> None:
    """Peak, support and energy at n evenly spaced saved times of one CCWW run."""
    for k in np.unique(np.linspace(0, len(R["ts"]) - 1, n).astype(int)):
        lo, hi = _support(R["rhos"][k][0], R["grid"].centers[:, 0])
        print(f"  t = {R['ts'][k]:.2f}: peak {R['rhos'][k][0].max():.4f}, support [{lo:.3f}, {hi:.3f}], "
              f"F = {R['F'][k]:.6f}")


def ccww(smoke: bool, out: Path) -> dict:
    FP, AD = ccww_fp(smoke), ccww_ad(smoke)
    for R in (FP, AD):
        R["monotone"] = bool(np.all(np.diff(R["F"]) <= 1e-12 * max(1.0, abs(R["F"][0]))))
        R["mass_drift"] = float(np.abs(R["mass"] - 1).max())
    print("CCWW part (Carrillo, Craig, Wang & Wei, FoCM 2022): two 1-d equations of the families of their "
          "numerical section; parameters ours (their Section 5 parameters could not be read here).")
    print(f"FP. nonlinear Fokker-Planck, V = x^2/2, m = 2, n = {FP['grid'].n_cells}, tau = {FP['ts'][1]:g}:")
    _print_profiles(FP)
    print(f"  at t = {FP['ts'][-1]:g}: peak {FP['peak']:.4f} (exact {FP['peak_exact']:.4f}), support "
          f"[{FP['support'][0]:.3f}, {FP['support'][1]:.3f}] (exact +-{FP['half_width_exact']:.3f}, h = "
          f"{FP['grid'].h:.3f}), L1 to the steady state {FP['l1']:.2e}, F - F_inf {FP['F'][-1] - FP['F_inf']:.2e}, "
          f"asymmetry {FP['asym']:.1e}")
    print(f"  energy monotone: {FP['monotone']}; mass drift {FP['mass_drift']:.1e}; min rho {FP['min']:.1e}; "
          f"Newton its/step {np.mean(FP['its']):.1f}")
    print(f"AD. aggregation-diffusion, W = -N(0, 0.5^2), nu = 1/4, m = 2, n = {AD['grid'].n_cells}, "
          f"tau = {AD['ts'][1]:g}:")
    _print_profiles(AD)
    print(f"  steady state: centre of mass {AD['c0']:.4f} -> {AD['c']:.4f}, support [{AD['support'][0]:.3f}, "
          f"{AD['support'][1]:.3f}] (half-width {(AD['support'][1] - AD['support'][0]) / 2:.3f}), peak "
          f"{AD['peak']:.4f}, asymmetry about the centre {AD['asym']:.1e}, unimodal {AD['unimodal']}, "
          f"L1(rho(t={AD['t_half']:g}), rho(end)) {AD['l1_half']:.1e}")
    print(f"  Euler-Lagrange check: U'(rho) + W * rho varies by {AD['el_spread']:.1e} on the support and is "
          f"{AD['el_gap']:.1e} higher off it (> 0: a steady state, the bumps merged into one)")
    print(f"  energy monotone: {AD['monotone']}; mass drift {AD['mass_drift']:.1e}; min rho {AD['min']:.1e}; "
          f"Newton its/step {np.mean(AD['its']):.1f}")
    _plot_ccww(FP, AD, out)
    for key, R in (("fp", FP), ("ad", AD)):  # profiles at the snapshot times, energy over time
        ks = np.unique(np.linspace(0, len(R["ts"]) - 1, 5).astype(int))
        np.savetxt(out / f"ccww_{key}_profiles.csv", np.column_stack([R["grid"].centers[:, 0]] + [R["rhos"][k][0] for k in ks]),
                   delimiter=",", header="x," + ",".join(f"t={R['ts'][k]:g}" for k in ks), comments="")
        np.savetxt(out / f"ccww_{key}_energy.csv", np.column_stack([R["ts"], R["F"], R["D"], R["mass"]]),
                   delimiter=",", header="t,F,dissipation,mass", comments="")
    print(f"figure: {out / 'ccww.png'}; profiles and energies: {out}/ccww_{{fp,ad}}_{{profiles,energy}}.csv")
    return {"FP": FP, "AD": AD}


def bench(tau: float = 0.01) -> list[tuple]:
    """Time per JKO step (process CPU seconds) at the issue's two sizes: :func:`experiments.bench.bench_jko.measure`."""
    out = []
    for key in sorted(PROBLEMS):
        m = measure(*PROBLEMS[key], tau=tau, steps=1)
        out.append((m["d"], m["n"], m["K"], m["unknowns"], m["first_cpu"], m["cpu"][0], m["iterations"][0],
                    m["linear_solves"][0]))
    return out


def iterations_vs_tau(taus=(0.001, 0.01, 0.1, 1.0)) -> list[tuple]:
    """Newton iterations of one step vs tau: d = 1, 400 cells x 4 nodes (complete graph), entropy T = 0.5."""
    K = 4
    space = SemiDiscreteSpace.complete(K, dim=1)
    rng = np.random.default_rng(0)
    pot = QuadraticPotential(a=np.ones(K), c=rng.uniform(0, 0.5, K), m=rng.uniform(-1, 1, (K, 1)))
    grid = Grid(-3, 3, 400, 1)
    x = grid.centers
    rho = np.exp(-np.sum((x - 0.5) ** 2, axis=1) / 0.5)[None, :] * np.linspace(1, 2, K)[:, None]
    rho /= rho.sum() * grid.h
    E = GeneralFreeEnergy(None, PorousMedium(2.0), n_nodes=K)
    rows = []
    for tau in taus:
        a = JKOStep(space, pot, grid, 0.5).step(rho, tau).iterations
        b = JKOStep(space, pot, grid, 0.5, theta="arithmetic").step(rho, tau).iterations
        c = JKOStep(space, E, grid, max_iter=400).step(rho, tau).iterations
        rows.append((tau, a, b, c))
    return rows


def _plot(A, B, C, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(3, 3, figsize=(14, 11))
    x = A["grid"].centers[:, 0]
    for k in np.linspace(0, len(A["ts"]) - 1, 5).astype(int):
        ax[0, 0].plot(x, A["rhos"][k][0], label=f"t={A['ts'][k]:.2f}")
    ax[0, 0].plot(x, A["exact"], "k--", label="Barenblatt t=0.3")
    ax[0, 0].set_title("A: porous medium (m=2), JKO"), ax[0, 0].legend(fontsize=7)
    ax[0, 1].plot(A["ts"], A["F"]), ax[0, 1].set_title("A: energy")
    ax[0, 2].semilogy(A["ts"], A["D"]), ax[0, 2].set_title("A: dissipation")
    g = B["grid"]
    ax[1, 0].imshow(g.to_spatial(B["rhos"][-1])[0].T, origin="lower", extent=[g.lower, g.upper] * 2)
    ax[1, 0].set_title(f"B: aggregation-diffusion 2-d, t={B['ts'][-1]:.1f} (L1 to steady {B['l1']:.3f})")
    ax[1, 1].plot(B["ts"], B["F"]), ax[1, 1].set_title("B: energy")
    ax[1, 2].semilogy(B["ts"], np.maximum(B["D"], 1e-300)), ax[1, 2].set_title("B: dissipation")
    xc = C["grid"].centers[:, 0]
    for k in np.linspace(0, len(C["ts"]) - 1, 4).astype(int):
        for gg, ls in zip(range(3), ("-", "--", ":")):
            ax[2, 0].plot(xc, C["rhos"][k][gg], ls, color=f"C{k % 10}")
    ax[2, 0].set_title("C: densities per node (line style = node)")
    ax[2, 1].plot(C["ts"], C["m"]), ax[2, 1].set_title("C: node masses")
    ax[2, 2].plot(C["ts"], C["F"], label="F"), ax[2, 2].semilogy(C["ts"], C["D"], label="D")
    ax[2, 2].legend(), ax[2, 2].set_title("C: energy and dissipation")
    fig.tight_layout()
    fig.savefig(out / "jko_studies.png", dpi=90)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--bench", action="store_true")
    ap.add_argument("--ccww", action="store_true", help="only the CCWW part (two 1-d examples, ccww.png)")
    ap.add_argument("--out", default="results/jko_studies")
    args = ap.parse_args(argv)
    if args.bench:
        rows = bench()
        print("| d | cells x nodes | unknowns | first step (s, CPU) | next step (s, CPU) | Newton its "
              "| linear solves |")
        print("|---|---|---|---|---|---|---|")
        for d, n, K, N, t0, t1, it, lin in rows:
            print(f"| {d} | {n}^{d} x {K} | {N:,} | {t0:.2f} | {t1:.2f} | {it} | {lin} |")
        its = iterations_vs_tau()
        print()
        print("| tau | Newton its: entropy, logmean_pi | entropy, arithmetic | porous medium m=2 (barrier) |")
        print("|---|---|---|---|")
        for tau, a, b, c in its:
            print(f"| {tau:g} | {a} | {b} | {c} |")
        return {"bench": rows, "iterations": its}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.ccww:
        return {"ccww": ccww(args.smoke, out)}
    A, B, C = example_a(args.smoke), example_b(args.smoke), example_c(args.smoke)
    print(f"A. Barenblatt (m = 2, d = 1, n = {A['grid'].n_cells}): L1 error at t = 0.3 vs tau; reference CN at tau/2")
    print("| tau | JKO | CN-type | Newton its/step JKO | CN (both solves) |")
    print("|---|---|---|---|---|")
    for tau, ej, ec, ij, ic in A["rows"]:
        print(f"| {tau:g} | {ej:.3e} | {ec:.3e} | {ij:.1f} | {ic:.1f} |")
    print(f"fitted order in tau: JKO {A['order_jko']:.2f}, CN-type {A['order_cn']:.2f}")
    print("| h | L1 error vs exact Barenblatt (CN, tau 0.01) |")
    print("|---|---|")
    for h, e in A["hrows"]:
        print(f"| {h:.4f} | {e:.3e} |")
    print(f"fitted order in h: {A['order_h']:.2f}")
    print(f"B. 2-d aggregation-diffusion: L1 distance to the closed-form steady state {B['l1']:.4f}; "
          f"energy {B['F'][0]:.4f} -> {B['F'][-1]:.4f}, monotone: {bool(np.all(np.diff(B['F']) <= 1e-12))}; "
          f"Newton its/step {np.mean(B['its']):.1f}")
    print(f"C. semi-discrete PME on 3 nodes: node masses {np.round(C['m'][0], 3).tolist()} -> "
          f"{np.round(C['m'][-1], 3).tolist()}; energy monotone: {bool(np.all(np.diff(C['F']) <= 1e-12))}; "
          f"max mass drift {float(np.abs(C['m'].sum(1) - 1).max()):.1e}; Newton its/step {np.mean(C['its']):.1f}")
    _plot(A, B, C, out)
    print(f"figure: {out / 'jko_studies.png'}")
    return {"A": A, "B": B, "C": C, "ccww": ccww(args.smoke, out)}


if __name__ == "__main__":
    main()
