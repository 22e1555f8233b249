"""The allocator settings of batched attribution: keep freed memory while a run is hot, hand it back between chunks."""
from __future__ import annotations

import ctypes


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
    """Hand the free pages of the heap back to the system (glibc's ``malloc_trim``); False where there is no glibc.

    With :func:`keep_freed_memory` the heap keeps what it frees, and over many chunks of
    jets free pages end up scattered between live blocks, so a long run's memory creeps
    up. The pipeline calls this after every chunk: memory is then set by one chunk,
    however many are explained, at the cost of touching the pages again once per chunk.
    """
    try:
        return bool(ctypes.CDLL("libc.so.6").malloc_trim(0))
    except (OSError, AttributeError):
        return False
