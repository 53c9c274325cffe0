"""The lock of a run directory, ``run.lock``: two processes never run in one directory.

A lock left by a killed process (its PID is gone, or reused by another process) is taken over with a
message; a live one is refused with a :class:`~experiments.rundir.files.RunDirError` naming its holder.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any, Callable

from .files import LOCK_NAME, RunDirError

__all__ = ["RunLock"]


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
