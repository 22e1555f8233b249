"""The specified layout installs: ``pip install .`` and ``pip install -e .`` find configs/ and pretrained/ (top-level
folders beside hin_captum/) and the command works from any folder; setup.cfg lists every package."""
import configparser
import importlib.util
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
import uproot

PROJECT = Path(__file__).resolve().parents[1]


def test_the_top_level_is_as_specified_and_setup_cfg_lists_every_package():
    for name in ("hin_captum", "configs", "scripts", "tests", "pretrained", "setup.cfg", "README.md"):
        assert (PROJECT / name).exists(), name
    assert not (PROJECT / "hin_captum" / "configs").exists() and not (PROJECT / "hin_captum" / "pretrained").exists()
    config = configparser.ConfigParser()
    config.read(PROJECT / "setup.cfg")
    listed = set(config["options"]["packages"].split())
    folders = {".".join(path.parent.relative_to(PROJECT).parts) for path in (PROJECT / "hin_captum").rglob("__init__.py")}
    assert listed == folders | {"hin_captum.configs", "hin_captum.pretrained"}


def explain_from_elsewhere(folder: Path, python: list[str], environment: dict[str, str]) -> None:
    """``hin-captum attribute`` with the bundled defaults, then ``plot``, run from ``folder``."""
    run = subprocess.run([*python, "-m", "hin_captum", "attribute", "--max-jets", "12", "--plot", "1", "--out",
                          "explained"], capture_output=True, text=True, cwd=folder, env=environment, timeout=600)
    assert run.returncode == 0, run.stderr
    assert "explained 12 jets" in run.stdout
    with uproot.open(folder / "explained" / "lrp" / "toy_jets.root") as file:
        assert int(file["relevance"].arrays(["explained"], library="np")["explained"].sum()) == 12
    replot = subprocess.run([*python, "-m", "hin_captum", "plot", "explained/lrp/summary.root", "--out", "again"],
                            capture_output=True, text=True, cwd=folder, env=environment, timeout=600)
    assert replot.returncode == 0, replot.stderr
    assert len(list((folder / "again").glob("*.png"))) == 6


def where(python: list[str], folder: Path, environment: dict[str, str]) -> str:
    found = subprocess.run([*python, "-c", "import hin_captum; print(hin_captum.__file__, hin_captum.bundled("
                            "'configs/attribute.yml'))"], capture_output=True, text=True, cwd=folder, env=environment)
    assert found.returncode == 0, found.stderr
    return found.stdout


def test_a_non_editable_install_explains_and_plots_from_any_folder(tmp_path):
    """``pip install .``: configs, models and toy jets are copied into the package, the command works."""
    target = tmp_path / "site"
    isolation = [] if importlib.util.find_spec("setuptools") is None else ["--no-build-isolation"]
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", *isolation,
                              "--target", str(target), str(PROJECT)], capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr
    assert (target / "hin_captum" / "configs" / "definitions.yml").is_file()
    assert (target / "hin_captum" / "pretrained" / "hin_toy.pt").is_file()
    for name in ("weaver/toy_hbb.yaml", "weaver/part.py", "weaver/particlenet.py"):
        assert (target / "hin_captum" / "configs" / name).is_file(), name
    for name in ("part_toy.pt", "particlenet_toy.pt", "gat_toy.pt", "part_sanity.pt"):
        assert (target / "hin_captum" / "pretrained" / name).is_file(), name
    environment = {**os.environ, "PYTHONPATH": str(target)}
    package, config = where([sys.executable], tmp_path, environment).split()
    assert package.startswith(str(target)) and config.startswith(str(target))  # the installed copy, not the checkout
    explain_from_elsewhere(tmp_path, [sys.executable], environment)


@pytest.mark.skipif(importlib.util.find_spec("setuptools") is None, reason="builds the editable wheel with setuptools")
def test_an_editable_install_explains_and_plots_from_any_folder(tmp_path):
    """``pip install -e .`` in a fresh environment: setuptools' editable wheel maps the package onto the checkout,
    whose configs/ and pretrained/ sit beside hin_captum/."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    # The dependencies come from this environment's site-packages, as plain paths: its own .pth files (this
    # checkout's install among them) are not processed there, so only the editable wheel below maps hin_captum.
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    built = subprocess.run([sys.executable, "-c", "import sys; from setuptools import build_meta; "
                            "print(build_meta.build_editable(sys.argv[1]))", str(tmp_path / "wheel")],
                           capture_output=True, text=True, cwd=PROJECT, timeout=600)
    assert built.returncode == 0, built.stderr
    with zipfile.ZipFile(tmp_path / "wheel" / built.stdout.strip().splitlines()[-1]) as wheel:
        wheel.extractall(site)
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    package, config = where([str(python)], tmp_path, environment).split()
    assert package == str(PROJECT / "hin_captum" / "__init__.py") and config == str(PROJECT / "configs" / "attribute.yml")
    explain_from_elsewhere(tmp_path, [str(python)], environment)
