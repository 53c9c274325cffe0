"""Optimisers behind one ask/tell interface: ``get_optimiser(name, space, seed=0, **options)``.

Importing this package registers every optimiser below; a new one adds its import line here.
"""

from __future__ import annotations

from .base import OPTIMISERS, Optimiser, SearchResult, get_optimiser, register_optimiser, run_search

from . import random, evolution, bo, flow  # noqa: E402,F401  (register "random", "evolution", "hotnas", "flow")
from . import optuna_peers, flow_bo  # noqa: E402,F401  ("optuna-tpe", "optuna-gp" need the extra 'peers'; "flow-bo")
from . import supernet_flow  # noqa: E402,F401  ("supernet-flow": the R^d x G flow, trainable)

__all__ = ["Optimiser", "SearchResult", "run_search", "OPTIMISERS", "register_optimiser", "get_optimiser"]
