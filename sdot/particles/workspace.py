"""Scratch buffers reused by the numpy hot paths of the particle steps (one set per thread)."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

__all__ = ["Workspace", "WS", "clear_workspace"]


class Workspace(threading.local):
    """Reusable scratch buffers for the numpy hot paths.

    A fresh 8 MB temporary costs page faults that take longer than the arithmetic on it (about
    3x at N = 10^6), so the steps keep their temporaries here, one buffer per name and dtype,
    grown on demand. Results that leave a step are never workspace views.
    """

    def __init__(self):
        self.bufs: dict = {}

    def get(self, name: str, shape: tuple | int, dtype: Any) -> np.ndarray:
        dtype = np.dtype(dtype)
        shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(int(s) for s in shape)
        size = int(np.prod(shape, dtype=np.int64))
        key = (name, dtype.str)
        buf = self.bufs.get(key)
        if buf is None or buf.size < size:
            buf = np.empty(size, dtype=dtype)
            self.bufs[key] = buf
        return buf[:size].reshape(shape)


WS = Workspace()


def clear_workspace() -> None:
    """Free the scratch buffers the numpy steps keep between calls (about 10 arrays of size N)."""
    WS.bufs.clear()
