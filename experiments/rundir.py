"""Run directories that lose nothing: resolved config, append-only event log, data-only checkpoints, resume.

Layout (``--overwrite`` deletes exactly these, and refuses a folder holding anything else)::

    RUN_DIR/
      run.json                      marker: format, version, config fingerprint and resolved config, command
      run.lock                      held while a process runs or resumes the run (PID, host, command)
      config.toml                   the resolved config (every default filled in; runnable as is)
      summary.json                  per method and per trial results, wall time (written at the end)
      report.md, figures/*.png      written by ``sdot-nas report`` / at the end of ``sdot-nas run``
      trials/<label>__seed<k>/
        events.jsonl                the event log: appended, never rewritten in place (but for repairs)
        checkpoint.npz              latest checkpoint; checkpoint.prev.npz the one before
        result.json                 the trial's final :class:`~hotnas.optimisers.base.SearchResult`

**The event log is the source of truth; checkpoints only save recomputation.** One step of a trial
is ``ask -> query -> tell -> recommend``. Each evaluation is appended to the log as an ``"eval"`` line
(one ``write``) the moment it finishes, before anything else happens — fsynced at once when it took
longer than :data:`SYNC_AFTER_S` (a training), else with the next checkpoint — and the step is closed
by a ``"step"`` line (recommendation, benchmark counters, masses) after ``tell``. Every
``checkpoint_every`` steps the log is fsynced and the whole state is checkpointed.

**Checkpoints are data only** — never a pickle. ``checkpoint.npz`` is a NumPy zip archive read with
``allow_pickle=False``: a ``__state__`` member holds the state as UTF-8 JSON (optimiser ``state_dict``,
RNG states — a numpy ``bit_generator.state`` is a dict of integers, a torch generator state a uint8
array — benchmark counters), the arrays and tensors of the state are members ``a0, a1, ...`` referenced
from the JSON, and ``__sha256__`` is a digest of all of it. Tuples, sets, dicts with non-string keys,
non-finite floats, numpy arrays and torch tensors round-trip exactly (:func:`to_data`,
:func:`from_data`); any other object is refused when the checkpoint is written (``TypeError`` naming
where it sits in the state), so an optimiser whose state holds objects gives them explicit to-data /
from-data in its ``state_dict`` / ``load_state_dict``. A checkpoint is written to a temporary file,
fsynced, the current one moved to ``checkpoint.prev.npz`` and the new one ``os.replace``-d in.
Pickled checkpoints of older versions (``checkpoint.pkl``) are refused with a message saying how to
continue (delete them: the event log replays every logged evaluation), and nothing in them is executed.

On ``--resume`` (:func:`run_trial` with ``resume=True``):

1. temporary files of interrupted writes (``.NAME.tmp-PID``) are deleted;
2. the log is read; a torn last line is moved to ``events.discarded.jsonl`` (kept, never deleted) and
   the log rewritten without it; evaluations of a step that was not closed are kept (*pending*);
3. the newest checkpoint that is intact (digest, length, format), belongs to this trial and is not
   ahead of the log is loaded — a truncated or corrupt one is reported with a warning and the previous
   one is used; if none is usable, the trial restarts from its seed;
4. the steps logged after that checkpoint are **replayed**: the optimiser is asked again (it is
   deterministic given its state), the logged evaluations are told instead of querying the
   benchmark; the pending evaluations of an unclosed step are told too and only the rest of that step
   is evaluated, so no finished evaluation is repeated or lost. If the optimiser proposes something
   else than what was logged (a non-deterministic optimiser), the remaining logged evaluations are moved
   to ``events.discarded.jsonl`` with a warning and the run goes on live from there.

Only an evaluation in flight when the process died (not finished, or finished but not yet written:
microseconds) is run again.

A directory without ``run.json`` is not a run directory; a run directory whose stored fingerprint
differs from the config's belongs to another config: both are clear :class:`RunDirError`\\ s. A run
directory is locked while a process runs in it (:class:`RunLock`): a second ``sdot-nas run --resume``
is refused, and a lock left by a killed process (its PID is gone) is taken over with a message.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
import socket
import sys
import time
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from .config import Config, ConfigError, config_from_dict, dump_toml, import_plugins, registry_entry

__all__ = ["RunDir", "RunDirError", "CheckpointError", "ResumeWarning", "TrialSpec", "RunLock", "run_trial",
           "save_checkpoint", "read_checkpoint", "load_checkpoint", "read_events", "read_log", "result_from_events",
           "load_trial_results", "atomic_write", "build_benchmark", "build_optimiser", "to_data", "from_data",
           "encode_checkpoint", "decode_checkpoint", "RUN_FORMAT", "SYNC_AFTER_S"]

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
_TMP_RE = re.compile(r"^\..+\.(tmp|stale)-\d+$")
#: Testing hook: seconds to sleep between writing a checkpoint's temporary file and renaming it.
_PAUSE_ENV = "SDOT_NAS_TEST_CHECKPOINT_PAUSE"


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


def _clean_temp_files(folder: Path) -> list[str]:
    """Delete the temporary files of interrupted atomic writes (``.NAME.tmp-PID``) in ``folder``."""
    removed = []
    if folder.is_dir():
        for p in folder.iterdir():
            if _TMP_RE.match(p.name) and p.is_file() and not p.is_symlink() and ".run.lock." not in p.name:
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


def _dumps(obj: Any, indent: int | None = None) -> str:
    return json.dumps(obj, default=_json_default, indent=indent, allow_nan=True)


def _read_json(path: Path, what: str) -> Any:
    """``json.loads`` of a file; a garbled file is a :class:`RunDirError` naming it."""
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RunDirError(f"{path} ({what}) is garbled: {exc}") from None


# ---------------------------------------------------------------------------------------------------
# data-only state: JSON + arrays

_TAG = "__sdot__"


def to_data(obj: Any, arrays: dict[str, Any], where: str = "state") -> Any:
    """A JSON-able copy of ``obj``; numpy arrays and torch tensors go to ``arrays`` (key -> ndarray).

    Plain containers, numbers, strings, None, numpy scalars and arrays (not of dtype object) and torch
    tensors are stored; tuples, sets, non-string dict keys and non-finite floats are tagged so that
    :func:`from_data` restores them exactly. Anything else raises ``TypeError`` naming ``where``.
    """
    import numpy as np

    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return float(obj) if math.isfinite(obj) else {_TAG: "float", "value": repr(float(obj))}
    if isinstance(obj, np.generic):
        if isinstance(obj, (np.str_, np.bytes_, np.void)) or obj.dtype.hasobject:
            raise TypeError(f"{where}: a numpy {obj.dtype} scalar cannot be stored in a data-only checkpoint")
        return to_data(obj.item(), arrays, where)
    if isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:
            raise TypeError(f"{where}: a numpy array of dtype object cannot be stored in a data-only checkpoint "
                            f"(it would need pickle); store a list or a numeric array")
        key = f"a{len(arrays)}"
        arrays[key] = np.ascontiguousarray(obj)
        return {_TAG: "ndarray", "key": key}
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(obj, torch.Tensor):
        t = obj.detach().cpu()
        bf16 = t.dtype == torch.bfloat16
        arr = (t.view(torch.int16) if bf16 else t).contiguous().numpy()
        key = f"a{len(arrays)}"
        arrays[key] = arr.copy()
        return {_TAG: "tensor", "key": key, "dtype": str(obj.dtype).removeprefix("torch."),
                "device": str(obj.device), "requires_grad": bool(obj.requires_grad)}
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj) and _TAG not in obj:
            return {k: to_data(v, arrays, f"{where}[{k!r}]") for k, v in obj.items()}
        return {_TAG: "dict", "items": [[to_data(k, arrays, f"{where} key {k!r}"), to_data(v, arrays, f"{where}[{k!r}]")]
                                        for k, v in obj.items()]}
    if isinstance(obj, list):
        return [to_data(v, arrays, f"{where}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, tuple):
        return {_TAG: "tuple", "items": [to_data(v, arrays, f"{where}[{i}]") for i, v in enumerate(obj)]}
    if isinstance(obj, (set, frozenset)):
        try:
            items = sorted(obj)
        except TypeError:
            items = list(obj)
        return {_TAG: "frozenset" if isinstance(obj, frozenset) else "set",
                "items": [to_data(v, arrays, f"{where} item") for v in items]}
    raise TypeError(f"{where}: cannot store an object of type {type(obj).__module__}.{type(obj).__qualname__} in "
                    f"a data-only checkpoint (plain containers, numbers, strings, numpy arrays and torch tensors "
                    f"only); give its owner an explicit to-data / from-data in state_dict / load_state_dict")


def from_data(obj: Any, arrays: dict[str, Any]) -> Any:
    """Inverse of :func:`to_data`."""
    if isinstance(obj, list):
        return [from_data(v, arrays) for v in obj]
    if not isinstance(obj, dict):
        return obj
    tag = obj.get(_TAG)
    if tag is None:
        return {k: from_data(v, arrays) for k, v in obj.items()}
    if tag == "float":
        return float(obj["value"])
    if tag == "tuple":
        return tuple(from_data(v, arrays) for v in obj["items"])
    if tag in ("set", "frozenset"):
        items = [from_data(v, arrays) for v in obj["items"]]
        return set(items) if tag == "set" else frozenset(items)
    if tag == "dict":
        return {_hashable(from_data(k, arrays)): from_data(v, arrays) for k, v in obj["items"]}
    if tag in ("ndarray", "tensor"):
        arr = arrays.get(obj.get("key"))
        if arr is None:
            raise CheckpointError(f"the state references array {obj.get('key')!r}, which the file does not hold")
        if tag == "ndarray":
            return arr
        import torch

        dtype = getattr(torch, str(obj["dtype"]), None)
        if not isinstance(dtype, torch.dtype):
            raise CheckpointError(f"unknown torch dtype {obj['dtype']!r} in the checkpoint")
        t = torch.from_numpy(arr.copy())
        t = t.view(torch.bfloat16) if dtype == torch.bfloat16 else t.to(dtype)
        device = obj.get("device", "cpu")
        if device != "cpu":
            try:
                t = t.to(device)
            except (RuntimeError, AssertionError):  # the device is not available here: stay on the CPU
                pass
        return t.requires_grad_(bool(obj.get("requires_grad", False))) if t.is_floating_point() else t
    raise CheckpointError(f"unknown tag {tag!r} in the checkpoint state")


def _hashable(k: Any) -> Any:
    return tuple(_hashable(v) for v in k) if isinstance(k, list) else k


def _digest(state_json: bytes, arrays: dict[str, Any]) -> str:
    h = hashlib.sha256(state_json)
    for k in sorted(arrays):
        a = arrays[k]
        h.update(f"\n{k} {a.dtype.str} {a.shape}\n".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def encode_checkpoint(state: dict[str, Any]) -> bytes:
    """The bytes of a data-only checkpoint of ``state`` (an ``.npz`` archive; see the module docstring)."""
    import numpy as np

    arrays: dict[str, Any] = {}
    doc = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "state": to_data(state, arrays)}
    js = json.dumps(doc, allow_nan=False, separators=(",", ":")).encode()
    digest = _digest(js, arrays).encode()
    buf = io.BytesIO()
    np.savez(buf, __state__=np.frombuffer(js, dtype=np.uint8), __sha256__=np.frombuffer(digest, dtype=np.uint8),
             **arrays)
    return buf.getvalue()


_PICKLE_HINT = ("pickles can run arbitrary code, so they are never loaded")


def decode_checkpoint(blob: bytes, where: str = "checkpoint") -> dict[str, Any]:
    """Read the bytes of a data-only checkpoint; :class:`CheckpointError` says what is wrong with them.

    Never unpickles: the archive is read with ``allow_pickle=False``, its members must be the expected
    ones, and the digest must match before the JSON is parsed.
    """
    import numpy as np

    if blob[:1] == b"\x80" or blob.startswith(b"SDOTNAS-CHECKPOINT"):
        raise CheckpointError(f"{where} holds pickled data (the format of sdot-nas before run format 2); "
                              f"{_PICKLE_HINT}")
    if not blob.startswith(b"PK\x03\x04"):
        raise CheckpointError(f"{where} is not a sdot-nas checkpoint (not an .npz archive)")
    try:
        with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
            names = set(npz.files)
            unexpected = sorted(n for n in names if n not in ("__state__", "__sha256__") and not re.fullmatch(r"a\d+", n))
            if unexpected or "__state__" not in names or "__sha256__" not in names:
                raise CheckpointError(f"{where} is not a sdot-nas checkpoint (members {sorted(names)[:6]})")
            members = {n: npz[n] for n in names}
    except CheckpointError:
        raise
    except ValueError as exc:
        if "pickle" in str(exc):
            raise CheckpointError(f"{where} holds an object array (pickled data); {_PICKLE_HINT}") from None
        raise CheckpointError(f"{where} is corrupt: {exc}") from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise CheckpointError(f"{where} is truncated or corrupt ({type(exc).__name__}: {exc})") from None
    js = members.pop("__state__")
    digest = members.pop("__sha256__")
    if js.dtype != np.uint8 or digest.dtype != np.uint8 or js.ndim != 1:
        raise CheckpointError(f"{where} is not a sdot-nas checkpoint (bad state member)")
    js_bytes = js.tobytes()
    if _digest(js_bytes, members) != digest.tobytes().decode("ascii", "replace"):
        raise CheckpointError(f"{where} is corrupt (checksum mismatch)")
    try:
        doc = json.loads(js_bytes)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:  # pragma: no cover - the digest matched
        raise CheckpointError(f"{where} is corrupt: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{where} is not a sdot-nas checkpoint (format {doc.get('format') if isinstance(doc, dict) else None!r})")
    if doc.get("version", 0) > CHECKPOINT_VERSION:
        raise CheckpointError(f"{where} was written by a newer sdot-nas (checkpoint format {doc['version']})")
    return from_data(doc["state"], members)


# ---------------------------------------------------------------------------------------------------
# checkpoints


def save_checkpoint(trial_dir: str | Path, state: dict[str, Any]) -> None:
    """Atomically write ``state`` as ``checkpoint.npz``, keeping the previous one as ``checkpoint.prev.npz``.

    ``TypeError`` when the state holds something that is not data (see :func:`to_data`)."""
    trial_dir = Path(trial_dir)
    blob = encode_checkpoint(state)
    atomic_write(trial_dir / CHECKPOINT, blob, keep_previous=trial_dir / CHECKPOINT_PREV, pause_env=_PAUSE_ENV)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read and verify one checkpoint file; :class:`CheckpointError` says what is wrong with it."""
    path = Path(path)
    try:
        blob = path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"{path} does not exist") from None
    state = decode_checkpoint(blob, str(path))
    if not isinstance(state, dict) or "n_events" not in state:
        raise CheckpointError(f"{path} does not hold a trial state")
    return state


def _refuse_legacy(trial_dir: Path) -> None:
    old = [n for n in LEGACY_CHECKPOINTS if (trial_dir / n).exists()]
    if old:
        names = " and ".join(str(trial_dir / n) for n in old)
        raise RunDirError(f"{trial_dir} holds a pickled checkpoint ({', '.join(old)}) written by an older sdot-nas; "
                          f"{_PICKLE_HINT}. If you trust where this directory came from, delete {names} and "
                          f"resume again: the event log replays every logged evaluation, none is run again")


def load_checkpoint(trial_dir: str | Path, max_events: int | None = None, fingerprint: str | None = None,
                    trial: str | None = None) -> dict[str, Any] | None:
    """The newest usable checkpoint of a trial (current, else previous), or None.

    A checkpoint that cannot be read, that is ahead of the event log (``n_events > max_events``) or
    that belongs to another trial than ``trial`` is skipped with a :class:`ResumeWarning` (never
    loaded). One whose fingerprint differs raises :class:`RunDirError`; so does a pickled one.
    """
    trial_dir = Path(trial_dir)
    _refuse_legacy(trial_dir)
    for name in (CHECKPOINT, CHECKPOINT_PREV):
        path = trial_dir / name
        if not path.exists():
            if name == CHECKPOINT and (trial_dir / CHECKPOINT_PREV).exists():
                warnings.warn(f"{path} is missing (a crash between two renames); using the previous checkpoint",
                              ResumeWarning, stacklevel=2)
            continue
        try:
            state = read_checkpoint(path)
        except CheckpointError as exc:
            if "pickle" in str(exc):
                raise RunDirError(f"{exc}; delete {path} (the event log replays what it held) if you trust this "
                                  f"directory, and resume again") from None
            warnings.warn(f"{exc}; falling back to the previous checkpoint (the event log replays the rest)",
                          ResumeWarning, stacklevel=2)
            continue
        if fingerprint is not None and state.get("fingerprint") != fingerprint:
            raise RunDirError(f"{path} belongs to another config (fingerprint {state.get('fingerprint')!r:.14}, "
                              f"expected {fingerprint!r:.14})")
        if trial is not None and state.get("trial") != trial:
            warnings.warn(f"{path} belongs to trial {state.get('trial')!r}, not {trial!r}; it is not loaded (the "
                          f"event log replays this trial)", ResumeWarning, stacklevel=2)
            continue
        if max_events is not None and state["n_events"] > max_events:
            warnings.warn(f"{path} records {state['n_events']} evaluations but the event log holds {max_events}; "
                          f"falling back to the previous checkpoint", ResumeWarning, stacklevel=2)
            continue
        return state
    return None


# ---------------------------------------------------------------------------------------------------
# event log
#
# run format 2: {"kind": "eval", ...} one line per evaluation, written when it finishes;
#               {"kind": "step", ...} one line per step, after tell (recommendation, counters, masses).
# run format 1 (older runs, read for reports): one line per evaluation, written per step.

_STEP_KEYS = ("recommendation", "n_queries", "total_cost")


def read_log(path: str | Path, repair: bool = False) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(events, pending)`` of an event log.

    ``events``: one dict per evaluation of the *closed* steps, in order, each with ``step`` (its index),
    ``best_so_far``, ``test_of_best``, ``recommendation``, the benchmark counters and, on the last
    evaluation of a step, the optimiser's ``masses`` when it logged them. ``pending``: the evaluation
    lines of a last step that was not closed (its evaluations finished, the process died before
    ``tell``), sorted by their index in the step.

    A torn last line (a write cut short) is incomplete: with ``repair`` it is moved to
    ``events.discarded.jsonl`` and the log rewritten without it (with a :class:`ResumeWarning`);
    otherwise it is just left out. A corrupt line *before* the last one, or lines out of order,
    raise :class:`RunDirError`.
    """
    path = Path(path)
    if not path.exists():
        return [], []
    raw = path.read_bytes()
    lines = raw.split(b"\n")
    tail = lines.pop()                      # b"" when the file ends with a newline
    parsed: list[dict[str, Any]] = []
    for i, line in enumerate(lines):
        try:
            rec = json.loads(line)
            if not isinstance(rec, dict):
                raise ValueError
        except (ValueError, UnicodeDecodeError):
            if i == len(lines) - 1:
                tail = line + (b"\n" + tail if tail else b"")
                lines = lines[:i]
                break
            raise RunDirError(f"{path}: line {i + 1} is corrupt and more lines follow it; the log cannot be "
                              f"trusted (move the file away to restart this trial)") from None
        parsed.append(rec)

    events: list[dict[str, Any]] = []
    open_batch: dict[int, dict[str, Any]] = {}   # index -> eval line of the step not closed yet
    open_id: int | None = None
    v1_batch: list[dict[str, Any]] = []
    keep = len(parsed)                          # lines kept (format 1 may drop an incomplete last step)
    best, test_best = -math.inf, None

    def add(e: dict[str, Any], step_info: dict[str, Any] | None) -> None:
        nonlocal best, test_best
        e = dict(e)
        e.pop("kind", None)
        e["step"] = len(events)
        if e["value"] > best or not events:
            best, test_best = e["value"], e.get("test")
        e["best_so_far"], e["test_of_best"] = best, test_best
        if step_info is not None:
            for k in _STEP_KEYS:
                e[k] = step_info.get(k)
        events.append(e)

    for j, rec in enumerate(parsed):
        kind = rec.get("kind")
        if kind is None:                        # format 1
            v1_batch.append(rec)
            if len(v1_batch) == rec.get("batch_size", 1):
                for e in v1_batch:
                    add(e, e)
                v1_batch = []
        elif kind == "eval":
            if open_id is None:
                open_id = rec["batch"]
            elif rec["batch"] != open_id:
                raise RunDirError(f"{path}: line {j + 1} starts step {rec['batch']} before step {open_id} was "
                                  f"closed; the log cannot be trusted (move the file away to restart this trial)")
            if rec["index"] in open_batch and open_batch[rec["index"]]["arch"] != rec["arch"]:
                raise RunDirError(f"{path}: line {j + 1} logs evaluation {rec['index']} of step {open_id} twice "
                                  f"with different architectures; the log cannot be trusted")
            open_batch[rec["index"]] = rec
        elif kind == "step":
            if open_id != rec["batch"] or len(open_batch) != rec["batch_size"]:
                raise RunDirError(f"{path}: line {j + 1} closes step {rec['batch']} with {len(open_batch)} of "
                                  f"{rec['batch_size']} evaluations logged; the log cannot be trusted")
            batch = [open_batch[i] for i in sorted(open_batch)]
            for i, e in enumerate(batch):
                add(e, rec)
                if i == len(batch) - 1 and "masses" in rec:
                    events[-1]["masses"] = rec["masses"]
            open_batch, open_id = {}, None
        else:
            raise RunDirError(f"{path}: line {j + 1} has an unknown kind {kind!r}")
    if v1_batch:                                # format 1: a step with missing lines is dropped
        keep = len(parsed) - len(v1_batch)
    pending = [open_batch[i] for i in sorted(open_batch)]
    if tail or keep < len(parsed):
        dropped = lines[keep:] + ([tail] if tail else [])
        if repair:
            warnings.warn(f"{path}: the last line(s) were cut short by a crash ({len(dropped)} incomplete line(s)); "
                          f"moved to events.discarded.jsonl", ResumeWarning, stacklevel=2)
            _discard(path, [ln for ln in dropped if ln])
            atomic_write(path, b"".join(ln + b"\n" for ln in lines[:keep]))
    return events, pending


def read_events(path: str | Path, repair: bool = False) -> list[dict[str, Any]]:
    """The evaluations of the closed steps of an event log (see :func:`read_log`)."""
    return read_log(path, repair=repair)[0]


def _discard(log: Path, lines: Iterable[bytes]) -> None:
    with open(log.with_name("events.discarded.jsonl"), "ab") as fh:
        for line in lines:
            fh.write(line.rstrip(b"\n") + b"\n")
        fh.flush()
        os.fsync(fh.fileno())


class _EventLog:
    """Append-only writer; one unbuffered ``write`` per line group."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh = open(path, "ab", buffering=0)

    def append(self, events: list[dict[str, Any]], sync: bool = False) -> None:
        self._fh.write("".join(_dumps(e) + "\n" for e in events).encode())
        if sync:
            self.sync()

    def sync(self) -> None:
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        self._fh.close()


def result_from_events(events: list[dict[str, Any]], method: str, seed: int | None, optimum: float | None = None):
    """Rebuild a :class:`~hotnas.optimisers.base.SearchResult` from logged events."""
    from hotnas.benchmarks.base import Evaluation
    from hotnas.optimisers.base import SearchResult

    res = SearchResult(method=method, seed=seed, optimum=optimum)
    for e in events:
        res.add(Evaluation(e["arch"], e["value"], e.get("test"), e.get("cost", 1.0)), e.get("recommendation"),
                e["wall_clock"])
    return res


# ---------------------------------------------------------------------------------------------------
# the lock


def _proc_start(pid: int) -> str | None:
    """Start time of a process (Linux: field 22 of /proc/PID/stat), to tell a reused PID apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat[stat.rindex(")") + 2:].split()[19]
    except (OSError, ValueError, IndexError):
        return None


def _alive(pid: int, start: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:  # pragma: no cover
        return True
    if start is not None:
        now = _proc_start(pid)
        if now is not None and now != start:
            return False                  # the PID was reused by another process
    return True


class RunLock:
    """The lock of a run directory: the file ``run.lock`` (PID, host, process start time, command).

    Taken atomically (a fully written temporary file hard-linked to ``run.lock``, which fails when it
    exists; ``O_EXCL`` creation where hard links are not supported). A lock whose process is gone (same
    host, PID not alive or reused) is stale and taken over, with a message through ``log``; a live one
    makes :meth:`acquire` raise :class:`RunDirError` naming the holder.
    """

    def __init__(self, folder: str | Path) -> None:
        self.path = Path(folder) / LOCK_NAME
        self.held = False

    def _info(self) -> bytes:
        return json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "start": _proc_start(os.getpid()),
                           "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "command": sys.argv[:8]}).encode()

    def _create(self, data: bytes) -> bool:
        tmp = self.path.with_name(f".{LOCK_NAME}.tmp-{os.getpid()}")
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, self.path)
            return True
        except FileExistsError:
            return False
        except OSError:                     # no hard links here: exclusive creation instead
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            return True
        finally:
            tmp.unlink(missing_ok=True)

    def holder(self) -> tuple[dict[str, Any] | None, bytes]:
        try:
            blob = self.path.read_bytes()
        except FileNotFoundError:
            return None, b""
        try:
            info = json.loads(blob)
            return (info if isinstance(info, dict) else {}), blob
        except (ValueError, UnicodeDecodeError):
            return {}, blob

    def acquire(self, log: Callable[[str], None] | None = None) -> "RunLock":
        if self.held:
            return self
        data = self._info()
        for _ in range(20):
            if self._create(data):
                self.held = True
                return self
            info, blob = self.holder()
            if info is None:
                continue                          # released meanwhile
            pid, host = info.get("pid"), info.get("host")
            if not isinstance(pid, int) or not isinstance(host, str):
                age = time.time() - self.path.stat().st_mtime if self.path.exists() else 0.0
                if age < 5.0:
                    time.sleep(0.2)
                    continue
                reason = "unreadable"
            elif host != socket.gethostname():
                raise RunDirError(f"{self.path.parent} is in use by process {pid} on host {host} (since "
                                  f"{info.get('time')}); it cannot be checked from here. If you are sure no process "
                                  f"uses the directory, delete {self.path} and try again")
            elif pid == os.getpid() or _alive(pid, info.get("start")):
                cmd = " ".join(map(str, info.get("command") or []))
                raise RunDirError(f"{self.path.parent} is in use by process {pid} on this host (since "
                                  f"{info.get('time')}{': ' + cmd if cmd else ''}); wait for it to finish or stop it "
                                  f"— two processes must not run in one run directory")
            else:
                reason = f"process {pid} is gone"
            if self._break(blob) and log is not None:
                log(f"sdot-nas: {self.path} was left by a process that ended without releasing it ({reason}); "
                    f"taken over")
        raise RunDirError(f"{self.path.parent}: could not take the lock {self.path} (contention); try again")

    def _break(self, expected: bytes) -> bool:
        moved = self.path.with_name(f".{LOCK_NAME}.stale-{os.getpid()}")
        try:
            os.rename(self.path, moved)
        except FileNotFoundError:
            return False                          # someone else broke it
        if moved.read_bytes() != expected:        # we moved a fresh lock: put it back
            try:
                os.link(moved, self.path)
            except FileExistsError:
                pass
            moved.unlink(missing_ok=True)
            return False
        moved.unlink(missing_ok=True)
        return True

    def release(self) -> None:
        if not self.held:
            return
        info, _ = self.holder()
        if info and info.get("pid") == os.getpid():
            self.path.unlink(missing_ok=True)
        self.held = False

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


# ---------------------------------------------------------------------------------------------------
# building components


def _accepts(target: Any, name: str) -> bool:
    import inspect

    try:
        params = inspect.signature(target).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def build_benchmark(name: str, options: dict[str, Any], seed: int | None = None, device: str | None = None):
    """A benchmark from the registry; ``seed``/``device`` are passed when its factory takes them."""
    from hotnas.benchmarks import get_benchmark

    entry = registry_entry("benchmark", name)
    kwargs = dict(options)
    if seed is not None and entry is not None and _accepts(entry, "seed") and "seed" not in kwargs:
        kwargs["seed"] = seed
    if device is not None and entry is not None and _accepts(entry, "device"):
        kwargs["device"] = device
    return get_benchmark(name, **kwargs)


def build_optimiser(name: str, space: Any, seed: int, options: dict[str, Any], device: str | None = None,
                    budget: int | None = None):
    """An optimiser from the registry; ``device`` and the query ``budget`` are passed when it takes them."""
    import hotnas.optimisers  # noqa: F401 - registers the library's optimisers
    from hotnas.optimisers.base import get_optimiser

    kwargs = dict(options)
    entry = registry_entry("optimiser", name)
    for key, value in (("device", device), ("budget", budget)):
        if value is not None and entry is not None and _accepts(entry, key):
            kwargs[key] = value
    return get_optimiser(name, space, seed=seed, **kwargs)


def _benchmark_state(bench: Any) -> dict[str, Any]:
    if hasattr(bench, "state_dict"):
        return {"state_dict": bench.state_dict()}
    return {"n_queries": bench.n_queries, "total_cost": bench.total_cost}


def _load_benchmark_state(bench: Any, state: dict[str, Any]) -> None:
    if "state_dict" in state:
        bench.load_state_dict(state["state_dict"])
    else:
        bench.n_queries = state["n_queries"]
        bench.total_cost = state["total_cost"]


def _masses(opt: Any) -> dict[str, float] | None:
    """Mass per architecture, for the mass plots: the optimiser's ``masses()`` or ``mass()`` (a flow:
    the fraction of particles on each architecture); logged on the last event line of each step."""
    fn = getattr(opt, "masses", None) or getattr(opt, "mass", None)
    if not callable(fn):
        return None
    m = fn()
    return {str(k): float(v) for k, v in dict(m).items()} if m else None


# ---------------------------------------------------------------------------------------------------
# one trial


@dataclass
class TrialSpec:
    """Everything a worker needs to run (or resume) one method with one seed. Picklable."""

    label: str
    optimiser: str
    options: dict[str, Any]
    seed: int
    benchmark: str
    benchmark_options: dict[str, Any]
    budget: int
    batch_size: int = 1
    checkpoint_every: int = 1
    plugins: list[str] = field(default_factory=list)
    device: str | None = None
    fingerprint: str = ""

    @property
    def trial_id(self) -> str:
        return f"{self.label}__seed{self.seed}"

    @classmethod
    def from_config(cls, config: Config) -> list["TrialSpec"]:
        device = None if config.execution.device == "auto" else config.execution.device
        return [cls(label=m.label, optimiser=m.optimiser, options=dict(m.options), seed=seed,
                    benchmark=config.benchmark.name, benchmark_options=dict(config.benchmark.options),
                    budget=config.search.budget, batch_size=config.search.batch_size,
                    checkpoint_every=config.search.checkpoint_every, plugins=list(config.plugins),
                    device=device, fingerprint=config.fingerprint())
                for m in config.methods for seed in config.search.seeds]


Evaluator = Callable[..., list[Any]]


def _serial_evaluator(bench: Any, archs: list[str], on_result: Callable[[int, Any], None] | None = None) -> list[Any]:
    out = []
    for i, a in enumerate(archs):
        ev = bench.query(a)
        if on_result is not None:
            on_result(i, ev)
        out.append(ev)
    return out


def _check_trial_events(events: list[dict[str, Any]], spec: TrialSpec, log_path: Path) -> None:
    for e in events:
        if e.get("trial", spec.trial_id) != spec.trial_id or e.get("method", spec.label) != spec.label or \
                e.get("seed", spec.seed) != spec.seed:
            raise RunDirError(f"{log_path} holds evaluations of another trial ({e.get('trial') or e.get('method')}, "
                              f"seed {e.get('seed')}), not of {spec.trial_id}; it was copied or moved here — put it "
                              f"back where it belongs or move it away to restart this trial")


def _truncate_log(log_path: Path, keep_steps: int) -> None:
    """Keep the lines of the first ``keep_steps`` closed steps; move the rest to ``events.discarded.jsonl``."""
    lines = [ln for ln in log_path.read_bytes().split(b"\n") if ln]
    closed, cut, v1 = 0, 0, 0
    for j, line in enumerate(lines):
        if closed == keep_steps:
            break
        rec = json.loads(line)
        kind = rec.get("kind")
        if kind == "step":
            closed += 1
        elif kind is None:
            v1 += 1
            if v1 == rec.get("batch_size", 1):
                closed, v1 = closed + 1, 0
        cut = j + 1
    if closed < keep_steps:
        cut = len(lines)
    _discard(log_path, lines[cut:])
    atomic_write(log_path, b"".join(ln + b"\n" for ln in lines[:cut]))


def _group_steps(events: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    groups: list[list[dict[str, Any]]] = []
    for e in events:
        if groups and groups[-1][0]["batch"] == e["batch"]:
            groups[-1].append(e)
        else:
            groups.append([e])
    return groups


def run_trial(spec: TrialSpec, trial_dir: str | Path, resume: bool = False,
              evaluator: Evaluator | None = None,
              on_step: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Run (or, with ``resume``, continue) one trial in ``trial_dir``; return its result as a dict.

    ``evaluator(benchmark, archs)`` evaluates a step's architectures (default: ``benchmark.query``
    one after the other); when it takes an ``on_result`` keyword it is called ``on_result(i, evaluation)``
    as each finishes, and the evaluation is logged right then. ``on_step(n_new_evaluations)`` is called
    after each step (progress bars). The result equals ``run_search(optimiser, benchmark, budget,
    batch_size)`` of a fresh optimiser and benchmark, whether or not the trial was interrupted and
    resumed in between.
    """
    from hotnas.benchmarks.base import Evaluation

    trial_dir = Path(trial_dir)
    tid = spec.trial_id
    done = trial_dir / "result.json"
    if resume and done.exists():
        try:
            out = json.loads(done.read_text())
            reason = None if isinstance(out, dict) and out.get("trial", tid) == tid else "is another trial's result"
        except (ValueError, UnicodeDecodeError) as exc:
            out, reason = None, f"is garbled ({exc})"
        if reason is None:
            return out
        warnings.warn(f"{done} {reason}; it is rebuilt from the event log", ResumeWarning, stacklevel=2)
        done.unlink()
    trial_dir.mkdir(parents=True, exist_ok=True)
    log_path = trial_dir / "events.jsonl"
    if not resume and (log_path.exists() or any((trial_dir / n).exists()
                                                for n in (CHECKPOINT, CHECKPOINT_PREV, *LEGACY_CHECKPOINTS))):
        raise RunDirError(f"{trial_dir} already holds a started trial; pass resume=True (--resume) to continue it")
    if resume:
        _clean_temp_files(trial_dir)
        _refuse_legacy(trial_dir)

    import_plugins(spec.plugins)
    bench = build_benchmark(spec.benchmark, spec.benchmark_options, seed=spec.seed, device=spec.device)
    opt = build_optimiser(spec.optimiser, bench.space, spec.seed, spec.options, device=spec.device,
                          budget=spec.budget)
    evaluate = evaluator or _serial_evaluator
    streams = evaluator is None or _accepts(evaluator, "on_result")

    logged, pending = read_log(log_path, repair=True) if resume else ([], [])
    _check_trial_events(logged + pending, spec, log_path)
    ckpt = load_checkpoint(trial_dir, max_events=len(logged), fingerprint=spec.fingerprint, trial=tid) \
        if resume else None
    n_batches, n_events, finished = 0, 0, False
    if ckpt is not None:
        opt.load_state_dict(ckpt["optimiser"])
        _load_benchmark_state(bench, ckpt["benchmark"])
        n_batches, n_events, finished = ckpt["n_batches"], ckpt["n_events"], ckpt.get("finished", False)
    elif logged and any((trial_dir / n).exists() for n in (CHECKPOINT, CHECKPOINT_PREV)):
        warnings.warn(f"{trial_dir}: no usable checkpoint; replaying all {len(logged)} logged evaluations from "
                      f"the seed", ResumeWarning, stacklevel=2)

    kept = logged[:n_events]
    result = result_from_events(kept, spec.label, spec.seed, bench.optimum)
    log = _EventLog(log_path)
    clock = [kept[-1]["wall_clock"] if kept else 0.0, time.perf_counter()]   # wall-clock offset, start

    def checkpoint() -> None:
        log.sync()
        save_checkpoint(trial_dir, {
            "version": RUN_VERSION, "fingerprint": spec.fingerprint, "trial": tid, "optimiser_name": spec.optimiser,
            "seed": spec.seed, "n_batches": n_batches, "n_events": len(result.values), "finished": finished,
            "optimiser": opt.state_dict(), "benchmark": _benchmark_state(bench), "time": time.time()})

    def step(asked: int, archs: list[str], known: dict[int, tuple[Any, float]], write: bool) -> int:
        """Evaluate what ``known`` lacks (logging each evaluation as it finishes), tell, close the step."""
        nonlocal n_batches
        n = len(archs)
        evals: list[Any] = [None] * n
        walls: list[float] = [0.0] * n
        for i, (ev, wall) in known.items():
            evals[i], walls[i] = ev, wall
        missing = [i for i in range(n) if evals[i] is None]
        if missing:
            last = [time.perf_counter()]

            def record(k: int, ev: Any) -> None:
                i = missing[k]
                now = time.perf_counter()
                wall = clock[0] + now - clock[1]
                evals[i], walls[i] = ev, wall
                line = {"kind": "eval", "trial": tid, "batch": n_batches, "asked": asked, "batch_size": n,
                        "index": i, "method": spec.label, "seed": spec.seed, "arch": ev.arch, "value": ev.value,
                        "test": ev.test, "cost": ev.cost, "wall_clock": wall}
                if ev.arch != archs[i]:
                    line["proposed"] = archs[i]
                log.append([line], sync=now - last[0] > SYNC_AFTER_S)
                last[0] = time.perf_counter()

            sub = [archs[i] for i in missing]
            if streams:
                got = evaluate(bench, sub, on_result=record)
                if any(evals[i] is None for i in missing):      # an evaluator that did not stream them all
                    for k, ev in enumerate(got):
                        if evals[missing[k]] is None:
                            record(k, ev)
            else:
                for k, ev in enumerate(evaluate(bench, sub)):
                    record(k, ev)
        opt.tell(evals)
        rec = opt.recommend()
        masses = _masses(opt)
        for ev, wall in zip(evals, walls):
            result.add(ev, rec, wall)
        if write:
            line = {"kind": "step", "trial": tid, "batch": n_batches, "batch_size": n, "recommendation": rec,
                    "n_queries": bench.n_queries, "total_cost": bench.total_cost}
            if masses is not None:
                line["masses"] = masses
            log.append([line])
        n_batches += 1
        return len(missing)

    def diverged(where: str, proposed: list[str], logged_archs: list[str], n_closed: int, n_lost: int) -> dict:
        warnings.warn(f"{trial_dir}: on replay the optimiser proposed {proposed[:3]} where the log has "
                      f"{logged_archs[:3]} (it is not deterministic given its state); the {n_lost} logged "
                      f"evaluation(s) from {where} on are moved to events.discarded.jsonl and run again",
                      ResumeWarning, stacklevel=3)
        log.close()
        _truncate_log(log_path, n_closed)
        # the optimiser has consumed an ask: restart it from the last consistent state
        return run_trial(spec, trial_dir, resume=True, evaluator=evaluator, on_step=on_step)

    def as_eval(e: dict[str, Any]) -> Any:
        return Evaluation(e["arch"], e["value"], e.get("test"), e.get("cost", 1.0))

    try:
        # replay the steps logged after the checkpoint, without querying the benchmark
        groups = _group_steps(logged[n_events:])
        for g, batch in enumerate(groups):
            archs = list(opt.ask(batch[0]["asked"]))
            want = [e.get("proposed", e["arch"]) for e in batch]
            if archs != want:
                return diverged(f"step {batch[0]['step']}", archs, want, n_batches,
                                len(logged) - n_events - sum(map(len, groups[:g])) + len(pending))
            bench.n_queries += len(batch)
            bench.total_cost += sum(e.get("cost", 1.0) for e in batch)
            step(batch[0]["asked"], archs, {i: (as_eval(e), e["wall_clock"]) for i, e in enumerate(batch)},
                 write=False)
        if pending:     # a step whose evaluations (some or all) finished but which was not closed
            asked, size = pending[0]["asked"], pending[0]["batch_size"]
            archs = list(opt.ask(asked))
            if len(archs) != size or any(archs[e["index"]] != e.get("proposed", e["arch"]) for e in pending):
                return diverged("the last step", archs, [e["arch"] for e in pending], n_batches, len(pending))
            bench.n_queries += len(pending)
            bench.total_cost += sum(e.get("cost", 1.0) for e in pending)
            clock[:] = [max([result.wall_clock[-1] if result.wall_clock else 0.0] + [e["wall_clock"] for e in pending]),
                        time.perf_counter()]
            step(asked, archs, {e["index"]: (as_eval(e), e["wall_clock"]) for e in pending}, write=True)
        if len(result.values) > n_events:
            checkpoint()
        clock[:] = [result.wall_clock[-1] if result.wall_clock else 0.0, time.perf_counter()]
        if on_step is not None and result.values:
            on_step(len(result.values))

        while not finished and len(result.values) < spec.budget:
            asked = min(spec.batch_size, spec.budget - len(result.values))
            archs = list(opt.ask(asked))
            if not archs:
                finished = True
                break
            step(asked, archs, {}, write=True)
            if on_step is not None:
                on_step(len(archs))
            if n_batches % spec.checkpoint_every == 0:
                checkpoint()
        finished = True
        checkpoint()
    finally:
        log.close()

    out = result.to_dict()
    out.update(trial=tid, label=spec.label, optimiser=spec.optimiser, n_queries=bench.n_queries,
               total_cost=bench.total_cost, wall_time=result.wall_clock[-1] if result.wall_clock else 0.0)
    atomic_write(done, _dumps(out, indent=1))
    return out


# ---------------------------------------------------------------------------------------------------
# the run directory


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
            if (p.name in RUN_FILES or _TMP_RE.match(p.name)) and plain_file(p):
                own.append(p)
            elif p.name == "figures" and plain_dir(p):
                for q in sorted(p.iterdir()):
                    if plain_file(q) and (q.suffix == ".png" or _TMP_RE.match(q.name)):
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
                        if plain_file(f) and (f.name in TRIAL_FILES or _TMP_RE.match(f.name)):
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
        return all(p.name == LOCK_NAME or _TMP_RE.match(p.name) for p in Path(path).iterdir())

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
            atomic_write(path / "run.json", _dumps({
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
        meta = _read_json(marker, "the run marker")
        if not isinstance(meta, dict) or meta.get("format") != RUN_FORMAT:
            raise RunDirError(f"{marker} is not a sdot-nas run marker (format {meta.get('format') if isinstance(meta, dict) else None!r})")
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
        return _read_json(self.path / "run.json", "the run marker")

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
            _refuse_legacy(self.trial_dir(tid))

    def clean_temp_files(self) -> list[str]:
        """Delete temporary files of interrupted writes in the run directory and its trials."""
        removed = _clean_temp_files(self.path) + _clean_temp_files(self.path / "figures")
        for tid in self.trial_ids():
            removed += [f"trials/{tid}/{n}" for n in _clean_temp_files(self.trial_dir(tid))]
        return removed

    def write_summary(self, summary: dict[str, Any]) -> None:
        atomic_write(self.path / "summary.json", _dumps(summary, indent=1))

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


def load_trial_results(run: RunDir) -> dict[str, dict[str, Any]]:
    """Every trial's result by trial id: ``result.json`` when finished, else rebuilt from its events
    (marked ``"partial": True``; a garbled ``result.json`` is rebuilt the same way, with a warning).
    Each carries its events' masses trace when the optimiser logged one."""
    out: dict[str, dict[str, Any]] = {}
    for tid in run.trial_ids():
        d = run.trial_dir(tid)
        events = read_events(d / "events.jsonl")
        res = None
        if (d / "result.json").exists():
            try:
                res = json.loads((d / "result.json").read_text())
                if not isinstance(res, dict) or "values" not in res:
                    raise ValueError("not a trial result")
            except (ValueError, UnicodeDecodeError) as exc:
                warnings.warn(f"{d / 'result.json'} is garbled ({exc}); rebuilt from the event log", ResumeWarning,
                              stacklevel=2)
                res = None
        had_result = res is not None or (d / "result.json").exists()
        if res is None and events:
            label, _, seed = tid.rpartition("__seed")
            r = result_from_events(events, label, int(seed) if seed.isdigit() else None)
            res = r.to_dict()
            res.update(trial=tid, label=label, partial=not had_result, n_queries=len(events),
                       total_cost=sum(e.get("cost", 1.0) for e in events),
                       wall_time=events[-1]["wall_clock"])
        if res is None:
            continue
        res["masses"] = [(e["step"], e["masses"]) for e in events if "masses" in e]
        out[tid] = res
    return out
