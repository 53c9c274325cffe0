"""Study: HOTNAS (GP on a HOTNN kernel + knowledge gradient) vs regularised evolution vs random search
on NAS-Bench-201 CIFAR-10, validation-driven, equal query budgets.

    python -m experiments.studies.bo_nb201                 # 200 queries, 10 seeds per method, 2 workers
    python -m experiments.studies.bo_nb201 --smoke         # a few queries and seeds: checks the pipeline

For each method: mean ± std over seeds of the validation regret (best ``val_acc`` in the table minus
the best found) and of the ``test_acc`` of the architecture with the best ``val_acc`` so far, at
25/50/100/150/200 queries; a markdown table, a JSON of every run and a plot with error bands in
``--out`` (default ``results/bo_nb201``). Seeds run in parallel in a process pool; each worker keeps one
distance engine for all the seeds it runs, so distances are cached across iterations and seeds.
Optimiser seed ``i`` is the same stream for every method (``SeedSequence(seed).spawn``).
"""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np

from experiments.executors import task_seeds
from experiments.studies.common import (cached_benchmark, curve_matrix, optimiser_defaults, parse_study_args,
                                        run_tasks, search, study_parser, summarise as summarise_curves,
                                        write_study)

CHECKPOINTS = (25, 50, 100, 150, 200)
METHODS = ("hotnas", "evolution", "random")

# HOTNAS settings of the study (spec 6 and 8), HOTNAS's own defaults: 20 uniform initial architectures, a pool
# of 100 (single-edge mutations of the top 10 observed, subsampled, plus 10 random), exact KG over
# pool + observed, ML-II every 5 observations, the GP on the copula (normal scores) of val_acc.
HOTNAS_DEFAULTS: dict[str, Any] = optimiser_defaults(
    "hotnas", "distance", "kernel", "acquisition", "n_init", "pool_size", "top_k", "n_random", "refit_every",
    "n_restarts", "transform")


def run_trial(task: dict[str, Any], stream: np.random.SeedSequence | None = None) -> dict[str, Any]:
    """One search: ``task`` = {method, seed index, budget, data path, options}. Returns a JSON-able dict."""
    bench = cached_benchmark("nb201", path=task["data"])
    opts = dict(task["options"])
    hot = task["method"] == "hotnas"
    opt, res, seconds, _ = search(task["method"], bench, opts, stream=task["stream"], budget=task["budget"],
                                  seed=task["seed"], engine=opts.get("distance", "hotnn") if hot else None,
                                  budget_option=hot)
    out = res.to_dict()
    out.update(label=task["method"], seconds=seconds,
               timings=dict(getattr(opt, "timings", {})), hyperparameters=getattr(opt, "hyperparameters", None))
    return out


def summarise(results: list[dict[str, Any]], checkpoints=CHECKPOINTS) -> dict[str, dict[int, dict[str, float]]]:
    """Per method and checkpoint (up to the shortest run): mean and std (ddof 0) over seeds of the validation
    regret and of test_of_best (:func:`experiments.studies.common.summarise`)."""
    table: dict[str, dict[int, dict[str, float]]] = {}
    for method in dict.fromkeys(r["label"] for r in results):
        runs = [r for r in results if r["label"] == method]
        reg = curve_matrix([r["optimum"] - np.asarray(r["best_so_far"], float) for r in runs], pad="cut")
        test = curve_matrix([r["test_of_best"][:reg.shape[1]] for r in runs], pad="cut")
        s = summarise_curves({"regret": reg, "test": test}, checkpoints, spread="std")
        table[method] = {q: dict(regret_mean=s["regret"]["at"][q][0], regret_std=s["regret"]["at"][q][1],
                                 test_mean=s["test"]["at"][q][0], test_std=s["test"]["at"][q][1], n=len(runs))
                         for q in checkpoints if q in s["regret"]["at"]}
    return table


def markdown(table: dict[str, dict[int, dict[str, float]]], seconds: dict[str, float]) -> str:
    qs = sorted({q for rows in table.values() for q in rows})
    lines = ["| method | metric | " + " | ".join(f"{q} queries" for q in qs) + " | s / seed |",
             "|---|---|" + "---|" * len(qs) + "---|"]
    for m, rows in table.items():
        reg = " | ".join(f"{rows[q]['regret_mean']:.3f} ± {rows[q]['regret_std']:.3f}" if q in rows else "" for q in qs)
        tst = " | ".join(f"{rows[q]['test_mean']:.2f} ± {rows[q]['test_std']:.2f}" if q in rows else "" for q in qs)
        n = next(iter(rows.values()))["n"] if rows else 0
        lines.append(f"| {m} (n={n}) | val regret | {reg} | {seconds.get(m, 0):.1f} |")
        lines.append(f"| | test acc of best val | {tst} | |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = study_parser(__doc__, "30 queries, 2 seeds, small pool: a quick check", config=None, workers=2, seeds=10,
                      budget=200, seed=0, out="results/bo_nb201")
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    ap.add_argument("--data", default=None, help="NB201 CSV (default: the table shipped in hotnas.data)")
    ap.add_argument("--hotnas", default="{}",
                    help="JSON overrides of the HOTNAS options, e.g. '{\"acquisition\": \"ei\"}'")
    ap.add_argument("--removal", default="oldest", choices=("oldest", "worst"), help="evolution's removal rule")
    args = parse_study_args(ap, argv)

    hot = {**HOTNAS_DEFAULTS, **json.loads(args.hotnas)}
    if args.smoke:
        args.budget, args.seeds = min(args.budget, 30), min(args.seeds, 2)
        hot.update(n_init=10, pool_size=30, top_k=3, n_random=5)
    options = {"hotnas": hot, "evolution": {"removal": args.removal}, "random": {}}
    streams = task_seeds(args.seed, args.seeds)
    # slow trials first, so the pool stays busy to the end
    tasks = [dict(method=m, seed=i, stream=streams[i], budget=args.budget, data=args.data, options=options[m])
             for m in args.methods for i in range(args.seeds)]
    t0 = time.perf_counter()
    results = []
    for t, r in zip(tasks, run_tasks(run_trial, tasks, args.workers)):
        results.append(r)
        print(f"{t['method']:>9} seed {t['seed']:2d}: regret at {len(r['values'])} = "
              f"{r['optimum'] - r['best_so_far'][-1]:.3f}, {r['seconds']:.1f} s", flush=True)
    wall = time.perf_counter() - t0
    table = summarise(results, tuple(q for q in CHECKPOINTS if q <= args.budget) or (args.budget,))
    seconds = {m: float(np.mean([r["seconds"] for r in results if r["label"] == m])) for m in args.methods}
    md = markdown(table, seconds)
    print(md)
    print(f"wall-clock {wall:.0f} s with {args.workers} workers; HOTNAS options {json.dumps(hot)}")
    out = write_study(args.out, md, {"options": options, "wall_seconds": wall, "summary": table, "runs": results},
                      wall, echo=False)
    try:
        from experiments.plots import plot_curves

        runs = {f"{r['label']}-{r['seed']}": r for r in results}
        plot_curves(runs, out / "regret.png", metric="regret", order=list(args.methods),
                    title="NB201 CIFAR-10: validation regret, mean ± std over seeds")
        plot_curves(runs, out / "test_of_best.png", metric="test_of_best", order=list(args.methods),
                    title="NB201 CIFAR-10: test accuracy of the best-validation architecture")
    except ImportError as e:  # pragma: no cover - plots are optional
        print(f"no plot: {e}")
    return {"summary": table, "wall_seconds": wall}


if __name__ == "__main__":
    main()
