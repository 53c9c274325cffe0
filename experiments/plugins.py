"""Plugins: modules or ``.py`` files imported before a config is checked, so the components they register
(spaces, benchmarks, optimisers, distances, ...) are known by name.

    import_plugins(["my_ext", "./local_ext.py"], base=config_folder)

A plugin is imported once per module (or absolute file path): importing it again registers nothing twice.
"""

from __future__ import annotations

import hashlib
import importlib
from pathlib import Path

__all__ = ["import_plugins"]


def _is_path_plugin(entry: str) -> bool:
    return entry.endswith(".py") or "/" in entry or "\\" in entry


def _load_file_plugin(path: Path) -> None:
    """Import a plugin file once per absolute path, as module ``<stem>`` (or a unique name if taken)."""
    import importlib.util
    import sys

    path = path.resolve()
    for mod in list(sys.modules.values()):
        if getattr(mod, "__file__", None) and Path(mod.__file__).resolve() == path:
            return  # already imported (by this function or as a module): a re-import would re-register
    name = path.stem if path.name != "__init__.py" else path.parent.name
    if name in sys.modules or not name.isidentifier():
        name = f"sdot_nas_plugin_{hashlib.sha1(str(path).encode()).hexdigest()[:10]}"
    spec = importlib.util.spec_from_file_location(
        name, path, submodule_search_locations=[str(path.parent)] if path.name == "__init__.py" else None)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise


def import_plugins(plugins: list[str], where: str = "plugins", base: str | Path | None = None) -> list[str]:
    """Import each plugin (they register their components on import); returns them resolved.

    A plugin is a module name (``"my_ext"``, ``"package.module"``: looked up on ``sys.path``, then as
    ``my_ext.py`` or ``my_ext/__init__.py`` in ``base``, the config's folder) or a path to a ``.py``
    file (relative to ``base``). Resolved entries are module names, or absolute file paths for
    plugins found through ``base``, so a run directory resumes from any working directory. Importing a
    plugin twice is a no-op. A plugin that cannot be found raises a :class:`ConfigError` saying where
    it was looked for.
    """
    import sys

    from .config import ConfigError  # a plugin that cannot be imported is a config error

    base_dir = Path(base).resolve() if base is not None else None
    resolved: list[str] = []
    for mod in plugins:
        if not isinstance(mod, str) or not mod.strip():
            raise ConfigError(f"{where}: plugin {mod!r} is neither a module name nor a path to a .py file")
        if _is_path_plugin(mod):
            path = Path(mod).expanduser()
            if not path.is_absolute():
                path = (base_dir or Path.cwd()) / path
            if path.is_dir():
                path = path / "__init__.py"
            if not path.is_file():
                relative = base_dir and not Path(mod).is_absolute()
                rel = f" (relative to the config's folder {base_dir})" if relative else ""
                raise ConfigError(f"{where}: plugin file {mod!r} not found: looked for {path}{rel}")
            try:
                _load_file_plugin(path)
            except ConfigError:
                raise
            except Exception as exc:
                raise ConfigError(f"{where}: plugin file {str(path)!r} failed to import: {type(exc).__name__}: "
                                  f"{exc}") from exc
            resolved.append(str(path.resolve()))
            continue
        if mod.startswith(".") or not all(part.isidentifier() for part in mod.split(".")):
            raise ConfigError(f"{where}: plugin module name {mod!r} is not a module name; list importable modules "
                              f"such as \"my_ext\" or \"package.module\", or a path to a .py file")
        try:
            importlib.import_module(mod)
            resolved.append(mod)
            continue
        except ModuleNotFoundError as exc:
            top = mod.split(".")[0]
            if exc.name not in (mod, top) and not mod.startswith(f"{exc.name}."):
                raise ConfigError(f"{where}: plugin module {mod!r} failed to import: {exc}") from exc
            missing = exc
        except ImportError as exc:
            raise ConfigError(f"{where}: plugin module {mod!r} failed to import: {exc}") from exc
        candidates: list[Path] = []
        if base_dir is not None:
            rel = Path(*mod.split("."))
            candidates = [base_dir / rel.with_suffix(".py"), base_dir / rel / "__init__.py"]
        found = next((c for c in candidates if c.is_file()), None)
        if found is not None:
            try:
                _load_file_plugin(found)
            except Exception as exc:
                raise ConfigError(f"{where}: plugin file {str(found)!r} failed to import: "
                                  f"{type(exc).__name__}: {exc}") from exc
            resolved.append(str(found.resolve()))
            continue
        searched = [p for p in sys.path if p][:6]
        also = f" and in the config's folder ({', '.join(map(str, candidates))})" if candidates else ""
        raise ConfigError(f"{where}: cannot import plugin module {mod!r}: {missing}; looked on sys.path "
                          f"({', '.join(searched)}{', ...' if len(sys.path) > 6 else ''}){also}. Give a path to "
                          f"the file (\"./my_ext.py\", relative to the config) or install the module")
    return resolved
