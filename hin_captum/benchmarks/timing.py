"""One timing harness for every benchmark: interleaved best-of-N wall times, and the fastest batch size."""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import torch
from torch_geometric.data import Batch, Data

from ..methods import AttributionMethod


def synchronize(device: torch.device | str) -> None:
    """Wait for the device's queued work (a CUDA device runs asynchronously)."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def best_times(functions: Sequence[Callable[[], object]], repeats: int, device: torch.device | str = "cpu"
               ) -> list[float]:
    """Best wall time of each function over ``repeats`` rounds, after one warm-up call each.

    Rounds interleave the functions, so a slow spell of the machine hits all of them alike.
    """
    for function in functions:
        function()
    best = [float("inf")] * len(functions)
    for _ in range(repeats):
        for index, function in enumerate(functions):
            synchronize(device)
            start = time.perf_counter()
            function()
            synchronize(device)
            best[index] = min(best[index], time.perf_counter() - start)
    return best


def seconds_per_jet(method: "AttributionMethod", jets: Sequence[Data], size: int, target: int = 1,
                    device: torch.device | str = "cpu") -> float:
    """Wall time per jet of ``method`` on a batch of the first ``size`` jets, after a warm-up call."""
    batch = Batch.from_data_list(list(jets[:size])).to(device)
    (seconds,) = best_times([lambda: method.explain(batch, target)], 1, device)
    return seconds / batch.num_graphs


def fastest_batch_size(seconds_per_jet: Callable[[int], float], sizes: Sequence[int]) -> tuple[int, dict[int, float]]:
    """The batch size of ``sizes`` at which ``seconds_per_jet(size)`` is smallest, and every size's time."""
    times = {int(size): seconds_per_jet(int(size)) for size in sizes}
    return min(times, key=times.get), times
