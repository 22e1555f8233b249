"""Atomic output files and file digests."""
import hashlib

import pytest

from hin_captum.util import atomic_path, file_digest


def test_a_file_appears_whole_or_not_at_all(tmp_path):
    target = tmp_path / "sub" / "out.txt"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as temporary:
            temporary.write_text("half")
            raise RuntimeError("interrupted")
    assert not target.exists() and list((tmp_path / "sub").iterdir()) == []
    with atomic_path(target) as temporary:
        temporary.write_text("whole")
    assert target.read_text() == "whole" and [p.name for p in (tmp_path / "sub").iterdir()] == ["out.txt"]


def test_the_digest_is_the_sha256_of_the_bytes(tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(b"x" * 3_000_000)
    assert file_digest(path) == hashlib.sha256(b"x" * 3_000_000).hexdigest()
