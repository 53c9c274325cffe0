"""docs/architecture.md stays true: every module it names imports, and no floor imports a higher one."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "architecture.md"
FLOORS = {"sdot": 0, "hotnas": 1, "experiments": 2}


def _named_modules() -> list[str]:
    paths = sorted(set(re.findall(r"`((?:sdot|hotnas|experiments)/[\w/]+\.py)`", DOC.read_text())))
    return [p[:-3].replace("/", ".").removesuffix(".__init__") for p in paths]


def test_the_map_names_modules_of_every_floor():
    mods = _named_modules()
    assert len(mods) > 40
    assert {m.split(".")[0] for m in mods} == set(FLOORS)


@pytest.mark.parametrize("module", _named_modules())
def test_every_module_the_map_names_imports(module):
    importlib.import_module(module)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module.split(".")[0])
    return out


def test_imports_only_go_down():
    upward = []
    for pkg, floor in FLOORS.items():
        for path in (ROOT / pkg).rglob("*.py"):
            for top in _imports(path) & set(FLOORS):
                if FLOORS[top] > floor:
                    upward.append(f"{path.relative_to(ROOT)} imports {top}")
    assert not upward, upward
