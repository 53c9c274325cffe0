"""NASGD and NASAGD on a synthetic architecture ladder (issue 3, spec semi-discrete-flow.md 6.4, 6.5, 7.2).

    python -m experiments.studies.nas_ladder            # full study (about a minute on 2 cores)
    python -m experiments.studies.nas_ladder --smoke    # seconds (CI)
    python -m experiments.studies.nas_ladder --out DIR  # PNG and table (default results/nas_ladder)

Ladder: path graph of K = 20 "depths"; node g owns one weight vector x_g trained by gradient
descent (lr = 0.1) on ``f(x, g) = a_g |x - m_g|^2 / 2 + c_g``; its energy ``E_g = f(x_g, g)`` drives
the label-only particles (N of them, all starting at node 0).

1. **Mean field.** On a sloped ladder (c_g falling linearly, node-dependent a_g) the particle
   fractions of NASGD and NASAGD are compared with their mean fields: the exact expectation of the
   explicit rule and, for NASGD, the ODE ``dm_g/dt = sum w c [m_g' (E_g' - E_g)_+ - m_g (E_g - E_g')_+]``
   (piecewise-constant energies, exact per step). The table gives max_g |N_g/N - m_g| in units of
   1/sqrt(N).
2. **Long plateau.** Node 0 sits 1 above node 1, nodes 1..18 fall by only ``slope`` per node and the
   best node 19 lies 1 below node 18. The study prints the number of steps each rule needs until
   half of the particles sit on the best node (particles and mean field), and draws the mass at the
   best node over the steps. NASGD crosses each plateau node at rate ``c * slope``; NASAGD's
   velocity potential integrates the gaps, so its rate grows with time (about
   ``sqrt(2 L c_p / (c slope))`` time units for L plateau nodes instead of ``L / (c slope)``).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from sdot.nas_rules import NASAGD, NASGD, QuadraticLadder, nasagd_mean_field, nasgd_mean_field, steps_to_reach
from sdot.particles import ParticleState

from experiments.plots import pyplot, save_figure
from experiments.studies.common import parse_study_args, study_parser


def mean_field_agreement(n_particles: int, n_steps: int, dt: float = 0.01, c: float = 3.0, c_p: float = 2.0,
                         seed: int = 0) -> list[dict]:
    K = 20
    rows = []
    sloped = QuadraticLadder(a=np.linspace(0.5, 1.5, K), c=1.0 - np.arange(K) / (K - 1),
                             m=np.c_[np.full(K, 1.0), np.zeros(K)], lr=0.1)
    uniform = QuadraticLadder.slope(K=K, drop=1.0, a=1.0, spread=1.0, lr=0.1)
    m0 = np.eye(K)[0]
    checkpoints = sorted({n_steps // 3, 2 * n_steps // 3, n_steps})
    for rule_name, lad in (("NASGD", sloped), ("NASAGD", uniform)):
        E = lad.energy_table(n_steps)
        if rule_name == "NASGD":
            expected = nasgd_mean_field(lad.space, E, m0, dt, n_steps, c, "expected")
            ode = nasgd_mean_field(lad.space, E, m0, dt, n_steps, c, "ode")
            rule = NASGD(lad.space, dt, c)
        else:
            expected = nasagd_mean_field(lad.space, E, m0, dt, n_steps, c, c_p, scheme="expected")[0]
            ode = nasagd_mean_field(lad.space, E, m0, dt, n_steps, c, c_p, scheme="ode")[0]
            rule = NASAGD(lad.space, dt, c, c_p, restart_single_support=False)
        s = ParticleState.from_labels(np.zeros(n_particles, dtype=int), rng=seed)
        for k in range(n_steps):
            rule.step(s, E[k])
            if k + 1 in checkpoints:
                frac = s.node_fractions(K)
                rows.append({"rule": rule_name, "step": k + 1, "expected": np.abs(frac - expected[k + 1]).max(),
                             "ode": np.abs(frac - ode[k + 1]).max(), "bias": np.abs(expected[k + 1] - ode[k + 1]).max(),
                             "spread": int((frac > 0.01).sum())})
    return rows


def plateau_study(n_particles: int, slope: float, n_max: int, dt: float = 0.01, c: float = 1.0, c_p: float = 2.0,
                  seed: int = 1) -> dict:
    lad = QuadraticLadder.plateau(K=20, first_drop=1.0, plateau_slope=slope, last_drop=1.0)
    K, best = lad.n_nodes, lad.best_node
    m0 = np.eye(K)[0]
    out: dict = {"slope": slope, "N": n_particles, "dt": dt, "c": c, "c_p": c_p}
    E_cache = lad.energy_table(min(n_max, 200))  # after 200 steps of training the energies are constant

    def energies(n):
        return E_cache[min(n, E_cache.shape[0] - 1)]

    for name, rule in (("NASAGD", NASAGD(lad.space, dt, c, c_p)), ("NASGD", NASGD(lad.space, dt, c))):
        s = ParticleState.from_labels(np.zeros(n_particles, dtype=int), rng=seed)
        traj = np.empty(n_max + 1)
        traj[0] = 0.0
        t0 = time.perf_counter()
        hit, stop = None, n_max
        for k in range(n_max):
            rule.step(s, energies(k))
            traj[k + 1] = s.node_fractions(K)[best]
            if hit is None and traj[k + 1] >= 0.5:
                hit, stop = k + 1, min(n_max, int(1.3 * (k + 1)) + 1)  # a little more for the figure
            if k + 1 >= stop:
                break
        traj = traj[: k + 2]
        if name == "NASGD":
            mf = nasgd_mean_field(lad.space, energies, m0, dt, n_max, c, "expected")
            restarts = None
        else:
            mf, _, restarts = nasagd_mean_field(lad.space, energies, m0, dt, n_max, c, c_p, scheme="expected")
        out[name] = {"steps_particles": hit, "steps_mean_field": steps_to_reach(mf, best), "traj": traj,
                     "mf": mf[:, best], "wall_s": time.perf_counter() - t0,
                     "restarts": None if restarts is None else len(getattr(rule, "restarts", []))}
    return out


def plot_plateau(res: dict, path: Path) -> Path:
    fig, ax = pyplot().subplots(figsize=(6.4, 3.6))
    for name, color in (("NASGD", "tab:blue"), ("NASAGD", "tab:red")):
        r = res[name]
        ax.plot(np.arange(r["traj"].size), r["traj"], color=color, lw=1.5, label=f"{name} particles")
        ax.plot(np.arange(r["mf"].size), r["mf"], color=color, lw=1, ls="--", label=f"{name} mean field")
        if r["steps_particles"] is not None:
            ax.axvline(r["steps_particles"], color=color, lw=0.6, alpha=0.6)
    ax.axhline(0.5, color="0.5", lw=0.6)
    ax.set_xscale("log")
    ax.set_xlabel("dynamics step")
    ax.set_ylabel("mass on the best node")
    ax.set_title(f"plateau slope {res['slope']}, N = {res['N']}, dt = {res['dt']}, c = {res['c']}, c_p = {res['c_p']}",
                 fontsize=9)
    ax.legend(fontsize=7)
    return save_figure(fig, path)


def main(argv=None) -> None:
    ap = study_parser(__doc__, "small ladders and particle counts: seconds", config=None, out="results/nas_ladder")
    args = parse_study_args(ap, argv)
    out = Path(args.out)
    n_mf, steps_mf = (4000, 150) if args.smoke else (20_000, 1500)
    slope, n_max = (0.5, 6000) if args.smoke else (0.05, 50_000)
    n_plateau = 500 if args.smoke else 1000

    lines = [f"Mean-field agreement (K = 20, N = {n_mf:,}, dt = 0.01, c = 3): max_g |N_g/N - m_g| * sqrt(N)",
             "| rule | step | vs expectation of the rule | vs ODE | ODE - expectation (O(dt)) * sqrt(N) | nodes > 1% |",
             "|---|---|---|---|---|---|"]
    for r in mean_field_agreement(n_mf, steps_mf):
        sq = np.sqrt(n_mf)
        lines.append(f"| {r['rule']} | {r['step']} | {r['expected'] * sq:.2f} | {r['ode'] * sq:.2f} | "
                     f"{r['bias'] * sq:.2f} | {r['spread']} |")
    res = plateau_study(n_plateau, slope, n_max)
    lines += ["", f"Long plateau (K = 20, slope {slope}, N = {n_plateau}): steps until half the mass is on the best node",
              "| rule | particles | mean field | wall time (s) |", "|---|---|---|---|"]
    for name in ("NASGD", "NASAGD"):
        r = res[name]
        lines.append(f"| {name} | {r['steps_particles']} | {r['steps_mean_field']} | {r['wall_s']:.1f} |")
    a, g = res["NASAGD"]["steps_particles"], res["NASGD"]["steps_particles"]
    if a is not None and g is not None:
        lines.append(f"\nNASAGD needs {a} steps, NASGD {g}: {g / a:.1f}x fewer with the velocity potential.")
    table = "\n".join(lines)
    print(table)
    png = plot_plateau(res, out / "plateau.png")
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.md").write_text(table + "\n")
    print(f"-> {png}")


if __name__ == "__main__":
    main()
