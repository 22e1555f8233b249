"""Train the interaction network from a config in configs/ and save it with its test metrics."""
from __future__ import annotations

import argparse
import shlex
import sys
from dataclasses import asdict

from hin_captum.cli import run
from hin_captum.config import load_config
from hin_captum.data.sources import load_jets
from hin_captum.models import save_model
from hin_captum.training import TrainingConfig, train


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", default="train_sanity", help="config name in configs/ or a YAML path")
    parser.add_argument("--data", nargs="+", help="ROOT files or globs (overrides the config's data paths)")
    parser.add_argument("--out", help="where to write the model (overrides the config's output)")
    args = parser.parse_args(argv)

    config = load_config(args.config)
    data_config = dict(config["data"])
    if args.data:
        data_config.update(source="root", paths=args.data)
    model_config = config["model"] if isinstance(config["model"], dict) else load_config(config["model"])
    training = TrainingConfig(**config["training"])

    jets, description = load_jets(data_config)
    print(f"data: {description}")
    result = train(jets, model_config, training)
    metrics = result.test_metrics
    print(f"stopped after {result.epochs} epochs (best {result.best_epoch})")
    print("test: " + ", ".join(f"{name} {value:.4g}" for name, value in metrics.items()))
    path = save_model(
        result.model, args.out or config["output"],
        command=shlex.join(["python", "scripts/train.py", *sys.argv[1:]]),
        data=description, training=asdict(training), test_metrics=metrics, epochs=result.epochs,
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    run(main)
