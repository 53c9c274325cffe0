"""Data sets that ship inside installed packages (no download): scikit-learn's handwritten digits.

``load_digits_splits(seed)`` gives deterministic, stratified train / validation / test splits of the
1,797 8x8 digit images (10 classes), standardised per pixel with the *training* split's mean and
standard deviation, as torch tensors of shape (n, 1, 8, 8) with int64 labels.

    >>> data = load_digits_splits(seed=0)
    >>> data.x_train.shape, data.x_val.shape, data.x_test.shape
    (torch.Size([1077, 1, 8, 8]), torch.Size([360, 1, 8, 8]), torch.Size([360, 1, 8, 8]))
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

__all__ = ["DigitsData", "load_digits_splits"]


@dataclass(frozen=True)
class DigitsData:
    """Train / validation / test splits. ``x_*``: (n, 1, 8, 8) float tensors, ``y_*``: (n,) int64."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    seed: int
    n_classes: int = 10

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.x_train.shape[1:])  # type: ignore[return-value]

    def split(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x, y)`` of the split ``name`` in {"train", "val", "test"}."""
        if name not in ("train", "val", "test"):
            raise ValueError(f"unknown split {name!r}; expected 'train', 'val' or 'test'")
        return getattr(self, f"x_{name}"), getattr(self, f"y_{name}")


@lru_cache(maxsize=1)
def _raw_digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.images.astype(np.float64), bunch.target.astype(np.int64)


@lru_cache(maxsize=16)
def load_digits_splits(
    seed: int = 0, val_fraction: float = 0.2, test_fraction: float = 0.2, dtype: torch.dtype = torch.float32
) -> DigitsData:
    """Stratified, seeded splits of sklearn's digits, standardised with the training split's statistics.

    Each pixel is mapped to (v - mean_train) / std_train; pixels constant on the training split
    (std = 0, e.g. the always-blank corners) are only centred. The result is cached per arguments
    and its tensors must not be modified in place.
    """
    if not (0.0 < val_fraction < 1.0 and 0.0 < test_fraction < 1.0 and val_fraction + test_fraction < 1.0):
        raise ValueError(
            f"val_fraction={val_fraction} and test_fraction={test_fraction} must lie in (0, 1) with sum < 1"
        )
    from sklearn.model_selection import train_test_split

    images, labels = _raw_digits()
    index = np.arange(len(labels))
    rest, test = train_test_split(index, test_size=test_fraction, stratify=labels, random_state=seed)
    train, val = train_test_split(
        rest, test_size=val_fraction / (1.0 - test_fraction), stratify=labels[rest], random_state=seed + 1
    )
    mean = images[train].mean(axis=0)
    std = images[train].std(axis=0)
    std = np.where(std > 1e-8, std, 1.0)

    def tensors(idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.as_tensor((images[idx] - mean) / std, dtype=dtype).unsqueeze(1).contiguous()
        return x, torch.as_tensor(labels[idx])

    x_train, y_train = tensors(np.sort(train))
    x_val, y_val = tensors(np.sort(val))
    x_test, y_test = tensors(np.sort(test))
    return DigitsData(x_train, y_train, x_val, y_val, x_test, y_test, seed=seed)
