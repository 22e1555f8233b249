"""Faults done for real to ``hin-captum attribute``: SIGKILL of the process, a file corrupt in its baskets, a full
disk and a folder that cannot be written. Each ends in one line (no traceback) and leaves no temporary file."""
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hin_captum.output.files import read_metadata
from tests.pipeline.test_distributed import assert_same_results
from tests.scripts.test_attribute import SCRIPT, attribute, write_toy, write_with_a_corrupt_basket  # noqa: F401

FAST = ["--plot", "0", "--batch-size", "16", "--chunk-size", "40"]


def temporaries(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.rglob("*.tmp"))


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("faults")
    return [write_toy(folder / f"f{index}.root", 240, seed=60 + index) for index in range(3)]


def command(inputs, out):
    return [sys.executable, str(SCRIPT), "--data", *map(str, inputs), "--out", str(out), *FAST]


def test_sigkill_then_the_same_command_gives_the_friend_files_of_an_uninterrupted_run(tmp_path, inputs):
    out = tmp_path / "out"
    killed = subprocess.Popen(command(inputs, out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    # kill it while it writes the second file, the first one complete
    while time.time() < deadline and killed.poll() is None and not (
            (out / "lrp" / "f0.root").exists() and list((out / "lrp").glob(".f1.root.*.tmp"))):
        time.sleep(0.002)
    assert killed.poll() is None, "the run ended before it could be killed"
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait()
    left = temporaries(out)
    assert left and left[0].startswith(".f1.root."), left  # the kill was real: a temporary file stayed
    assert not (out / "lrp" / "f1.root").exists() and not (out / "lrp" / "f2.root").exists()

    again = subprocess.run(command(inputs, out), capture_output=True, text=True, timeout=300)

    assert again.returncode == 0, again.stderr
    assert "skipped 1 complete file(s)" in again.stdout
    assert temporaries(out) == []
    uninterrupted = subprocess.run(command(inputs, tmp_path / "reference"), capture_output=True, text=True,
                                   timeout=300)
    assert uninterrupted.returncode == 0, uninterrupted.stderr
    assert_same_results(out, tmp_path / "reference", names=("f0.root", "f1.root", "f2.root"))


def test_a_file_corrupt_in_its_baskets_fails_alone_in_one_line_and_a_rerun_redoes_only_it(attribute, tmp_path,
                                                                                           inputs):
    broken = write_with_a_corrupt_basket(tmp_path / "broken.root", n_jets=80, seed=64)
    data = ["--data", inputs[0], broken, inputs[1], *FAST]

    code, captured = attribute(*data)

    assert code == 1
    assert "Traceback" not in captured.err
    failures = [line for line in captured.err.split("\r")[-1].splitlines() if "broken.root" in line]
    assert len(failures) == 1 and failures[0].startswith(f"lrp: no friend file for {broken}: entries 40 to 80 "
                                                         "could not be read ("), captured.err
    folder = tmp_path / "out" / "lrp"
    assert sorted(path.name for path in folder.glob("*.root")) == ["f0.root", "f1.root", "summary.root"]
    assert all(read_metadata(folder / name)["complete"] for name in ("f0.root", "f1.root"))
    assert temporaries(tmp_path / "out") == []

    code, captured = attribute(*data)  # still corrupt: it fails again, the others are not redone
    assert code == 1 and "skipped 2 complete file(s)" in captured.out and "explained 0 jets of 0 file(s)" in \
        captured.out

    write_toy(broken, 80, seed=64)  # mended
    code, captured = attribute(*data)
    assert code == 0 and "explained 80 jets of 1 file(s)" in captured.out and "skipped 2 complete" in captured.out
    assert read_metadata(folder / "broken.root")["complete"]


@contextlib.contextmanager
def mounted_tmpfs(folder: Path, options: str):
    """A real tmpfs at ``folder`` (root only), unmounted after."""
    folder.mkdir()
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True)
    if mount.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mount.stderr.decode().strip()}): needs root")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


def test_a_full_disk_is_one_line_naming_the_folder_and_leaves_no_partial_or_temporary_file(attribute, tmp_path,
                                                                                          inputs):
    with mounted_tmpfs(tmp_path / "disk", "size=400k") as disk:
        code, captured = attribute("--data", *inputs, *FAST, "--out", disk / "out")

        assert code == 2, captured.err
        visible = captured.err.split("\r")[-1]
        assert visible.startswith(f"error: no space left on the device of {disk / 'out' / 'lrp'}: ") and \
            visible.count("\n") == 1, captured.err
        assert temporaries(disk) == []
        friends = [path for path in (disk / "out").rglob("*.root") if path.name != "summary.root"]
        assert all(read_metadata(path)["complete"] for path in friends)  # only whole files stay
        assert len(friends) < len(inputs)


def test_an_output_folder_that_cannot_be_written_is_one_line(attribute, tmp_path, inputs):
    if os.geteuid() == 0:  # root writes through permissions: a read-only file system refuses it
        context = mounted_tmpfs(tmp_path / "read_only", "ro,size=64k")
    else:
        (tmp_path / "read_only").mkdir()
        (tmp_path / "read_only").chmod(0o555)
        context = contextlib.nullcontext(tmp_path / "read_only")
    with context as folder:
        code, captured = attribute("--data", inputs[0], *FAST, "--out", folder / "out")

    assert code == 2
    visible = captured.err.split("\r")[-1]
    assert visible.startswith(f"error: cannot write to {folder / 'out' / 'lrp'} (") and visible.count("\n") == 1, \
        captured.err
    assert "--out" in visible
