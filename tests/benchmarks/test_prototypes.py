"""The prototype benchmark on a small config: every row is there, prototypes stay in range where naive activation
maximisation leaves it."""
from hin_captum.benchmarks.prototypes import prototypes_benchmark
from hin_captum.config import load_config


def test_a_small_prototype_benchmark_compares_prototypes_with_naive_maximisation_and_real_jets():
    config = {**load_config("bench_prototypes"), "real": {"jets": 200, "seed": 23},
              "confident": {"jets": 200, "seed": 29}, "most_confident": 8, "n": 4, "auc_seeds": [0],
              "models": {"hin": "pretrained/hin_toy.pt"}, "variant_models": []}
    comparison, moved = prototypes_benchmark(config).split("\n\n")
    rows = {line.split(" | ")[1]: line.split(" | ") for line in comparison.splitlines()[2:]}
    header = comparison.splitlines()[0].split(" | ")
    outside = header.index("outside the real range")
    assert float(rows["prototypes, default"][outside]) == 0.0
    assert float(rows["naive activation maximisation"][outside]) > 0.05
    assert "real Hbb jets clamped to 0.5-99.5%" in rows and "the 8 real Hbb jets it is most sure of" in rows
    assert moved.splitlines()[2].startswith("| hin | ")
