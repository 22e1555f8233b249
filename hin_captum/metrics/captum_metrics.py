"""Captum's infidelity and max-sensitivity for any registered method, through the dense graph view.

Both metrics repeat their inputs along dimension 0; the padded ``[G, N_max, F]``
view of :mod:`hin_captum.models.dense` repeats correctly, a node matrix would not.
"""
from __future__ import annotations

import numpy as np
import torch
from captum.metrics import infidelity, sensitivity_max
from torch import Tensor
from torch_geometric.data import Batch

from ..methods.base import AttributionMethod
from ..methods.explanation import Explanation
from ..models.dense import DenseGraphModel, from_dense, to_dense


def _dense_relevance(method: AttributionMethod, x: Tensor, edges: Tensor, num_nodes: Tensor, target) -> Tensor:
    """The method's node relevance for the graphs the dense tensors describe, padded like ``x``."""
    mask = torch.arange(x.shape[1], device=x.device) < num_nodes[:, None]
    dense = torch.zeros_like(x)
    dense[mask] = method.explain(from_dense(x.detach(), edges, num_nodes), target).node.to(x.dtype)
    return dense


def captum_infidelity(
    method: AttributionMethod, data: Batch, explanation: Explanation, noise: float, samples: int, seed: int,
) -> np.ndarray:
    """Captum ``infidelity`` per graph, Gaussian perturbations of scale ``noise`` on the real tracks only."""
    x, edges, num_nodes = to_dense(data)
    mask = (torch.arange(x.shape[1], device=x.device) < num_nodes[:, None])[..., None]
    relevance = torch.zeros_like(x)
    relevance[mask[..., 0]] = explanation.node.to(x.dtype)
    generator = torch.Generator(device=x.device).manual_seed(seed)

    def perturb(inputs: Tensor) -> tuple[Tensor, Tensor]:
        noise_sample = noise * torch.randn(inputs.shape, generator=generator, device=inputs.device) * mask.repeat(
            inputs.shape[0] // x.shape[0], 1, 1)
        return noise_sample, inputs - noise_sample

    with torch.no_grad():
        scores = infidelity(DenseGraphModel(method.tagger), perturb, x, relevance,
                            additional_forward_args=(edges, num_nodes), target=explanation.target,
                            n_perturb_samples=samples)
    return scores.cpu().numpy()


def captum_sensitivity(
    method: AttributionMethod, data: Batch, target: Tensor, radius: float, samples: int, seed: int,
) -> np.ndarray:
    """Captum ``sensitivity_max`` per graph: the largest change of the relevance under small input noise."""
    x, edges, num_nodes = to_dense(data)

    def explain(inputs: tuple[Tensor, ...], additional_forward_args: tuple[Tensor, Tensor], target: Tensor):
        return (_dense_relevance(method, inputs[0], *additional_forward_args, target),)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # Captum draws its perturbations from the global generator
        scores = sensitivity_max(
            explain, x, perturb_radius=radius, n_perturb_samples=samples,
            additional_forward_args=(edges, num_nodes), target=target,
        )
    return scores.cpu().numpy()
