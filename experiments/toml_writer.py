"""Writing TOML — the subset configs use (tables, arrays of tables, scalars, arrays; None left out).

``tomllib`` reads TOML but does not write it; a run directory stores its resolved config with :func:`dump_toml`,
and ``tomllib.loads(dump_toml(d)) == d`` for every config (None values aside).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Mapping

__all__ = ["dump_toml"]


def _toml_key(k: str) -> str:
    return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else json.dumps(k)


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(x)}" for k, x in v.items() if x is not None) + " }"
    raise TypeError(f"cannot write {type(v).__name__} {v!r} as TOML")


def _is_table_array(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, dict) for x in v)


def dump_toml(d: Mapping[str, Any], header: str = "") -> str:
    """TOML text of ``d`` (tables, arrays of tables, scalars, arrays; None values are left out)."""
    lines = [f"# {line}" for line in header.splitlines()]

    def table(prefix: str, t: Mapping[str, Any]) -> None:
        for k, v in t.items():
            if v is None or isinstance(v, dict) or _is_table_array(v):
                continue
            lines.append(f"{_toml_key(k)} = {_toml_value(v)}")
        for k, v in t.items():
            name = f"{prefix}{_toml_key(k)}"
            if isinstance(v, dict):
                lines.extend(["", f"[{name}]"])
                table(name + ".", v)
            elif _is_table_array(v):
                for item in v:
                    lines.extend(["", f"[[{name}]]"])
                    table(name + ".", item)

    table("", d)
    return "\n".join(lines) + "\n"
