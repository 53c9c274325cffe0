"""Image data sets on disk, read offline from small files written here in the distributions' formats."""

from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pytest
import torch

from hotnas.datasets import load_dataset, load_image_splits


def _dump(path, obj):
    with open(path, "wb") as fh:
        pickle.dump(obj, fh, protocol=2)


def _cifar10(root, n=6, rng=np.random.default_rng(0)):
    root.mkdir(parents=True, exist_ok=True)
    raw = {}
    for i in range(1, 6):
        x = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        y = list(rng.integers(0, 10, size=n).tolist())
        _dump(root / f"data_batch_{i}", {b"batch_label": b"x", b"data": x, b"labels": y})
        raw[i] = (x, y)
    xt = rng.integers(0, 256, size=(2 * n, 3072), dtype=np.uint8)
    yt = rng.integers(0, 10, size=2 * n).tolist()
    _dump(root / "test_batch", {b"data": xt, b"labels": yt})
    return raw, (xt, yt)


def test_cifar10_batches_standardised_and_split(tmp_path):
    raw, (xt, yt) = _cifar10(tmp_path / "c10")
    d = load_image_splits("cifar10", tmp_path / "c10", seed=3)
    assert d.x_train.shape == (30, 3, 32, 32) and d.x_val.shape == (6, 3, 32, 32) and d.x_test.shape == (6, 3, 32, 32)
    assert d.n_classes == 10 and d.y_train.dtype == torch.int64
    # per-channel standardisation with the training split's statistics (closed form on the raw bytes)
    xtr = np.concatenate([raw[i][0] for i in range(1, 6)]).reshape(-1, 3, 32, 32).astype(np.float64)
    m, s = xtr.mean(axis=(0, 2, 3)), xtr.std(axis=(0, 2, 3))
    assert np.allclose(d.x_train[4, 1].numpy(), (xtr[4, 1] - m[1]) / s[1], atol=1e-5)
    assert d.y_train.tolist() == sum((raw[i][1] for i in range(1, 6)), [])
    # validation + test are the two halves of the test batch
    assert sorted(d.y_val.tolist() + d.y_test.tolist()) == sorted(yt)
    # NB201's split file gives exactly its halves; cifar10-valid halves the training images
    split = tmp_path / "cifar-split.txt"
    split.write_text(json.dumps({"train": ["int", list(range(0, 30, 2))], "valid": ["int", list(range(1, 30, 2))]}))
    v = load_image_splits("cifar10-valid", tmp_path / "c10", split_file=str(split))
    assert v.x_train.shape[0] == 15 and v.x_test.shape[0] == 12
    assert v.y_val.tolist() == d.y_train.tolist()[1::2]


def test_cifar100_and_imagenet16(tmp_path):
    rng = np.random.default_rng(1)
    r = tmp_path / "c100"
    r.mkdir()
    _dump(r / "train", {b"data": rng.integers(0, 256, (8, 3072), dtype=np.uint8),
                        b"fine_labels": list(range(90, 98)), b"coarse_labels": [0] * 8})
    _dump(r / "test", {b"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8), b"fine_labels": [1, 2, 3, 99]})
    d = load_image_splits("cifar100", r)
    assert d.n_classes == 100 and d.y_train.tolist() == list(range(90, 98)) and len(d.y_val) == 2
    im = tmp_path / "in16"
    im.mkdir()
    for i in (1, 2):
        _dump(im / f"train_data_batch_{i}", {"data": rng.integers(0, 256, (5, 768), dtype=np.uint8),
                                             "labels": [1, 120, 121, 500, 7], "mean": np.zeros(768)})
    _dump(im / "val_data", {"data": rng.integers(0, 256, (6, 768), dtype=np.uint8), "labels": [1, 2, 3, 4, 200, 120]})
    d = load_image_splits("imagenet16-120", im)
    assert d.x_train.shape == (6, 3, 16, 16) and d.n_classes == 120
    assert sorted(d.y_train.tolist()) == [0, 0, 6, 6, 119, 119]          # classes 1..120 kept, 0-based
    assert len(d.y_val) + len(d.y_test) == 5


def test_image_folder(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(2)
    for split, n in (("train", 3), ("val", 1), ("test", 1)):
        for c in ("cat", "dog"):
            os.makedirs(tmp_path / split / c)
            for k in range(n):
                Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)).save(tmp_path / split / c / f"{k}.png")
    d = load_dataset("folder", tmp_path)
    assert d.x_train.shape == (6, 3, 12, 12) and d.n_classes == 2 and d.y_train.tolist() == [0, 0, 0, 1, 1, 1]


def test_bad_input_is_refused_naming_the_value(tmp_path):
    with pytest.raises(ValueError, match="unknown image data set 'svhn'"):
        load_image_splits("svhn", tmp_path)
    with pytest.raises(ValueError, match="needs root"):
        load_dataset("cifar10")
    with pytest.raises(ValueError, match="does not exist"):
        load_image_splits("cifar10", tmp_path / "nowhere")
    _cifar10(tmp_path / "c10")
    os.remove(tmp_path / "c10" / "test_batch")
    with pytest.raises(ValueError, match="missing split.*test_batch"):
        load_image_splits("cifar10", tmp_path / "c10")
    (tmp_path / "c10" / "test_batch").write_text("not a pickle")
    with pytest.raises(ValueError, match="test_batch: not a python-pickle data batch"):
        load_image_splits("cifar10", tmp_path / "c10")

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    _dump(tmp_path / "c10" / "test_batch", {b"data": Evil(), b"labels": []})
    with pytest.raises(ValueError, match="refused to load global"):
        load_image_splits("cifar10", tmp_path / "c10")
    for split in ("train", "val", "test"):
        (tmp_path / "flat" / split).mkdir(parents=True)
    (tmp_path / "flat" / "train" / "a.png").write_bytes(b"")
    with pytest.raises(ValueError, match="wrong folder format"):
        load_dataset("folder", tmp_path / "flat")
    (tmp_path / "noval" / "train" / "c").mkdir(parents=True)
    with pytest.raises(ValueError, match="missing split"):
        load_dataset("folder", tmp_path / "noval")


def test_trainable_benchmark_on_an_image_folder(tmp_path):
    from PIL import Image

    from hotnas.benchmarks.trainable import DigitsBenchmark

    rng = np.random.default_rng(3)
    for split, n in (("train", 8), ("val", 2), ("test", 2)):
        for c in ("a", "b", "c"):
            os.makedirs(tmp_path / split / c)
            for k in range(n):
                Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(tmp_path / split / c / f"{k}.png")
    bench = DigitsBenchmark(epochs=1, dataset="folder", root=str(tmp_path), channels=2, batch_size=8)
    assert bench.config.in_channels == 3 and bench.config.n_classes == 3
    ev = bench.query("|nor_conv_3x3~0|+|skip_connect~0|none~1|+|none~0|none~1|nor_conv_1x1~2|")
    assert 0.0 <= ev.value <= 100.0 and ev.cost == 1.0
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="'cuda'"):
            DigitsBenchmark(epochs=1, device="cuda")
