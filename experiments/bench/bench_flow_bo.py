"""Cost of one surrogate-guided flow iteration (``flow-bo``) next to one HOTNAS iteration, ~200 observations.

    OMP_NUM_THREADS=1 python -m experiments.bench.bench_flow_bo                 # both measurements below
    OMP_NUM_THREADS=1 python -m experiments.bench.bench_flow_bo --mode cold     # only the worst case

Two measurements, each with both optimisers side by side in one process, CPU seconds per ask
(``time.process_time``, robust to a loaded machine):

* ``run`` — the operating cost: each optimiser searches NB201 from scratch with its own fresh
  distance engine (nothing pre-warmed), as in a study, and the asks made with ``--window`` observations
  before ``--n-obs`` (default: asks with 180..199 observations) are timed. Its caches hold what a real
  search of that length has met.
* ``cold`` — the worst case: both are told the same ``--n-obs`` random NB201 architectures, share one
  engine, make one untimed ask (fills the n x n training block and the cell caches), then alternate
  ``--asks`` timed asks. Every node the flow visits is new, so each ask computes the distances of all
  of them to all observations.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

OPTIMISERS = ("flow-bo", "hotnas")


def _make(name: str, space, seed: int, engine):
    from hotnas.optimisers import get_optimiser
    from experiments.studies.compare_tabular import FLOW_BO, HOTNAS

    return get_optimiser(name, space, seed=seed, engine=engine, **{"flow-bo": FLOW_BO, "hotnas": HOTNAS}[name])


def cold(bench, n_obs: int, asks: int, seed: int) -> dict[str, list[float]]:
    """CPU seconds of ``asks`` asks per optimiser after ``n_obs`` random observations (shared engine)."""
    from hotnas.distances.engine import PairwiseDistances

    rng = np.random.default_rng(seed)
    obs = list(dict.fromkeys(bench.space.sample(rng) for _ in range(3 * n_obs)))[:n_obs]
    evals = [bench.lookup(a) for a in obs]
    engine = PairwiseDistances(bench.space, method="hotnn", n_jobs=1)
    opt = {k: _make(k, bench.space, seed, engine) for k in OPTIMISERS}
    for o in opt.values():
        o.tell(evals)
        o.tell([bench.lookup(a) for a in o.ask(1)])  # untimed: training block and caches
    cpu: dict[str, list[float]] = {k: [] for k in opt}
    for _ in range(asks):
        for k, o in opt.items():
            c0 = time.process_time()
            pick = o.ask(1)
            cpu[k].append(time.process_time() - c0)
            o.tell([bench.lookup(a) for a in pick])
    return cpu


def in_run(bench, n_obs: int, window: int, seed: int) -> dict[str, list[float]]:
    """CPU seconds of the asks made with ``n_obs - window .. n_obs - 1`` observations in a search from scratch."""
    from hotnas.distances.engine import PairwiseDistances

    cpu: dict[str, list[float]] = {}
    for k in OPTIMISERS:
        o = _make(k, bench.space, seed, PairwiseDistances(bench.space, method="hotnn", n_jobs=1))
        cpu[k] = []
        while len(o.X) < n_obs:
            n, c0 = len(o.X), time.process_time()
            pick = o.ask(1)
            dt = time.process_time() - c0
            if n >= n_obs - window:
                cpu[k].append(dt)
            o.tell([bench.lookup(a) for a in pick])
    return cpu


def _report(label: str, cpu: dict[str, list[float]], n_obs: int) -> dict[str, dict[str, float]]:
    out = {k: dict(mean=float(np.mean(v)), max=float(np.max(v)), n=len(v)) for k, v in cpu.items()}
    for k, v in out.items():
        print(f"[{label}] {k:>8}: {v['mean']:.3f} s CPU per ask (max {v['max']:.3f}, {v['n']} asks) near {n_obs} observations")
    print(f"[{label}] ratio flow-bo / hotnas: {out['flow-bo']['mean'] / out['hotnas']['mean']:.2f}")
    return out


def main(argv: list[str] | None = None) -> dict[str, dict[str, dict[str, float]]]:
    from hotnas.benchmarks import get_benchmark

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mode", choices=("both", "run", "cold"), default="both")
    ap.add_argument("--n-obs", type=int, default=200)
    ap.add_argument("--asks", type=int, default=5, help="timed asks per optimiser (cold)")
    ap.add_argument("--window", type=int, default=20, help="timed asks before n-obs (run)")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)
    if args.n_obs < 25 or not 1 <= args.window <= args.n_obs - 20:
        ap.error(f"need --n-obs >= 25 and 1 <= --window <= n-obs - 20, got {args.n_obs}, {args.window}")
    bench = get_benchmark("nb201")
    res = {}
    if args.mode in ("both", "run"):
        res["run"] = _report("run", in_run(bench, args.n_obs, args.window, args.seed), args.n_obs)
    if args.mode in ("both", "cold"):
        res["cold"] = _report("cold", cold(bench, args.n_obs, args.asks, args.seed), args.n_obs)
    return res


if __name__ == "__main__":
    main()
