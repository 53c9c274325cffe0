"""Study (issue 8): how to initialise a network after an architecture jump — fresh vs carry-over vs
carry-over + OT representation transfer — on the digits task.

    python -m experiments.studies.transfer_jumps           # 5 jump types x 8 seeds (about 2-3 minutes on 2 cores)
    python -m experiments.studies.transfer_jumps --smoke   # 2 jump types x 2 seeds, short: checks the pipeline

Protocol, per seed and jump type a -> b:
1. a random NB201 cell is drawn in which one edge carries ``a`` and that edge lies on a live path
   (its source receives input, its target reaches the output); the *old* network of that cell is
   trained from scratch for ``--old-epochs`` epochs (a particle's current network);
2. the edge switches to ``b``; the new network is initialised by :func:`hotnas.transfer.init_after_jump`
   in each mode — ``fresh`` (seeded initialisation), ``carry`` (weights of equal name and shape copied:
   stem, head, unchanged edges), ``transfer`` (carry, then OT representation transfer on a probe batch
   of 128 training images, default settings: 20 Adam steps, lr 0.02, all layer pairs by depth);
3. each new network is trained on with Adam (lr ``--lr``) on the same minibatch sequence; validation
   loss and accuracy are read at k = 0 (right after the jump) and after each k in ``--ks``.

Writes ``table.md`` (mean ± std over seeds; "wins": seeds in which transfer has a lower validation
loss than fresh / than carry), ``results.json`` and ``val_loss.png`` in ``--out``
(default ``runs/transfer_jumps``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

from experiments.plots import pyplot, save_figure
from experiments.studies.common import describe, keep_torch_threads, parse_study_args, study_parser, write_study

JUMPS: tuple[tuple[str, str], ...] = (
    ("nor_conv_3x3", "nor_conv_1x1"),
    ("nor_conv_1x1", "nor_conv_3x3"),
    ("skip_connect", "nor_conv_3x3"),
    ("nor_conv_3x3", "avg_pool_3x3"),
    ("none", "nor_conv_3x3"),
)
MODES = ("fresh", "carry", "transfer")
_SHORT = {"none": "none", "skip_connect": "skip", "nor_conv_1x1": "conv1x1", "nor_conv_3x3": "conv3x3",
          "avg_pool_3x3": "pool"}


def jump_label(a: str, b: str) -> str:
    return f"{_SHORT[a]} -> {_SHORT[b]}"


def live_jump(rng: np.random.Generator, a: str, b: str) -> tuple[str, str, int]:
    """(old arch, new arch, edge): a random cell whose edge ``edge`` carries ``a`` (``b`` after the
    jump), with the edge's source fed and its target connected to the output, so the jump matters."""
    from hotnas.spaces.nb201 import EDGES, OPS, arch_string

    live_ops = [o for o in OPS if o != "none"]
    ops = [OPS[int(i)] for i in rng.integers(len(OPS), size=len(EDGES))]
    e = int(rng.integers(len(EDGES)))
    dst, src = EDGES[e]
    # the target must reach node 3: edge (3, 1) from node 1, edge (3, 2) from node 2
    if dst == 1:
        ops[4] = live_ops[int(rng.integers(len(live_ops)))]
    elif dst == 2:
        ops[5] = live_ops[int(rng.integers(len(live_ops)))]
    # the source must receive input: node 1 from edge (1, 0); node 2 from edge (2, 0)
    if src == 1:
        ops[0] = live_ops[int(rng.integers(len(live_ops)))]
    elif src == 2 and ops[1] == "none" and ops[2] == "none":
        ops[1] = live_ops[int(rng.integers(len(live_ops)))]
    ops[e] = a
    old = arch_string(ops)
    ops[e] = b
    return old, arch_string(ops), e


def run_case(seed: int, jump: tuple[str, str], args: argparse.Namespace, data) -> dict[str, Any]:
    """One seed of one jump type: train the old network, jump, follow every mode for max(ks) steps."""
    import torch

    from hotnas.supernet import NetConfig, evaluate, train_from_scratch, train_steps
    from hotnas.transfer import init_after_jump

    rng = np.random.default_rng([seed, JUMPS.index(jump) if jump in JUMPS else 99])
    old_arch, new_arch, edge = live_jump(rng, *jump)
    config = NetConfig()
    old_res, old_net = train_from_scratch(old_arch, data, epochs=args.old_epochs, seed=seed, config=config,
                                          return_net=True)
    out: dict[str, Any] = dict(seed=seed, jump=jump_label(*jump), old_arch=old_arch, new_arch=new_arch, edge=edge,
                               old_val_loss=old_res.val_loss, old_val_acc=old_res.val_acc, modes={})
    probe = data.x_train[: args.probe]
    for mode in MODES:
        t0 = time.perf_counter()
        net, info = init_after_jump(old_net, old_arch, new_arch, mode, probe=probe, steps=args.transfer_steps,
                                    seed=10_000 + seed, config=config)
        init_seconds = time.perf_counter() - t0
        gen = torch.Generator().manual_seed(seed)  # the same minibatches for every mode
        losses, accs = {}, {}
        losses[0], accs[0] = evaluate(net, data.x_val, data.y_val)
        opt, done = None, 0
        for k in sorted(args.ks):
            opt = train_steps(net, data.x_train, data.y_train, k - done, lr=args.lr, generator=gen, optimizer=opt)
            done = k
            losses[k], accs[k] = evaluate(net, data.x_val, data.y_val)
        out["modes"][mode] = dict(val_loss=losses, val_acc=accs, init_seconds=init_seconds, copied=info["copied"],
                                  distance_before=info["distance_before"], distance_after=info["distance_after"])
    return out


def summarise(cases: list[dict[str, Any]], ks: list[int]) -> dict[str, Any]:
    """Per jump type, mode and k: mean and std of validation loss and accuracy; win counts of transfer."""
    table: dict[str, Any] = {}
    for jump in dict.fromkeys(c["jump"] for c in cases):
        rows = [c for c in cases if c["jump"] == jump]
        entry: dict[str, Any] = {"n": len(rows), "old_val_loss": float(np.mean([c["old_val_loss"] for c in rows]))}
        for mode in MODES:
            entry[mode] = {}
            for k in [0, *ks]:
                loss = describe([c["modes"][mode]["val_loss"][k] for c in rows])
                acc = describe([c["modes"][mode]["val_acc"][k] for c in rows])
                entry[mode][k] = dict(loss_mean=loss[0], loss_std=loss[1], acc_mean=acc[0], acc_std=acc[1])
            entry[mode]["init_seconds"] = float(np.mean([c["modes"][mode]["init_seconds"] for c in rows]))
        entry["wins"] = {
            f"{other}@{k}": int(sum(c["modes"]["transfer"]["val_loss"][k] < c["modes"][other]["val_loss"][k]
                                    for c in rows))
            for other in ("fresh", "carry") for k in [0, *ks]}
        table[jump] = entry
    return table


def markdown(table: dict[str, Any], ks: list[int]) -> str:
    cols = [0, *ks]
    lines = ["| jump | old net | mode | " + " | ".join(f"val loss k={k}" for k in cols)
             + " | val acc % k=" + str(cols[-1]) + " | init s |",
             "|---|---|---|" + "---|" * len(cols) + "---|---|"]
    for jump, e in table.items():
        for i, mode in enumerate(MODES):
            cells = " | ".join(f"{e[mode][k]['loss_mean']:.3f} ± {e[mode][k]['loss_std']:.3f}" for k in cols)
            last = e[mode][cols[-1]]
            head = f"| {jump} (n={e['n']}) | {e['old_val_loss']:.3f} |" if i == 0 else "| | |"
            lines.append(f"{head} {mode} | {cells} | {last['acc_mean']:.1f} ± {last['acc_std']:.1f} | "
                         f"{e[mode]['init_seconds']:.2f} |")
        wins = ", ".join(f"k={k}: {e['wins'][f'fresh@{k}']}/{e['n']} vs fresh, {e['wins'][f'carry@{k}']}/{e['n']} vs carry"
                         for k in cols)
        lines.append(f"| | | transfer lower loss in | {wins} |" + " |" * (len(cols) + 1))
    return "\n".join(lines)


def plot(table: dict[str, Any], ks: list[int], path: Path) -> None:
    plt = pyplot()
    cols = [0, *ks]
    fig, axes = plt.subplots(1, len(table), figsize=(3.2 * len(table), 3.0), sharey=True, squeeze=False)
    for ax, (jump, e) in zip(axes[0], table.items()):
        for mode, colour in zip(MODES, ("tab:gray", "tab:blue", "tab:red")):
            m = np.array([e[mode][k]["loss_mean"] for k in cols])
            s = np.array([e[mode][k]["loss_std"] for k in cols])
            ax.plot(cols, m, "o-", color=colour, label=mode)
            ax.fill_between(cols, m - s, m + s, color=colour, alpha=0.15)
        ax.axhline(e["old_val_loss"], color="k", ls=":", lw=1, label="old net")
        ax.set_title(jump, fontsize=9)
        ax.set_xlabel("training steps after the jump")
    axes[0, 0].set_ylabel("validation loss (mean ± std over seeds)")
    axes[0, -1].legend(fontsize=7)
    save_figure(fig, path)


def _main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = study_parser(__doc__, "2 jump types, 2 seeds, short training: a quick check", config=None, seeds=8,
                      threads=1, out="runs/transfer_jumps")
    ap.add_argument("--ks", type=int, nargs="+", default=[10, 50], help="steps after the jump at which to read")
    ap.add_argument("--old-epochs", type=int, default=8, help="training of the old network before the jump")
    ap.add_argument("--transfer-steps", type=int, default=20)
    ap.add_argument("--probe", type=int, default=128, help="probe images for the transfer")
    ap.add_argument("--lr", type=float, default=0.01, help="Adam learning rate after the jump")
    args = parse_study_args(ap, argv)
    jumps = JUMPS
    if args.smoke:
        jumps = JUMPS[:2]
        args.seeds, args.ks, args.old_epochs, args.transfer_steps = min(args.seeds, 2), [2, 5], 1, 3
    if args.seeds < 1 or any(k < 1 for k in args.ks):
        raise SystemExit("--seeds and every --ks must be >= 1")
    args.ks = sorted(set(args.ks))

    import torch

    from hotnas.datasets import load_digits_splits

    torch.set_num_threads(args.threads)
    data = load_digits_splits(0)
    t0 = time.perf_counter()
    cases = []
    for jump in jumps:
        for seed in range(args.seeds):
            c = run_case(seed, jump, args, data)
            cases.append(c)
            k = args.ks[0]
            print(f"{c['jump']:>17} seed {seed}: val loss at k={k}  " + "  ".join(
                f"{m} {c['modes'][m]['val_loss'][k]:.3f}" for m in MODES), flush=True)
    wall = time.perf_counter() - t0
    table = summarise(cases, args.ks)
    out = write_study(args.out, markdown(table, args.ks),
                      {"args": vars(args), "wall_seconds": wall, "summary": table, "cases": cases}, wall)
    plot(table, args.ks, out / "val_loss.png")
    return {"summary": table, "wall_seconds": wall}


def main(argv: list[str] | None = None) -> dict:
    """Run the study; torch's thread count is restored afterwards (``--threads`` sets it meanwhile)."""
    return keep_torch_threads(_main, argv)


if __name__ == "__main__":
    main()
