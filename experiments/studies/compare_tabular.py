"""Study: the flow family against the tools users already run, on tabular benchmarks, paired by seed.

    python -m experiments.studies.compare_tabular --benchmark nb201 --seeds 20 --budget 200 \\
        --methods flow-bo flow hotnas optuna-tpe optuna-gp evolution random --out results/compare_nb201
    python -m experiments.studies.compare_tabular --aggregate --out results/compare_nb201   # tables/plots only
    python -m experiments.studies.compare_tabular --smoke                                    # pipeline check

Methods (:data:`METHODS`; settings are the study's defaults, chosen on root seed 1, reported on root
seed 0): ``flow`` (the plain model-free flow, its README settings), ``flow-bo`` (HOTNAS's GP with the
surrogate-guided flow as acquisition optimiser, :mod:`hotnas.optimisers.flow_bo`), ``flow-bo-ts``
(the same, final pick by a joint Thompson sample), ``hotnas`` (GP + KG over a mutation pool),
``optuna-tpe`` / ``optuna-gp`` (Optuna's samplers at their defaults over the space's categorical
encoding; need the ``peers`` extra), ``evolution`` (regularised evolution) and ``random``. Every
method pays one query per distinct architecture. Trial ``i`` of every method uses the stream
``SeedSequence(--seed).spawn(n)[i]`` (paired seeds).

Every finished trial is appended to ``<out>/trials.jsonl`` at once; a re-run skips the (method, seed,
budget) trials already there, so a long study can be stopped and resumed, and ``--aggregate`` builds
the outputs from whatever has finished. Outputs in ``--out``:

* ``curves.csv`` — tidy per-seed curves: ``benchmark, method, seed, query, value, best_so_far,
  regret`` (and :func:`curves_frame` returns it as a pandas DataFrame where pandas is installed);
* ``regret.png`` — mean regret with a ± 1 standard-error band per method;
* ``summary.md`` — mean ± s.e. regret at the checkpoints, best-found rate, seconds per seed; and the
  paired-difference table: for each checkpoint, ``mean(regret_ref - regret_other)`` over the seeds
  both ran, with its standard error ``sd / sqrt(n)`` (negative: the reference is better).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from experiments.executors import task_seeds
from experiments.studies.common import (cached_benchmark, curve_matrix, optimiser_defaults, parse_study_args,
                                        run_tasks, search, study_parser, summarise)

CHECKPOINTS = (25, 50, 100, 150, 200)

# [engineering choices] flow-bo defaults chosen on root seed 1 (see README section "surrogate-guided
# flows"); the plain flow runs at its defaults (its README settings, chosen earlier on root seed 1, 50 seeds)
FLOW = optimiser_defaults("flow", "n_particles", "law", "temperature", "dt", "birth_death", "lengthscale")
HOTNAS = optimiser_defaults("hotnas", "distance", "kernel", "acquisition", "n_init", "pool_size", "top_k", "n_random",
                            "refit_every", "n_restarts", "transform")
FLOW_BO = dict(HOTNAS, guide="ucb", beta=1.0, n_particles=10, inner_rounds=6, temperature=0.2, max_candidates=100)
METHODS: dict[str, tuple[str, dict[str, Any]]] = {
    "flow-bo": ("flow-bo", FLOW_BO),
    "flow-bo-ts": ("flow-bo", dict(FLOW_BO, select="ts")),
    "flow-bo-mean": ("flow-bo", dict(FLOW_BO, guide="mean")),
    "flow": ("flow", FLOW),
    "flow-spread": ("flow", dict(FLOW, temperature_units="spread", temperature=(0.1, 0.01))),  # 0.3, 0.03 over the median NB201 spread 3.06
    "hotnas": ("hotnas", HOTNAS),
    "optuna-tpe": ("optuna-tpe", {}),
    "optuna-gp": ("optuna-gp", {}),
    "evolution": ("evolution", {"removal": "oldest"}),
    "random": ("random", {}),
}
_USES_ENGINE = ("hotnas", "flow-bo", "flow")


def run_trial(task: dict[str, Any]) -> dict[str, Any]:
    """One search: ``task`` = {label, seed, stream, budget, benchmark, overrides}; a JSON-able record."""
    bench = cached_benchmark(task["benchmark"])
    method, options = METHODS[task["label"]]
    opt, res, seconds, cpu = search(method, bench, {**options, **task.get("overrides", {})}, stream=task["stream"],
                                    budget=task["budget"], seed=task["seed"],
                                    engine="hotnn" if method in _USES_ENGINE else None,
                                    budget_option=method in ("hotnas", "flow-bo"))
    return dict(benchmark=task["benchmark"], label=task["label"], seed=task["seed"], budget=task["budget"],
                optimum=bench.optimum, values=res.values, best_so_far=res.best_so_far,
                seconds=seconds, cpu_seconds=cpu,
                timings=dict(getattr(opt, "timings", {})), stats=dict(getattr(opt, "stats", {}) or {}))


def load_trials(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# ------------------------------------------------------------------------------------------------
# outputs
# ------------------------------------------------------------------------------------------------
def tidy_rows(trials: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (benchmark, method, seed, query): value, best_so_far, regret."""
    rows = []
    for t in trials:
        for q, (v, b) in enumerate(zip(t["values"], t["best_so_far"]), start=1):
            rows.append(dict(benchmark=t["benchmark"], method=t["label"], seed=t["seed"], query=q, value=v,
                             best_so_far=b, regret=t["optimum"] - b))
    return rows


def write_csv(trials: list[dict[str, Any]], path: Path) -> Path:
    rows = tidy_rows(trials)
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["benchmark", "method", "seed", "query", "value", "best_so_far", "regret"])
        w.writeheader()
        w.writerows(rows)
    return path


def curves_frame(trials_or_csv):
    """The tidy curves as a pandas DataFrame (ImportError naming the extra when pandas is missing)."""
    try:
        import pandas as pd
    except ImportError as e:  # pragma: no cover
        raise ImportError("curves_frame needs pandas: pip install pandas (curves.csv has the same table)") from e
    if isinstance(trials_or_csv, (str, Path)):
        return pd.read_csv(trials_or_csv)
    return pd.DataFrame(tidy_rows(trials_or_csv))


def regret_matrix(trials: list[dict[str, Any]], label: str) -> tuple[list[int], np.ndarray]:
    """Seeds and (n_seeds, budget) regret of one method (a run that stopped early keeps its last regret)."""
    ts = sorted((t for t in trials if t["label"] == label), key=lambda t: t["seed"])
    return [t["seed"] for t in ts], curve_matrix([t["optimum"] - np.asarray(t["best_so_far"], float) for t in ts])


def _summary(trials: list[dict[str, Any]], checkpoints, reference: str | None = None) -> dict[str, dict[str, Any]]:
    """:func:`experiments.studies.common.summarise` of every method's regret (mean ± s.e.; paired with the
    reference on the seeds both ran: ``regret_ref - regret_other``)."""
    mats = {lb: regret_matrix(trials, lb) for lb in dict.fromkeys(t["label"] for t in trials)}
    return summarise({lb: M for lb, (_, M) in mats.items()}, checkpoints, spread="se", reference=reference,
                     seeds={lb: s for lb, (s, _) in mats.items()}, difference="reference-label", min_pairs=2)


def summary_table(trials: list[dict[str, Any]], checkpoints=CHECKPOINTS) -> str:
    qs = [q for q in checkpoints if q <= max(len(t["best_so_far"]) for t in trials)]
    lines = ["| method | n | " + " | ".join(f"@{q}" for q in qs) + " | best found | CPU s / seed |",
             "|---|---|" + "---|" * len(qs) + "---|---|"]
    for lb, s in _summary(trials, qs).items():
        cells = [f"{s['at'][q][0]:.3f} ± {s['at'][q][1]:.3f}" if q in s["at"] else "—" for q in qs]
        cpu = np.mean([t["cpu_seconds"] for t in trials if t["label"] == lb])
        length = max(len(t["best_so_far"]) for t in trials if t["label"] == lb)
        lines.append(f"| {lb} | {s['n']} | " + " | ".join(cells)
                     + f" | {100 * s['found']:.0f} % @{length} | {cpu:.1f} |")
    return "\n".join(lines)


def paired_table(trials: list[dict[str, Any]], reference: str, checkpoints=CHECKPOINTS) -> str:
    """mean(regret_ref - regret_other) ± s.e. over the seeds both methods ran, per checkpoint."""
    qs = [q for q in checkpoints if q <= regret_matrix(trials, reference)[1].shape[1]]
    lines = [f"| {reference} minus | " + " | ".join(f"@{q}" for q in qs) + " |", "|---|" + "---|" * len(qs)]
    for lb, s in _summary(trials, qs, reference).items():
        if lb == reference or "paired" not in s:
            continue
        cells = [f"{s['paired'][q][0]:+.3f} ± {s['paired'][q][1]:.3f}" if q in s["paired"] else "—" for q in qs]
        lines.append(f"| {lb} (n={s['n_pairs']}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_regret(trials: list[dict[str, Any]], path: Path, title: str) -> None:
    from experiments.plots import pyplot, save_figure

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for lb in dict.fromkeys(t["label"] for t in trials):
        seeds, M = regret_matrix(trials, lb)
        xs = np.arange(1, M.shape[1] + 1)
        mean = M.mean(0)
        se = M.std(0, ddof=1) / np.sqrt(len(seeds)) if len(seeds) > 1 else np.zeros_like(mean)
        line, = ax.plot(xs, mean, label=f"{lb} (n={len(seeds)})", lw=1.6)
        ax.fill_between(xs, np.clip(mean - se, 0, None), mean + se, color=line.get_color(), alpha=0.2, lw=0)
    ax.set_yscale("symlog", linthresh=0.01)
    ax.set_ylim(bottom=0.0)
    ax.set_xlabel("queries (distinct architectures)")
    ax.set_ylabel("validation regret (mean ± s.e.)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    save_figure(fig, path)


def aggregate(out: Path, reference: str | None = None, extra: list[str] | None = None) -> str:
    """Outputs from ``out/trials.jsonl`` plus the trials files of ``extra`` study folders (merged)."""
    trials = load_trials(out / "trials.jsonl")
    for e in extra or []:
        trials += load_trials(Path(e) / "trials.jsonl")
    seen: set[tuple] = set()
    unique = []
    for t in trials:  # one trial per (benchmark, method, seed): the first written
        key = (t["benchmark"], t["label"], t["seed"])
        if key not in seen:
            seen.add(key)
            unique.append(t)
    trials = unique
    if not trials:
        raise ValueError(f"no finished trials in {out / 'trials.jsonl'}")
    write_csv(trials, out / "curves.csv")
    labels = list(dict.fromkeys(t["label"] for t in trials))
    ref = reference or labels[0]
    md = summary_table(trials) + "\n\nPaired differences (negative: the reference is better):\n\n" + paired_table(trials, ref)
    (out / "summary.md").write_text(md + "\n")
    try:
        plot_regret(trials, out / "regret.png", f"{trials[0]['benchmark']}: validation regret, mean ± s.e.")
    except ImportError as e:  # pragma: no cover
        print(f"no plot: {e}")
    return md


def parser():
    """The study's command line (its keys are also those of a ``--config`` TOML)."""
    ap = study_parser(__doc__, "2 seeds, 30 queries, cheap methods", config=None, workers=1, seeds=20, first_seed=0,
                      budget=200, seed=0, out="results/compare_tabular", aggregate=False)
    ap.add_argument("--benchmark", default="nb201", help="nb201 | darts-725 | nb101-500 (any registered table)")
    ap.add_argument("--methods", nargs="+", default=["flow-bo", "flow", "hotnas", "optuna-tpe", "optuna-gp",
                                                     "evolution", "random"], choices=sorted(METHODS))
    ap.add_argument("--overrides", default="{}", help="JSON option overrides for every method")
    ap.add_argument("--reference", default=None, help="method of the paired-difference table (default: first)")
    ap.add_argument("--merge", nargs="*", default=[], help="further study folders whose trials join the outputs")
    return ap


def main(argv: list[str] | None = None) -> str:
    args = parse_study_args(parser(), argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.smoke:
        args.seeds, args.budget = min(args.seeds, 2), min(args.budget, 30)
    if not args.aggregate:
        done = {(t["label"], t["seed"], t["budget"], t["benchmark"]) for t in load_trials(out / "trials.jsonl")}
        streams = task_seeds(args.seed, args.first_seed + args.seeds)
        overrides = json.loads(args.overrides)
        tasks = [dict(label=m, seed=i, stream=streams[i], budget=args.budget, benchmark=args.benchmark,
                      overrides=overrides) for i in range(args.first_seed, args.first_seed + args.seeds)
                 for m in args.methods if (m, i, args.budget, args.benchmark) not in done]
        with open(out / "trials.jsonl", "a") as fh:
            for r in run_tasks(run_trial, tasks, args.workers):  # each written as soon as it is in
                fh.write(json.dumps(r, default=float) + "\n")
                fh.flush()
                print(f"{r['label']:>12} seed {r['seed']:2d}: regret {r['optimum'] - r['best_so_far'][-1]:.3f} "
                      f"after {len(r['values'])} queries, {r['cpu_seconds']:.1f} CPU s", flush=True)
    md = aggregate(out, args.reference, args.merge)
    print(md)
    return md


if __name__ == "__main__":
    main()
