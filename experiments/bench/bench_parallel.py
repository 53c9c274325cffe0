"""Benchmark: the trainable comparison serially (one thread) vs 2 worker processes vs a local Ray instance.

    python -m experiments.bench.bench_parallel                       # experiments/configs/digits.toml, 2 workers
    python -m experiments.bench.bench_parallel --config CONFIG --workers 2 --no-ray --json out.json
    python -m experiments.bench.bench_parallel --smoke               # a tiny budget, to check that it runs

The same config runs three times, each into its own run directory and each from a cold start
(process start-up and imports included in the time): (1) serially in this process limited to one
thread (torch, BLAS, OpenMP), (2) on ``--workers`` spawned processes of one thread each, (3) on a
local Ray instance with ``--workers`` CPUs (Ray start-up timed separately and stated as its overhead).
It checks that the three give identical results and prints the speed-ups (one run each, as measured).
Goal (issue 7): process speed-up >= 1.6 with 2 workers on a 2-core machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from experiments.config import load_config
from experiments.executors import limit_threads, make_executor
from experiments.rundir import RunDir
from experiments.runner import run_config

ROOT = Path(__file__).resolve().parents[1]


def _results(out: Path) -> dict:
    run = RunDir.open(out)
    keys = ("archs", "values", "best_so_far", "recommendations")
    return {t: {k: json.loads((run.trial_dir(t) / "result.json").read_text())[k] for k in keys}
            for t in run.trial_ids()}


def _timed(config, out: Path, executor=None) -> float:
    t0 = time.perf_counter()
    run_config(config, out, executor=executor, progress=False, report=False, log=lambda m: None)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments.bench.bench_parallel", description=__doc__.split("\n")[0])
    p.add_argument("--config", default=str(ROOT / "configs" / "digits.toml"))
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--no-ray", action="store_true", help="skip the Ray measurement")
    p.add_argument("--smoke", action="store_true", help="budget 8, seed 0: checks that it runs; its times mean nothing")
    p.add_argument("--json", help="also write the measurements to this file")
    p.add_argument("--keep", help="keep the three run directories under this folder")
    args = p.parse_args(argv)

    overrides = {"search.budget": 8, "search.seeds": [0]} if args.smoke else {}
    config = load_config(args.config, overrides=overrides)
    n_trials = len(config.methods) * len(config.search.seeds)
    print(f"bench_parallel: {config.name}: {n_trials} trials ({len(config.methods)} methods x "
          f"{len(config.search.seeds)} seeds) of {config.search.budget} queries on {config.benchmark.name!r}; "
          f"{os.cpu_count()} cores here")
    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench_parallel_"))
    base.mkdir(parents=True, exist_ok=True)
    ex = config.execution

    def with_exec(kind: str, workers: int):
        return dataclasses.replace(config, execution=dataclasses.replace(ex, executor=kind, workers=workers,
                                                                         parallel="trials"))

    load = os.getloadavg()[0]
    if load > 0.5:
        print(f"  note: load average {load:.1f} before starting: other processes share these cores, so the "
              f"speed-ups below understate what {args.workers} workers give on an idle machine")
    limit_threads(1)                     # the serial baseline: one thread in this process
    out: dict = {"config": config.name, "trials": n_trials, "budget": config.search.budget,
                 "workers": args.workers, "cores": os.cpu_count(), "load_average_before": load}
    out["serial_s"] = _timed(with_exec("serial", 1), base / "serial")
    print(f"  serial, 1 thread:            {out['serial_s']:8.1f} s")
    out["process_s"] = _timed(with_exec("process", args.workers), base / "process")
    out["process_speedup"] = out["serial_s"] / out["process_s"]
    print(f"  {args.workers} processes x 1 thread:    {out['process_s']:8.1f} s   speed-up {out['process_speedup']:.2f}x")
    same = _results(base / "serial") == _results(base / "process")
    if importlib.util.find_spec("ray") is None or args.no_ray:
        print("  ray: skipped" + ("" if args.no_ray else " (not installed: pip install 'sdot-nas[ray]')"))
    else:
        import ray

        t0 = time.perf_counter()
        executor = make_executor("ray", args.workers)
        out["ray_start_s"] = time.perf_counter() - t0
        try:
            out["ray_s"] = _timed(with_exec("ray", args.workers), base / "ray", executor=executor)
        finally:
            executor.shutdown()
        out["ray_version"] = ray.__version__
        out["ray_speedup"] = out["serial_s"] / out["ray_s"]
        out["ray_speedup_with_start"] = out["serial_s"] / (out["ray_s"] + out["ray_start_s"])
        out["ray_overhead_vs_process_s"] = out["ray_s"] + out["ray_start_s"] - out["process_s"]
        print(f"  ray {ray.__version__}, {args.workers} CPUs:        {out['ray_s']:8.1f} s   speed-up "
              f"{out['ray_speedup']:.2f}x (+ {out['ray_start_s']:.1f} s to start the local instance: "
              f"{out['ray_speedup_with_start']:.2f}x; overhead vs processes {out['ray_overhead_vs_process_s']:+.1f} s)")
        same = same and _results(base / "serial") == _results(base / "ray")
    out["identical_results"] = same
    out["load_average_after"] = os.getloadavg()[0]
    print(f"  identical results across executors: {same}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    if not args.keep:
        import shutil

        shutil.rmtree(base, ignore_errors=True)
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
