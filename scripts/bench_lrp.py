"""Benchmark LRP against input x gradient (the floor), the HIN-LRP algorithm, IG and GNNExplainer, per batch size
(hin_captum.benchmarks.speed; configs/bench_lrp.yml): markdown tables on stdout."""
import argparse

from hin_captum.benchmarks.speed import lrp_speed
from hin_captum.cli import run
from hin_captum.config import load_config
from hin_captum.pipeline.settings import torch_device


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="bench_lrp", help="config name or a YAML path")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="(default: %(default)s)")
    args = parser.parse_args(argv)
    print(lrp_speed(load_config(args.config), torch_device(args.device)))
    return 0


if __name__ == "__main__":
    run(main)
