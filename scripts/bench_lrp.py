"""Benchmark: LRP by hooks against plain input x gradient and explicit per-jet relevance matrices.

Prints a markdown table: jets per second for each batch size, the ratio of LRP
time to input x gradient time on the same batch, and the speed-up over the
explicit relevance-matrix LRP (tests/lrp/reference.py, float64 numpy, one jet
at a time, the computation the HIN-LRP code does).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Callable

import torch
from captum.attr import InputXGradient
from torch_geometric.data import Batch

import hin_captum
from hin_captum.cli import run
from hin_captum.config import load_config
from hin_captum.data.sources import load_jets

# The explicit relevance-matrix LRP lives with the tests, which check the hooks against it.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.lrp.reference import hin_relevance  # noqa: E402


def best_times(functions: list[Callable[[], object]], repeats: int) -> list[float]:
    """Best wall time of each function over ``repeats`` rounds, after one warm-up call each.

    Rounds interleave the functions, so a slow spell of the machine hits all of them alike.
    """
    for function in functions:
        function()
    best = [float("inf")] * len(functions)
    for _ in range(repeats):
        for i, function in enumerate(functions):
            start = time.perf_counter()
            function()
            best[i] = min(best[i], time.perf_counter() - start)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="bench_lrp", help="config name in configs/ or a YAML path")
    args = parser.parse_args(argv)
    config = load_config(args.config)

    model = hin_captum.load_model(hin_captum.bundled(config["model"]))
    jets, description = load_jets(config["data"])
    epsilon, repeats = float(config["epsilon"]), int(config["repeats"])
    print(f"model {config['model']}; {description}; torch threads {torch.get_num_threads()}\n")

    matrix_jets = jets[: int(config["matrix_jets"])]
    (matrix_seconds,) = best_times(
        [lambda: [hin_relevance(model, jet.x, jet.edge_index, torch.zeros(jet.num_nodes, dtype=torch.long), [1],
                                epsilon=epsilon) for jet in matrix_jets]],
        repeats=1,
    )
    matrix_seconds /= len(matrix_jets)

    plain, lrp = InputXGradient(model), hin_captum.LRP(model, epsilon=epsilon)
    rows = []
    for batch_size in config["batch_sizes"]:
        batch = Batch.from_data_list(jets[:batch_size])
        arguments = (batch.edge_index, batch.batch)
        x = batch.x.detach().requires_grad_()
        input_x_gradient, lrp_nodes, lrp_full = best_times(
            [
                lambda: plain.attribute(x, target=1, additional_forward_args=arguments),
                lambda: lrp.attribute(x, target=1, additional_forward_args=arguments),
                lambda: hin_captum.attribute(model, batch, target=1, epsilon=epsilon),
            ],
            repeats,
        )
        rows.append((batch_size, batch.num_nodes, batch.num_edges, input_x_gradient, lrp_nodes, lrp_full))

    print("| jets per batch | tracks | edges | input x gradient (jets/s) | LRP nodes (jets/s) | "
          "LRP nodes + edges (jets/s) | LRP / input x gradient | LRP speed-up over per-jet matrices | "
          "input x gradient speed-up over per-jet matrices (bound) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for batch_size, nodes, edges, ixg, lrp_nodes, lrp_full in rows:
        print(f"| {batch_size} | {nodes} | {edges} | {batch_size / ixg:.0f} | {batch_size / lrp_nodes:.0f} | "
              f"{batch_size / lrp_full:.0f} | {lrp_nodes / ixg:.2f} | {matrix_seconds * batch_size / lrp_full:.0f}x | "
              f"{matrix_seconds * batch_size / ixg:.0f}x |")
    print(f"\nexplicit relevance matrices: {matrix_seconds * 1e3:.1f} ms per jet "
          f"({1 / matrix_seconds:.1f} jets/s), timed on {len(matrix_jets)} jets")
    return 0


if __name__ == "__main__":
    run(main)
