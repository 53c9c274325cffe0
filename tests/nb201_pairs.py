"""Distinct cell pairs on random edges of the NB201 mutation graph (shared by the distance-engine tests)."""

from __future__ import annotations

import numpy as np

from hotnas.distances.ifgw import IFGWOptions, features_cached
from hotnas.spaces.nb201 import NB201Space


def edge_pairs(n: int, seed: int):
    """``n`` pairs (features of a, features of b) with b a mutation of a random a and a different cell."""
    space, rng, fo = NB201Space(), np.random.default_rng(seed), IFGWOptions().features
    fa, fb = [], []
    while len(fa) < n:
        a = space.sample(rng)
        ca, cb = space.to_cell(a), space.to_cell(space.mutate(a, rng))
        if ca.canonical_hash != cb.canonical_hash:
            fa.append(features_cached(ca, fo))
            fb.append(features_cached(cb, fo))
    return fa, fb
