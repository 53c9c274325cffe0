"""Could the supernet flow pick better from what it already has? Remedies replayed on a run's checkpoints (issue 12).

The flow's retraining phase (``retrain_queries = R``) trains its R best distinct cells by weight-shared
validation seen (``val_seen``) from scratch and recommends the best one-training value. From each finished
flow trial of a ``digits-nb201`` run (its checkpoint holds ``val_seen`` and the retrained values; its events
the particles' masses) this study replays, with no training, the table regret of

* **pick + shared score**: the finalist maximising ``z(one-training value) + w z(weight-shared validation)``
  (z-scores over the finalists), for each ``w`` of ``--weights`` (w = 0 is the flow's own pick);
* **finalist sets** (oracle: the best finalist by the table, no pick noise): the current rule (top R distinct
  cells by ``val_seen``), the top R by ``val_seen`` among the cells the particles held, the R cells held longest
  (summed mass at the query times), and every cell held / seen;
* **re-training finalists**: k of the R queries train the best finalists again — the next of the table's seeds
  of that cell, as the benchmark's ``query = "seed"`` mode would give another training — and the pick is the
  best mean, for each k of ``--confirm`` (k = 0 reproduces the flow's pick: the script checks it);
* **GP pick** (``--gp KERNEL``, ``--gp-noise SD``): the finalist of highest posterior mean under a GP on the HOTNN
  distances among the finalists (ML-II; or the noise std pinned at SD validation points);
* **BO retraining** (``--bo K0``): the R retraining queries chosen sequentially among every distinct cell seen —
  the first K0 by ``val_seen``, the rest by expected improvement under that GP on the values so far.

    python -m experiments.studies.flow_pick runs/rdxg_e8_tuning --label R10          # choose on the tuning stream
    python -m experiments.studies.flow_pick runs/rdxg_e8_report --label rdxg-flow    # report on another
    python -m experiments.studies.flow_pick runs/rdxg_full_tuning --label N8-J3-R10 --gp-noise 3.35 --bo 3 5

Output: mean ± s.e. over the trials and the paired difference to the flow's own pick; ``OUT/table.md`` and
``OUT/results.json`` (default ``results/flow_pick/<run>_<label>``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["pick_with_shared", "pick_by_model", "finalist_sets", "confirm_pick", "replay_trial", "main"]


def _z(x: np.ndarray) -> np.ndarray:
    s = x.std()
    return (x - x.mean()) / (s if s > 0 else 1.0)


def pick_with_shared(values: Mapping[str, float], shared: Mapping[str, float], w: float) -> str:
    """The finalist maximising z(values) + w z(shared) (ties: the larger string, as the flow breaks them);
    a finalist without a shared score gets the lowest one."""
    archs = sorted(values)
    v = np.array([values[a] for a in archs], dtype=float)
    lo = min(shared.values()) if shared else 0.0
    sh = np.array([shared.get(a, lo) for a in archs], dtype=float)
    score = _z(v) + w * _z(sh)
    return archs[max(range(len(archs)), key=lambda i: (score[i], archs[i]))]


def pick_by_model(values: Mapping[str, float], D: np.ndarray, archs: Sequence[str], kernel: str = "laplace",
                  noise_sd: float | None = None, seed: int = 0) -> str:
    """The finalist with the highest GP posterior mean of its one-training value: a GP on the distances ``D``
    (n, n) among ``archs`` smooths each noisy value with its neighbours' (ties: the larger string).

    ML-II fits every hyperparameter; with ten finalists it tends to interpolate (noise variance at its
    lower bound), so ``noise_sd`` (validation points; e.g. the benchmark's median seed std) pins the noise
    variance at ``noise_sd**2`` and fits the rest."""
    from hotnas.bo.gp import DistanceGP

    y = np.array([values[a] for a in archs], dtype=float)
    bounds = {}
    if noise_sd is not None:
        nv = min(max(float(noise_sd) ** 2 / max(float(y.var()), 1e-12), 1e-6), 1e2)
        bounds = {"noise_variance_bounds": (nv, nv)}
    gp = DistanceGP(kernel=kernel, seed=seed, **bounds).fit(D, y)
    mean, _var = gp.predict(D)
    return archs[max(range(len(archs)), key=lambda i: (mean[i], archs[i]))]


def bo_retrain(val_seen: Mapping[str, float], R: int, k0: int, train: Callable[[str, int], float],
               cell: Callable[[str], str], distances: Callable[[list[str]], np.ndarray], seed: int = 0) -> str:
    """A BO retraining phase over the cells the flow has seen: the first ``k0`` of the R queries train the top
    ``k0`` distinct cells by weight-shared validation, each later one the seen cell of highest expected
    improvement under a GP (HOTNN distances, Laplace kernel, ML-II) on the values so far; the best value."""
    from hotnas.bo.acquisition import ExpectedImprovement
    from hotnas.bo.gp import DistanceGP
    from hotnas.bo.posterior import Posterior

    cands = _distinct(sorted(val_seen, key=lambda a: (-val_seen[a], a)), len(val_seen), cell)
    D = distances(cands)
    obs = list(range(min(k0, R, len(cands))))
    y = [train(cands[i], 0) for i in obs]
    while len(obs) < min(R, len(cands)):
        gp = DistanceGP(kernel="laplace", seed=seed).fit(D[np.ix_(obs, obs)], np.array(y))
        rest = [i for i in range(len(cands)) if i not in obs]
        mean, var = gp.predict(D[np.ix_(rest, obs)])
        ei = ExpectedImprovement()(Posterior(mean=mean, var=var, noise_variance=gp.noise_variance, best=max(y)))
        j = rest[int(np.argmax(ei))]
        obs.append(j)
        y.append(train(cands[j], 0))
    return cands[obs[int(np.argmax(y))]]


def _distinct(order: Sequence[str], k: int, cell: Callable[[str], str]) -> list[str]:
    out, seen = [], set()
    for a in order:
        c = cell(a)
        if c not in seen:
            out.append(a)
            seen.add(c)
        if len(out) == k:
            break
    return out


def finalist_sets(val_seen: Mapping[str, float], held: Mapping[str, float], R: int,
                  cell: Callable[[str], str]) -> dict[str, list[str]]:
    """Candidate finalist sets from ``val_seen`` (arch -> weight-shared validation) and ``held`` (arch -> summed
    mass at the query times): see the module docstring."""
    by_val = sorted(val_seen, key=lambda a: (-val_seen[a], a))
    return {"val_seen (the flow's rule)": _distinct(by_val, R, cell),
            "val_seen among cells held": _distinct([a for a in by_val if a in held], R, cell),
            "held longest": _distinct(sorted(held, key=lambda a: (-held[a], a)), R, cell),
            "every cell held": list(held), "every cell seen": list(val_seen)}


def confirm_pick(order: Sequence[str], R: int, k: int, train: Callable[[str, int], float]) -> str:
    """The first R - k finalists of ``order`` trained once each, then k more trainings, each of the finalist with
    the j-th best mean (j = 0..k-1); the best mean. ``train(arch, i)``: the value of the i-th training of arch."""
    vals = {a: [train(a, 0)] for a in order[:R - k]}
    for j in range(k):
        a = sorted(vals, key=lambda x: (-np.mean(vals[x]), x))[min(j, len(vals) - 1)]
        vals[a].append(train(a, len(vals[a])))
    return max(vals, key=lambda x: (np.mean(vals[x]), x))


def replay_trial(trial_dir: Path, bench: Any, seed_bench: Any, weights: Sequence[float],
                 confirm: Sequence[int], distances: Callable[[list[str]], np.ndarray] | None = None,
                 kernels: Sequence[str] = (), bo_starts: Sequence[int] = (),
                 noise_sd: float | None = None) -> dict[str, float]:
    """Table regrets of every replayed rule for one finished flow trial (see the module docstring)."""
    from hotnas.supernet import arch_seed

    from experiments.rundir.checkpoint import read_checkpoint

    st = read_checkpoint(trial_dir / "checkpoint.npz")["optimiser"]
    order, values, val_seen = list(st["retrained"]), dict(st["retrained_values"]), dict(st["flow"]["val_seen"])
    R = len(order)
    held: dict[str, float] = {}
    events = [json.loads(x) for x in (trial_dir / "events.jsonl").read_text().splitlines() if x.strip()]
    steps = [e for e in events if e.get("kind") == "step"]
    for e in steps[:len(steps) - R]:                      # the supernet phase's query times
        for a, m in (e.get("masses") or {}).items():
            held[a] = held.get(a, 0.0) + float(m)
    table, cell = bench.table, bench.space.cell_hash
    S = table.val.shape[1]

    def train(a: str, i: int) -> float:  # the i-th training of a: the cell's next seed after the query's own
        return float(table.val[table.cell(a), (arch_seed(seed_bench.seed, a) + i) % S])

    out = {f"pick + {w:g} x shared": bench.regret(pick_with_shared(values, val_seen, w)) for w in weights}
    out.update({f"finalists: {k} (oracle)": min(bench.regret(a) for a in v)
                for k, v in finalist_sets(val_seen, held, R, cell).items()})
    out.update({f"re-train {k} of {R}": bench.regret(confirm_pick(order, R, k, train)) for k in confirm})
    if distances is not None and (kernels or noise_sd is not None):  # the finalists' distances, for the GP picks
        archs = sorted(values)
        D = distances(archs)
        out.update({f"GP pick ({k} kernel)": bench.regret(pick_by_model(values, D, archs, k)) for k in kernels})
        if noise_sd is not None:
            out[f"GP pick (laplace, noise sd {noise_sd:g})"] = bench.regret(
                pick_by_model(values, D, archs, "laplace", noise_sd))
    if distances is not None:
        for k0 in bo_starts:
            out[f"BO retraining over the cells seen (first {k0} by val_seen)"] = bench.regret(
                bo_retrain(val_seen, R, k0, train, cell, distances))
    own = bench.regret(max(values.items(), key=lambda kv: (kv[1], kv[0]))[0])
    if 0 in confirm and abs(out[f"re-train 0 of {R}"] - own) > 1e-9:
        raise RuntimeError(f"{trial_dir}: the replay does not reproduce the flow's pick")
    out["the flow's pick"] = own
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path, help="run directory of a digits-nb201 config with a supernet flow")
    ap.add_argument("--label", required=True, help="the flow's label in the run")
    ap.add_argument("--weights", type=float, nargs="+", default=[0.25, 0.5, 1.0, 2.0])
    ap.add_argument("--confirm", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--gp", nargs="*", default=[], metavar="KERNEL",
                    help="also pick by a GP posterior mean over the finalists (HOTNN distances), per kernel")
    ap.add_argument("--gp-noise", type=float, default=None, metavar="SD",
                    help="also the GP pick with the noise std pinned at SD validation points")
    ap.add_argument("--bo", type=int, nargs="*", default=[], metavar="K0",
                    help="also replay a BO retraining phase over the cells seen, its first K0 queries by val_seen")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    if any(k < 0 for k in args.confirm):
        ap.error(f"--confirm takes integers >= 0, got {args.confirm}")
    from hotnas.benchmarks import get_benchmark

    from experiments.rundir import RunDir

    from .common import write_study
    from .table_regret import _bench

    t0 = time.perf_counter()
    run = RunDir.open(args.run)
    bench, cfg = _bench(run)
    trials = sorted((run.path / "trials").glob(f"{args.label}__seed*"))
    trials = [t for t in trials if (t / "checkpoint.npz").exists()]
    if not trials:
        ap.error(f"no finished trial labelled {args.label!r} in {args.run}")
    rows = []
    distances = None
    if args.gp_noise is not None and not args.gp_noise > 0:
        ap.error(f"--gp-noise must be > 0, got {args.gp_noise}")
    if args.gp or args.bo or args.gp_noise is not None:
        from hotnas.distances.engine import PairwiseDistances

        eng = PairwiseDistances(bench.space, method="hotnn", n_jobs=1)
        distances = (lambda archs: eng.matrix(archs))
    for t in trials:
        seed = int(t.name.rpartition("__seed")[2])
        seed_bench = get_benchmark("digits-nb201", **{**cfg.benchmark.options, "seed": seed})
        rows.append(replay_trial(t, bench, seed_bench, args.weights, args.confirm, distances, args.gp, args.bo,
                                 args.gp_noise))
    own = np.array([r["the flow's pick"] for r in rows])
    lines = [f"{args.run} / {args.label}: {len(rows)} trials, table regret (mean ± s.e.) and minus the flow's pick "
             "(paired)", "", "| rule | regret | minus the flow's pick |", "|---|---|---|"]
    summary: dict[str, Any] = {}
    n = len(rows)
    for key in rows[0]:
        v = np.array([r[key] for r in rows])
        d = v - own
        se = (lambda x: float(x.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan"))
        summary[key] = {"mean": float(v.mean()), "se": se(v), "minus_pick": float(d.mean()), "minus_pick_se": se(d)}
        lines.append(f"| {key} | {v.mean():.2f} ± {se(v):.2f} | {d.mean():+.2f} ± {se(d):.2f} |")
    out = args.out or Path("results/flow_pick") / f"{args.run.name}_{args.label}"
    write_study(out, "\n".join(lines), {"run": str(args.run), "label": args.label, "trials": [t.name for t in trials],
                                       "rows": rows, "summary": summary}, time.perf_counter() - t0, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
