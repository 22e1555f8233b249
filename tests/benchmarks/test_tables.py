"""The benchmarks' one timing harness and one table writer."""
import time

from hin_captum.benchmarks.tables import markdown_table
from hin_captum.benchmarks.timing import best_times, fastest_batch_size


def test_best_times_interleave_the_functions_and_keep_each_ones_best():
    calls = []
    slow = lambda: (calls.append("slow"), time.sleep(0.02))
    fast = lambda: calls.append("fast")
    times = best_times([slow, fast], repeats=3)
    assert calls == ["slow", "fast"] * 4  # one warm-up each, then rounds of both
    assert times[0] >= 0.02 > times[1]


def test_the_fastest_batch_size_is_the_one_with_the_least_time_per_jet():
    size, times = fastest_batch_size(lambda size: {1: 3.0, 16: 1.0, 64: 2.0}[size], [1, 16, 64])
    assert size == 16 and times == {1: 3.0, 16: 1.0, 64: 2.0}


def test_tables_align_numbers_right_and_escape_bars():
    table = markdown_table([{"method": "lrp", "max |R|": 0.123456, "jets": 64.0, "ratio": float("nan")},
                            {"method": "ig", "max |R|": 12345.0, "jets": 8, "ratio": 2.5}])
    assert table.splitlines() == [
        "| method | max \\|R\\| | jets | ratio |",
        "|---|---:|---:|---:|",
        "| lrp | 0.123 | 64 | n/a |",
        "| ig | 12345 | 8 | 2.5 |",
    ]
