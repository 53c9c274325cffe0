"""Bench: time per JKO step at the issue-16 sizes (d = 1: 2,000 cells x 16 nodes; d = 2: 128^2 cells x 4 nodes).

    python -m experiments.bench.bench_jko                       # this tree's code: wall and CPU s per step
    python -m experiments.bench.bench_jko --compare /tmp/base   # also an older checkout, runs interleaved
    python -m experiments.bench.bench_jko --only 1 --steps 3 --repeats 2

Problem (as in the README's table): complete graph, quadratic potentials with random offsets and
centres (seed 0), entropy T = 0.5, tau = 0.01, a Gaussian start; one untimed step first (setup),
then ``--steps`` timed steps. Each measurement runs in a fresh subprocess whose ``sys.path`` starts
with the checkout being measured, so ``--compare`` times two versions of ``sdot`` side by side
(alternating, ``--repeats`` times each) on a loaded machine: the ratio old / new is the figure to
trust, the absolute seconds depend on the load (printed).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

PROBLEMS = {1: (1, 2000, 16), 2: (2, 128, 4)}  # key: (d, cells per axis, nodes)
ROOT = Path(__file__).resolve().parents[2]


def measure(d: int, n: int, K: int, tau: float = 0.01, steps: int = 2) -> dict:
    """One warm-up step, then ``steps`` timed ones; wall and process CPU seconds per step."""
    import numpy as np

    from sdot import QuadraticPotential, SemiDiscreteSpace
    from sdot.grid import Grid
    from sdot.jko import JKOStep

    space = SemiDiscreteSpace.complete(K, dim=d)
    rng = np.random.default_rng(0)
    pot = QuadraticPotential(a=np.ones(K), c=rng.uniform(0, 0.5, K), m=rng.uniform(-1, 1, (K, d)))
    grid = Grid(-3, 3, n, d)
    J = JKOStep(space, pot, grid, 0.5)
    x = grid.centers
    rho = np.exp(-np.sum((x - 0.5) ** 2, axis=1) / 0.5)[None, :] * np.linspace(1, 2, K)[:, None]
    rho /= rho.sum() * grid.cell_volume
    c0, w0 = time.process_time(), time.perf_counter()
    res = J.step(rho, tau)
    first = (time.perf_counter() - w0, time.process_time() - c0)
    wall, cpu, its, lin = [], [], [], []
    for _ in range(steps):
        rho = res.rho
        c0, w0 = time.process_time(), time.perf_counter()
        res = J.step(rho, tau)
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
        its.append(res.iterations)
        lin.append(res.info.get("linear_solves"))
    return {"d": d, "n": n, "K": K, "unknowns": K * grid.n_points, "first_wall": first[0], "first_cpu": first[1],
            "wall": wall, "cpu": cpu, "iterations": its, "linear_solves": lin,
            "mass": float(res.rho.sum() * grid.cell_volume), "checksum": float(np.sum(res.rho * res.rho))}


def run_in(root: Path, key: int, steps: int) -> dict:
    """``measure`` in a subprocess importing ``sdot`` from ``root`` (single-threaded BLAS)."""
    env = dict(os.environ, PYTHONPATH=str(root), OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker", str(key), "--steps", str(steps)],
                         cwd=root, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--compare", default=None, help="another checkout (e.g. a git worktree of an older commit)")
    ap.add_argument("--only", type=int, choices=(1, 2), default=None, help="only the d = 1 or the d = 2 problem")
    ap.add_argument("--steps", type=int, default=2, help="timed steps after the warm-up step")
    ap.add_argument("--repeats", type=int, default=1, help="subprocess runs per version (interleaved)")
    ap.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker is not None:
        print(json.dumps(measure(*PROBLEMS[args.worker], steps=args.steps)))
        return []
    keys = [args.only] if args.only else [1, 2]
    versions = [("new", ROOT)] + ([("old", Path(args.compare).resolve())] if args.compare else [])
    rows = []
    print(f"load average at start: {os.getloadavg()[0]:.1f} ({os.cpu_count()} CPUs)")
    print("| version | d | cells x nodes | unknowns | first step wall s | next step wall s (min) | CPU s (min) | "
          "Newton its | linear solves |")
    print("|---|---|---|---|---|---|---|---|---|")
    for key in keys:
        got = {name: [] for name, _ in versions}
        for _ in range(args.repeats):
            for name, root in (versions if _ % 2 == 0 else versions[::-1]):
                got[name].append(run_in(root, key, args.steps))
        for name, _root in versions:
            rs = got[name]
            r = rs[0]
            wall = min(w for x in rs for w in x["wall"])
            cpu = min(c for x in rs for c in x["cpu"])
            rows.append({"version": name, "key": key, "wall": wall, "cpu": cpu, "runs": rs})
            print(f"| {name} | {r['d']} | {r['n']}^{r['d']} x {r['K']} | {r['unknowns']:,} | {r['first_wall']:.2f} | "
                  f"{wall:.2f} | {cpu:.2f} | {r['iterations']} | {r['linear_solves']} |")
        if args.compare:
            new = [x for x in rows if x["key"] == key and x["version"] == "new"][0]
            old = [x for x in rows if x["key"] == key and x["version"] == "old"][0]
            print(f"| ratio old / new, d = {PROBLEMS[key][0]} | | | | | {old['wall'] / new['wall']:.2f} | "
                  f"{old['cpu'] / new['cpu']:.2f} | | |")
    print(f"load average at end: {os.getloadavg()[0]:.1f}")
    return rows


if __name__ == "__main__":
    main()
