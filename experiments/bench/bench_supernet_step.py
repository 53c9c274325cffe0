"""The vectorised supernet step, timed for N = 1, 8, 32, 128 particles on the CPU and on a device.

    python -m experiments.bench.bench_supernet_step                 # CPU (and cuda when present), N = 1, 8, 32, 128
    python -m experiments.bench.bench_supernet_step --device cuda --json out.json
    python -m experiments.bench_gpu --sections supernet_step  # the same, as a section of bench_gpu

One step is :meth:`hotnas.supernet.SuperNet.step` — loss and gradient of N particles (each its own
weights and architecture, one ``vmap(grad_and_value)`` call) on a shared minibatch of 64 digits
images, plus the SGD update — on the ``digits-nb201`` skeleton (C = 8, 2 cells). Reported per N:
seconds per step (median of ``--repeat`` timed steps after one warm-up; wall clock, and for the CPU
also this process's CPU seconds, the figure that a shared machine does not distort), and
**particle-steps per second** = N / seconds, on the CPU (torch threads as set: 1 by default, the library's setting) and on
the device, with the ratio device / CPU from the same process.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np

NS = (1, 8, 32, 128)


def _time_steps(n: int, device: str, repeat: int, seed: int = 0) -> tuple[float, float]:
    import torch

    from hotnas.datasets import load_digits_splits
    from hotnas.spaces.nb201 import NB201Space
    from hotnas.supernet import NetConfig, SuperNet, encode_arch

    sn = SuperNet(NetConfig(channels=8, n_cells=2), weight_decay=1e-4)
    sn.module.to(device)
    rng = np.random.default_rng(seed)
    space = NB201Space()
    theta = sn.init(n, seed=seed).to(device)
    archs = encode_arch([space.sample(rng) for _ in range(n)]).to(device)
    data = load_digits_splits(0)
    xb, yb = data.x_train[:64].to(device), data.y_train[:64].to(device)

    def one() -> None:
        nonlocal theta
        theta, _ = sn.step(theta, archs, xb, yb, lr=1.0)
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    one()
    walls, cpus = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        one()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return statistics.median(walls), statistics.median(cpus)


def supernet_step(args: argparse.Namespace, device: str) -> dict:
    """bench_gpu section: particle-steps / s of the supernet step, CPU and ``device``, N = 1, 8, 32, 128."""
    ns = (1, 8) if getattr(args, "quick", False) else NS
    repeat = max(1, int(getattr(args, "repeat", 3) or 3))
    out: dict = {"N": list(ns), "batch": 64, "channels": 8, "n_cells": 2}
    import torch

    out["torch_threads"] = torch.get_num_threads()
    for n in ns:
        wall, cpu = _time_steps(n, "cpu", repeat)
        row = {"cpu_s_per_step": wall, "cpu_process_s_per_step": cpu}
        row["cpu_particle_steps_per_s"] = n / wall
        row["cpu_particle_steps_per_process_s"] = n / cpu
        if device != "cpu":
            row["device_s_per_step"] = _time_steps(n, device, repeat)[0]
            row["device_particle_steps_per_s"] = n / row["device_s_per_step"]
            row["speedup_device_over_cpu"] = row["cpu_s_per_step"] / row["device_s_per_step"]
        out[f"N={n}"] = row
        print(f"  N={n:4d}: " + ", ".join(f"{k} {v:.4g}" for k, v in row.items()), flush=True)
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default=None, help="device beside the CPU (default: cuda when available)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="N = 1, 8 only")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    import torch

    from hotnas.supernet import resolve_device

    torch.set_num_threads(args.threads)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = str(resolve_device(device))
    except ValueError as e:
        ap.error(str(e))
    print(f"supernet step: device {device}, torch threads {torch.get_num_threads()}, load {os.getloadavg()}")
    out = supernet_step(args, device)
    out["loadavg"] = os.getloadavg()
    if args.json:  # the figures, for the README or a comparison across machines
        Path(args.json).write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
