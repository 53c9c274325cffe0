"""The noise floor of a one-training recommendation on ``digits-nb201`` (issue 12).

Every optimiser in the main job recommends an architecture by the values its queries returned: one
from-scratch training each (the table's ``query = "seed"`` mode replays one of its seeds). Even an
optimiser that queried **every** string of the space once and recommended the argmax would not reach
zero table regret: the argmax of noisy values is a lucky training, not the best cell. This study
measures that floor — the table regret of the argmax of one evaluation of every string,

    floor(s) = optimum - table_val(argmax_a value_s(a)),   a over all strings of the space,

(mean over the argmax's ties) for base seeds s of the benchmark, as a reference for the regret goals
of the main job (a goal below the floor asks more than exhaustive search with one training per string).

    python -m experiments.studies.noise_floor --epochs 4 8 --seeds 20
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import numpy as np

__all__ = ["argmax_regret", "exhaustive_floor", "main"]

OPS = ("none", "skip_connect", "nor_conv_3x3")


def argmax_regret(values: np.ndarray, table_vals: np.ndarray, optimum: float) -> float:
    """Table regret of recommending the argmax of ``values`` (n,), given each candidate's table value
    ``table_vals`` (n,): ``optimum - table_vals[argmax]``, averaged over the argmax's exact ties."""
    values, table_vals = np.asarray(values, dtype=float), np.asarray(table_vals, dtype=float)
    if values.shape != table_vals.shape or values.ndim != 1 or values.size == 0:
        raise ValueError(f"values and table_vals must be equal non-empty 1-D arrays, got {values.shape} and "
                         f"{table_vals.shape}")
    ties = values == values.max()
    return float(optimum - table_vals[ties].mean())


def exhaustive_floor(epochs: int = 4, seeds: int = 20, ops: tuple[str, ...] = OPS) -> dict[str, Any]:
    """:func:`argmax_regret` of one query of every string of the sub-space ``ops`` of the ``epochs``-epoch
    table, for benchmark seeds 0..seeds-1: per-seed floors, mean and s.e."""
    from hotnas.benchmarks import get_benchmark

    floors = []
    archs = table_vals = None
    for s in range(seeds):
        bench = get_benchmark("digits-nb201", query="seed", seed=s, ops=list(ops), epochs=epochs)
        if archs is None:  # the strings and their table values do not depend on the seed
            archs = list(bench.space.enumerate())
            table_vals = np.array([bench.table_val(a) for a in archs])
        vals = np.array([bench.query(a).value for a in archs])
        floors.append(argmax_regret(vals, table_vals, bench.optimum))
    f = np.array(floors)
    return {"epochs": epochs, "ops": list(ops), "strings": len(archs), "seeds": seeds, "floors": f.round(4).tolist(),
            "mean": float(f.mean()), "se": float(f.std(ddof=1) / np.sqrt(len(f))) if len(f) > 1 else float("nan")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, nargs="+", default=[4], help="protocol lengths (shipped tables)")
    ap.add_argument("--seeds", type=int, default=20, help="benchmark seeds 0..SEEDS-1")
    ap.add_argument("--ops", nargs="+", default=list(OPS), help="the sub-space's operations")
    ap.add_argument("--json", default=None, help="write the figures to this file")
    args = ap.parse_args(argv)
    if args.seeds < 1:
        ap.error(f"--seeds must be >= 1, got {args.seeds}")
    from hotnas.benchmarks.digits_table import shipped_epochs

    bad = [e for e in args.epochs if e not in shipped_epochs()]
    if bad:
        ap.error(f"no shipped table for --epochs {bad}; shipped: {shipped_epochs()}")
    rows = [exhaustive_floor(e, args.seeds, tuple(args.ops)) for e in args.epochs]
    for r in rows:
        print(f"{r['epochs']} epochs, {r['strings']} strings, {r['seeds']} seeds: table regret of the argmax of one "
              f"training of every string {r['mean']:.2f} ± {r['se']:.2f} (min {min(r['floors']):.2f}, "
              f"max {max(r['floors']):.2f})")
    if args.json:
        tmp = f"{args.json}.tmp"
        with open(tmp, "w") as fh:
            json.dump(rows, fh, indent=1)
        os.replace(tmp, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
