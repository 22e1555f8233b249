"""Small utilities every part shares: the user-error type, atomic output files, and the allocator settings."""
from .errors import InputError, refuse_unknown
from .files import atomic_path, file_digest, remove_stale_temporaries, temporary_beside, writing_into
from .memory import keep_freed_memory, release_freed_memory

__all__ = ["InputError", "atomic_path", "file_digest", "keep_freed_memory", "release_freed_memory",
           "refuse_unknown", "remove_stale_temporaries", "temporary_beside", "writing_into"]
