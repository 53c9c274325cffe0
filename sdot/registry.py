"""One registry class for every "name -> component" table of sdot, hotnas and experiments.

    >>> LAWS = Registry("example_law", package="sdot", listed=False)
    >>> _ = LAWS.register("glauber", ".rates:glauber")        # lazy: imported on first use
    >>> LAWS.load("glauber").name
    'glauber'
    >>> LAWS.load("glaubr")
    Traceback (most recent call last):
    ...
    ValueError: unknown example law 'glaubr' (did you mean 'glauber'?); known: glauber

Rules, the same for every registry:

* **Lazy entries.** An entry may be the object itself or a string ``"module:attr"`` (``attr`` may be
  dotted, ``"module:Class.factory"``; a module starting with ``.`` is relative to the registry's
  ``package``). It is imported on first use and the string is replaced by the object.
* **One duplicate rule.** Registering the *same* object again under a taken name is a no-op (so a
  plugin imported twice does not raise); so is the same definition re-created by re-importing its
  module (same module and qualified name, or equal dataclass fields): the newer object replaces the
  older. A *different* object under a taken name raises a ``ValueError`` naming both; pass
  ``replace=True`` to override on purpose.
* **Did you mean.** An unknown name raises a ``ValueError`` with the closest registered name and the
  full list.
* **Metadata.** ``register(name, obj, **meta)`` stores declarations beside the entry (for example a
  distance's batched engine path, ``batched="hotnn"``); read them with :meth:`Registry.meta`.

Every registry made here is listed in :data:`REGISTRIES` by its ``kind`` (what ``sdot-nas list`` and
the config checks read), once the module defining it has been imported.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
from collections.abc import Callable, Iterator, Mapping
from importlib import import_module
from typing import Any

__all__ = ["Registry", "REGISTRIES", "load_entry", "did_you_mean", "same_definition"]

#: kind -> the Registry of that kind (filled as registries are created).
REGISTRIES: dict[str, "Registry"] = {}


def did_you_mean(word: Any, choices: list[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest choice, or an empty string."""
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def load_entry(entry: str, package: str | None = None) -> Any:
    """Import a lazy ``"module:attr.sub"`` entry (a leading ``.`` in module is relative to ``package``)."""
    if not isinstance(entry, str) or entry.count(":") != 1:
        raise ValueError(f"a lazy registry entry must look like 'module:attribute', got {entry!r}")
    mod, attr = entry.split(":")
    obj: Any = import_module(mod, package)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def _definition_id(obj: Any) -> tuple[str, str] | None:
    if inspect.isclass(obj) or inspect.isfunction(obj) or inspect.ismethod(obj):
        return (getattr(obj, "__module__", ""), getattr(obj, "__qualname__", ""))
    return None


def same_definition(a: Any, b: Any) -> bool:
    """True when ``b`` is ``a``, or the same definition re-created by re-importing its module."""
    if a is b:
        return True
    ia, ib = _definition_id(a), _definition_id(b)
    if ia is not None or ib is not None:
        return ia == ib
    if dataclasses.is_dataclass(a) and dataclasses.is_dataclass(b) and not isinstance(a, type):
        if _definition_id(type(a)) != _definition_id(type(b)):
            return False
        return all(same_definition(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a))
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - arrays and other odd values compare ambiguously: not the same
        return False


class Registry(Mapping):
    """A named table of components with lazy loading, one duplicate rule and did-you-mean errors.

    Args:
        kind: what the entries are, in words (``"rate law"``, ``"search space"``); the key of
            :data:`REGISTRIES` and the word used in error messages.
        package: the package relative lazy entries (``".module:attr"``) are resolved against.
        hint: appended to the unknown-name error (how to add one).
        listed: list it in :data:`REGISTRIES` (False for private tables).
        label: the entries' name in messages (default: ``kind`` with spaces).
    """

    def __init__(self, kind: str, package: str | None = None, hint: str = "", listed: bool = True,
                 label: str | None = None) -> None:
        self.kind = str(kind)
        self.label = label or self.kind.replace("_", " ")
        self.package = package
        self.hint = hint
        self._entries: dict[str, Any] = {}
        self._meta: dict[str, dict[str, Any]] = {}
        self._hooks: list[Callable[[str, Any], None]] = []
        if listed:
            REGISTRIES[self.kind] = self

    # -- registration ------------------------------------------------------------------------
    def register(self, name: str, obj: Any = None, *, replace: bool = False, **meta: Any) -> Any:
        """Add ``obj`` (or a lazy ``"module:attr"`` string) under ``name``; returns ``obj``.

        Without ``obj`` it returns a decorator: ``@REG.register("name")``. Declarations in ``meta`` are
        kept beside the entry (:meth:`meta`).
        """
        if obj is None:
            def deco(o: Any) -> Any:
                self.register(name, o, replace=replace, **meta)
                return o
            return deco
        if not isinstance(name, str) or not name:
            raise TypeError(f"a {self.label} name must be a non-empty string, got {name!r}")
        if name in self._entries and not replace:
            old = self._entries[name]
            if isinstance(old, str) and not isinstance(obj, str):
                try:
                    old = self.load(name)
                except ImportError:
                    pass
            if not same_definition(old, obj):
                raise ValueError(
                    f"a {self.label} named {name!r} is already registered ({_describe(old)}); refusing "
                    f"{_describe(obj)}. Pick another name, or pass replace=True to override it on purpose")
            if old is obj and meta == self._meta.get(name, {}):
                return obj  # the same object again: nothing to do
        if not isinstance(obj, str):
            for hook in self._hooks:  # checks run first: a refused object is not registered
                hook(name, obj)
        self._entries[name] = obj
        self._meta[name] = dict(meta)
        return obj

    def __setitem__(self, name: str, obj: Any) -> None:  # dict-style registration, same rule
        self.register(name, obj)

    def unregister(self, name: str) -> None:
        """Remove ``name`` (tests and interactive use)."""
        self._entries.pop(name, None)
        self._meta.pop(name, None)

    def on_register(self, hook: Callable[[str, Any], None]) -> None:
        """Call ``hook(name, obj)`` whenever an object (not a lazy string) is registered."""
        self._hooks.append(hook)

    # -- lookup ------------------------------------------------------------------------------
    def load(self, name: str) -> Any:
        """The object registered under ``name`` (a lazy entry is imported); unknown names raise."""
        if name not in self._entries:
            raise ValueError(self.unknown_message(name))
        entry = self._entries[name]
        if isinstance(entry, str):
            try:
                entry = load_entry(entry, self.package)
            except (ImportError, AttributeError) as exc:
                raise ImportError(f"{self.label} {name!r}: cannot load {self._entries[name]!r}: {exc}") from exc
            self._entries[name] = entry
        return entry

    def peek(self, name: str, default: Any = None) -> Any:
        """The entry under ``name`` as stored (a lazy entry stays a string), or ``default``; never raises."""
        return self._entries.get(name, default)

    def __getitem__(self, name: str) -> Any:
        if name not in self._entries:
            raise KeyError(name)
        return self.load(name)

    def meta(self, name: str) -> dict[str, Any]:
        """The declarations registered with ``name`` (empty dict when none)."""
        if name not in self._entries:
            raise ValueError(self.unknown_message(name))
        return dict(self._meta.get(name, {}))

    def unknown_message(self, name: Any) -> str:
        names = sorted(self._entries)
        msg = f"unknown {self.label} {name!r}{did_you_mean(name, names)}; known: {', '.join(names) or '(none)'}"
        return msg + (f". {self.hint}" if self.hint else "")

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._entries))

    def __len__(self) -> int:
        return len(self._entries)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(sorted(self._entries))})"


def _describe(obj: Any) -> str:
    if isinstance(obj, str):
        return f"lazy entry {obj!r}"
    ident = _definition_id(obj)
    if ident is not None:
        return f"{ident[0]}.{ident[1]}"
    return f"{type(obj).__module__}.{type(obj).__qualname__} object"
