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


SANITY = {"model": "pretrained/hin_sanity.pt", "ground_truth": {"decisive": 3, "planted": [0, 3]},
          "feature_names": "numbered", "data": {"source": "sanity", "n_jets": 6, "n_tracks": 5, "seed": 3}}
CONFIG = {
    "target": 1,
    "datasets": {"sanity": SANITY,
                 "absent": {**SANITY, "model": "pretrained/not_there.pt", "optional": True}},
    "methods": {"datasets": ["sanity"], "jets": 5, "list": {"lrp": {}, "ig": {"n_steps": 4}, "random": {}}},
    "composites": {"datasets": ["sanity", "absent"], "baselines": {"ig": {"n_steps": 4}},
                   "composites": ["epsilon", "gamma"], "references": ["auto", "data"], "epsilons": [0.1, 0.5]},
    "metrics": {"batch_sizes": [3], "fractions": [0.0, 0.5, 1.0], "subset_jets": 2, "perturbations": 2,
                "memory_jets": 1},
}


def test_benchmark_writes_both_parts_csv_and_plots(tmp_path):
    result, out = run_benchmark(tmp_path, CONFIG)
    assert result.returncode == 0, result.stderr
    report = (out / "results.md").read_text()
    for method in CONFIG["methods"]["list"]:
        assert f"| {method} |" in report
    for variant in ("epsilon (auto)", "epsilon (data)", "gamma (auto)", "epsilon ε=0.5 (auto)"):
        assert f"| {variant} |" in report
    assert "share of \\|R\\| on planted features" in report  # escaped, or the pipes would split the cell
    assert "goals met (of 6)" in report and "data set 'absent' skipped" in report
    assert "epsilon ε=0.1 (auto)" not in report  # the default epsilon is "epsilon (auto)" already
    assert "Chosen: **" in report
    rows = (out / "results.csv").read_text().strip().splitlines()
    assert len(rows) == 1 + 3 + 6 and rows[0].startswith("part,dataset,method,")
    for name in ("methods_sanity_deletion.png", "methods_sanity_insertion.png", "methods_sanity_runtime.png",
                 "methods_sanity_features.png", "composites_sanity.png"):
        assert (out / name).stat().st_size > 10_000


def test_unknown_method_is_one_line_and_leaves_nothing(tmp_path):
    result, out = run_benchmark(tmp_path, CONFIG, "--methods", "lrp,shap")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "shap" in result.stderr and "lrp" in result.stderr
    assert not out.exists() or not any(out.iterdir())


def test_unknown_part_is_one_line(tmp_path):
    result, _ = run_benchmark(tmp_path, CONFIG, "--parts", "methods,speed")
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "--parts" in result.stderr
