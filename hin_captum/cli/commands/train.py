"""Train the interaction network from a config and save it with its test metrics."""
from __future__ import annotations

import argparse
import shlex
import sys
from dataclasses import asdict

from ...config import load_config
from ...data.sources import load_jets
from ...training import TrainingConfig, train
from ...models.specs import build_model, write_model

NAME = "train"
HELP = "train a tagger (the interaction network, the GAT tagger or a weaver model) from a config and save it"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default="train_sanity", help="config name (train_sanity, train_toy) or a YAML path")
    parser.add_argument("--data", nargs="+", help="ROOT files or globs (overrides the config's data paths)")
    parser.add_argument("--out", help="where to write the model (overrides the config's output)")


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    data_config = dict(config["data"])
    if args.data:
        data_config.update(source="root", paths=args.data)
    model = build_model(config["model"])
    training = TrainingConfig(**config["training"])

    jets, description = load_jets(data_config)
    print(f"data: {description}")
    result = train(jets, model, training)
    metrics = result.test_metrics
    print(f"stopped after {result.epochs} epochs (best {result.best_epoch})")
    print("test: " + ", ".join(f"{name} {value:.4g}" for name, value in metrics.items()))
    path = write_model(
        result.model, args.out or config["output"],
        command=shlex.join(["hin-captum", "train", *sys.argv[1:]]),
        data=description, training=asdict(training), test_metrics=metrics, epochs=result.epochs,
    )
    print(f"wrote {path}")
    return 0
