"""Data-only checkpoints — never a pickle.

``checkpoint.npz`` is a NumPy zip archive read with ``allow_pickle=False``: a ``__state__`` member
holds the state as UTF-8 JSON (optimiser ``state_dict``, RNG states — a numpy ``bit_generator.state``
is a dict of integers, a torch generator state a uint8 array — benchmark counters), the arrays and
tensors of the state are members ``a0, a1, ...`` referenced from the JSON, and ``__sha256__`` is a
digest of all of it. Tuples, sets, dicts with non-string keys, non-finite floats, numpy arrays and torch
tensors round-trip exactly (:func:`to_data`, :func:`from_data`); any other object is refused when the
checkpoint is written (``TypeError`` naming where it sits in the state), so an optimiser whose state
holds objects gives them explicit to-data / from-data in its ``state_dict`` / ``load_state_dict``. A
checkpoint is written to a temporary file, fsynced, the current one moved to ``checkpoint.prev.npz`` and
the new one ``os.replace``-d in. Pickled checkpoints of older versions (``checkpoint.pkl``) are refused
with a message saying how to continue (delete them: the event log replays every logged evaluation), and
nothing in them is executed.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import re
import sys
import warnings
import zipfile
from pathlib import Path
from typing import Any

from .files import (CHECKPOINT, CHECKPOINT_FORMAT, CHECKPOINT_PREV, CHECKPOINT_VERSION, LEGACY_CHECKPOINTS, PAUSE_ENV,
                    CheckpointError, ResumeWarning, RunDirError, atomic_write)

__all__ = ["to_data", "from_data", "encode_checkpoint", "decode_checkpoint", "save_checkpoint", "read_checkpoint",
           "load_checkpoint", "refuse_legacy", "PICKLE_HINT"]

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
        return {_TAG: "dict", "items": [[to_data(k, arrays, f"{where} key {k!r}"),
                                         to_data(v, arrays, f"{where}[{k!r}]")] for k, v in obj.items()]}
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


PICKLE_HINT = ("pickles can run arbitrary code, so they are never loaded")


def decode_checkpoint(blob: bytes, where: str = "checkpoint") -> dict[str, Any]:
    """Read the bytes of a data-only checkpoint; :class:`CheckpointError` says what is wrong with them.

    Never unpickles: the archive is read with ``allow_pickle=False``, its members must be the expected
    ones, and the digest must match before the JSON is parsed.
    """
    import numpy as np

    if blob[:1] == b"\x80" or blob.startswith(b"SDOTNAS-CHECKPOINT"):
        raise CheckpointError(f"{where} holds pickled data (the format of sdot-nas before run format 2); "
                              f"{PICKLE_HINT}")
    if not blob.startswith(b"PK\x03\x04"):
        raise CheckpointError(f"{where} is not a sdot-nas checkpoint (not an .npz archive)")
    try:
        with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
            names = set(npz.files)
            unexpected = sorted(n for n in names
                                if n not in ("__state__", "__sha256__") and not re.fullmatch(r"a\d+", n))
            if unexpected or "__state__" not in names or "__sha256__" not in names:
                raise CheckpointError(f"{where} is not a sdot-nas checkpoint (members {sorted(names)[:6]})")
            members = {n: npz[n] for n in names}
    except CheckpointError:
        raise
    except ValueError as exc:
        if "pickle" in str(exc):
            raise CheckpointError(f"{where} holds an object array (pickled data); {PICKLE_HINT}") from None
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
        fmt = doc.get("format") if isinstance(doc, dict) else None
        raise CheckpointError(f"{where} is not a sdot-nas checkpoint (format {fmt!r})")
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
    atomic_write(trial_dir / CHECKPOINT, blob, keep_previous=trial_dir / CHECKPOINT_PREV, pause_env=PAUSE_ENV)


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


def refuse_legacy(trial_dir: Path) -> None:
    old = [n for n in LEGACY_CHECKPOINTS if (trial_dir / n).exists()]
    if old:
        names = " and ".join(str(trial_dir / n) for n in old)
        raise RunDirError(f"{trial_dir} holds a pickled checkpoint ({', '.join(old)}) written by an older sdot-nas; "
                          f"{PICKLE_HINT}. If you trust where this directory came from, delete {names} and "
                          f"resume again: the event log replays every logged evaluation, none is run again")


def load_checkpoint(trial_dir: str | Path, max_events: int | None = None, fingerprint: str | None = None,
                    trial: str | None = None) -> dict[str, Any] | None:
    """The newest usable checkpoint of a trial (current, else previous), or None.

    A checkpoint that cannot be read, that is ahead of the event log (``n_events > max_events``) or
    that belongs to another trial than ``trial`` is skipped with a :class:`ResumeWarning` (never
    loaded). One whose fingerprint differs raises :class:`RunDirError`; so does a pickled one.
    """
    trial_dir = Path(trial_dir)
    refuse_legacy(trial_dir)
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
