"""Config-driven training of the interaction network: Adam, validation split, early stopping."""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn
from torch_geometric.data import Data
from torch_geometric.loader import DataLoader
from tqdm.auto import tqdm

from ..models import InteractionNetwork
from .metrics import background_rejection, roc_auc

SIGNAL_EFFICIENCIES = (0.3, 0.5)


@dataclass(frozen=True)
class TrainingConfig:
    """Optimisation settings; see ``configs/train_*.yml``."""

    seed: int = 0
    batch_size: int = 64
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    max_epochs: int = 30
    patience: int = 5
    validation_fraction: float = 0.2
    test_fraction: float = 0.2


@dataclass
class TrainingResult:
    model: nn.Module
    epochs: int
    best_epoch: int
    history: list[dict[str, float]] = field(default_factory=list)
    test_metrics: dict[str, float] = field(default_factory=dict)


def split(jets: Sequence[Data], config: TrainingConfig) -> tuple[list[Data], list[Data], list[Data]]:
    """Deterministic train / validation / test split from the seed."""
    order = np.random.default_rng(config.seed).permutation(len(jets))
    n_test = int(round(config.test_fraction * len(jets)))
    n_validation = int(round(config.validation_fraction * len(jets)))
    pick = lambda indices: [jets[i] for i in indices]
    return (pick(order[n_test + n_validation:]), pick(order[n_test:n_test + n_validation]), pick(order[:n_test]))


@torch.no_grad()
def predict(model: nn.Module, jets: Sequence[Data], batch_size: int = 256) -> tuple[np.ndarray, np.ndarray, float]:
    """Hbb probability, true labels, and mean cross-entropy over ``jets``."""
    model.eval()
    scores, labels, loss = [], [], 0.0
    for batch in DataLoader(list(jets), batch_size=batch_size):
        logits = model(batch.x, batch.edge_index, batch.batch)
        loss += float(nn.functional.cross_entropy(logits, batch.y, reduction="sum"))
        scores.append(logits.softmax(1)[:, 1].numpy())
        labels.append(batch.y.numpy())
    return np.concatenate(scores), np.concatenate(labels), loss / max(len(jets), 1)


def evaluate(model: nn.Module, jets: Sequence[Data]) -> dict[str, float]:
    """Loss, accuracy, ROC AUC and background rejection at 30% and 50% signal efficiency."""
    scores, labels, loss = predict(model, jets)
    metrics = {"loss": loss, "accuracy": float(((scores > 0.5) == labels).mean()), "auc": roc_auc(labels, scores)}
    for efficiency in SIGNAL_EFFICIENCIES:
        metrics[f"rejection@{efficiency:.0%}"] = background_rejection(labels, scores, efficiency)
    return metrics


def train(jets: Sequence[Data], model: nn.Module | dict[str, Any], config: TrainingConfig) -> TrainingResult:
    """Train ``model`` (or an interaction network of these sizes) on a split of ``jets``, ``forward(x, edge_index,
    batch) -> logits``; keep the weights of the best validation loss; report test metrics."""
    torch.manual_seed(config.seed)
    train_jets, validation_jets, test_jets = split(jets, config)
    if not isinstance(model, nn.Module):
        model = InteractionNetwork.from_config(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    loader = DataLoader(train_jets, batch_size=config.batch_size, shuffle=True,
                        generator=torch.Generator().manual_seed(config.seed))
    result = TrainingResult(model=model, epochs=0, best_epoch=0)
    best_loss, best_state = float("inf"), copy.deepcopy(model.state_dict())
    progress = tqdm(range(1, config.max_epochs + 1), desc="training", unit="epoch")
    for epoch in progress:
        model.train()
        for batch in loader:
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(model(batch.x, batch.edge_index, batch.batch), batch.y)
            loss.backward()
            optimizer.step()
        validation = evaluate(model, validation_jets)
        result.history.append({"epoch": epoch, **validation})
        result.epochs = epoch
        progress.set_postfix(loss=f"{validation['loss']:.4f}", auc=f"{validation['auc']:.4f}")
        if validation["loss"] < best_loss:
            best_loss, best_state, result.best_epoch = validation["loss"], copy.deepcopy(model.state_dict()), epoch
        elif epoch - result.best_epoch >= config.patience:
            break
    model.load_state_dict(best_state)
    model.eval()
    result.test_metrics = evaluate(model, test_jets)
    return result
