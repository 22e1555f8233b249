"""The interface every attribution method implements, and the registry behind ``attribute()``."""
from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Iterator

import torch
from torch import Tensor, nn
from torch_geometric.data import Batch, Data

from ..data.graphs import graph_fields
from ..lrp.attribution import target_text
from ..lrp.reference import Reference
from ..models.tagger import Tagger, as_tagger
from ..util import InputError, refuse_unknown
from ..util.modes import eval_mode
from .explanation import Explanation, as_batch

METHODS: dict[str, "type[AttributionMethod] | Variant"] = {}
"""Every method by name: a class, or a :class:`Variant` of one with other defaults (``lrp-gamma``)."""


def register(cls: type["AttributionMethod"]) -> type["AttributionMethod"]:
    """Class decorator: make a method available to ``attribute(..., method=cls.name)``."""
    METHODS[cls.name] = cls
    return cls


@dataclass(frozen=True)
class Variant:
    """A registered method under another name with other default options (``lrp-gamma`` is ``lrp`` with
    ``composite="gamma"``); called like the class it varies."""

    name: str
    method: type["AttributionMethod"]
    defaults: Mapping[str, Any]

    def __call__(self, model: nn.Module, **options: Any) -> "AttributionMethod":
        instance = self.method(model, **{**self.defaults, **options})
        instance.name = self.name
        return instance

    def __getattr__(self, attribute: str) -> Any:
        """The class's own attributes (``conserves``, ``one_graph_at_a_time``, ``option_names``)."""
        method = self.__dict__.get("method")
        if method is None or attribute.startswith("__"):
            raise AttributeError(attribute)
        return getattr(method, attribute)


def register_variant(name: str, method: type["AttributionMethod"], **defaults: Any) -> Variant:
    """Make ``method`` with ``defaults`` available as ``attribute(..., method=name)``."""
    METHODS[name] = variant = Variant(name, method, dict(defaults))
    return variant


class AttributionMethod(ABC):
    """Explains a jet tagger (a :class:`~hin_captum.models.tagger.Tagger`, or a graph model
    ``model(x, edge_index, ...) -> [G, C]``) for a batch of jets.

    Options go to the constructor; ``explain`` may then be called on many batches.
    """

    name: str = ""
    conserves: bool = False
    """Whether the relevance is meant to add up: to the explained logit less what biases keep (LRP), or to the
    logit's change from the reference (IG), so the conservation scores apply."""
    one_graph_at_a_time: bool = False
    """Whether the method loops over the graphs of a batch (its cost grows with the jets, not the batches)."""
    reference: Reference | None = None
    """The point the method measures relevance from, for methods that have one (deletion is measured from it)."""

    def __init__(self, model: nn.Module | Tagger, **options: Any) -> None:
        refuse_unknown(options, (), f"method '{self.name}' option")
        self.tagger = as_tagger(model)
        self.model = self.tagger.network

    @classmethod
    def option_names(cls) -> tuple[str, ...]:
        """The options the method takes (keywords of its constructor)."""
        kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        return tuple(name for name, parameter in inspect.signature(cls.__init__).parameters.items()
                     if name not in ("self", "model") and parameter.kind in kinds)

    def explain(self, data: Data | Batch, target: int | Tensor = 1) -> Explanation:
        """Relevance for ``target`` (one class, or one per graph) of every graph in ``data``.

        The model runs in eval mode, with gradients on even inside ``torch.no_grad()``.
        A target the model has no output for is refused in one line.
        """
        if self.tagger.level != "graph":
            raise InputError(f"{type(self.model).__name__} is declared a {self.tagger.level}-level tagger: "
                             "hin_captum.attribute explains one output per graph; explain its nodes with PyG's "
                             "Explainer and hin_captum.pyg.LRPExplainer (model_config task_level='node', index=<node>)")
        batch = as_batch(data)
        targets = per_graph_target(target, batch.num_graphs, batch.x.device)
        with eval_mode(self.model), torch.enable_grad():
            try:
                return self._explain(batch, targets)
            except (IndexError, RuntimeError):
                outputs = self.logits(batch).shape[-1]
                if len(targets) and (int(targets.min()) < 0 or int(targets.max()) >= outputs):
                    raise InputError(f"target {target_text(target)} is out of range: the model gives {outputs} "
                                     f"outputs per graph (0 to {outputs - 1})") from None
                raise

    def logits(self, data: Batch) -> Tensor:
        """The model's output ``[G, C]`` on ``data``, without gradients."""
        with torch.no_grad():
            return self.tagger.logits(data.x, data)

    @abstractmethod
    def _explain(self, data: Batch, target: Tensor) -> Explanation:
        """Relevance for ``target[g]`` of every graph ``g`` in ``data`` (the model is already in eval mode)."""


def single_graphs(data: Batch) -> Iterator[tuple[Tensor, Tensor, Batch]]:
    """Each graph of ``data`` on its own: ``(nodes, edges, graph)``.

    ``nodes`` and ``edges`` index the graph's rows in ``data``, so per-graph results
    go back in place; ``graph`` is a one-graph batch with local ``edge_index``, a
    ``batch`` of zeros and the graph's rows of every other node and edge field.
    """
    num_nodes = torch.bincount(data.batch, minlength=data.num_graphs)
    first_node = torch.cumsum(num_nodes, 0) - num_nodes
    edge_graph = data.batch[data.edge_index[0]]
    order = torch.argsort(edge_graph, stable=True)
    edges_per_graph = torch.bincount(edge_graph, minlength=data.num_graphs).tolist()
    node_order = torch.argsort(data.batch, stable=True)
    fields = graph_fields(data)
    for graph, (nodes, edges) in enumerate(zip(node_order.split(num_nodes.tolist()), order.split(edges_per_graph))):
        one = Batch(x=data.x[nodes], edge_index=data.edge_index[:, edges] - first_node[graph],
                    batch=torch.zeros(nodes.numel(), dtype=torch.long, device=data.x.device),
                    **{name: data[name][edges if data.is_edge_attr(name) else nodes] for name in fields})
        one._num_graphs = 1
        yield nodes, edges, one


def per_graph_target(target: int | Tensor, num_graphs: int, device: torch.device) -> Tensor:
    """One class index per graph from an int or a ``[G]`` tensor."""
    if isinstance(target, int):
        return torch.full((num_graphs,), target, dtype=torch.long, device=device)
    if isinstance(target, Tensor) and target.dim() <= 1 and target.numel() in (1, num_graphs):
        return target.to(device=device, dtype=torch.long).reshape(-1).expand(num_graphs).clone()
    raise InputError(f"target must be an int or a tensor of {num_graphs} class indices, got {target!r}")


def takes_option(method: str, option: str) -> bool:
    """Whether the registered method ``method`` takes ``option``."""
    return option in METHODS[method].option_names()


def attribute(
    model: nn.Module, data: Data | Batch, method: str = "lrp", target: int | Tensor = 1, **options: Any
) -> Explanation:
    """Explain ``model`` on one graph or a batch with the named method; ``options`` go to the method."""
    if method not in METHODS:
        raise InputError(f"unknown method '{method}': use one of {', '.join(sorted(METHODS))}")
    return METHODS[method](model, **options).explain(data, target)


