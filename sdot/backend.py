"""Array backends: numpy by default, torch tensors (CPU or CUDA) through the same code path.

Functions in ``sdot`` take arrays of either kind; ``namespace(x)`` returns the module whose
functions apply to ``x`` and ``asarray_like(a, ref)`` moves a parameter array to ``ref``'s backend,
device and floating dtype. torch is imported only when a tensor is actually passed in.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

__all__ = ["is_torch", "namespace", "asarray_like", "to_numpy"]


def is_torch(x: Any) -> bool:
    """True when ``x`` is a torch tensor (without importing torch when it is not loaded)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def namespace(*arrays: Any):
    """numpy, or torch when any argument is a torch tensor."""
    for a in arrays:
        if is_torch(a):
            return sys.modules["torch"]
    return np


def asarray_like(a: Any, ref: Any, dtype: Any = None):
    """``a`` as an array of ``ref``'s backend (and device); floating dtype follows ``ref``."""
    if is_torch(ref):
        torch = sys.modules["torch"]
        if dtype is None:
            dtype = ref.dtype if ref.is_floating_point() else torch.get_default_dtype()
        return torch.as_tensor(np.asarray(a) if not is_torch(a) else a, dtype=dtype, device=ref.device)
    return np.asarray(a, dtype=dtype if dtype is not None else float)


def to_numpy(x: Any) -> np.ndarray:
    """A numpy copy/view of ``x`` (detached and on the CPU for tensors)."""
    if is_torch(x):
        return x.detach().cpu().numpy()
    return np.asarray(x)
