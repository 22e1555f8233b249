"""Benchmark the whole-sample pipeline: jets/s and peak memory at growing sizes, and on Dask workers
(hin_captum.benchmarks.scale; configs/bench_scale.yml): markdown tables on stdout."""
import argparse

from hin_captum.benchmarks.scale import scale
from hin_captum.cli import run
from hin_captum.config import load_config


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="bench_scale", help="config name or a YAML path")
    parser.add_argument("--sizes", help="comma-separated jet counts (default: the config's)")
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.sizes.split(",")] if args.sizes else None
    print(scale(load_config(args.config), sizes))
    return 0


if __name__ == "__main__":
    run(main)
