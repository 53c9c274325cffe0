"""Benchmark: what one trainable-task operation costs on this machine.

    python -m experiments.bench.bench_trainable            # 12 architectures, P = 1, 4, 16, 32
    python -m experiments.bench.bench_trainable --smoke    # 3 architectures, P = 1, 4

Measures, on ``--threads`` torch threads (default 1, the setting the library uses):
- one ``DigitsBenchmark`` query at default settings (8 epochs) for random NB201 cells and the
  all-conv3x3 cell (the most expensive), in wall-clock and CPU seconds;
- one batched supernet diffusion step (``SuperNet.step``: vmapped loss + gradient + update) and one
  jump evaluation (``SuperNet.losses``) for P particles on a shared minibatch of ``--batch`` images;
- one ``init_after_jump(..., "transfer")`` at its defaults (20 OT steps on 128 probe images).

CPU time is reported beside wall-clock time because the machine may be shared: wall / CPU well above 1
means other processes were competing for the cores (the 1-minute load average is printed too).
"""

from __future__ import annotations

import os
import time

import numpy as np

from experiments.studies.common import keep_torch_threads, study_parser

ALL_CONV = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"


def _timed(fn, reps: int) -> tuple[float, float]:
    """Mean (wall, CPU) seconds of ``fn()`` over ``reps`` calls after one warm-up call."""
    fn()
    w, c = time.perf_counter(), time.process_time()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - w) / reps, (time.process_time() - c) / reps


def _main(argv: list[str] | None = None) -> dict:
    ap = study_parser(__doc__, threads=1)
    ap.add_argument("--archs", type=int, default=12, help="random architectures to query")
    ap.add_argument("--particles", type=int, nargs="+", default=[1, 4, 16, 32])
    ap.add_argument("--batch", type=int, default=64)
    args = ap.parse_args(argv)
    if args.smoke:
        args.archs, args.particles = 3, [1, 4]

    import torch

    from hotnas.benchmarks.trainable import DigitsBenchmark
    from hotnas.datasets import load_digits_splits
    from hotnas.spaces.nb201 import NB201Space
    from hotnas.supernet import SuperNet, encode_arch, train_from_scratch
    from hotnas.transfer import init_after_jump

    torch.set_num_threads(args.threads)
    out: dict = {"threads": args.threads, "load_1min_before": os.getloadavg()[0]}
    space, rng = NB201Space(), np.random.default_rng(0)
    data = load_digits_splits(0)

    bench = DigitsBenchmark(num_threads=args.threads, epochs=1 if args.smoke else 8)
    bench.query(ALL_CONV)  # warm-up (first call pays for lazy initialisation)
    rows = []
    for arch in [space.sample(rng) for _ in range(args.archs)] + [ALL_CONV]:
        w, c = time.perf_counter(), time.process_time()
        bench.train(arch)
        rows.append((time.perf_counter() - w, time.process_time() - c))
    rows = np.array(rows)
    out["query"] = dict(epochs=bench.epochs, wall_mean=rows[:-1, 0].mean(), cpu_mean=rows[:-1, 1].mean(),
                        cpu_max=rows[:-1, 1].max(), all_conv_wall=rows[-1, 0], all_conv_cpu=rows[-1, 1])
    print(f"DigitsBenchmark query ({bench.epochs} epochs, {args.archs} random cells): "
          f"wall {rows[:-1, 0].mean():.2f} s, CPU {rows[:-1, 1].mean():.2f} s (max {rows[:-1, 1].max():.2f} s); "
          f"all-conv3x3 cell: wall {rows[-1, 0]:.2f} s, CPU {rows[-1, 1]:.2f} s")

    sn = SuperNet(weight_decay=1e-4)
    xb, yb = data.x_train[: args.batch], data.y_train[: args.batch]
    out["supernet"] = {"dim": sn.dim, "batch": args.batch}
    reps = 2 if args.smoke else 5
    for P in args.particles:
        theta = sn.init(P, seed=0)
        archs = encode_arch([space.sample(rng) for _ in range(P)])
        step = _timed(lambda: sn.step(theta, archs, xb, yb, lr=0.05, temperature=1e-4), reps)
        jump = _timed(lambda: sn.losses(theta, archs, xb, yb), reps)
        out["supernet"][P] = dict(step_wall=step[0], step_cpu=step[1], jump_wall=jump[0], jump_cpu=jump[1])
        print(f"supernet d={sn.dim}, P={P:3d}, batch {args.batch}: step wall {1e3 * step[0]:7.1f} ms, "
              f"CPU {1e3 * step[1]:7.1f} ms | jump evaluation wall {1e3 * jump[0]:6.1f} ms, CPU {1e3 * jump[1]:6.1f} ms")

    old_arch = "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    new_arch = "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    _, old = train_from_scratch(old_arch, data, epochs=1, return_net=True)
    tr = _timed(lambda: init_after_jump(old, old_arch, new_arch, "transfer", steps=5 if args.smoke else 20), reps)
    out["init_after_jump_transfer"] = dict(wall=tr[0], cpu=tr[1])
    print(f"init_after_jump(transfer, {5 if args.smoke else 20} steps, 128 probe images): wall {tr[0]:.2f} s, "
          f"CPU {tr[1]:.2f} s")
    out["load_1min_after"] = os.getloadavg()[0]
    print(f"torch threads {args.threads}; 1-minute load average {out['load_1min_before']:.1f} before, "
          f"{out['load_1min_after']:.1f} after, on {os.cpu_count()} cores")
    return out


def main(argv: list[str] | None = None) -> dict:
    """Run the study; torch's thread count is restored afterwards (``--threads`` sets it meanwhile)."""
    return keep_torch_threads(_main, argv)


if __name__ == "__main__":
    main()
