"""Shared fixtures: the optional real reference material next to the checkout."""
from pathlib import Path

import pytest
from torch_geometric.data import Data

from hin_captum.data.sources import read_npz_jet

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
    return [read_npz_jet(reference_dir / f"cms_jet_{index}.npz") for index in range(2)]
