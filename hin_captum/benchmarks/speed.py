"""The speed of LRP against input x gradient (the floor), the HIN-LRP algorithm, IG and GNNExplainer, per batch size.

Tables (``scripts/bench_lrp.py``): jets per second of input x gradient and of LRP
(nodes, and nodes + edges) at each batch size, interleaved and best of several runs,
with their ratio and LRP's speed-up over the HIN-LRP algorithm (module by module,
autograd per layer, one jet at a time, float32: :mod:`hin_captum.benchmarks.layerwise`);
the two real CMS jets one per call, when ``../shared/reference`` is there; IG and
GNNExplainer at their best batch sizes; and the error and speed of reduced precision.
LRP runs as the pipeline runs it: one method object reused for every batch.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from captum.attr import InputXGradient
from torch_geometric.data import Batch

from ..config import bundled
from ..data.sources import load_jets, read_npz_jet
from ..lrp import PRECISIONS
from .layerwise import layerwise_relevance
from ..methods import METHODS
from ..models import load_model
from ..util import release_freed_memory
from .tables import markdown_table
from .timing import best_times, fastest_batch_size, seconds_per_jet


def lrp_speed(config: Mapping[str, Any], device: torch.device) -> str:
    """The benchmark's report (markdown) for ``configs/bench_lrp.yml``-like ``config`` on ``device``."""
    model = load_model(bundled(config["model"]), map_location=device)
    jets, description = load_jets(config["data"])
    repeats = int(config["repeats"])
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    sections = [f"model {config['model']}; {description}; torch {torch.__version__}; {name}"]

    layerwise_jets = [jet.to(device) for jet in jets[: int(config["layerwise_jets"])]]
    (layerwise,) = best_times([lambda: [layerwise_relevance(model, jet.x, jet.edge_index, 1)
                                        for jet in layerwise_jets]], 1, device)
    layerwise /= len(layerwise_jets)

    plain, nodes_only, with_edges = InputXGradient(model), METHODS["lrp"](model), METHODS["lrp"](model)
    rows = []
    for batch_size in config["batch_sizes"]:
        batch = Batch.from_data_list(jets[:batch_size]).to(device)
        arguments = (batch.edge_index, batch.batch)
        x = batch.x.detach().requires_grad_()
        ixg, nodes, full = best_times([
            lambda: plain.attribute(x, target=1, additional_forward_args=arguments),
            lambda: nodes_only.propagator.propagate(model, (x,), lambda xs: model(xs[0], *arguments),
                                                    lambda output: output[:, 1].sum()),
            lambda: with_edges.explain(batch, 1),
        ], repeats, device)
        rows.append({"jets per batch": batch_size, "tracks": batch.num_nodes, "edges": batch.num_edges,
                     "input x gradient (jets/s)": batch_size / ixg, "LRP nodes (jets/s)": batch_size / nodes,
                     "LRP nodes + edges (jets/s)": batch_size / full, "LRP nodes / input x gradient": nodes / ixg,
                     "LRP nodes + edges / input x gradient": full / ixg,
                     "LRP speed-up over the HIN-LRP algorithm": layerwise * batch_size / full})
    sections.append(markdown_table(rows))
    sections.append(f"the HIN-LRP algorithm (one jet at a time): {layerwise * 1e3:.1f} ms per jet "
                    f"({1 / layerwise:.0f} jets/s), timed on {len(layerwise_jets)} jets")

    real_model, real_jets = _real(config, device)
    if real_model is not None:
        real_rows = []
        real_plain, real_lrp = InputXGradient(real_model), METHODS["lrp"](real_model)
        for index, jet in enumerate(real_jets):
            x = jet.x.detach().requires_grad_()
            ixg, full, per_layer = best_times([
                lambda: real_plain.attribute(x, target=1, additional_forward_args=(jet.edge_index, jet.batch)),
                lambda: real_lrp.explain(jet, 1),
                lambda: layerwise_relevance(real_model, jet.x, jet.edge_index, 1),
            ], repeats, device)
            real_rows.append({"jet": index, "tracks": jet.num_nodes, "input x gradient (ms)": ixg * 1e3,
                              "LRP nodes + edges (ms)": full * 1e3, "LRP / input x gradient": full / ixg,
                              "HIN-LRP algorithm (ms)": per_layer * 1e3, "its time / LRP": per_layer / full})
        sections.append("real CMS jets, HIN-LRP checkpoint, one jet per call (HIN-LRP's own code: "
                        f"{config['anchor_ms'][0]} and {config['anchor_ms'][1]} ms, ../shared/reference/README.md)\n\n"
                        + markdown_table(real_rows))

    best_row = min(rows, key=lambda row: 1 / row["LRP nodes + edges (jets/s)"])
    best_lrp = 1 / best_row["LRP nodes + edges (jets/s)"]
    ig_options = dict(config["ig"])
    ig_method = METHODS["ig"](model, **{key: value for key, value in ig_options.items() if key != "batch_sizes"})
    ig_size, ig_times = fastest_batch_size(lambda size: seconds_per_jet(ig_method, jets, size, 1, device),
                                           ig_options["batch_sizes"])
    gnn_options = dict(config["gnnexplainer"])
    gnn_jets = Batch.from_data_list(jets[: gnn_options.pop("jets")]).to(device)
    gnn_method = METHODS["gnnexplainer"](model, **gnn_options)
    (gnn,) = best_times([lambda: gnn_method.explain(gnn_jets, 1)], 1, device)
    gnn /= gnn_jets.num_graphs
    ig_sizes = ", ".join(f"{size}: {seconds * 1e3:.1f} ms" for size, seconds in ig_times.items())
    sections.append(markdown_table([
        {"method (at its best batch size)": f"LRP nodes + edges (batch {best_row['jets per batch']})",
         "ms per jet": best_lrp * 1e3, "LRP (nodes + edges) is faster by": 1.0},
        {"method (at its best batch size)": "HIN-LRP algorithm (one jet at a time)", "ms per jet": layerwise * 1e3,
         "LRP (nodes + edges) is faster by": layerwise / best_lrp},
        {"method (at its best batch size)": f"IG, {ig_options.get('n_steps', 50)} steps (batch {ig_size}; {ig_sizes})",
         "ms per jet": ig_times[ig_size] * 1e3, "LRP (nodes + edges) is faster by": ig_times[ig_size] / best_lrp},
        {"method (at its best batch size)": f"GNNExplainer, {gnn_options.get('epochs', 100)} epochs (one jet at a "
                                            "time)", "ms per jet": gnn * 1e3, "LRP (nodes + edges) is faster by":
         gnn / best_lrp},
    ]))
    sections.append(_precision_table(config, model, jets, real_model, real_jets, rows[-1]["jets per batch"], repeats,
                                     device))
    return "\n\n".join(sections)


def _real(config: Mapping[str, Any], device: torch.device):
    """HIN-LRP's checkpoint and its two real CMS jets, where that folder is present."""
    real = Path(config["real"])
    if not (real / "hin_lrp_IN.pth").is_file():
        return None, []
    return (load_model(real / "hin_lrp_IN.pth", map_location=device),
            [read_npz_jet(real / f"cms_jet_{k}.npz").to(device) for k in range(2)])


def _precision_table(config, model, jets, real_model, real_jets, batch_size, repeats, device) -> str:
    """Reduced precision: its error against float32 and its speed."""
    sets = [(f"{config['precision_jets']} toy jets", model,
             Batch.from_data_list(jets[: int(config["precision_jets"])]).to(device))]
    if real_model is not None:
        sets.append(("2 real CMS jets, HIN-LRP checkpoint", real_model, Batch.from_data_list(real_jets)))
    large = Batch.from_data_list(jets[:batch_size]).to(device)
    rows = []
    for precision in PRECISIONS:
        method = METHODS["lrp"](model, precision=precision)
        (seconds,) = best_times([lambda: method.explain(large, 1)], repeats, device)
        for label, chosen, batch in sets:
            exact = METHODS["lrp"](chosen).explain(batch, 1)
            reduced = METHODS["lrp"](chosen, precision=precision).explain(batch, 1)
            rows.append({"precision": precision, "jets": label,
                         "max |dR| / max |R| (nodes)": float((reduced.node - exact.node).abs().max()
                                                             / exact.node.abs().max()),
                         "max |dR| / max |R| (edges)": float((reduced.edge - exact.edge).abs().max()
                                                             / exact.edge.abs().max()),
                         f"jets/s at batch {batch_size}": large.num_graphs / seconds})
    return markdown_table(rows)


def tagger_costs(config: Mapping[str, Any]) -> str:
    """LRP (AttnLRP and CP-LRP) against input x gradient on the taggers of ``configs/benchmark_taggers.yml``, at
    its cost batch size, interleaved and best of ``repeats``: jets/s and the ratio (markdown)."""
    from ..models.specs import load_tagger

    cost = config["cost"]
    rows = []
    for name, spec in config["datasets"].items():
        if name not in cost["datasets"]:
            continue
        model = load_tagger(spec["model"])
        jets, _ = load_jets(spec["data"])
        batch = Batch.from_data_list(jets[: int(cost["batch_size"])])
        methods = {"input x gradient": METHODS["inputxgradient"](model), "AttnLRP": METHODS["lrp"](model),
                   "CP-LRP": METHODS["lrp"](model, attention="cp")}
        seconds = dict(zip(methods, best_times([lambda m=m: m.explain(batch, 1) for m in methods.values()],
                                               int(cost["repeats"]))))
        rows.append({"model": name, "jets per batch": batch.num_graphs,
                     **{f"{label} (jets/s)": batch.num_graphs / t for label, t in seconds.items()},
                     "AttnLRP / input x gradient": seconds["AttnLRP"] / seconds["input x gradient"],
                     "CP-LRP / input x gradient": seconds["CP-LRP"] / seconds["input x gradient"]})
    return markdown_table(rows)


def jetclass_costs(config: Mapping[str, Any], folder: str | Path, workdir: str | Path) -> str:
    """The JetClass-size rows (``cost.jetclass`` of ``configs/benchmark_taggers.yml``): the JetClass authors'
    trained ParticleNet and the ParT of their example network (random weights) on Pythia jets in the JetClass
    schema made in ``workdir``, each method as users call it (``hin_captum.LRP(model)`` on weaver's arrays),
    interleaved and best of ``repeats``: ms per jet, LRP / input x gradient and the peak memory of one call; and
    the command's rate (``hin-captum attribute``'s method run: reading, explaining, writing) against a bare input x
    gradient loop over the same jets in batches of the same size (markdown)."""
    from ..data.weaver import weaver_arrays
    from ..generation.jetclass import generate_jetclass
    from ..lrp import LRP
    from ..models.weaver import load_weaver
    from ..pipeline import RunSettings, explain_sample

    settings = config["cost"]["jetclass"]
    folder, workdir = Path(folder), Path(workdir)
    jets, repeats = int(settings["jets"]), int(settings["repeats"])
    data = generate_jetclass(workdir / "jets.root", int(settings["jets_per_class"]), seed=int(settings["seed"]))
    rows = []
    for name, spec in settings["models"].items():
        torch.manual_seed(int(settings["seed"]))  # the ParT's random weights
        files = {key: folder / spec[key] for key in ("network", "data_config", "state") if spec.get(key)}
        weaver_model = load_weaver(files["network"], files["data_config"], files.get("state"))
        model = weaver_model.model
        arrays = [torch.from_numpy(array) for array in weaver_arrays(data, weaver_model.data_config).values()]
        batch = [array[:jets] for array in arrays]
        methods = {"input x gradient": lambda: _input_x_gradient(model, batch)}
        for label, options in spec["lrp"].items():
            methods[label] = lambda lrp=LRP(model, **options): lrp.propagate(
                tuple(batch[:2]), target=1, additional_forward_args=tuple(batch[2:]))
        seconds = dict(zip(methods, best_times(list(methods.values()), repeats)))
        for label, taken in seconds.items():
            rows.append({"model": name, "method": label, "ms per jet": taken / jets * 1e3,
                         "/ input x gradient": taken / seconds["input x gradient"],
                         "peak memory (MB)": _peak_memory(methods[label])})
        if "command" not in spec:
            continue  # the command loads trained weights: the ParT has none here
        loop = best_times([lambda: [_input_x_gradient(model, [a[start:start + jets] for a in arrays])
                                    for start in range(0, len(arrays[0]), jets)]], 1)[0]
        options = {"network": str(files["network"]), "data_config": str(files["data_config"]),
                   "model": str(files["state"]), "data": [str(data)], "out": str(workdir / name), "plot": 0,
                   "batch_size": jets, "overwrite": True, **spec["command"]}
        (run,) = explain_sample(RunSettings.load(**options))
        rate, floor = run.jets_explained / run.seconds, len(arrays[0]) / loop
        rows.append({"model": name, "method": f"hin-captum attribute --method {spec['command']['method']}",
                     "ms per jet": 1e3 / rate, "/ input x gradient": floor / rate,
                     "peak memory (MB)": float("nan")})
        rows[-1]["command rate / bare loop"] = rate / floor
    return markdown_table(rows)


def _input_x_gradient(model: torch.nn.Module, arrays: list[torch.Tensor]) -> torch.Tensor:
    """Input x gradient of weaver's second input (the particle features) for the Hbb logit: the floor."""
    points, features, *rest = arrays
    x = features.detach().clone().requires_grad_()
    (gradient,) = torch.autograd.grad(model(points, x, *rest)[:, 1].sum(), x)
    return x.detach() * gradient


def _peak_memory(function: Callable[[], object], interval: float = 0.002) -> float:
    """The peak resident memory one call of ``function`` adds, in MB, sampled every ``interval`` seconds (after the
    memory earlier calls freed is given back to the system)."""
    import threading

    import psutil

    release_freed_memory()  # what earlier calls freed goes back first, so this call's allocations show
    process = psutil.Process()
    before, peak, done = process.memory_info().rss, [0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], process.memory_info().rss)
            time.sleep(interval)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        function()
    finally:
        done.set()
        thread.join()
    return max(peak[0] - before, 0) / 2**20
