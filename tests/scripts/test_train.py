"""scripts/train.py end to end, through a subprocess."""
import subprocess
import sys
from pathlib import Path

import yaml

import hin_captum

ROOT = Path(__file__).resolve().parents[2]


def train(tmp_path, *arguments):
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "train.py"), *arguments],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)


def tiny_config(tmp_path, data):
    config = {
        "data": data,
        "model": {"n_features": 48, "hidden": 16, "n_classes": 2},
        "training": {"seed": 0, "batch_size": 32, "learning_rate": 3e-3, "max_epochs": 2, "patience": 1,
                     "validation_fraction": 0.25, "test_fraction": 0.25},
        "output": str(tmp_path / "model.pt"),
    }
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_training_on_the_sanity_set_writes_a_loadable_model_with_its_metrics(tmp_path):
    config = tiny_config(tmp_path, {"source": "sanity", "n_jets": 200, "n_tracks": 10, "seed": 0})
    result = train(tmp_path, "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert "test: loss" in result.stdout and "auc" in result.stdout
    checkpoint = hin_captum.load_model(tmp_path / "model.pt")
    assert checkpoint.config.hidden == 16


def test_training_on_root_files_reads_them(tmp_path):
    from hin_captum.data.toy import write_toy_root

    write_toy_root(tmp_path / "toy.root", n_jets=120, seed=1)
    config = tiny_config(tmp_path, {"source": "root", "paths": [str(tmp_path / "toy.root")]})
    result = train(tmp_path, "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert "kept 120 of 120 jets" in result.stdout


def test_a_missing_data_file_is_one_line_and_leaves_no_model(tmp_path):
    config = tiny_config(tmp_path, {"source": "sanity", "n_jets": 50, "seed": 0})
    result = train(tmp_path, "--config", str(config), "--data", str(tmp_path / "absent.root"))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    assert "absent.root" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "model.pt").exists()


def test_an_unknown_config_is_one_line(tmp_path):
    result = train(tmp_path, "--config", "no_such_config")
    assert result.returncode == 2 and "no config 'no_such_config'" in result.stderr
