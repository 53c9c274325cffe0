"""Measurements behind the plugin work (issue 18): CPU seconds, interleaved repeats, paired seeds.

    python -m experiments.bench.bench_plugin cache        # pair-by-pair TW with / without the library's network cache
    python -m experiments.bench.bench_plugin first-call   # first HOTNN call in a fresh process, with / without POT's torch
    python -m experiments.bench.bench_plugin bo-psd --seeds 200-209 --budget 100   # HOTNAS on NB201, psd cap vs clip

``cache``: the TW distance matrix of 80 architectures of the example gnn4 space through the pairwise
engine's pair-by-pair path, for a space whose ``to_network`` is not cached by the space itself, with
``hotnas.distances.NETWORK_CACHE_SIZE`` 0 (no cache) and 4096 (the default).
``first-call``: ``import hotnas; hotnas.distance(a, b, method="hotnn")`` on two NB201 cells in a fresh
interpreter, as is and with ``POT_BACKEND_DISABLE_PYTORCH=1`` (POT then does not import torch).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

_FIRST_CALL = """
import sys, time
c = time.process_time()
import hotnas
a = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
b = "|nor_conv_1x1~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
d = hotnas.distance(a, b, method="hotnn")
print(f"{time.process_time() - c:.2f} s CPU, torch imported: {'torch' in sys.modules}, d = {d:.6f}")
"""


def bench_cache(repeats: int = 3, n: int = 80) -> None:
    import numpy as np

    import hotnas.distances as distances
    from experiments.config import import_plugins
    from hotnas.cells import Network
    from hotnas.distances.engine import PairwiseDistances

    import_plugins([str(ROOT / "examples" / "gnn_space" / "gnn_space.py")])
    gnn = sys.modules["gnn_space"]

    class Uncached(gnn.GNNSpace):
        def to_network(self, arch):
            return Network.from_cells([gnn._cell.__wrapped__(self.canonical(arch))])

    rng = np.random.default_rng(0)
    archs = list(dict.fromkeys(Uncached().sample(rng) for _ in range(n)))
    for rep in range(repeats):
        for size in (0, 4096):
            distances.NETWORK_CACHE_SIZE = size
            c = time.process_time()
            PairwiseDistances(Uncached(), method="tw").matrix(archs)
            print(f"repeat {rep}, network cache {size:5d}: {time.process_time() - c:.2f} s CPU for "
                  f"{len(archs) * (len(archs) - 1) // 2} TW pairs", flush=True)
    distances.NETWORK_CACHE_SIZE = 4096


def bench_first_call(repeats: int = 3) -> None:
    for rep in range(repeats):
        for disable in (False, True):
            env = dict(os.environ)
            env.pop("POT_BACKEND_DISABLE_PYTORCH", None)
            if disable:
                env["POT_BACKEND_DISABLE_PYTORCH"] = "1"
            out = subprocess.run([sys.executable, "-c", _FIRST_CALL], env=env, capture_output=True, text=True,
                                 cwd=ROOT, check=True).stdout.strip()
            print(f"repeat {rep}, POT_BACKEND_DISABLE_PYTORCH={'1' if disable else 'unset'}: {out}", flush=True)


def bench_bo_psd(seeds: list[int], budget: int) -> None:
    """HOTNAS (HOTNN, KG) on NB201 with ``psd="cap"`` and ``"clip"``, the only change; regret at 25, 50, budget."""
    import json

    from hotnas import get_benchmark
    from hotnas.optimisers import get_optimiser, run_search

    marks = [q for q in (25, 50) if q < budget] + [budget]
    for seed in seeds:
        for psd in ("cap", "clip"):
            bench = get_benchmark("nb201")
            c = time.process_time()
            res = run_search(get_optimiser("hotnas", bench.space, seed=seed, psd=psd), bench, budget=budget)
            reg = [bench.optimum - v for v in res.best_so_far]
            print(json.dumps(dict(seed=seed, psd=psd, regret_at={q: reg[q - 1] for q in marks},
                                  cpu=time.process_time() - c)), flush=True)


def main(argv: list[str] | None = None) -> None:
    from experiments.config import parse_seeds

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("what", choices=["cache", "first-call", "bo-psd"])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seeds", default="200-209", help="bo-psd: seeds, e.g. 200-209")
    ap.add_argument("--budget", type=int, default=100, help="bo-psd: queries per run")
    args = ap.parse_args(argv)
    if args.what == "bo-psd":
        bench_bo_psd(parse_seeds(args.seeds), args.budget)
    else:
        (bench_cache if args.what == "cache" else bench_first_call)(args.repeats)


if __name__ == "__main__":
    main()
