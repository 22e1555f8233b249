"""Output files that appear whole or not at all, and the identity of an input file."""
from __future__ import annotations

import errno
import hashlib
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .errors import InputError


TEMPORARY_SUFFIX = ".tmp"
SPACE_ERRORS = {errno.ENOSPC, errno.EDQUOT}
ACCESS_ERRORS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR}


@contextmanager
def writing_into(folder: str | Path) -> Iterator[None]:
    """A full disk or a folder that cannot be written, as an :class:`InputError` of one line that names the
    folder (the files being written clean up after themselves)."""
    try:
        yield
    except OSError as error:
        if error.errno in SPACE_ERRORS:
            raise InputError(f"no space left on the device of {folder}: free some, or write elsewhere with --out") \
                from None
        if error.errno in ACCESS_ERRORS:
            raise InputError(f"cannot write to {folder} ({error.strerror}): give a folder you can write with --out") \
                from None
        raise


def temporary_beside(path: str | Path) -> Path:
    """A new empty file next to ``path``, named ``.<name>.<random>.tmp``, with the usual permissions (mkstemp
    makes 0600): where ``path`` is written before it is renamed into place."""
    path = Path(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMPORARY_SUFFIX)
    os.close(handle)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(temporary, 0o666 & ~umask)
    return Path(temporary)


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Remove the temporary files (:func:`temporary_beside`) that a killed process left in ``folder``."""
    stale = [path for path in Path(folder).glob(f".*.*{TEMPORARY_SUFFIX}") if path.is_file()]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path next to ``path``, renamed onto it only if the block finishes without error."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_beside(path)
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's bytes (the identity of a checkpoint)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
