"""Batches of q > 1 queries from a one-point acquisition: the kriging believer.

Greedy: pick the best candidate by the acquisition, *believe* the posterior mean there as if it had been
observed, condition the model on it (hyperparameters and target scaling unchanged, no refit), and score
the remaining candidates again; q picks, each distinct.

    picks = kriging_believer(model, pool, train, train_y, q, select, condition)

``select(model, cand, train, train_y) -> (i, mean_i)``: the index of the best of ``cand`` and its posterior
mean; ``condition(train, train_y) -> model``: the model conditioned on the grown training set.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["kriging_believer"]


def kriging_believer(model: Any, pool: Sequence[str], train: Sequence[str], train_y: Sequence[float], q: int,
                     select: Callable[[Any, list[str], list[str], list[float]], tuple[int, float]],
                     condition: Callable[[list[str], list[float]], Any]) -> list[str]:
    """Up to ``q`` distinct picks from ``pool`` (fewer when the pool is smaller), in the order picked."""
    train, train_y = list(train), list(train_y)
    picks: list[str] = []
    for k in range(min(q, len(pool))):
        cand = [a for a in pool if a not in picks] if picks else list(pool)
        i, believed = select(model, cand, train, train_y)
        picks.append(cand[i])
        if k + 1 < q:  # no model is needed after the last pick
            train.append(cand[i])
            train_y.append(believed)
            model = condition(train, train_y)
    return picks
