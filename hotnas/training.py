"""Training pieces the trainable flows share: compute accounting, the learning-rate schedule, the minibatch
stream, and the from-scratch retraining of finalists.

Compute is counted in training epochs (examples passed forward and backward / training-set size); a
forward-only pass costs ``FORWARD_COST = 1/3`` of that. The cosine schedule is
``lr_s = max(1e-6 lr, lr (1 + cos(pi s)) / 2)`` at progress s in [0, 1].
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

__all__ = ["FORWARD_COST", "LR_SCHEDULES", "learning_rate", "MinibatchStream", "retrain_finalists", "steps_within"]

#: Cost of a forward-only pass relative to a forward + backward pass (epoch accounting).
FORWARD_COST = 1.0 / 3.0
LR_SCHEDULES = ("constant", "cosine")


def learning_rate(lr: float, schedule: str, progress: float) -> float:
    """``lr`` (``"constant"``) or ``max(1e-6 lr, lr (1 + cos(pi s)) / 2)``, s = progress clipped to 1 (``"cosine"``)."""
    if schedule == "constant":
        return lr
    s = min(1.0, progress)
    return max(1e-6 * lr, 0.5 * lr * (1.0 + math.cos(math.pi * s)))


class MinibatchStream:
    """Minibatches of ``batch_size`` indices out of ``n``: a random order from ``gen`` (drawn at construction),
    read in slices and drawn anew once too few are left. ``order`` and ``pos`` are the whole state."""

    def __init__(self, n: int, batch_size: int, gen: torch.Generator):
        self.n, self.batch_size, self.gen = int(n), int(batch_size), gen
        self.order = torch.randperm(self.n, generator=gen)
        self.pos = 0

    def next(self) -> torch.Tensor:
        """The indices of the next minibatch."""
        if self.pos + self.batch_size > self.n:
            self.order, self.pos = torch.randperm(self.n, generator=self.gen), 0
        idx = self.order[self.pos:self.pos + self.batch_size]
        self.pos += self.batch_size
        return idx


def retrain_finalists(benchmark: Any, ranked: Sequence[tuple[str, float]]
                      ) -> tuple[list[tuple[str, float, float, Any]], float, float]:
    """Train each ``(arch, score seen)`` of ``ranked`` from scratch with ``benchmark.query`` (an Evaluation).

    Returns ``(candidates, epochs, seconds)``: ``(arch, seen, retrained value, retrained test)`` per finalist,
    the retraining cost (sum of the evaluations' costs) and its wall clock."""
    cands, epochs = [], 0.0
    t0 = time.perf_counter()
    for a, seen in ranked:
        ev = benchmark.query(a)
        epochs += float(ev.cost)
        cands.append((a, seen, float(ev.value), ev.test))
    return cands, epochs, time.perf_counter() - t0


def steps_within(cost: Callable[[int], float], epochs: float) -> int:
    """The largest step count s with ``cost(s) <= epochs`` for a nondecreasing ``cost`` (doubling, then bisection)."""
    lo, hi = 0, 1
    while cost(hi) <= epochs:
        lo, hi = hi, 2 * hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if cost(mid) <= epochs else (lo, mid)
    return lo
