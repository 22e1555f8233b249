"""The shipped models load with load_model and still tag jets they never saw."""
import pytest
import torch

import hin_captum
from hin_captum.config import BUNDLE_DIR, PACKAGE_DIR
from hin_captum.data.sources import load_jets
from hin_captum.training.trainer import evaluate

PRETRAINED = BUNDLE_DIR / "pretrained"


@pytest.mark.parametrize(
    "name, data, min_auc",
    [
        ("hin_sanity.pt", {"source": "sanity", "n_jets": 600, "seed": 101}, 0.98),
        ("hin_toy.pt", {"source": "toy", "n_jets": 600, "seed": 101}, 0.93),
    ],
)
def test_pretrained_model_loads_and_separates_fresh_jets(name, data, min_auc):
    model = hin_captum.load_model(PRETRAINED / name)
    checkpoint = torch.load(PRETRAINED / name, weights_only=True)
    jets, _ = load_jets(data)

    metrics = evaluate(model, jets)

    assert not model.training
    assert "python scripts/train.py" in checkpoint["metadata"]["command"]
    assert metrics["auc"] >= min_auc, metrics
