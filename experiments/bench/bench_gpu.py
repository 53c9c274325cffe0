"""CPU and GPU timings in one run (issue 17): every section times the numpy CPU path and the torch
path on ``--device`` side by side and prints their ratio, so one call on a GPU machine gives
every figure.

Sections (a list of named sections; add one with :func:`section`):

* ``nb201_graph`` — every HOTNN distance on the edges of the whole NAS-Bench-201 mutation graph
  (15,625 nodes, 187,500 edges) with :class:`~hotnas.distances.engine.PairwiseDistances`, one
  process: numpy (default backend) against ``backend="torch"`` on the device.  Cell features are
  prepared once beforehand (preparation is CPU work in both), so only the solves are compared;
  the values of the two runs are compared too (max |diff|, pairs above 1e-10).
* ``particles`` — one full Strang step (Langevin dt/2, exact jumps, Langevin dt/2) of the particle
  solver at N = 10^6 and 10^7 (d = 2, K = 50 nodes on a random 4-regular graph, glauber rates,
  quadratic potential, float64): numpy against torch tensors on the device.

    python -m experiments.bench.bench_gpu                       # everything, device = cuda if present
    python -m experiments.bench.bench_gpu --quick               # seconds, on the CPU: a smoke run
    python -m experiments.bench.bench_gpu --sections particles --json out.json

CPU times are summed over this process and its children (``resource``); wall times with
``time.perf_counter`` after a CUDA synchronisation.  ``OMP_NUM_THREADS`` and the torch thread
count are printed with each figure, with the load average.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["SECTIONS", "section", "main"]


@dataclass(frozen=True)
class Section:
    """A named group of timings: ``run(args, device) -> dict`` of figures (JSON-serialisable)."""

    name: str
    run: Callable[[argparse.Namespace, str], dict]
    help: str = ""


#: the sections, in run order; another benchmark adds its own with :func:`section`.
SECTIONS: list[Section] = []


def section(name: str, help: str = "") -> Callable:
    """Decorator registering ``fn(args, device) -> dict`` as a section called ``name``."""

    def deco(fn: Callable[[argparse.Namespace, str], dict]) -> Callable:
        if any(s.name == name for s in SECTIONS):
            raise ValueError(f"bench_gpu section {name!r} is defined twice")
        SECTIONS.append(Section(name, fn, help))
        return fn

    return deco


def _cpu() -> float:
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def timed(fn: Callable[[], object], device: str = "cpu") -> tuple[float, float, object]:
    """(wall seconds, CPU seconds, result) of one call, synchronising the device around it."""
    _sync(device)
    c0, t0 = _cpu(), time.perf_counter()
    out = fn()
    _sync(device)
    return time.perf_counter() - t0, _cpu() - c0, out


def _ratio(a: float, b: float) -> float:
    return float(a / b) if b > 0 else float("nan")


# ------------------------------------------------------------------------------------------------
@section("nb201_graph", "HOTNN on all edges of the NB201 mutation graph: numpy vs torch on the device")
def nb201_graph(args: argparse.Namespace, device: str) -> dict:
    from experiments.bench.bench_distances import _clear_caches, mutation_edges
    from hotnas.distances.engine import PairwiseDistances
    from hotnas.spaces import get_space

    space = get_space("nb201")
    archs = list(space.enumerate())
    if args.quick:
        rng = np.random.default_rng(args.seed)
        archs = [archs[i] for i in sorted(rng.choice(len(archs), 150, replace=False))]
        A, B = [], []
        for a in archs:
            for b in space.mutations(a)[:8]:
                A.append(a)
                B.append(b)
    else:
        A, B = mutation_edges(space, archs)
    out: dict = {"edges": len(A), "nodes": len(archs)}
    from hotnas.distances.emd import using_private_solver

    out["pot_private_lp"] = using_private_solver()  # imports POT and probes its LP now, not inside a timing
    _clear_caches()
    runs = [("numpy_cpu", {}), (f"torch_{device}", {"backend": "torch", "device": device})]
    vals = {}
    for name, opts in runs:
        eng = PairwiseDistances(space, method="hotnn", n_jobs=1, **opts)
        t_prep, c_prep, _ = timed(lambda: eng.prepare(archs))
        wall, cpu, d = timed(lambda: eng.pairs(A, B), device)
        vals[name] = d
        out[name] = {"prepare_wall_s": t_prep, "prepare_cpu_s": c_prep, "solve_wall_s": wall, "solve_cpu_s": cpu,
                     "cell_pairs": eng.stats["cell_pairs_solved"]}
        print(f"  {name:12s} {len(A):,} edges, {eng.stats['cell_pairs_solved']:,} cell pairs: solve {wall:.2f} s wall, "
              f"{cpu:.2f} s CPU (preparation {t_prep:.2f} s)", flush=True)
    a, b = vals["numpy_cpu"], vals[f"torch_{device}"]
    diff = np.abs(a - b)
    out["max_abs_diff"] = float(diff.max(initial=0.0))
    out["pairs_diff_above_1e-10"] = int((diff > 1e-10).sum())
    out["wall_ratio_cpu_over_device"] = _ratio(out["numpy_cpu"]["solve_wall_s"], out[f"torch_{device}"]["solve_wall_s"])
    print(f"  numpy / torch-{device} wall ratio {out['wall_ratio_cpu_over_device']:.2f}x; values: max |diff| "
          f"{out['max_abs_diff']:.1e}, {out['pairs_diff_above_1e-10']} edges differ by more than 1e-10")
    return out


@section("particles", "one Strang step of the particle solver at N = 1e6, 1e7: numpy vs torch on the device")
def particles(args: argparse.Namespace, device: str) -> dict:
    import torch

    from sdot import QuadraticPotential, SemiDiscreteSpace
    from sdot.particles import ParticleState, strang_step

    K, d, T, dt = 50, 2, 0.5, 0.01
    sizes = [10_000, 100_000] if args.quick else [1_000_000, 10_000_000]
    rng = np.random.default_rng(args.seed)
    space = SemiDiscreteSpace.random_regular(K, 4, seed=args.seed, dim=d)
    f = QuadraticPotential(rng.uniform(0.5, 2.0, K), rng.uniform(0.0, 1.0, K), rng.normal(size=(K, d)))
    out: dict = {}
    for N in sizes:
        x0 = rng.normal(size=(N, d))
        g0 = rng.integers(0, K, N)
        row: dict = {}
        for name, dev in (("numpy_cpu", None), (f"torch_{device}", device)):
            if dev is None:
                s = ParticleState(x0.copy(), g0.copy(), rng=args.seed)
            else:
                s = ParticleState(torch.as_tensor(x0, device=dev), torch.as_tensor(g0, device=dev), rng=args.seed)
            step = lambda s=s, dev=dev: strang_step(s, space, f, "glauber", T, dt)  # noqa: E731
            timed(step, dev or "cpu")  # warm-up: neighbour tables, scratch buffers, CUDA kernels
            walls, cpus = [], []
            for _ in range(args.repeat):
                w, c, _ = timed(step, dev or "cpu")
                walls.append(w)
                cpus.append(c)
            row[name] = {"step_wall_s": min(walls), "step_wall_median_s": float(np.median(walls)),
                         "step_cpu_s": float(np.median(cpus)), "jumps_last_step": int(s.info.n_jumps)}
            print(f"  N = {N:>10,} {name:12s} step {min(walls):.4f} s wall (median {np.median(walls):.4f}), "
                  f"{np.median(cpus):.4f} s CPU, {N / min(walls) / 1e6:.1f} M particle-steps/s", flush=True)
            del s
            if dev is not None and dev.startswith("cuda"):
                torch.cuda.empty_cache()
        row["wall_ratio_cpu_over_device"] = _ratio(row["numpy_cpu"]["step_wall_s"], row[f"torch_{device}"]["step_wall_s"])
        print(f"  N = {N:>10,} numpy / torch-{device} wall ratio {row['wall_ratio_cpu_over_device']:.2f}x", flush=True)
        out[f"N={N}"] = row
    return out


# ------------------------------------------------------------------------------------------------

from experiments.bench.bench_supernet_step import supernet_step as _supernet_step  # noqa: E402  (issue 12)

section("supernet_step", "supernet step (vmapped grad + SGD) at N = 1, 8, 32, 128 particles: CPU vs device")(
    _supernet_step)

def _environment(device: str) -> dict:
    env = {"python": platform.python_version(), "numpy": np.__version__, "machine": platform.machine(),
           "cpus": os.cpu_count(), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
           "loadavg_before": os.getloadavg(), "device": device}
    try:
        import torch

        env.update(torch=torch.__version__, torch_threads=torch.get_num_threads(),
                   cuda_available=torch.cuda.is_available())
        if device.startswith("cuda"):
            env["gpu"] = torch.cuda.get_device_name(torch.device(device))
    except ImportError:  # pragma: no cover
        env["torch"] = None
    return env


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, seconds (smoke test; CPU is fine)")
    ap.add_argument("--device", default=None, help="torch device for the torch side (default: cuda if available, else cpu)")
    ap.add_argument("--sections", default=None, help=f"comma-separated subset of {[s.name for s in SECTIONS]}")
    ap.add_argument("--repeat", type=int, default=None, help="timed repetitions per particle step (default 3, quick 1)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None, help="write all figures to this file")
    args = ap.parse_args(argv)
    if args.repeat is None:
        args.repeat = 1 if args.quick else 3
    if args.repeat < 1:
        raise ValueError(f"--repeat must be >= 1, got {args.repeat}")
    import torch

    from hotnas.distances.fgw_torch import check_device

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    check_device("torch", device)  # a clear error for --device cuda without CUDA
    names = [s.name for s in SECTIONS]
    chosen = names if args.sections is None else [x.strip() for x in args.sections.split(",") if x.strip()]
    unknown = [x for x in chosen if x not in names]
    if unknown:
        raise ValueError(f"unknown bench_gpu section(s) {unknown}; known: {names}")
    out: dict = {"environment": _environment(device), "quick": args.quick}
    print(f"bench_gpu: device {device}, sections {chosen}, load average {out['environment']['loadavg_before']}")
    for s in SECTIONS:
        if s.name not in chosen:
            continue
        print(f"[{s.name}] {s.help}", flush=True)
        t0 = time.perf_counter()
        out[s.name] = s.run(args, device)
        out[s.name]["section_wall_s"] = time.perf_counter() - t0
    from experiments.bench.bench_distances import finish

    return finish(out, args.json)


if __name__ == "__main__":
    main()
    sys.exit(0)
