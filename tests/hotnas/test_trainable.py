"""DigitsBenchmark: registered as "digits", seeded and reproducible, sensible accuracies, quick."""

from __future__ import annotations

import time

import pytest

from hotnas.benchmarks import Evaluation, get_benchmark
from hotnas.benchmarks.trainable import DigitsBenchmark

ALL_CONV = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
ALL_NONE = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"


def test_registered_and_sensible():
    bench = get_benchmark("digits", epochs=3, seed=0)
    assert isinstance(bench, DigitsBenchmark)
    t0 = time.perf_counter()
    conv = bench.query(ALL_CONV)
    seconds = time.perf_counter() - t0
    none = bench.query(ALL_NONE)
    assert isinstance(conv, Evaluation) and conv.cost == 3.0
    assert 0 <= none.value <= 100 and 0 <= conv.test <= 100
    assert conv.value > 70 > 20 > none.value  # all-conv cell vs the empty cell
    assert bench.n_queries == 2 and bench.total_cost == 6.0
    assert bench.records[ALL_CONV].seconds > 0 and bench.total_seconds > 0
    assert seconds < 30  # about 0.3 s on an idle core; generous for a busy CI machine


def test_repeated_queries_agree_and_are_reproducible():
    a = DigitsBenchmark(epochs=1, seed=5, cache=False)
    first = a.query(ALL_CONV)
    assert a.query(ALL_CONV) == first  # retrained, same numbers
    assert DigitsBenchmark(epochs=1, seed=5).query(ALL_CONV) == first
    other = DigitsBenchmark(epochs=1, seed=6).query(ALL_CONV)
    assert other.value != first.value or other.test != first.test
    cached = DigitsBenchmark(epochs=1, seed=5)
    cached.query(ALL_CONV)
    spent = cached.total_seconds
    assert cached.query(ALL_CONV) == first and cached.total_seconds == spent and cached.total_cost == 2.0


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="epochs"):
        DigitsBenchmark(epochs=0)
    with pytest.raises(ValueError, match="unknown operation"):
        DigitsBenchmark(epochs=1).query("|conv5x5~0|+|none~0|none~1|+|none~0|none~1|none~2|")
