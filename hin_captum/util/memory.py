"""The allocator settings of batched attribution: keep freed memory while a run is hot, hand it back between chunks."""
from __future__ import annotations

import ctypes
import gc


def keep_freed_memory() -> bool:
    """Let glibc keep freed large blocks in the heap instead of returning them to the system.

    Edge-sized activations of a batch of jets are hundreds of MB; by default glibc
    maps each one afresh and the kernel zero-fills every page on first touch.
    Keeping them makes batched attribution about 2x faster (see the README's
    benchmark); the price is that the process keeps its peak memory. The same
    effect for any Python process: ``MALLOC_MMAP_THRESHOLD_=1073741824
    MALLOC_TRIM_THRESHOLD_=2147483647``. Returns whether the setting took (glibc only).
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    trim_threshold, mmap_threshold = -1, -3  # M_TRIM_THRESHOLD, M_MMAP_THRESHOLD in malloc.h
    return bool(libc.mallopt(mmap_threshold, 1 << 30)) and bool(libc.mallopt(trim_threshold, (1 << 31) - 1))


def release_freed_memory() -> bool:
    """Free what unreachable reference cycles hold, then hand the free pages of the heap back to the system
    (glibc's ``malloc_trim``); False where there is no glibc.

    A run leaves reference cycles behind (mostly uproot's objects) that hold memory
    Python's collector does not weigh: left to its own schedule, the heap in use grew
    by about 4 KB per jet between collections (208 to 287 MB over
    40k jets; flat at 186-191 MB when collected after each chunk). With
    :func:`keep_freed_memory` the heap also keeps what it frees, and free pages end up
    scattered between live blocks. The pipeline calls this after every chunk, so that
    memory is set by one chunk however many are explained.
    """
    gc.collect()
    try:
        return bool(ctypes.CDLL("libc.so.6").malloc_trim(0))
    except (OSError, AttributeError):
        return False
