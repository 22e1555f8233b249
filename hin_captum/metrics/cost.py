"""What an explanation costs: peak tensor memory, from the allocations torch itself records."""
from __future__ import annotations

from typing import Callable

import torch
from torch.profiler import ProfilerActivity, profile


def peak_tensor_memory(function: Callable[[], object]) -> int:
    """Largest number of bytes of CPU tensors alive at once while ``function`` runs, above what was there before.

    Walks torch's own allocation records (``profile_memory``) in time order, so
    it counts tensors only, not the Python heap, and is independent of the
    allocator's habit of keeping freed memory.
    """
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as profiler:
        function()
    # Allocations inside an operator count as its self memory; frees outside operators as "[memory]" records.
    events = sorted(
        (event.time_range.start, event.cpu_memory_usage if event.name == "[memory]" else event.self_cpu_memory_usage)
        for event in profiler.events()
    )
    alive = peak = 0
    for _, change in events:
        alive += change
        peak = max(peak, alive)
    return peak
