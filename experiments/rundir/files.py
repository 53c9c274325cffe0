"""The run directory's file names, its errors, and atomic writes (temp file, fsync, ``os.replace``).

Every file a run writes but the append-only event log goes through :func:`atomic_write`, so a crash
leaves either the old file or the new one, plus at worst a temporary ``.NAME.tmp-PID`` that a resume
deletes (:func:`clean_temp_files`).
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

__all__ = ["RunDirError", "CheckpointError", "ResumeWarning", "atomic_write", "clean_temp_files", "dumps", "read_json",
           "RUN_FORMAT", "RUN_VERSION", "CHECKPOINT", "CHECKPOINT_PREV", "LEGACY_CHECKPOINTS", "LOCK_NAME",
           "SYNC_AFTER_S", "RUN_FILES", "TRIAL_FILES", "TMP_RE", "PAUSE_ENV"]

RUN_FORMAT = "sdot-nas-run"
RUN_VERSION = 2
CHECKPOINT_FORMAT = "sdot-nas-checkpoint"
CHECKPOINT_VERSION = 2
CHECKPOINT, CHECKPOINT_PREV = "checkpoint.npz", "checkpoint.prev.npz"
LEGACY_CHECKPOINTS = ("checkpoint.pkl", "checkpoint.prev.pkl")
LOCK_NAME = "run.lock"
#: An evaluation that took longer than this (seconds) is fsynced to the log at once.
SYNC_AFTER_S = 0.05
#: Files and folders a run directory may hold (anything else makes ``--overwrite`` refuse).
RUN_FILES = ("run.json", "config.toml", "summary.json", "report.md", LOCK_NAME)
TRIAL_FILES = ("events.jsonl", "events.discarded.jsonl", CHECKPOINT, CHECKPOINT_PREV, "result.json",
               *LEGACY_CHECKPOINTS)
TMP_RE = re.compile(r"^\..+\.(tmp|stale)-\d+$")
#: Testing hook: seconds to sleep between writing a checkpoint's temporary file and renaming it.
PAUSE_ENV = "SDOT_NAS_TEST_CHECKPOINT_PAUSE"


class RunDirError(ValueError):
    """A directory that is not a run directory, belongs to another config, or is in use."""


class CheckpointError(ValueError):
    """A checkpoint file that is missing, truncated or corrupt."""


class ResumeWarning(UserWarning):
    """Something recovered on resume (a corrupt checkpoint, a torn log line, a diverging replay)."""


# ---------------------------------------------------------------------------------------------------
# atomic files


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def atomic_write(path: str | Path, data: bytes | str, *, keep_previous: Path | None = None,
                 pause_env: str | None = None) -> None:
    """Write ``data`` to ``path`` atomically: temp file in the same directory, fsync, ``os.replace``.

    With ``keep_previous``, the current file (if any) is first moved there. ``pause_env`` names an
    environment variable whose value (seconds) is slept between the write and the rename (fault tests).
    """
    path = Path(path)
    if isinstance(data, str):
        data = data.encode()
    tmp = _tmp_name(path)
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    if pause_env and os.environ.get(pause_env):
        time.sleep(float(os.environ[pause_env]))
    if keep_previous is not None and path.exists():
        os.replace(path, keep_previous)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def clean_temp_files(folder: Path) -> list[str]:
    """Delete the temporary files of interrupted atomic writes (``.NAME.tmp-PID``) in ``folder``."""
    removed = []
    if folder.is_dir():
        for p in folder.iterdir():
            if TMP_RE.match(p.name) and p.is_file() and not p.is_symlink() and ".run.lock." not in p.name:
                try:
                    p.unlink()
                    removed.append(p.name)
                except FileNotFoundError:  # pragma: no cover - removed meanwhile
                    pass
    return removed


def _json_default(o: Any) -> Any:
    try:
        import numpy as np

        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
    except ImportError:  # pragma: no cover
        pass
    return str(o)


def dumps(obj: Any, indent: int | None = None) -> str:
    return json.dumps(obj, default=_json_default, indent=indent, allow_nan=True)


def read_json(path: Path, what: str) -> Any:
    """``json.loads`` of a file; a garbled file is a :class:`RunDirError` naming it."""
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RunDirError(f"{path} ({what}) is garbled: {exc}") from None
