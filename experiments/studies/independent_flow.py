"""Study (issue 8 item 2): jump initialisation inside the independent-networks flow — fresh vs
carry-over vs carry-over + OT representation transfer — under the same compute.

    python -m experiments.studies.independent_flow                  # 3 modes x 3 seeds (a few minutes on one core)
    python -m experiments.studies.independent_flow --seeds 5
    python -m experiments.studies.independent_flow --smoke          # 3 modes x 2 seeds, tiny: checks the pipeline
    python -m experiments.studies.independent_flow --steps 147      # same steps instead of same compute

Protocol, per seed: :class:`hotnas.flow_independent.IndependentFlow` with N particles, each owning
a stand-alone digits network of its own NB201 cell, runs under a budget of ``--epochs`` accounted
training epochs (jump evaluations and the OT transfer steps are charged, so the transfer mode gets
fewer diffusion steps); the three ``jump_init`` modes share the seed, hence the initial
architectures, weights and minibatch order. At the end the ``--n-final`` best architectures by
validation accuracy are retrained from scratch by :class:`hotnas.benchmarks.trainable.DigitsBenchmark`
(``--retrain-epochs``) and the best by retrained validation accuracy is scored on the test split.

Reported per mode (mean ± std over seeds): retrained test accuracy of the final pick; validation
loss right after accepted jumps (the new network, before it takes any step) and its change from
the old network's; acceptance rate; the particles' mean validation accuracy at the end of the flow
(their own, not retrained, networks); flow epochs and wall-clock seconds. Writes ``table.md``,
``results.json`` and ``independent_flow.png`` in ``--out`` (default ``results/independent_flow``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

from experiments.plots import pyplot, save_figure
from experiments.studies.common import (describe, keep_torch_threads, optimiser_defaults, parse_study_args,
                                        study_parser, write_study)

MODES = ("fresh", "carry", "transfer")
COLOURS = {"fresh": "tab:gray", "carry": "tab:blue", "transfer": "tab:red"}


def run_one(mode: str, seed: int, args: argparse.Namespace, data) -> dict[str, Any]:
    from hotnas.benchmarks.trainable import DigitsBenchmark
    from hotnas.flow_independent import IndependentFlow

    flow = IndependentFlow(data=data, n_particles=args.particles, jump_init=mode, law=args.law,
                           temperature=tuple(args.temperature) if len(args.temperature) == 2 else args.temperature[0],
                           jump_dt=args.jump_dt, jump_every=args.jump_every, lr=args.lr,
                           transfer_steps=args.transfer_steps, probe_size=args.probe, eval_every=args.eval_every,
                           track_jump_val=True, seed=seed, num_threads=args.threads)
    bench = DigitsBenchmark(epochs=args.retrain_epochs, seed=seed, num_threads=args.threads)
    budget = dict(steps=args.steps) if args.steps else dict(epochs=args.epochs)
    res = flow.run(**budget, benchmark=bench, n_final=args.n_final)
    acc = res.accepted_jumps()
    after = [j["val_loss_after"] for j in acc]
    delta = [j["val_loss_after"] - j["val_loss_before"] for j in acc]
    last = res.history[-1]["particles"]
    return dict(mode=mode, seed=seed, best_arch=res.best_arch, val_acc=res.val_acc, test_acc=res.test_acc,
                steps=flow.step_count, flow_epochs=res.supernet_epochs, retrain_epochs=res.retrain_epochs,
                seconds=res.seconds, n_proposed=res.n_proposed, n_accepted=res.n_accepted,
                val_loss_after_jump=float(np.mean(after)) if after else None,
                val_loss_jump_increase=float(np.mean(delta)) if delta else None,
                final_particle_val_acc=float(np.mean([p[1] for p in last])),
                final_particle_val_loss=float(np.mean([p[2] for p in last])),
                distance_ratio=float(np.mean([j["distance_after"] / j["distance_before"] for j in res.jumps
                                              if j["distance_before"] and j["distance_before"] > 1e-6]))
                if mode == "transfer" else None,
                events=len(res.events),
                curve=[(h["epochs"], float(np.mean([p[2] for p in h["particles"]]))) for h in res.history])


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for mode in MODES:
        rows = [r for r in runs if r["mode"] == mode]
        if not rows:
            continue
        e: dict[str, Any] = {"n": len(rows)}
        for key in ("test_acc", "val_acc", "val_loss_after_jump", "val_loss_jump_increase", "final_particle_val_acc",
                    "final_particle_val_loss", "flow_epochs", "seconds", "steps", "distance_ratio"):
            m, s, k = describe([r[key] for r in rows])
            e[f"{key}_mean"], e[f"{key}_std"], e[f"{key}_n"] = m, s, k
        e["accept_rate"] = float(sum(r["n_accepted"] for r in rows) / max(1, sum(r["n_proposed"] for r in rows)))
        e["n_accepted"] = int(sum(r["n_accepted"] for r in rows))
        out[mode] = e
    return out


def markdown(summary: dict[str, Any], runs: list[dict[str, Any]]) -> str:
    def ms(e, key, fmt="{:.3f}"):
        if e[f"{key}_n"] == 0:
            return "–"
        return (fmt + " ± " + fmt).format(e[f"{key}_mean"], e[f"{key}_std"]) + (
            f" (n={e[f'{key}_n']})" if e[f"{key}_n"] != e["n"] else "")

    lines = ["| jump init | seeds | retrained test acc % | val loss right after accepted jumps | "
             "change at the jump (new - old net) | accepted / proposed | particles' val acc % at end | "
             "particles' val loss at end | flow steps | flow epochs | seconds |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for mode, e in summary.items():
        lines.append(f"| {mode} | {e['n']} | {ms(e, 'test_acc', '{:.1f}')} | {ms(e, 'val_loss_after_jump')} | "
                     f"{ms(e, 'val_loss_jump_increase')} | {e['n_accepted']} ({100 * e['accept_rate']:.1f} %) | "
                     f"{ms(e, 'final_particle_val_acc', '{:.1f}')} | {ms(e, 'final_particle_val_loss')} | "
                     f"{ms(e, 'steps', '{:.0f}')} | {ms(e, 'flow_epochs', '{:.1f}')} | {ms(e, 'seconds', '{:.0f}')} |")
    if "transfer" in summary and summary["transfer"]["distance_ratio_n"]:
        e = summary["transfer"]
        lines.append("")
        lines.append(f"OT transfer: distance after / before on the probe batch, mean over proposals and seeds: "
                     f"{e['distance_ratio_mean']:.2f} ± {e['distance_ratio_std']:.2f}.")
    lines.append("")
    lines.append("Per seed (retrained test acc %): " + "; ".join(
        f"{m}: " + ", ".join(f"{r['test_acc']:.1f}" for r in runs if r["mode"] == m and r["test_acc"] is not None)
        for m in summary))
    return "\n".join(lines)


def plot(summary: dict[str, Any], runs: list[dict[str, Any]], path: Path) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    modes = list(summary)
    for k, (key, label) in enumerate((("test_acc", "retrained test accuracy (%)"),
                                      ("val_loss_after_jump", "val loss right after accepted jumps"))):
        ax = axes[k]
        for x, mode in enumerate(modes):
            vals = [r[key] for r in runs if r["mode"] == mode and r[key] is not None]
            ax.bar(x, np.mean(vals) if vals else 0.0, color=COLOURS[mode], alpha=0.4)
            ax.plot([x] * len(vals), vals, "o", color=COLOURS[mode])
        ax.set_xticks(range(len(modes)), modes)
        ax.set_ylabel(label)
    ax = axes[2]
    for r in runs:
        if r["curve"]:
            e, l = zip(*r["curve"])
            ax.plot(e, l, color=COLOURS[r["mode"]], alpha=0.6, lw=1)
    for mode in modes:
        ax.plot([], [], color=COLOURS[mode], label=mode)
    ax.set_xlabel("accounted epochs (flow)")
    ax.set_ylabel("particles' mean val loss")
    ax.legend(fontsize=8)
    save_figure(fig, path)


def _main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = study_parser(__doc__, "2 seeds, 2 particles, a tiny budget: checks the pipeline", config=None, seeds=3,
                      threads=1, out="results/independent_flow")
    ap.add_argument("--epochs", type=float, default=40.0, help="accounted training epochs of the flow phase")
    ap.add_argument("--steps", type=int, default=0,
                    help="if > 0: the same number of flow steps for every mode instead of the same --epochs "
                         "(the transfer mode then spends more compute)")
    flow = optimiser_defaults("independent", "n_particles", "law", "temperature", "jump_dt", "jump_every", "lr",
                              "eval_every")  # the flow's own defaults, read from it
    ap.add_argument("--particles", type=int, default=flow["n_particles"])
    ap.add_argument("--law", default=flow["law"])
    ap.add_argument("--temperature", type=float, nargs="+", default=list(flow["temperature"]), help="T or T0 T1")
    ap.add_argument("--jump-dt", type=float, default=flow["jump_dt"])
    ap.add_argument("--jump-every", type=int, default=flow["jump_every"])
    ap.add_argument("--lr", type=float, default=flow["lr"], help="Adam learning rate of the particles")
    ap.add_argument("--transfer-steps", type=int, default=5)
    ap.add_argument("--probe", type=int, default=64, help="probe images of the OT transfer")
    ap.add_argument("--eval-every", type=int, default=flow["eval_every"])
    ap.add_argument("--n-final", type=int, default=2)
    ap.add_argument("--retrain-epochs", type=int, default=8)
    args = parse_study_args(ap, argv)
    if args.smoke:
        args.seeds, args.epochs, args.particles, args.jump_every = min(args.seeds, 2), 2.0, 2, 2
        args.transfer_steps, args.probe, args.eval_every, args.n_final, args.retrain_epochs = 2, 32, 4, 1, 1
    if args.seeds < 1 or args.epochs <= 0 or args.steps < 0 or len(args.temperature) not in (1, 2):
        raise SystemExit("--seeds must be >= 1, --epochs > 0, --steps >= 0, --temperature T or T0 T1")

    from hotnas.datasets import load_digits_splits

    data = load_digits_splits(0)
    t0 = time.perf_counter()
    runs = []
    for seed in range(args.seeds):
        for mode in MODES:
            r = run_one(mode, seed, args, data)
            runs.append(r)
            print(f"seed {seed} {mode:>8}: test {r['test_acc']:.1f}%  steps {r['steps']}  accepted "
                  f"{r['n_accepted']}/{r['n_proposed']}  val loss after jumps {r['val_loss_after_jump']}  "
                  f"{r['seconds']:.0f} s", flush=True)
    wall = time.perf_counter() - t0
    summary = summarise(runs)
    out = write_study(args.out, markdown(summary, runs),
                      {"args": vars(args), "wall_seconds": wall, "summary": summary, "runs": runs}, wall, indent=1)
    plot(summary, runs, out / "independent_flow.png")
    return {"summary": summary, "runs": runs, "wall_seconds": wall}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the study; torch's thread count is restored afterwards."""
    return keep_torch_threads(_main, argv)


if __name__ == "__main__":
    main()
