"""hotnas: architectures, distances and search for gradient-flow and Bayesian NAS.

Front doors (imported lazily, so ``import hotnas`` stays light). torch loads with training, and with
the first OT distance (hotnn, ifgw, otmann): POT imports torch at import when it is installed (about
2 s of CPU); ``POT_BACKEND_DISABLE_PYTORCH=1`` avoids that in processes that never hand POT torch
tensors (the representation transfer does):

    hotnas.distance(a, b, method="hotnn")       # HOTNN-style hierarchical OT (reconstructed), ifgw, otmann, tw, hamming
    hotnas.get_space("nb201")                   # search spaces: nb201, nb101, darts
    hotnas.get_benchmark("nb201", path=...)     # tabular and trainable ("digits") objectives
    hotnas.get_optimiser("flow", space, seed=0) # flow, hotnas (GP + knowledge gradient), evolution, random
    hotnas.run_search(optimiser, benchmark, budget=200)
"""

from __future__ import annotations

from typing import Any

_LAZY = {
    "distance": ".distances:distance",
    "PairwiseDistances": ".distances.engine:PairwiseDistances",
    "Cell": ".cells:Cell",
    "Network": ".cells:Network",
    "get_space": ".spaces:get_space",
    "get_benchmark": ".benchmarks:get_benchmark",
    "get_optimiser": ".optimisers:get_optimiser",
    "run_search": ".optimisers:run_search",
    "SearchResult": ".optimisers:SearchResult",
    "DistanceGP": ".bo.gp:DistanceGP",
    "ArchitectureGraph": ".graph:ArchitectureGraph",
    "IndependentFlow": ".flows.independent:IndependentFlow",
    "TrainableFlow": ".flows.trainable:TrainableFlow",
    "FlowResult": ".flows.base:FlowResult",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'hotnas' has no attribute {name!r}")
    from sdot.registry import load_entry  # here, not at the top: ``import hotnas`` imports nothing

    value = load_entry(_LAZY[name], __name__)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
