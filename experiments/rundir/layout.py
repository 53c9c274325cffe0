"""A run directory: its layout, creation (``--overwrite`` only of a verified one), opening, and its config.

Layout (``--overwrite`` deletes exactly these, and refuses a folder holding anything else)::

    RUN_DIR/
      run.json                      marker: format, version, config fingerprint and resolved config, command
      run.lock                      held while a process runs or resumes the run (PID, host, command)
      config.toml                   the resolved config (every default filled in; runnable as is)
      summary.json                  per method and per trial results, wall time (written at the end)
      report.md, figures/*.png      written by ``sdot-nas report`` / at the end of ``sdot-nas run``
      trials/<label>__seed<k>/
        events.jsonl                the event log (:mod:`experiments.rundir.events`)
        events.discarded.jsonl      torn or diverging lines moved out of the log (kept, never deleted)
        checkpoint.npz              latest checkpoint; checkpoint.prev.npz the one before
        result.json                 the trial's final :class:`~hotnas.optimisers.base.SearchResult`

A directory without ``run.json`` is not a run directory; a run directory whose stored fingerprint
differs from the config's belongs to another config: both are clear :class:`RunDirError`\\ s.
"""

from __future__ import annotations

import json
import socket
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable

from ..config import Config, ConfigError, config_from_dict, dump_toml
from .checkpoint import refuse_legacy
from .files import (LOCK_NAME, RUN_FILES, RUN_FORMAT, RUN_VERSION, TMP_RE, TRIAL_FILES, ResumeWarning, RunDirError,
                    atomic_write, clean_temp_files, dumps, read_json)
from .lock import RunLock

__all__ = ["RunDir"]


class RunDir:
    """A run directory (see the module docstring). Use :meth:`create` or :meth:`open`; :meth:`lock` before
    writing into it."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = RunLock(self.path)

    # -- identity
    @staticmethod
    def is_run_dir(path: str | Path) -> bool:
        return (Path(path) / "run.json").is_file()

    @staticmethod
    def _marker(path: Path) -> dict[str, Any] | None:
        """The parsed ``run.json`` when it is a sdot-nas marker, else None."""
        try:
            meta = json.loads((path / "run.json").read_text())
        except (OSError, ValueError, UnicodeDecodeError):
            return None
        return meta if isinstance(meta, dict) and meta.get("format") == RUN_FORMAT else None

    @staticmethod
    def own_files(path: str | Path) -> tuple[list[Path], list[str]]:
        """``(own, unknown)``: the files and folders of ``path`` that a run directory creates (deepest
        first), and the names (relative paths) of anything else — symbolic links included."""
        path = Path(path)
        own: list[Path] = []
        unknown: list[str] = []

        def plain_file(p: Path) -> bool:
            return p.is_file() and not p.is_symlink()

        def plain_dir(p: Path) -> bool:
            return p.is_dir() and not p.is_symlink()

        for p in sorted(path.iterdir()):
            rel = p.name
            if (p.name in RUN_FILES or TMP_RE.match(p.name)) and plain_file(p):
                own.append(p)
            elif p.name == "figures" and plain_dir(p):
                for q in sorted(p.iterdir()):
                    if plain_file(q) and (q.suffix == ".png" or TMP_RE.match(q.name)):
                        own.append(q)
                    else:
                        unknown.append(f"figures/{q.name}")
                own.append(p)
            elif p.name == "trials" and plain_dir(p):
                for t in sorted(p.iterdir()):
                    if not plain_dir(t):
                        unknown.append(f"trials/{t.name}")
                        continue
                    for f in sorted(t.iterdir()):
                        if plain_file(f) and (f.name in TRIAL_FILES or TMP_RE.match(f.name)):
                            own.append(f)
                        else:
                            unknown.append(f"trials/{t.name}/{f.name}")
                    own.append(t)
                own.append(p)
            else:
                unknown.append(rel + ("/" if p.is_dir() else ""))
        return own, unknown

    @staticmethod
    def is_empty(path: str | Path) -> bool:
        """True for a folder holding nothing, or only what a run killed while starting leaves (its lock,
        temporary files)."""
        return all(p.name == LOCK_NAME or TMP_RE.match(p.name) for p in Path(path).iterdir())

    @classmethod
    def create(cls, path: str | Path, config: Config, *, overwrite: bool = False,
               command: list[str] | None = None, log: Callable[[str], None] | None = None) -> "RunDir":
        """A new run directory for ``config``, returned locked. An existing run directory is replaced only
        with ``overwrite``, and only when it is verified to be one (a sdot-nas ``run.json``, its
        ``config.toml`` and ``trials/``) holding nothing but the files a run creates; then exactly those
        are deleted. An existing non-empty directory that is not a run directory never is."""
        path = Path(path)
        if path.exists() and (not path.is_dir() or not cls.is_empty(path)):
            if not path.is_dir():
                raise RunDirError(f"{path} is a file; choose another --out")
            if not cls.is_run_dir(path):
                raise RunDirError(f"{path} exists and is not a sdot-nas run directory (no run.json); choose another "
                                  f"--out, it will not be overwritten")
            if cls._marker(path) is None:
                raise RunDirError(f"{path}/run.json is not a sdot-nas run marker, so {path} is not a run directory; "
                                  f"it will not be overwritten (choose another --out)")
            if not overwrite:
                raise RunDirError(f"{path} already holds a run; pass --resume to continue it, --overwrite to start "
                                  f"it again, or choose another --out")
            if not (path / "config.toml").is_file() or not (path / "trials").is_dir():
                raise RunDirError(f"{path} has a run marker but not the layout of a run directory (config.toml and "
                                  f"trials/); it will not be overwritten — delete it yourself if you mean to")
            run = cls(path)
            run.lock(log)
            try:
                own, unknown = cls.own_files(path)
                if unknown:
                    shown = ", ".join(unknown[:10]) + (f" and {len(unknown) - 10} more" if len(unknown) > 10 else "")
                    raise RunDirError(f"{path} holds files that sdot-nas did not create ({shown}); --overwrite "
                                      f"deletes only a run directory's own files, so it refuses: move them away "
                                      f"or choose another --out")
                for p in own:
                    if p.name == LOCK_NAME and p.parent == path:
                        continue
                    if p.is_dir():
                        p.rmdir()
                    else:
                        p.unlink()
            except BaseException:
                run.unlock()
                raise
        else:
            path.mkdir(parents=True, exist_ok=True)
            run = cls(path)
            run.lock(log)
        try:    # run.json first: it holds a copy of the config, so the directory resumes from then on
            atomic_write(path / "run.json", dumps({
                "format": RUN_FORMAT, "version": RUN_VERSION, "fingerprint": config.fingerprint(),
                "name": config.name, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "host": socket.gethostname(),
                "python": sys.version.split()[0], "command": command or [], "config": config.to_dict()}, indent=1))
            atomic_write(path / "config.toml", dump_toml(config.to_dict(), header=(
                f"Resolved config of this run (from {config.source or 'the Python API'}); "
                f"run it again with: sdot-nas run {path / 'config.toml'} --out NEW_DIR")))
            (path / "trials").mkdir(exist_ok=True)
        except BaseException:
            run.unlock()
            raise
        return run

    @classmethod
    def open(cls, path: str | Path) -> "RunDir":
        """An existing run directory; :class:`RunDirError` if ``path`` is not one."""
        path = Path(path)
        if not path.exists():
            raise RunDirError(f"{path} does not exist")
        if not path.is_dir():
            raise RunDirError(f"{path} is a file, not a run directory")
        marker = path / "run.json"
        if not marker.is_file():
            raise RunDirError(f"{path} is not a sdot-nas run directory (no run.json); pass the directory that "
                              f"'sdot-nas run' created (its --out)")
        meta = read_json(marker, "the run marker")
        if not isinstance(meta, dict) or meta.get("format") != RUN_FORMAT:
            fmt = meta.get("format") if isinstance(meta, dict) else None
            raise RunDirError(f"{marker} is not a sdot-nas run marker (format {fmt!r})")
        if meta.get("version", 0) > RUN_VERSION:
            raise RunDirError(f"{path} was written by a newer sdot-nas (run format {meta['version']}, this one "
                              f"reads {RUN_VERSION})")
        if not (path / "config.toml").is_file() and not isinstance(meta.get("config"), dict):
            raise RunDirError(f"{path} has no config.toml; it cannot be resumed or reported")
        return cls(path)

    # -- the lock
    def lock(self, log: Callable[[str], None] | None = None) -> "RunDir":
        """Take the directory's lock (:class:`RunLock`); :class:`RunDirError` when another process holds it."""
        self._lock.acquire(log)
        return self

    def unlock(self) -> None:
        self._lock.release()

    @property
    def meta(self) -> dict[str, Any]:
        return read_json(self.path / "run.json", "the run marker")

    def raw_config(self) -> dict[str, Any]:
        """The stored resolved config as a TOML table. A garbled or missing ``config.toml`` is rebuilt from
        the copy in ``run.json`` (with a :class:`ResumeWarning`); without a copy it is a :class:`RunDirError`."""
        import tomllib

        path = self.path / "config.toml"
        try:
            return tomllib.loads(path.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError, FileNotFoundError) as exc:
            problem = "is missing" if isinstance(exc, FileNotFoundError) else f"is not valid TOML ({exc})"
            copy = self.meta.get("config")
            if not isinstance(copy, dict):
                raise RunDirError(f"{path} {problem}, and run.json (written by an older sdot-nas) keeps no copy of "
                                  f"the config to rebuild it from; restore the file (it was written from the "
                                  f"config file the run started from)") from None
            warnings.warn(f"{path} {problem}; rebuilt from the copy in run.json", ResumeWarning, stacklevel=2)
            atomic_write(path, dump_toml(copy, header="Resolved config of this run (rebuilt from run.json)"))
            return copy

    def config(self, check_options: bool = False) -> Config:
        """The stored resolved config."""
        return config_from_dict(self.raw_config(), str(self.path / "config.toml"), check_options=check_options)

    def check_config(self, config: Config, from_run_dir: bool = False) -> None:
        """:class:`RunDirError` naming the differing keys when ``config`` is not the one of this run.

        ``from_run_dir``: ``config`` was read from this directory's own ``config.toml`` (``sdot-nas run
        RUN_DIR --resume``), so a difference means that file was edited (or flags override it)."""
        stored = self.meta.get("fingerprint")
        if stored == config.fingerprint():
            return
        original = self.meta.get("config")
        try:
            old = (config_from_dict(original, "run.json", check_options=False).result_defining()
                   if isinstance(original, dict) else ({} if from_run_dir else self.config().result_defining()))
        except (ConfigError, OSError):
            old = {}
        diffs = _diff(old, config.result_defining())
        shown = "; ".join(f"{k}: stored {a!r}, now {b!r}" for k, a, b in diffs[:5]) or "fingerprints differ"
        if from_run_dir:
            raise RunDirError(f"{self.path} belongs to another config than the one given now ({shown}): "
                              f"{self.path / 'config.toml'} was edited after the run started, or flags such as "
                              f"--seed/--budget override it. A run directory's config cannot change: undo the edit "
                              f"(and drop the flags) to resume it, or run the changed config in a new directory: "
                              f"sdot-nas run {self.path / 'config.toml'} --out NEW_DIR")
        raise RunDirError(f"{self.path} belongs to another config ({shown}); resume with the same config and "
                          f"flags (or 'sdot-nas run {self.path} --resume'), or choose another --out")

    # -- contents
    def trial_dir(self, trial_id: str) -> Path:
        return self.path / "trials" / trial_id

    def trial_ids(self) -> list[str]:
        d = self.path / "trials"
        return sorted(p.name for p in d.iterdir() if p.is_dir()) if d.is_dir() else []

    def check_no_pickles(self) -> None:
        """:class:`RunDirError` when a trial holds a pickled checkpoint of an older version (never loaded)."""
        for tid in self.trial_ids():
            refuse_legacy(self.trial_dir(tid))

    def clean_temp_files(self) -> list[str]:
        """Delete temporary files of interrupted writes in the run directory and its trials."""
        removed = clean_temp_files(self.path) + clean_temp_files(self.path / "figures")
        for tid in self.trial_ids():
            removed += [f"trials/{tid}/{n}" for n in clean_temp_files(self.trial_dir(tid))]
        return removed

    def write_summary(self, summary: dict[str, Any]) -> None:
        atomic_write(self.path / "summary.json", dumps(summary, indent=1))

    def summary(self) -> dict[str, Any] | None:
        """The stored summary; None when there is none or it is garbled (it is rebuilt from the trials)."""
        p = self.path / "summary.json"
        if not p.exists():
            return None
        try:
            out = json.loads(p.read_text())
            if isinstance(out, dict):
                return out
        except (ValueError, UnicodeDecodeError):
            pass
        warnings.warn(f"{p} is garbled; the summary is rebuilt from the trials", ResumeWarning, stacklevel=2)
        return None


def _diff(a: Any, b: Any, prefix: str = "") -> list[tuple[str, Any, Any]]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b), key=str):
            out += _diff(a.get(k), b.get(k), f"{prefix}.{k}" if prefix else str(k))
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b) and all(isinstance(x, dict) for x in a + b):
        out = []
        for i, (x, y) in enumerate(zip(a, b)):
            out += _diff(x, y, f"{prefix}[{i}]")
        return out
    return [] if a == b else [(prefix, a, b)]
