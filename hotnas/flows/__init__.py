"""Every flow of hotnas in one place: particles on the architecture graph G driven by the semi-discrete flow.

============================  ===================================================  ==============================
module                        what                                                 registered / entry point
============================  ===================================================  ==============================
:mod:`.tabular`               the tabular flow (d = 0; a benchmark table)          optimiser ``"flow"``
:mod:`.tabular_surrogate`     its GP-guided hybrid (``surrogate="gp"``)             (mixin of ``FlowOptimiser``)
:mod:`.surrogate`             HOTNAS with the flow as acquisition optimiser         optimiser ``"flow-bo"``
:mod:`.base`                  what the trainable flows share; ``FlowResult``        ``FlowBase``
:mod:`.trainable`             R^d x G over a weight-sharing supernet                ``TrainableFlow``
:mod:`.supernet_optimiser`    the trainable flow behind ask/tell                    optimiser ``"supernet-flow"``
:mod:`.independent`           one stand-alone network per particle                  ``IndependentFlow``
:mod:`.schedules`             the temperature schedule of every flow               ``temperature_schedule``
:mod:`.potentials`            table potentials, the robust spread                  ``table_potential``
============================  ===================================================  ==============================

Every jump goes through :func:`sdot.jump.propose_accept` (trainable flows, flow-bo) or the exact chain of
:func:`sdot.particles.jump_step` on a potential capped by :func:`sdot.jump.cap_potential` (tabular flow): one
acceptance rule and one overflow policy. Proposals are :meth:`hotnas.graph.ArchitectureGraph.propose`.

A flow's defaults are written once, in its constructor; :func:`defaults` reads them::

    >>> defaults("flow")["n_particles"], defaults("flow")["temperature"]
    (20, (0.3, 0.03))
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

__all__ = ["FLOWS", "defaults"]

#: name -> "module:class" of every flow (optimiser names for the ask/tell ones, class names for the others)
FLOWS = {
    "flow": "hotnas.flows.tabular:FlowOptimiser",
    "flow-bo": "hotnas.flows.surrogate:FlowBO",
    "supernet-flow": "hotnas.flows.supernet_optimiser:SupernetFlowOptimiser",
    "trainable": "hotnas.flows.trainable:TrainableFlow",
    "independent": "hotnas.flows.independent:IndependentFlow",
}


def _load(name: str) -> type:
    if name not in FLOWS:
        raise ValueError(f"unknown flow {name!r}; choose one of {sorted(FLOWS)}")
    module, attr = FLOWS[name].split(":")
    return getattr(importlib.import_module(module), attr)


def defaults(name: str) -> dict[str, Any]:
    """The keyword defaults of flow ``name`` (a key of :data:`FLOWS`), read from its constructor: the one
    place they are written. ``space``, ``seed`` and arguments without a default are left out; a flow that
    forwards options (``flow-bo``: HOTNAS's) lists only its own."""
    sig = inspect.signature(_load(name).__init__)
    return {p.name: p.default for p in sig.parameters.values()
            if p.default is not inspect.Parameter.empty and p.name not in ("self", "seed")}


def __getattr__(name: str) -> Any:  # lazy: `from hotnas.flows import FlowOptimiser` without importing torch first
    lazy = {"FlowOptimiser": "flow", "FlowBO": "flow-bo", "SupernetFlowOptimiser": "supernet-flow",
            "TrainableFlow": "trainable", "IndependentFlow": "independent"}
    if name in lazy:
        return _load(lazy[name])
    if name in ("FlowBase", "FlowResult"):
        return getattr(importlib.import_module("hotnas.flows.base"), name)
    if name in ("temperature_schedule",):
        return getattr(importlib.import_module("hotnas.flows.schedules"), name)
    if name in ("table_potential", "robust_spread"):
        return getattr(importlib.import_module("hotnas.flows.potentials"), name)
    raise AttributeError(f"module 'hotnas.flows' has no attribute {name!r}")
