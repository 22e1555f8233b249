"""scripts/benchmark.py end to end on a tiny config, and its one-line errors."""
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def run_benchmark(tmp_path, config, *extra):
    path = tmp_path / "bench.yml"
    path.write_text(yaml.safe_dump(config))
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "benchmark.py"), "--config", str(path),
                             "--out", str(out), *extra], capture_output=True, text=True, cwd=ROOT)
    return result, out


CONFIG = {
    "methods": {"lrp": {}, "ig": {"n_steps": 4}, "random": {}},
    "target": 1,
    "datasets": {"sanity": {"model": "pretrained/hin_sanity.pt", "ground_truth_feature": 3,
                            "data": {"source": "sanity", "n_jets": 6, "n_tracks": 5, "seed": 3}}},
    "metrics": {"batch_size": 3, "fractions": [0.0, 0.5, 1.0], "subset_jets": 2, "perturbations": 2,
                "memory_jets": 1},
}


def test_benchmark_writes_table_csv_and_plots(tmp_path):
    result, out = run_benchmark(tmp_path, CONFIG)
    assert result.returncode == 0, result.stderr
    table = (out / "results.md").read_text()
    for method in CONFIG["methods"]:
        assert f"| {method} |" in table
    assert "share of \\|R\\| on feature 3" in table  # escaped, or the pipes would split the cell
    rows = (out / "results.csv").read_text().strip().splitlines()
    assert len(rows) == 1 + len(CONFIG["methods"]) and rows[0].startswith("dataset,method,")
    for name in ("deletion_sanity.png", "runtime_sanity.png", "features_sanity.png"):
        assert (out / name).stat().st_size > 10_000


def test_unknown_method_is_one_line_and_leaves_nothing(tmp_path):
    result, out = run_benchmark(tmp_path, CONFIG, "--methods", "lrp,shap")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "shap" in result.stderr and "lrp" in result.stderr
    assert not out.exists() or not any(out.iterdir())
