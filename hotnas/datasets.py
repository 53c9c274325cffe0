"""Data sets: scikit-learn's handwritten digits (ship inside the installed package), and image data sets on disk
(CIFAR-10/100 python batches, ImageNet16-120, a folder of images; :func:`load_image_splits`, no torchvision).

``load_digits_splits(seed)`` gives deterministic, stratified train / validation / test splits of the
1,797 8x8 digit images (10 classes), standardised per pixel with the *training* split's mean and
standard deviation, as torch tensors of shape (n, 1, 8, 8) with int64 labels.

    >>> data = load_digits_splits(seed=0)
    >>> data.x_train.shape, data.x_val.shape, data.x_test.shape
    (torch.Size([1077, 1, 8, 8]), torch.Size([360, 1, 8, 8]), torch.Size([360, 1, 8, 8]))
"""

from __future__ import annotations

import json
import os
import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["DigitsData", "IMAGE_DATASETS", "load_digits_splits", "load_image_splits", "load_dataset"]


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


# ---------------------------------------------------------------------------------------------------
# Image data sets on disk (no torchvision): CIFAR-10 / CIFAR-100 python batches, ImageNet16-120, a folder
# ---------------------------------------------------------------------------------------------------
#: Data sets :func:`load_image_splits` reads, with their on-disk layout.
IMAGE_DATASETS = ("cifar10", "cifar10-valid", "cifar100", "imagenet16-120", "folder")


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles only plain containers and numpy arrays: any other global is refused (a pickle from an
    untrusted folder cannot run code)."""

    _ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
                ("numpy._core.multiarray", "scalar"), ("_codecs", "encode")}

    def find_class(self, module: str, name: str):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refused to load global {module}.{name} from a data batch "
                                     "(only numpy arrays and plain containers are allowed)")


def _read_batch(path: Path) -> dict[str, Any]:
    """One python-pickle batch as {str key: value}; ValueError naming the file when it is not one."""
    try:
        with open(path, "rb") as fh:
            d = _NumpyOnlyUnpickler(fh, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as e:
        raise ValueError(f"{path}: not a python-pickle data batch ({type(e).__name__}: {e})") from None
    if not isinstance(d, dict):
        raise ValueError(f"{path}: not a data batch (a {type(d).__name__}, expected a dict)")
    return {k.decode("latin1") if isinstance(k, bytes) else str(k): v for k, v in d.items()}


def _batch_arrays(path: Path, label_key: str, side: int) -> tuple[np.ndarray, np.ndarray]:
    d = _read_batch(path)
    if "data" not in d or label_key not in d:
        raise ValueError(f"{path}: batch lacks {'data' if 'data' not in d else label_key!r} "
                         f"(keys {sorted(d)})")
    x = np.asarray(d["data"], dtype=np.uint8)
    y = np.asarray(d[label_key], dtype=np.int64)
    if x.ndim != 2 or x.shape[1] != 3 * side * side or len(x) != len(y):
        raise ValueError(f"{path}: data of shape {x.shape} with {len(y)} labels; expected (n, {3 * side * side})")
    return x.reshape(-1, 3, side, side), y


def _need(path: Path, what: str) -> Path:
    if not path.exists():
        raise ValueError(f"missing split: {path} not found ({what})")
    return path


def _read_split_file(path: str | os.PathLike, names: Sequence[str]) -> dict[str, np.ndarray]:
    """NAS-Bench-201 split file (JSON; each entry a list of indices or ``["int", [indices]]``)."""
    try:
        d = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"split file {path}: unreadable ({e})") from None
    out = {}
    for n in names:
        if n not in d:
            raise ValueError(f"split file {path}: missing split {n!r} (has {sorted(d)})")
        v = d[n]
        v = v[1] if isinstance(v, list) and len(v) == 2 and isinstance(v[0], str) else v
        out[n] = np.asarray(v, dtype=np.int64)
    return out


def _halves(n: int, seed: int, split_file, names: tuple[str, str]) -> tuple[np.ndarray, np.ndarray]:
    if split_file is not None:
        s = _read_split_file(split_file, names)
        a, b = s[names[0]], s[names[1]]
        if a.size and (a.min() < 0 or max(a.max(), b.max()) >= n):
            raise ValueError(f"split file {split_file}: indices outside [0, {n})")
        return a, b
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[: n // 2]), np.sort(perm[n // 2:])


def _read_folder_split(root: Path, split: str, classes: list[str] | None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    from PIL import Image  # pillow: a dependency of matplotlib

    d = _need(root / split, f"a folder of images needs {root}/{{train,val,test}}/<class>/<image>")
    found = sorted(p.name for p in d.iterdir() if p.is_dir())
    if not found:
        raise ValueError(f"{d}: wrong folder format: no class sub-folders (expected {d}/<class>/<image>)")
    classes = classes or found
    extra = sorted(set(found) - set(classes))
    if extra:
        raise ValueError(f"{d}: classes {extra} do not appear in the training split")
    xs, ys, shape = [], [], None
    for k, c in enumerate(classes):
        if not (d / c).is_dir():
            continue
        for p in sorted((d / c).iterdir()):
            if p.suffix.lower() not in (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".ppm"):
                continue
            try:
                with Image.open(p) as im:
                    a = np.asarray(im.convert("RGB"), dtype=np.uint8).transpose(2, 0, 1)
            except OSError as e:
                raise ValueError(f"{p}: not a readable image ({e})") from None
            if shape is None:
                shape = a.shape
            elif a.shape != shape:
                raise ValueError(f"{p}: image of size {a.shape[1:]} where the others are {shape[1:]}; "
                                 "resize the folder to one size")
            xs.append(a)
            ys.append(k)
    if not xs:
        raise ValueError(f"{d}: wrong folder format: no images (.png/.jpg/...) under {d}/<class>/")
    return np.stack(xs), np.array(ys, dtype=np.int64), classes


def load_image_splits(name: str, root: str | os.PathLike, *, seed: int = 0, split_file: str | None = None,
                      dtype: torch.dtype = torch.float32) -> DigitsData:
    """Train / validation / test splits of an image data set on disk, standardised per channel with
    the training split's mean and standard deviation, as tensors (n, 3, H, W) and int64 labels.

    Layouts (the files of the usual distributions; nothing is downloaded):

    - ``"cifar10"``: ``root`` holds ``data_batch_1..5`` and ``test_batch`` (``cifar-10-batches-py``);
      NAS-Bench-201's ``cifar10`` protocol: train = the 50,000 training images, validation and test =
      two halves of the 10,000 test images.
    - ``"cifar10-valid"``: NB201's search protocol: train / validation = two halves of the 50,000
      training images, test = the 10,000 test images.
    - ``"cifar100"``: ``train`` and ``test`` files (``cifar-100-python``, fine labels); train = 50,000,
      validation / test = halves of the 10,000 test images.
    - ``"imagenet16-120"``: ``train_data_batch_1..10`` and ``val_data`` (16x16 downsampled ImageNet,
      labels 1..1000), classes 1..120 kept (labels 0..119); validation / test = halves of ``val_data``.
    - ``"folder"``: ``root/{train,val,test}/<class>/<image>`` (any format pillow reads, one size).

    The halves are NB201's exactly when ``split_file`` is NB201's split file for the data set
    (``cifar-split.txt``: keys ``train``/``valid``; ``cifar100-test-split.txt`` /
    ``imagenet-16-120-test-split.txt``: keys ``xvalid``/``xtest``); otherwise a seeded random halving
    (``seed``) of the same sizes. Batches are read by an unpickler that only admits numpy arrays.

    Raises ValueError naming the path: an unknown data set, a missing file or split folder, a file in
    the wrong format, images of different sizes.
    """
    if name not in IMAGE_DATASETS:
        raise ValueError(f"unknown image data set {name!r}; expected one of {IMAGE_DATASETS}")
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"data folder {root} does not exist or is not a folder")
    if name == "folder":
        for split in ("train", "val", "test"):
            _need(root / split, f"a folder of images needs {root}/{{train,val,test}}/<class>/<image>")
        xtr, ytr, classes = _read_folder_split(root, "train", None)
        xva, yva, _ = _read_folder_split(root, "val", classes)
        xte, yte, _ = _read_folder_split(root, "test", classes)
        n_classes = len(classes)
    elif name in ("cifar10", "cifar10-valid"):
        parts = [_batch_arrays(_need(root / f"data_batch_{i}", "CIFAR-10 python batches"), "labels", 32)
                 for i in range(1, 6)]
        xtrain, ytrain = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
        xtest, ytest = _batch_arrays(_need(root / "test_batch", "CIFAR-10 python batches"), "labels", 32)
        n_classes = 10
        if name == "cifar10-valid":
            a, b = _halves(len(ytrain), seed, split_file, ("train", "valid"))
            xtr, ytr, xva, yva, xte, yte = xtrain[a], ytrain[a], xtrain[b], ytrain[b], xtest, ytest
        else:
            a, b = _halves(len(ytest), seed, split_file, ("xvalid", "xtest"))
            xtr, ytr, xva, yva, xte, yte = xtrain, ytrain, xtest[a], ytest[a], xtest[b], ytest[b]
    elif name == "cifar100":
        xtr, ytr = _batch_arrays(_need(root / "train", "CIFAR-100 python files"), "fine_labels", 32)
        xtest, ytest = _batch_arrays(_need(root / "test", "CIFAR-100 python files"), "fine_labels", 32)
        a, b = _halves(len(ytest), seed, split_file, ("xvalid", "xtest"))
        xva, yva, xte, yte = xtest[a], ytest[a], xtest[b], ytest[b]
        n_classes = 100
    else:  # imagenet16-120
        files = sorted(root.glob("train_data_batch_*"))
        if not files:
            raise ValueError(f"missing split: no {root}/train_data_batch_<i> (ImageNet16 python batches)")
        parts = [_batch_arrays(f, "labels", 16) for f in files]
        xtrain, ytrain = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
        xval, yval = _batch_arrays(_need(root / "val_data", "ImageNet16 python batches"), "labels", 16)
        keep_tr, keep_va = (ytrain >= 1) & (ytrain <= 120), (yval >= 1) & (yval <= 120)
        xtr, ytr = xtrain[keep_tr], ytrain[keep_tr] - 1
        xval, yval = xval[keep_va], yval[keep_va] - 1
        a, b = _halves(len(yval), seed, split_file, ("xvalid", "xtest"))
        xva, yva, xte, yte = xval[a], yval[a], xval[b], yval[b]
        n_classes = 120
    for split, y in (("train", ytr), ("val", yva), ("test", yte)):
        if len(y) == 0:
            raise ValueError(f"missing split: the {split} split of {root} is empty")
        if y.min() < 0 or y.max() >= n_classes:
            raise ValueError(f"{root}: {split} labels outside [0, {n_classes})")
    mean = xtr.mean(axis=(0, 2, 3), keepdims=True, dtype=np.float64)
    std = xtr.std(axis=(0, 2, 3), keepdims=True, dtype=np.float64)
    std = np.where(std > 1e-8, std, 1.0)

    def tensors(x: np.ndarray, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.as_tensor((x - mean) / std, dtype=dtype).contiguous(), torch.as_tensor(y)

    return DigitsData(*tensors(xtr, ytr), *tensors(xva, yva), *tensors(xte, yte), seed=seed, n_classes=n_classes)


def load_dataset(name: str = "digits", root: str | os.PathLike | None = None, *, seed: int = 0,
                 split_file: str | None = None) -> DigitsData:
    """``"digits"`` (:func:`load_digits_splits`, ``root`` unused) or an image data set on disk
    (:func:`load_image_splits`; ``root`` required)."""
    if name == "digits":
        return load_digits_splits(int(seed))
    if root is None:
        raise ValueError(f"data set {name!r} needs root= (the folder holding its files)")
    return load_image_splits(name, root, seed=seed, split_file=split_file)
