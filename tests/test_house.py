"""The house keeps its shape: no module over 700 lines, no import cycle between the project's modules."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("sdot", "hotnas", "experiments")
MAX_LINES = 700


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            out[name] = path
    return out


def test_no_module_is_longer_than_700_lines():
    long = {name: n for name, path in _modules().items()
            if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    parts = module.split(".")
    base = parts if is_package else parts[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _module_level_imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Project modules imported at module level (imports inside functions run late and cannot cycle)."""
    tree = ast.parse(path.read_text())
    is_package = path.name == "__init__.py"
    out: set[str] = set()
    body = list(tree.body)
    while body:
        node = body.pop(0)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.dump(node.test):
            continue  # never runs
        if isinstance(node, (ast.If, ast.Try)):  # guarded imports still run at import time
            body.extend(node.body + getattr(node, "orelse", []) + getattr(node, "finalbody", [])
                        + [s for h in getattr(node, "handlers", []) for s in h.body])
            continue
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name in known)
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(name, is_package, node)
            for a in node.names:  # `from pkg import sub` imports the submodule pkg.sub
                if f"{target}.{a.name}" in known:
                    out.add(f"{target}.{a.name}")
                elif target in known:
                    out.add(target)
    out.discard(name)
    return out


def test_no_import_cycle_between_modules():
    mods = _modules()
    known = set(mods)
    graph = {m: _module_level_imports(m, p, known) for m, p in mods.items()}
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def strong(v, counter=[0]):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in graph:
        if v not in index:
            strong(v)
    assert not cycles, f"import cycles: {cycles}"


def test_the_cycle_finder_finds_a_cycle(tmp_path, monkeypatch):
    """The checks above could fail: a two-module cycle in a scratch package is reported."""
    pkg = tmp_path / "sdot"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .b import y\nx = 1\n")
    (pkg / "b.py").write_text("from sdot.a import x\ny = 2\n")
    for other in ("hotnas", "experiments"):
        (tmp_path / other).mkdir()
    monkeypatch.setattr(__import__(__name__), "ROOT", tmp_path)
    import pytest
    with pytest.raises(AssertionError, match=r"sdot\.a.*sdot\.b"):
        test_no_import_cycle_between_modules()
    (pkg / "c.py").write_text("\n" * 701)
    with pytest.raises(AssertionError, match="sdot.c"):
        test_no_module_is_longer_than_700_lines()


def test_the_test_tree_mirrors_the_packages():
    """Tests of a package live in tests/<package>/; only the checks across floors stay at the top."""
    tests = ROOT / "tests"
    top = {p.name for p in tests.glob("test_*.py")}
    assert top <= {"test_architecture_doc.py", "test_conformance.py", "test_house.py"}, top
    for pkg in PACKAGES:
        assert list((tests / pkg).glob("test_*.py")), f"tests/{pkg}/ holds no tests"
    names = [p.name for p in tests.rglob("test_*.py")]
    assert len(names) == len(set(names)), "two test files share a name (pytest's rootdir import mode needs unique names)"
