"""``hin-captum``: every subcommand behind one console command, and a non-editable install that works anywhere."""
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import uproot

from hin_captum.console import parse
from hin_captum.commands import COMMANDS

PROJECT = Path(__file__).resolve().parents[1]


def test_every_script_is_a_subcommand():
    assert set(COMMANDS) == {"attribute", "benchmark", "train", "make-toy-data", "plot"}
    assert parse(["attribute", "--max-jets", "3"]).max_jets == 3
    assert parse(["plot", "summary.root"]).summary == Path("summary.root")
    for script in ("attribute", "benchmark", "train", "make_toy_data"):
        text = (PROJECT / "scripts" / f"{script}.py").read_text()
        assert f'command("{script.replace("_", "-")}")' in text and len(text.splitlines()) <= 8  # thin wrappers


def test_a_non_editable_install_explains_and_plots_from_any_folder(tmp_path):
    """``pip install .`` (not editable): configs, models and toy jets come with the package, the command works."""
    target = tmp_path / "site"
    isolation = [] if importlib.util.find_spec("setuptools") is None else ["--no-build-isolation"]
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", *isolation,
                              "--target", str(target), str(PROJECT)], capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr
    environment = {**os.environ, "PYTHONPATH": str(target)}
    where = subprocess.run([sys.executable, "-c", "import hin_captum; print(hin_captum.__file__)"],
                           capture_output=True, text=True, cwd=tmp_path, env=environment)
    assert where.stdout.startswith(str(target)), where.stdout  # the installed copy, not the checkout

    run = subprocess.run([str(target / "bin" / "hin-captum"), "attribute", "--max-jets", "12", "--plot", "1",
                          "--out", "explained"], capture_output=True, text=True, cwd=tmp_path, env=environment,
                         timeout=600)
    assert run.returncode == 0, run.stderr
    assert "explained 12 jets" in run.stdout
    with uproot.open(tmp_path / "explained" / "lrp" / "toy_jets.root") as file:
        assert int(file["relevance"].arrays(["explained"], library="np")["explained"].sum()) == 12
    replot = subprocess.run([sys.executable, "-m", "hin_captum", "plot", "explained/lrp/summary.root", "--out",
                             "again"], capture_output=True, text=True, cwd=tmp_path, env=environment, timeout=600)
    assert replot.returncode == 0, replot.stderr
    assert len(list((tmp_path / "again").glob("*.png"))) == 6


def test_plotting_a_file_that_is_no_summary_is_one_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "hin_captum", "plot", str(tmp_path / "absent.root")],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 2 and result.stderr == f"error: no such file: {tmp_path / 'absent.root'}\n"
