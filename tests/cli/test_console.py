"""``hin-captum``: every subcommand behind one console command, and one-line errors."""
import subprocess
import sys
from pathlib import Path

import pytest

from hin_captum.cli.console import parse
from hin_captum.cli.commands import COMMANDS

PROJECT = Path(__file__).resolve().parents[2]


def test_every_script_is_a_subcommand():
    assert set(COMMANDS) == {"attribute", "prototype", "benchmark", "train", "make-toy-data", "plot"}
    assert parse(["attribute", "--max-jets", "3"]).max_jets == 3
    assert parse(["plot", "summary.root"]).summary == Path("summary.root")
    assert parse(["prototype", "--n", "3"]).n == 3
    for script in ("attribute", "prototype", "benchmark", "train", "make_toy_data"):
        text = (PROJECT / "scripts" / f"{script}.py").read_text()
        assert f'script("{script.replace("_", "-")}")' in text and len(text.splitlines()) <= 8  # thin wrappers


def test_plotting_a_file_that_is_no_summary_is_one_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "hin_captum", "plot", str(tmp_path / "absent.root")],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 2 and result.stderr == f"error: no such file: {tmp_path / 'absent.root'}\n"
