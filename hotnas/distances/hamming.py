"""One-hot / Hamming baseline: the fraction of differing symbols of the space's categorical encoding.

``d(a, b) = mean_i 1[x_i != y_i]`` with ``x = space.encoding(a)`` — NAS-Bench-201: the operation of
each of the 6 edges; DARTS: (input, operation) of the 16 pairs; NAS-Bench-101: the canonical graph
padded to 7 nodes (21 upper-triangular bits and 7 operation ids).  Equal to the normalised squared
Euclidean distance of the one-hot encodings divided by 2, so exp(-d / l) is a valid (PSD) kernel.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["hamming_distance"]


def hamming_distance(a: str, b: str, space: Any) -> float:
    if space is None or not hasattr(space, "encoding"):
        raise ValueError("the Hamming distance needs a search space with an encoding() (nb201, nb101, darts)")
    x, y = space.encoding(a), space.encoding(b)
    if x.shape != y.shape:
        raise ValueError(f"encodings of different lengths: {x.shape} and {y.shape}")
    return float(np.mean(x != y))


def _front(a: Any, b: Any, space: Any = None, **options: Any) -> float:
    if options:
        raise ValueError(f"hamming takes no options, got {sorted(options)}")
    if not isinstance(a, str) or not isinstance(b, str):
        raise ValueError("hamming compares architecture strings of a search space")
    return hamming_distance(a, b, space)
