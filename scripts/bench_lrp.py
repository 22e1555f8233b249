"""Benchmark LRP against input x gradient (the floor), the HIN-LRP algorithm, IG and GNNExplainer, per batch size
(hin_captum.benchmarks.speed; configs/bench_lrp.yml): markdown tables on stdout."""
import argparse

import tempfile
from pathlib import Path

from hin_captum.benchmarks.speed import jetclass_costs, lrp_speed, tagger_costs
from hin_captum.cli import run
from hin_captum.config import load_config
from hin_captum.pipeline.settings import torch_device


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="bench_lrp", help="config name or a YAML path")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="(default: %(default)s)")
    parser.add_argument("--taggers", action="store_true",
                        help="instead: LRP against input x gradient on the taggers of configs/benchmark_taggers.yml")
    parser.add_argument("--jetclass", default="../shared/reference/jetclass",
                        help="with --taggers: the JetClass authors' network files, data configs and checkpoints, "
                             "for the JetClass-size rows (skipped where absent; default: %(default)s)")
    args = parser.parse_args(argv)
    if args.taggers:
        config = load_config("benchmark_taggers" if args.config == "bench_lrp" else args.config)
        print(tagger_costs(config))
        if (Path(args.jetclass) / "ParticleNet_kin.pt").is_file():
            with tempfile.TemporaryDirectory() as workdir:
                print("\n" + jetclass_costs(config, args.jetclass, workdir))
        return 0
    print(lrp_speed(load_config(args.config), torch_device(args.device)))
    return 0


if __name__ == "__main__":
    run(main)
