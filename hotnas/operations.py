"""Declared features of the operations a cell's nodes carry: what the distances know of a label.

Every distance that looks inside a cell (``hotnn``/``ifgw``, ``otmann``, ``tw``) reads an operation's
features here, by label:

* ``family`` — its type; operations of one family are near each other (conv 1x1 and conv 3x3).
* ``weight`` — relative compute omega (conv 3x3 = 1): HOTNN's information-flow costs and
  ``masses="compute"``.
* ``size`` — kernel size within the family, if any.
* ``params`` — has trainable parameters: OTMANN treats it as a conv-like layer (mass
  fan-in x units^2), else as a pool-like one (mass fan-in).
* ``passthrough`` — moves data without computing (skip connection, sum node): OTMANN contracts it
  into an edge, TW leaves it at the root of its operation tree.
* ``family_cost`` — the operation cost C_op to another operation of the same family.

Cost between two operations (``pair_cost``, in [0, 1]) [derived, modelled on NASBOT's table]::

    C_op(o, o) = 0;  C_op(o, o') = declared pair cost, if any;
    = max(family_cost(o), family_cost(o')) if family(o) == family(o');  = 1 otherwise,

input/output labels match only themselves (cost 1). The built-in labels (NB201, NB101, DARTS) are
declared below with the values the distances always used (conv families 0.2, pools 0.5).

A search space declares its own operations as a class attribute ``operations = {label: Operation}``
(and optionally ``operation_costs = {(a, b): cost}``); they are declared when the class is defined.
Labels nobody declared get the **documented defaults** — cost 1 to every other label, weight 0.5, a
layer of their own with parameters (never contracted) — and one loud ``UserWarning`` naming them.
Declaring a label twice with different features raises (one rule with every registry).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sdot.registry import Registry
from sdot.validation import finite, nonnegative

from .cells import is_io_label

__all__ = ["Operation", "OPERATIONS", "declare_operations", "operation", "pair_cost", "weight_of",
           "warn_undeclared", "DEFAULT_WEIGHT", "DEFAULT_COST"]

#: Weight and cross-label cost of an undeclared operation (documented defaults).
DEFAULT_WEIGHT = 0.5
DEFAULT_COST = 1.0


@dataclass(frozen=True)
class Operation:
    """Features of one operation label (module docstring)."""

    family: str
    weight: float = 1.0
    size: int | None = None
    params: bool = True
    passthrough: bool = False
    family_cost: float = 0.2

    def __post_init__(self) -> None:
        if not isinstance(self.family, str) or not self.family:
            raise ValueError(f"Operation.family must be a non-empty string, got {self.family!r}")
        nonnegative("Operation.weight", self.weight)
        if not (0.0 <= finite("Operation.family_cost", self.family_cost) <= 1.0):
            raise ValueError(f"Operation.family_cost must lie in [0, 1], got {self.family_cost!r}")


#: label -> Operation (duplicates with different features refused).
OPERATIONS: Registry = Registry("operation", listed=False,
                                hint="declare it in the space's `operations` (see docs/extending.md)")
_PAIR_COSTS: dict[tuple[str, str], float] = {}
_WARNED: set[str] = set()


def declare_operations(ops: Mapping[str, Operation], costs: Mapping[tuple[str, str], float] | None = None,
                       owner: str = "") -> None:
    """Declare operation labels (and optional pair costs in [0, 1]); same features again is a no-op."""
    if not isinstance(ops, Mapping):
        raise TypeError(f"operations must be a mapping label -> Operation, got {type(ops).__name__}")
    for label, op in ops.items():
        if not isinstance(op, Operation):
            raise TypeError(f"{owner or 'operations'}: {label!r} must map to an Operation, got {type(op).__name__}")
        if is_io_label(label):
            raise ValueError(f"{owner or 'operations'}: {label!r} is an input/output label, not an operation")
        OPERATIONS.register(label, op)
    for pair, cost in (costs or {}).items():
        if not (isinstance(pair, tuple) and len(pair) == 2):
            raise ValueError(f"{owner or 'operation_costs'}: keys must be (label, label) pairs, got {pair!r}")
        c = float(cost)
        if not 0.0 <= c <= 1.0:
            raise ValueError(f"{owner or 'operation_costs'}: cost of {pair} must lie in [0, 1], got {cost!r}")
        key = tuple(sorted(pair))
        old = _PAIR_COSTS.get(key)  # type: ignore[arg-type]
        if old is not None and old != c:
            raise ValueError(f"operation cost {key} already declared as {old}, refusing {c}")
        _PAIR_COSTS[key] = c  # type: ignore[index]


def operation(label: str) -> Operation | None:
    """The declared features of ``label`` (None for input/output and undeclared labels)."""
    return OPERATIONS.peek(label)


def warn_undeclared(labels: Iterable[str], where: str = "the distances") -> list[str]:
    """Warn once per label about labels with no declared features; returns the undeclared ones."""
    unknown = sorted({o for o in labels if not is_io_label(o) and o not in OPERATIONS})
    new = [o for o in unknown if o not in _WARNED]
    if new:
        _WARNED.update(new)
        warnings.warn(
            f"operations {new} have no declared features (type, cost between operations, compute weight): "
            f"{where} use the documented defaults for them — cost {DEFAULT_COST:g} to every other operation, "
            f"compute weight {DEFAULT_WEIGHT:g}, a layer of its own with parameters. Declare them in your "
            f"space's `operations = {{label: hotnas.operations.Operation(...)}}` (docs/extending.md).",
            UserWarning, stacklevel=3)
    return unknown


def pair_cost(a: str, b: str) -> float:
    """C_op(a, b) in [0, 1] from the declared features (module docstring); undeclared labels warn."""
    if a == b:
        return 0.0
    if is_io_label(a) or is_io_label(b):
        return 1.0
    key = (a, b) if a <= b else (b, a)
    if key in _PAIR_COSTS:
        return _PAIR_COSTS[key]
    oa, ob = OPERATIONS.peek(a), OPERATIONS.peek(b)
    if oa is None or ob is None:
        warn_undeclared((a, b))
        return DEFAULT_COST
    if oa.family == ob.family:
        return max(oa.family_cost, ob.family_cost)
    return DEFAULT_COST


def weight_of(label: str) -> float:
    """omega(label): declared compute weight; 0 for input/output labels; undeclared labels warn."""
    if is_io_label(label):
        return 0.0
    op = OPERATIONS.peek(label)
    if op is None:
        warn_undeclared((label,))
        return DEFAULT_WEIGHT
    return float(op.weight)


def _builtin() -> dict[str, Operation]:
    conv = lambda fam, w, k: Operation(fam, weight=w, size=k)  # noqa: E731
    pool = Operation("pool", weight=0.25, size=3, params=False, family_cost=0.5)
    return {
        # NAS-Bench-201
        "nor_conv_3x3": conv("conv", 1.0, 3), "nor_conv_1x1": conv("conv", 0.5, 1), "avg_pool_3x3": pool,
        "skip_connect": Operation("skip", weight=0.0, params=False, passthrough=True),
        "none": Operation("none", weight=0.0, params=False, passthrough=True),
        # NAS-Bench-101
        "conv3x3-bn-relu": conv("conv", 1.0, 3), "conv1x1-bn-relu": conv("conv", 0.5, 1), "maxpool3x3": pool,
        # DARTS
        "sep_conv_3x3": conv("sep_conv", 1.0, 3), "sep_conv_5x5": conv("sep_conv", 1.0, 5),
        "dil_conv_3x3": conv("dil_conv", 1.0, 3), "dil_conv_5x5": conv("dil_conv", 1.0, 5),
        "max_pool_3x3": pool,
        "sum": Operation("sum", weight=0.0, params=False, passthrough=True),
    }


declare_operations(_builtin(), owner="built-in operations")
