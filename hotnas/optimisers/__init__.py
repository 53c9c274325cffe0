"""Optimisers behind one ask/tell interface: ``get_optimiser(name, space, seed=0, **options)``.

Importing this package registers every optimiser below; a new one adds its import (or lazy
``"module:Class"``) line here. The flows live in :mod:`hotnas.flows` and are registered lazily (imported on
first use), so :mod:`hotnas.flows` may import :mod:`hotnas.optimisers.base` without an import cycle.
"""

from __future__ import annotations

from .base import OPTIMISERS, Optimiser, SearchResult, get_optimiser, register_optimiser, run_search

from . import random, evolution, bo  # noqa: E402,F401  (register "random", "evolution", "hotnas")
from . import optuna_peers  # noqa: E402,F401  ("optuna-tpe", "optuna-gp" need the extra 'peers')

OPTIMISERS.register("flow", "hotnas.flows.tabular:FlowOptimiser")          # the tabular flow (d = 0)
OPTIMISERS.register("flow-bo", "hotnas.flows.surrogate:FlowBO")            # HOTNAS + the flow as acquisition optimiser
# the R^d x G flow over a supernet: NB201 only, trains networks (conformance under -m slow)
OPTIMISERS.register("supernet-flow", "hotnas.flows.supernet_optimiser:SupernetFlowOptimiser", spaces=("nb201",),
                    heavy=True)

__all__ = ["Optimiser", "SearchResult", "run_search", "OPTIMISERS", "register_optimiser", "get_optimiser"]
