"""Benchmark LRP against input x gradient (the floor), the HIN-LRP algorithm, IG and GNNExplainer, per batch size.

Prints markdown tables: jets per second of input x gradient and of LRP (nodes, and
nodes + edges) at each batch size, interleaved and best of several runs, with their
ratio and LRP's speed-up over the HIN-LRP algorithm (module by module, autograd per
layer, one jet at a time, float32: ``hin_captum.lrp.layerwise``); IG and GNNExplainer at
their best batch sizes; and the error and speed of reduced precision.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from captum.attr import InputXGradient
from torch_geometric.data import Batch

import hin_captum
from hin_captum.cli import run
from hin_captum.config import bundled, load_config
from hin_captum.data.sources import load_jets, read_npz_jet
from hin_captum.lrp.engine import PRECISIONS
from hin_captum.lrp.layerwise import layerwise_relevance
from hin_captum.output.options import torch_device


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def best_times(functions: list[Callable[[], object]], repeats: int, device: torch.device) -> list[float]:
    """Best wall time of each function over ``repeats`` rounds, after one warm-up call each.

    Rounds interleave the functions, so a slow spell of the machine hits all of them alike.
    """
    for function in functions:
        function()
    best = [float("inf")] * len(functions)
    for _ in range(repeats):
        for index, function in enumerate(functions):
            synchronize(device)
            start = time.perf_counter()
            function()
            synchronize(device)
            best[index] = min(best[index], time.perf_counter() - start)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="bench_lrp", help="config name or a YAML path")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="(default: %(default)s)")
    args = parser.parse_args(argv)
    config = load_config(args.config)
    device = torch_device(args.device)
    model = hin_captum.load_model(bundled(config["model"]), map_location=device)
    jets, description = load_jets(config["data"])
    repeats = int(config["repeats"])
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"model {config['model']}; {description}; torch {torch.__version__}; {name}\n")

    layerwise_jets = [jet.to(device) for jet in jets[: int(config["layerwise_jets"])]]
    (layerwise,) = best_times([lambda: [layerwise_relevance(model, jet.x, jet.edge_index, 1)
                                        for jet in layerwise_jets]], 1, device)
    layerwise /= len(layerwise_jets)

    plain, lrp = InputXGradient(model), hin_captum.LRP(model)
    rows = []
    for batch_size in config["batch_sizes"]:
        batch = Batch.from_data_list(jets[:batch_size]).to(device)
        arguments = (batch.edge_index, batch.batch)
        x = batch.x.detach().requires_grad_()
        times = best_times([
            lambda: plain.attribute(x, target=1, additional_forward_args=arguments),
            lambda: lrp.attribute(x, target=1, additional_forward_args=arguments),
            lambda: hin_captum.attribute(model, batch, target=1),
        ], repeats, device)
        rows.append((batch_size, batch.num_nodes, batch.num_edges, *times))

    print("| jets per batch | tracks | edges | input x gradient (jets/s) | LRP nodes (jets/s) | "
          "LRP nodes + edges (jets/s) | LRP nodes / input x gradient | LRP nodes + edges / input x gradient | "
          "LRP speed-up over the HIN-LRP algorithm |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for batch_size, nodes, edges, ixg, nodes_only, full in rows:
        print(f"| {batch_size} | {nodes} | {edges} | {batch_size / ixg:.0f} | {batch_size / nodes_only:.0f} | "
              f"{batch_size / full:.0f} | {nodes_only / ixg:.2f} | {full / ixg:.2f} | "
              f"{layerwise * batch_size / full:.0f}x |")
    print(f"\nthe HIN-LRP algorithm (one jet at a time): {layerwise * 1e3:.1f} ms per jet "
          f"({1 / layerwise:.0f} jets/s), timed on {len(layerwise_jets)} jets")

    real = Path(config["real"])
    real_model, real_jets = None, []
    if (real / "hin_lrp_IN.pth").is_file():
        real_model = hin_captum.load_model(real / "hin_lrp_IN.pth", map_location=device)
        real_jets = [read_npz_jet(real / f"cms_jet_{k}.npz").to(device) for k in range(2)]
        print("\nreal CMS jets, HIN-LRP checkpoint, one jet per call (HIN-LRP's own code: "
              f"{config['anchor_ms'][0]} and {config['anchor_ms'][1]} ms, ../shared/reference/README.md)\n")
        print("| jet | tracks | input x gradient (ms) | LRP nodes + edges (ms) | LRP / input x gradient | "
              "HIN-LRP algorithm (ms) | its time / LRP |")
        print("|---:|---:|---:|---:|---:|---:|---:|")
        real_plain = InputXGradient(real_model)
        for index, jet in enumerate(real_jets):
            x = jet.x.detach().requires_grad_()
            ixg, full, per_layer = best_times([
                lambda: real_plain.attribute(x, target=1, additional_forward_args=(jet.edge_index, jet.batch)),
                lambda: hin_captum.attribute(real_model, jet, target=1),
                lambda: layerwise_relevance(real_model, jet.x, jet.edge_index, 1),
            ], repeats, device)
            print(f"| {index} | {jet.num_nodes} | {ixg * 1e3:.1f} | {full * 1e3:.1f} | {full / ixg:.2f} | "
                  f"{per_layer * 1e3:.1f} | {per_layer / full:.1f}x |")

    best_lrp = min(full / size for size, _, _, _, _, full in rows)
    ig_options = dict(config["ig"])
    ig_sizes = ig_options.pop("batch_sizes")
    ig_method = hin_captum.methods.METHODS["ig"](model, **ig_options)
    ig_times = {}
    for size in ig_sizes:
        batch = Batch.from_data_list(jets[:size]).to(device)
        (seconds,) = best_times([lambda: ig_method.explain(batch, 1)], 1, device)
        ig_times[size] = seconds / size
    ig_size = min(ig_times, key=ig_times.get)
    gnn_options = dict(config["gnnexplainer"])
    gnn_jets = Batch.from_data_list(jets[: gnn_options.pop("jets")]).to(device)
    gnn_method = hin_captum.methods.METHODS["gnnexplainer"](model, **gnn_options)
    (gnn,) = best_times([lambda: gnn_method.explain(gnn_jets, 1)], 1, device)
    gnn /= gnn_jets.num_graphs
    print("\n| method (at its best batch size) | ms per jet | LRP (nodes + edges) is faster by |")
    print("|---|---:|---:|")
    print(f"| LRP nodes + edges (batch {rows[int(np.argmin([r[5] / r[0] for r in rows]))][0]}) | "
          f"{best_lrp * 1e3:.2f} | 1x |")
    print(f"| HIN-LRP algorithm (one jet at a time) | {layerwise * 1e3:.2f} | {layerwise / best_lrp:.0f}x |")
    print(f"| IG, {ig_options.get('n_steps', 50)} steps (batch {ig_size}; "
          + ", ".join(f"{size}: {t * 1e3:.1f} ms" for size, t in ig_times.items())
          + f") | {ig_times[ig_size] * 1e3:.1f} | {ig_times[ig_size] / best_lrp:.0f}x |")
    print(f"| GNNExplainer, {gnn_options.get('epochs', 100)} epochs (one jet at a time) | {gnn * 1e3:.0f} | "
          f"{gnn / best_lrp:.0f}x |")

    print("\n| precision | jets | max \\|dR\\| / max \\|R\\| (nodes) | max \\|dR\\| / max \\|R\\| (edges) | "
          f"jets/s at batch {rows[-1][0]} |")
    print("|---|---|---:|---:|---:|")
    sets = [(f"{config['precision_jets']} toy jets", model, Batch.from_data_list(
        jets[: int(config["precision_jets"])]).to(device))]
    if real_model is not None:
        sets.append(("2 real CMS jets, HIN-LRP checkpoint", real_model, Batch.from_data_list(real_jets)))
    large = Batch.from_data_list(jets[: rows[-1][0]]).to(device)
    for precision in PRECISIONS:
        (seconds,) = best_times([lambda: hin_captum.attribute(model, large, target=1, precision=precision)],
                                repeats, device)
        for label, chosen, batch in sets:
            exact = hin_captum.attribute(chosen, batch, target=1)
            reduced = hin_captum.attribute(chosen, batch, target=1, precision=precision)
            node = float((reduced.node - exact.node).abs().max() / exact.node.abs().max())
            edge = float((reduced.edge - exact.edge).abs().max() / exact.edge.abs().max())
            print(f"| {precision} | {label} | {node:.2g} | {edge:.2g} | {large.num_graphs / seconds:.0f} |")
    return 0


if __name__ == "__main__":
    run(main)
