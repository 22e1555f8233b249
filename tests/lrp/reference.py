"""An explicit relevance-matrix LRP in float64 numpy: no autograd, no hin_captum code.

Each affine layer builds its contribution matrix ``c[b, j, i] = a_i * w'_ji`` and
redistributes ``R_i = sum_j c_ji / stab(z'_j) * R_j``, as written in the LRP papers.
"""
from __future__ import annotations

import numpy as np
import torch


def numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().double().cpu().numpy()


def sign0(value: np.ndarray) -> np.ndarray:
    return np.where(value >= 0, 1.0, -1.0)


def folded(linear: torch.nn.Linear | None, norm: torch.nn.BatchNorm1d | None):
    """(W, b) of Linear, BatchNorm1d (as a diagonal matrix) or the two in sequence, in float64."""
    if norm is not None:
        scale = numpy(norm.weight) / np.sqrt(numpy(norm.running_var) + norm.eps)
        shift = numpy(norm.bias) - numpy(norm.running_mean) * scale
    if linear is None:
        return np.diag(scale), shift
    weight, bias = numpy(linear.weight), numpy(linear.bias) if linear.bias is not None else 0.0
    if norm is None:
        return weight, bias + np.zeros(weight.shape[0])
    return scale[:, None] * weight, scale * bias + shift


def stab(value: np.ndarray, epsilon: float) -> np.ndarray:
    return value + epsilon * sign0(value)


def share(relevance: np.ndarray, denominator: np.ndarray, epsilon: float) -> np.ndarray:
    """``relevance / stab(denominator)``, 0 where that is 0."""
    stabilized = stab(denominator, epsilon)
    return np.divide(relevance, stabilized, out=np.zeros_like(relevance), where=stabilized != 0)


def affine_relevance(a, weight, bias, relevance, rule="epsilon", epsilon=1e-9, gamma=0.25, alpha=2.0, beta=1.0,
                     bias_in=True, low=None, high=None):
    """Relevance at the input ``a [B, I]`` of ``z = W a + b`` given relevance ``[B, J]`` at ``z``.

    Every rule is written with its contribution matrix ``c[b, j, i] = a_i w_ji`` (or the rule's
    modified one) and ``R_i = sum_j c_ji / stab(d_j) R_j``, as in the LRP papers.
    """
    c = a[:, None, :] * weight[None]
    b = bias if bias_in else np.zeros_like(bias)
    redistribute = lambda contributions, per_output: np.einsum("bji,bj->bi", contributions, per_output)
    if rule == "epsilon":
        return redistribute(c, share(relevance, c.sum(-1) + b, epsilon))
    if rule == "gamma":  # generalized: contributions of the output's sign enhanced
        z = c.sum(-1) + bias
        up, down = c + gamma * np.clip(c, 0, None), c + gamma * np.clip(c, None, 0)
        d_up = up.sum(-1) + b + gamma * np.clip(b, 0, None)
        d_down = down.sum(-1) + b + gamma * np.clip(b, None, 0)
        return (redistribute(up, np.where(z > 0, share(relevance, d_up, epsilon), 0.0))
                + redistribute(down, np.where(z < 0, share(relevance, d_down, epsilon), 0.0)))
    if rule == "zplus":
        positive = np.clip(c, 0, None)
        return redistribute(positive, share(relevance, positive.sum(-1), epsilon))
    if rule == "alphabeta":
        positive, negative = np.clip(c, 0, None), np.clip(c, None, 0)
        return (alpha * redistribute(positive, share(relevance, positive.sum(-1) + np.clip(b, 0, None), epsilon))
                - beta * redistribute(negative, share(relevance, negative.sum(-1) + np.clip(b, None, 0), epsilon)))
    if rule == "pass":
        return share(a * relevance, a, epsilon)
    if rule == "flat":  # every connected input (nonzero weight) an equal share
        connected = np.broadcast_to((weight != 0).astype(float)[None], c.shape)
        return redistribute(connected, share(relevance, connected.sum(-1), epsilon))
    if rule == "w2":
        square = np.broadcast_to((weight**2)[None], c.shape)
        return redistribute(square, share(relevance, square.sum(-1), epsilon))
    if rule == "zbox":
        box = c - (low[None, None, :] * np.clip(weight, 0, None)[None]) - (high[None, None, :] * np.clip(weight, None, 0)[None])
        return redistribute(box, share(relevance, box.sum(-1), epsilon))
    raise ValueError(rule)


def linear_relevance(values, matrix, relevance):
    """LRP-0 through a parameter-free linear map ``out = M values``; rows with zero output pass nothing."""
    out = matrix @ values
    ratio = np.divide(relevance, out, out=np.zeros_like(relevance), where=out != 0)
    return values * (matrix.T @ ratio)


def hin_relevance(model, x, edge_index, batch, target, epsilon=1e-9, reference=None):
    """Node ``[N, F]`` and edge ``[E, 2F]`` relevance of the interaction network, layer by layer.

    Input relevance is measured from ``reference`` (``[F]``, default zero): the input
    BatchNorm is the affine map ``x - reference -> W (x - reference) + (b + W reference)``.
    """
    net = model.interactionnetwork
    x, row, col, batch = numpy(x), edge_index[0].numpy(), edge_index[1].numpy(), batch.numpy()
    n_nodes, n_edges, n_graphs = x.shape[0], row.shape[0], batch.max() + 1
    relu = lambda v: np.maximum(v, 0)

    def mlp(seq, a):
        w1, b1 = folded(seq[0], seq[1])
        w2, b2 = folded(seq[3], None)
        hidden = relu(a @ w1.T + b1)
        return hidden, hidden @ w2.T + b2, (w1, b1, w2, b2)

    def mlp_relevance(a, hidden, params, relevance):
        w1, b1, w2, b2 = params
        r_hidden = affine_relevance(hidden, w2, b2, relevance, epsilon=epsilon)
        return affine_relevance(a, w1, b1, r_hidden, epsilon=epsilon)

    w_bn, b_bn = folded(None, model.bn)
    xb = x @ w_bn.T + b_bn
    # edge block
    edge_in = np.concatenate([xb[row], xb[col]], 1)
    edge_hidden, edge_attr, edge_params = mlp(net.edge_model.edge_mlp, edge_in)
    # node block
    message_in = np.concatenate([xb[row], edge_attr], 1)
    message_hidden, messages, message_params = mlp(net.node_model.node_mlp_1, message_in)
    mean_onto = np.zeros((n_nodes, n_edges))
    mean_onto[col, np.arange(n_edges)] = 1.0
    mean_onto /= np.maximum(mean_onto.sum(1, keepdims=True), 1.0)
    aggregated = mean_onto @ messages
    node_in = np.concatenate([xb, aggregated], 1)
    node_hidden, nodes, node_params = mlp(net.node_model.node_mlp_2, node_in)
    # global block
    pool = np.zeros((n_graphs, n_nodes))
    pool[batch, np.arange(n_nodes)] = 1.0
    pool /= pool.sum(1, keepdims=True)
    pooled = pool @ nodes
    global_hidden, logits, global_params = mlp(net.global_model.global_mlp, pooled)

    relevance = np.zeros_like(logits)
    relevance[np.arange(n_graphs), target] = logits[np.arange(n_graphs), target]
    r_pooled = mlp_relevance(pooled, global_hidden, global_params, relevance)
    r_nodes = linear_relevance(nodes, pool, r_pooled)
    r_node_in = mlp_relevance(node_in, node_hidden, node_params, r_nodes)
    n_features = x.shape[1]
    r_aggregated = r_node_in[:, n_features:]
    r_messages = linear_relevance(messages, mean_onto, r_aggregated)
    r_message_in = mlp_relevance(message_in, message_hidden, message_params, r_messages)
    r_edge_in = mlp_relevance(edge_in, edge_hidden, edge_params, r_message_in[:, n_features:])

    source = r_edge_in[:, :n_features] + r_message_in[:, :n_features]
    destination = r_edge_in[:, n_features:]
    r_xb = r_node_in[:, :n_features].copy()
    np.add.at(r_xb, row, source)
    np.add.at(r_xb, col, destination)
    x0 = np.zeros(x.shape[1]) if reference is None else numpy(torch.as_tensor(reference))
    r_x = affine_relevance(x - x0, w_bn, b_bn + w_bn @ x0, r_xb, epsilon=epsilon)
    return r_x, np.concatenate([source, destination], 1), logits
