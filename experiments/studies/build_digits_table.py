"""Build the ``digits-nb201`` ground-truth table (resumable, parallel).

    python -m experiments.studies.build_digits_table --out runs/digits_table            # all 8,765 cells, 1 worker
    python -m experiments.studies.build_digits_table --out runs/digits_table --workers 2 --executor process
    python -m experiments.studies.build_digits_table --out runs/digits_table --device cuda --shard-cells 512
    python -m experiments.studies.build_digits_table --out runs/digits_table --pack   # -> hotnas/data/digits_nb201.json.gz
    python -m experiments.studies.build_digits_table --out runs/digits_table_e8 --epochs 8 --limit 13   # the 8-epoch table's
    python -m experiments.studies.build_digits_table --out runs/digits_table_e8 --epochs 8 --pack       # first 273 cells

The cells (:func:`hotnas.benchmarks.digits_table.build_order`) are cut into shards of
``--shard-cells`` cells; a shard trains its cells x the protocol's seeds as one vectorised batch
(:func:`hotnas.supernet.train_many`, :data:`hotnas.benchmarks.digits_table.PROTOCOL`) and is written
atomically as ``shard_<i>.json`` (temporary file, then rename). A rerun skips the shards on disk, so a
killed build loses at most the shards in flight; shards written under another protocol are refused.
``--pack`` merges the shards on disk into the gzip table (partial when shards are missing: untrained
cells stay empty, never filled in) and prints its summary. ``--limit`` builds only the first shards
(smoke runs, timing).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from hotnas.benchmarks.digits_table import PROTOCOL, DigitsTable, build_order, protocol, table_file, unique_cells

from experiments.executors import EXECUTORS, make_executor


def shard_cells(shard_size: int) -> list[list[int]]:
    order = build_order()
    return [list(order[i:i + shard_size]) for i in range(0, len(order), shard_size)]


def train_shard(cells: list[int], device: str = "cpu", threads: int | None = None,
                epochs: int | None = None) -> dict[str, Any]:
    """Train ``cells`` (ids) under :data:`PROTOCOL` (``epochs``: that number instead of the protocol's, for
    pilots of another protocol), all seeds in one vectorised batch; a JSON-able dict."""
    import torch

    from hotnas.datasets import load_digits_splits
    from hotnas.spaces.nb201 import NB201Space
    from hotnas.supernet import NetConfig, arch_seed, train_many

    if threads is not None:
        torch.set_num_threads(int(threads))
    _, reps = unique_cells()
    official = list(NB201Space().enumerate())
    P = protocol(epochs)
    archs = [official[reps[c]] for c in cells]
    seeds = P["seeds"]
    batch_archs = [a for a in archs for _ in seeds]
    batch_seeds = [arch_seed(s, a) for a in archs for s in seeds]
    config = NetConfig(channels=P["channels"], n_cells=P["n_cells"], reduce_after=tuple(P["reduce_after"]))
    t0 = time.perf_counter()
    res = train_many(batch_archs, batch_seeds, load_digits_splits(P["data_seed"]), epochs=P["epochs"],
                     config=config, lr=P["lr"], batch_size=P["batch_size"], cosine=P["cosine"], device=device)
    S = len(seeds)
    return {"protocol": P, "cells": cells, "archs": archs,
            "val": res.val_acc.reshape(-1, S).round(4).tolist(), "test": res.test_acc.reshape(-1, S).round(4).tolist(),
            "seconds": time.perf_counter() - t0, "device": device}


def _write_atomic(path: Path, obj: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj))
    os.replace(tmp, path)


def read_shards(out: Path, P: dict[str, Any] = PROTOCOL) -> list[dict[str, Any]]:
    shards = []
    for p in sorted(out.glob("shard_*.json")):
        d = json.loads(p.read_text())
        if d["protocol"] != P:
            raise ValueError(f"{p}: written under another protocol {d['protocol']} (expected {P})")
        shards.append(d)
    return shards


def pack(out: Path, dest: Path, P: dict[str, Any] = PROTOCOL) -> DigitsTable:
    """Merge the shards in ``out`` (protocol ``P``) into the table at ``dest`` (partial where shards are missing)."""
    cell_of, reps = unique_cells()
    S = len(P["seeds"])
    val = np.full((len(reps), S), np.nan)
    test = np.full((len(reps), S), np.nan)
    seconds = 0.0
    for d in read_shards(out, P):
        val[d["cells"]] = d["val"]
        test[d["cells"]] = d["test"]
        seconds += float(d["seconds"])
    table = DigitsTable(val, test, np.asarray(cell_of), reps, dict(P), seconds)
    table.save(dest)
    return table


def one_training_spearman(val: np.ndarray) -> tuple[float, float]:
    """How well one training ranks the cells, from their seeds' validation accuracies ``val`` (C cells, S seeds):
    Spearman of seed s against the mean of the *other* seeds (leave-one-out, so the query's own noise is not in
    the reference) and against the mean of all seeds (the table's value), each averaged over s."""
    from scipy.stats import spearmanr

    mean = val.mean(axis=1)
    S = val.shape[1]
    loo = [spearmanr(val[:, s], np.delete(val, s, axis=1).mean(axis=1)).statistic for s in range(S)]
    full = [spearmanr(val[:, s], mean).statistic for s in range(S)]
    return float(np.mean(loo)), float(np.mean(full))


def summary(table: DigitsTable) -> dict[str, Any]:
    """Size, build time, seed noise against the spread between cells, and the rank agreement of one
    training (the query an optimiser pays for) with the table: Spearman of seed s's validation accuracy
    against the mean of the *other* seeds (leave-one-out, so the query's own noise is not in the
    reference), averaged over s; and against the mean of all seeds (the table's value)."""
    done = table.done
    v = table.val[done]
    out: dict[str, Any] = {"cells_done": int(done.sum()), "cells_total": len(table.reps), "complete": table.complete,
                           "build_seconds": round(table.build_seconds, 1)}
    if len(v) < 3:
        return out
    seed_std = v.std(axis=1, ddof=1)
    mean = v.mean(axis=1)
    across = float(mean.std(ddof=1))
    loo, full = one_training_spearman(v)
    out.update({"median_seed_std": float(np.median(seed_std)), "mean_seed_std": float(seed_std.mean()),
                "std_across_cells": across, "ratio_median_seed_std_to_across": float(np.median(seed_std) / across),
                "spearman_one_training_vs_other_seeds": loo,
                "spearman_one_training_vs_table_mean": full,
                "best_mean_val": float(mean.max()), "median_mean_val": float(np.median(mean)),
                "test_mean_of_best": float(table.test[done].mean(axis=1)[int(np.argmax(mean))])})
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("runs/digits_table"), help="folder of the shards")
    ap.add_argument("--workers", type=int, default=1, help="parallel shards (executor workers)")
    ap.add_argument("--executor", choices=EXECUTORS, default=None,
                    help="default: serial for 1 worker, process otherwise")
    ap.add_argument("--device", default="cpu", help="cpu, cuda, cuda:<i>")
    ap.add_argument("--shard-cells", type=int, default=21, help="cells per shard (x 3 seeds per vectorised batch)")
    ap.add_argument("--limit", type=int, default=None, help="build only the first LIMIT shards")
    ap.add_argument("--epochs", type=int, default=PROTOCOL["epochs"],
                    help="training epochs of the protocol (default 4, the shipped table; 8 -> digits_nb201_e8.json.gz)")
    ap.add_argument("--pack", action="store_true", help="merge the shards into the table and stop")
    ap.add_argument("--dest", type=Path, default=None, help="table file written by --pack (default: the shipped one)")
    args = ap.parse_args(argv)
    if args.workers < 1:
        ap.error(f"--workers must be >= 1, got {args.workers}")
    if args.epochs < 1:
        ap.error(f"--epochs must be >= 1, got {args.epochs}")
    P = protocol(args.epochs)
    if args.shard_cells < 1:
        ap.error(f"--shard-cells must be >= 1, got {args.shard_cells}")
    from hotnas.supernet import resolve_device

    try:
        resolve_device(args.device)
    except ValueError as e:
        ap.error(str(e))
    args.out.mkdir(parents=True, exist_ok=True)
    if args.pack:
        table = pack(args.out, args.dest or table_file(args.epochs), P)
        print(json.dumps(summary(table), indent=1))
        return 0
    shards = shard_cells(args.shard_cells)
    meta = args.out / "meta.json"
    if meta.exists():
        m = json.loads(meta.read_text())
        if m["shard_cells"] != args.shard_cells or m["protocol"] != P:
            ap.error(f"{args.out} was started with --shard-cells {m['shard_cells']} / --epochs "
                     f"{m['protocol']['epochs']}; use those values or a new --out")
    else:
        _write_atomic(meta, {"shard_cells": args.shard_cells, "protocol": P, "n_shards": len(shards)})
    todo = [i for i in range(len(shards)) if not (args.out / f"shard_{i:05d}.json").exists()]
    if args.limit is not None:
        todo = [i for i in todo if i < args.limit]
    print(f"{len(shards)} shards of {args.shard_cells} cells; {len(todo)} to build", flush=True)
    kind = args.executor or ("serial" if args.workers == 1 else "process")
    t0 = time.perf_counter()
    with make_executor(kind, args.workers) as ex:
        threads = 1 if args.device == "cpu" else None
        futures = {i: ex.submit(train_shard, shards[i], args.device, threads, args.epochs)
                   for i in todo} if kind != "serial" else None
        for k, i in enumerate(todo):
            d = futures[i].result() if futures is not None else train_shard(shards[i], args.device, threads,
                                                                             args.epochs)
            _write_atomic(args.out / f"shard_{i:05d}.json", d)
            el = time.perf_counter() - t0
            print(f"shard {i} ({len(d['cells'])} cells) {d['seconds']:.1f}s; {k + 1}/{len(todo)} done, "
                  f"{el:.0f}s elapsed, ~{el / (k + 1) * (len(todo) - k - 1):.0f}s left", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
