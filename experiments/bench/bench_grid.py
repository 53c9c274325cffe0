"""Grid-solver benchmark (issue 2 figures). Not a timed test: run it and read the table.

    python -m experiments.bench.bench_grid            # both figures (a few minutes on 2 cores)
    python -m experiments.bench.bench_grid --smoke    # tiny sizes, seconds
    python -m experiments.bench.bench_grid --direct   # also time the exact implicit step with a direct LU

Figures asked for: d = 2, 128 x 128 cells x 16 nodes (262,144 unknowns): assembly <= 2 s and one
implicit step after factorisation <= 0.2 s; d = 1, 2,000 cells x 64 nodes: 1,000 implicit steps
<= 10 s. Both the exact implicit Euler step (one sparse LU of the coupled system, SuperLU with
an MMD ordering) and the ``split`` step (Lie splitting: transport LU per node + batched K x K
reaction inverses per cell) are timed; graphs are random 4-regular, potentials random quadratics.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from sdot import QuadraticPotential, SemiDiscreteSpace
from sdot.grid import Grid, GridSolver


def _problem(dim: int, n: int, K: int, T: float = 0.5, seed: int = 0) -> tuple:
    rng = np.random.default_rng(seed)
    space = SemiDiscreteSpace.random_regular(K, 4, seed=seed, dim=dim) if K > 4 else SemiDiscreteSpace.complete(K, dim=dim)
    pot = QuadraticPotential(a=rng.uniform(0.5, 2, K), c=rng.uniform(0, 1, K), m=rng.uniform(-1, 1, (K, dim)))
    return space, pot, Grid(-4, 4, n, dim), T


def _time(fn, repeat=1):
    best = np.inf
    out = None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def bench_2d(n: int, K: int, tau: float, direct: bool) -> list[tuple[str, float]]:
    space, pot, grid, T = _problem(2, n, K)
    rows = []
    t_asm, s = _time(lambda: GridSolver(space, pot, grid, T, check=False))
    rows.append((f"d=2 {n}x{n}x{K} ({s.n_states} unknowns): assembly", t_asm))
    t_chk, _ = _time(s.check_generator)
    rows.append(("  generator sanity check", t_chk))
    rho = s.gibbs() * 0.5 + 0.5 / (K * 64.0)
    rho /= rho.sum() * grid.cell_volume
    t_fac, _ = _time(lambda: s._split_factors(tau))
    rows.append(("  split: factorisation (K transport LUs + M reaction inverses)", t_fac))
    t_step, _ = _time(lambda: s.step(rho, tau, method="split", check=False), repeat=3)
    rows.append(("  split: one step after factorisation", t_step))
    if direct:
        t_fac, _ = _time(lambda: s._factor("implicit", tau))
        lu = s._lu[("implicit", float(tau))]
        rows.append((f"  exact implicit: LU factorisation (fill {lu.L.nnz + lu.U.nnz:,} nonzeros)", t_fac))
        t_step, _ = _time(lambda: s.step(rho, tau, check=False), repeat=3)
        rows.append(("  exact implicit: one step after factorisation", t_step))
    return rows


def bench_1d(n: int, K: int, tau: float, steps: int, direct: bool) -> list[tuple[str, float]]:
    space, pot, grid, T = _problem(1, n, K)
    rows = []
    t_asm, s = _time(lambda: GridSolver(space, pot, grid, T, check=False))
    rows.append((f"d=1 {n}x{K} ({s.n_states} unknowns): assembly", t_asm))
    rho0 = np.full((K, n), 1.0 / (K * 8.0))
    methods = ["split"] + (["implicit"] if direct else [])
    for m in methods:
        t_fac, _ = _time(lambda: s._split_factors(tau) if m == "split" else s._factor("implicit", tau))
        rows.append((f"  {m}: factorisation", t_fac))
        t_run, out = _time(lambda: s.evolve(rho0, steps * tau, tau, method=m))
        rows.append((f"  {m}: {steps} steps after factorisation", t_run))
        assert abs(out.sum() * grid.cell_volume - 1) < 1e-10
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="tiny sizes (CI)")
    ap.add_argument("--direct", action="store_true", help="also time the exact implicit step (direct LU; slow at full size)")
    ap.add_argument("--tau", type=float, default=0.01)
    args = ap.parse_args(argv)
    if args.smoke:
        rows = bench_2d(16, 4, args.tau, True) + bench_1d(100, 8, args.tau, 50, True)
    else:
        rows = bench_2d(128, 16, args.tau, args.direct) + bench_1d(2000, 64, args.tau, 1000, args.direct)
    width = max(len(r[0]) for r in rows)
    for name, sec in rows:
        print(f"{name:<{width}}  {sec:9.3f} s")


if __name__ == "__main__":
    main()
