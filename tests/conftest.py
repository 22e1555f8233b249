"""Shared fixtures: the optional real reference material next to the checkout."""
from pathlib import Path

import numpy as np
import pytest
import torch
from torch_geometric.data import Data

REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "reference"
REFERENCE_LOGITS_HBB = (-1.4766, -1.0861)


@pytest.fixture
def reference_dir() -> Path:
    """``../shared/reference``: the HIN-LRP checkpoint and two real CMS jets; tests skip without it."""
    if not (REFERENCE / "hin_lrp_IN.pth").is_file():
        pytest.skip("../shared/reference is absent (optional real material)")
    return REFERENCE


@pytest.fixture
def real_jets(reference_dir) -> list[Data]:
    jets = []
    for index in range(2):
        arrays = np.load(reference_dir / f"cms_jet_{index}.npz")
        jets.append(Data(x=torch.from_numpy(arrays["x"]), edge_index=torch.from_numpy(arrays["edge_index"]),
                         y=torch.from_numpy(arrays["y"]).argmax(1)))
    return jets
