"""Benchmark hin_captum.prototype: reach, cost and separability from real jets, against naive activation
maximisation (hin_captum.benchmarks.prototypes; configs/bench_prototypes.yml): a markdown table on stdout."""
import argparse

import torch

from hin_captum.benchmarks.prototypes import prototypes_benchmark
from hin_captum.cli import run
from hin_captum.config import load_config


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="bench_prototypes", help="config name or a YAML path")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2, the CI machine's cores)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(prototypes_benchmark(load_config(args.config)))
    return 0


if __name__ == "__main__":
    run(main)
