"""Cost of one surrogate-guided flow iteration (``flow-bo``) next to one HOTNAS iteration, 200 observations.

    OMP_NUM_THREADS=1 python -m experiments.bench.bench_flow_bo            # NB201, 200 observations, 5 asks each

Both optimisers are told the same 200 random NB201 architectures, share one distance engine (the
per-worker cache of the studies), make one untimed ask (fills the 200 x 200 training block and the
engine's cell caches), then alternate ``--asks`` timed asks, each followed by telling the pick.
Reported: CPU seconds per ask (``time.process_time``, robust to a loaded machine), mean and max,
and the split distances / GP fit / acquisition that HOTNAS's ``timings`` give (wall-clock shares).
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    from hotnas.benchmarks import get_benchmark
    from hotnas.distances.engine import PairwiseDistances
    from hotnas.optimisers import get_optimiser
    from experiments.studies.compare_tabular import FLOW_BO, HOTNAS

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n-obs", type=int, default=200)
    ap.add_argument("--asks", type=int, default=5)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)
    bench = get_benchmark("nb201")
    rng = np.random.default_rng(args.seed)
    obs = list(dict.fromkeys(bench.space.sample(rng) for _ in range(3 * args.n_obs)))[: args.n_obs]
    evals = [bench.lookup(a) for a in obs]
    engine = PairwiseDistances(bench.space, method="hotnn", n_jobs=1)
    opts = {"flow-bo": ("flow-bo", FLOW_BO), "hotnas": ("hotnas", HOTNAS)}
    opt = {k: get_optimiser(m, bench.space, seed=args.seed, engine=engine, **o) for k, (m, o) in opts.items()}
    for o in opt.values():
        o.tell(evals)
        o.tell([bench.lookup(a) for a in o.ask(1)])  # untimed: training block and caches
    cpu: dict[str, list[float]] = {k: [] for k in opt}
    for _ in range(args.asks):
        for k, o in opt.items():
            c0 = time.process_time()
            pick = o.ask(1)
            cpu[k].append(time.process_time() - c0)
            o.tell([bench.lookup(a) for a in pick])
    out = {k: dict(mean=float(np.mean(v)), max=float(np.max(v))) for k, v in cpu.items()}
    for k, v in out.items():
        print(f"{k:>8}: {v['mean']:.3f} s CPU per ask (max {v['max']:.3f}) with {args.n_obs}+ observations; "
              f"timings {dict((a, round(b, 2)) for a, b in opt[k].timings.items())}")
    print(f"ratio flow-bo / hotnas: {out['flow-bo']['mean'] / out['hotnas']['mean']:.2f}")
    return out


if __name__ == "__main__":
    main()
