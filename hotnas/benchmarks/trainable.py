"""Trainable benchmark: an NB201 cell trained from scratch on scikit-learn's digits, on CPU.

``DigitsBenchmark().query(arch)`` trains a stand-alone :class:`hotnas.supernet.DigitsNet` of
``arch`` for a fixed number of epochs from an initialisation seeded by (``seed``, ``arch``), so a
repeated query gives the same numbers; value = validation accuracy (%), test = test accuracy (%)
(report only), cost = epochs. Wall-clock seconds of real training are recorded in
:attr:`DigitsBenchmark.records` and :attr:`DigitsBenchmark.total_seconds`.

    >>> bench = DigitsBenchmark(epochs=8, seed=0)
    >>> ev = bench.query("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|")
    >>> ev.value > 80
    True
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch

from ..datasets import DigitsData, load_dataset
from ..spaces.nb201 import NB201Space
from ..supernet import NetConfig, TrainResult, arch_seed, train_from_scratch
from .base import Benchmark, Evaluation

__all__ = ["DigitsBenchmark", "torch_threads"]


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(n)`` (``None``: leave as is), restoring it afterwards.

    Tiny networks train fastest on one thread, and a fixed thread count keeps results bit-identical.
    """
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(before)


class DigitsBenchmark(Benchmark):
    """NB201 cells trained from scratch on sklearn digits (1,797 8x8 images, 10 classes).

    Args:
        epochs: training epochs per query (the query's cost).
        seed: base seed; a query of ``arch`` uses seed :func:`hotnas.supernet.arch_seed` (seed, arch).
        data_seed: seed of the stratified train / validation / test split (60 / 20 / 20 %).
        channels, n_cells, reduce_after: the network skeleton (:class:`hotnas.supernet.NetConfig`).
        lr, batch_size: Adam learning rate (cosine-annealed to 0) and minibatch size.
        num_threads: torch threads while training (default 1; ``None`` leaves torch's setting).
        cache: remember results, so a repeated query returns them without training again (its cost
            is still counted by :meth:`query`; :attr:`total_seconds` counts real training only).
        dataset: ``"digits"`` (default; ``data_seed`` picks the split) or an image data set on disk
            (``"cifar10"``, ``"cifar10-valid"``, ``"cifar100"``, ``"imagenet16-120"``, ``"folder"``:
            :func:`hotnas.datasets.load_image_splits`) read from ``root`` (``split_file``: NB201's split
            file for its exact halves). The network's input channels and classes follow the data.
        device: where training runs (``"cpu"``, ``"cuda"``, ...); an unavailable device is refused here.
    """

    name = "digits"

    def __init__(self, epochs: int = 8, seed: int = 0, data_seed: int = 0, channels: int = 8, n_cells: int = 2,
                 reduce_after: Sequence[int] = (0,), lr: float = 0.05, batch_size: int = 64,
                 num_threads: int | None = 1, cache: bool = True, space: NB201Space | None = None,
                 dataset: str = "digits", root: str | None = None, split_file: str | None = None,
                 device: str | None = None) -> None:
        super().__init__()
        from ..supernet import resolve_device

        self.device = str(resolve_device(device))
        if epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {epochs}")
        if batch_size < 2 or lr <= 0:
            raise ValueError(f"need batch_size >= 2 and lr > 0, got batch_size={batch_size}, lr={lr}")
        self.space = space or NB201Space()
        self.epochs = int(epochs)
        self.seed = int(seed)
        self.data: DigitsData = load_dataset(dataset, root, seed=int(data_seed), split_file=split_file)
        self.config = NetConfig(channels=int(channels), n_cells=int(n_cells), reduce_after=tuple(reduce_after),
                                in_channels=int(self.data.x_train.shape[1]), n_classes=int(self.data.n_classes))
        self.lr = float(lr)
        self.batch_size = int(batch_size)
        self.num_threads = num_threads
        self.cache = bool(cache)
        #: arch -> TrainResult of its (first) training
        self.records: dict[str, TrainResult] = {}
        #: seconds of real training over all queries (cached repeats add nothing)
        self.total_seconds = 0.0

    def train(self, arch: str, seed: int | None = None) -> TrainResult:
        """Train ``arch`` from scratch (seed: ``arch_seed(self.seed, arch)`` unless given), bypassing the
        cache and the query count — e.g. to retrain a final architecture under other seeds."""
        arch = self.space.canonical(arch)
        with torch_threads(self.num_threads):
            res = train_from_scratch(arch, self.data, epochs=self.epochs,
                                     seed=arch_seed(self.seed, arch) if seed is None else int(seed),
                                     config=self.config, lr=self.lr, batch_size=self.batch_size, device=self.device)
        self.total_seconds += res.seconds
        return res

    def _evaluate(self, arch: str) -> Evaluation:
        res = self.records.get(arch) if self.cache else None
        if res is None:
            res = self.train(arch)
            self.records.setdefault(arch, res)
        return Evaluation(arch=arch, value=res.val_acc, test=res.test_acc, cost=float(self.epochs))
