"""The ntuple schema: read once from configs/definitions.yml, checked, and passed to what needs it."""
import pytest

from hin_captum.data.schema import CMS_HBB, PREDICTED, JetSchema, unique_names
from hin_captum.util import InputError


def test_unique_names_number_the_repeats():
    assert unique_names(["a", "b", "a", "a"]) == ["a", "b", "a_2", "a_3"]
    names = CMS_HBB.columns
    assert len(set(names)) == 48 and {"track_pt_2", "track_ptrel_2", "track_dlambdadz_2"} <= set(names)


def test_the_cms_schema_names_classes_targets_and_coordinates():
    assert CMS_HBB.classes == ("QCD", "Hbb") and CMS_HBB.tree == "deepntuplizer/tree"
    assert CMS_HBB.target_choices() == ["qcd", "hbb", PREDICTED]
    assert CMS_HBB.target_class("Hbb") == 1 and CMS_HBB.target_class("predicted") == PREDICTED
    assert CMS_HBB.target_name(0) == "QCD" and CMS_HBB.target_name(PREDICTED) == PREDICTED
    assert dict(CMS_HBB.coordinates) == {"eta": "track_etarel", "phi": "track_phirel", "pt": "track_pt"}
    with pytest.raises(InputError, match="^unknown target 'higgs': use one of qcd, hbb, predicted"):
        CMS_HBB.target_class("higgs")


def test_a_definitions_file_without_coordinates_or_with_unknown_ones_is_refused(tmp_path):
    path = tmp_path / "definitions.yml"
    base = ("features: [a, b]\nclasses: [QCD, Hbb]\nspectators: []\nlabels: {hbb: [h]}\ntree: t\n"
            "track_counter: n\n")
    path.write_text(base)
    with pytest.raises(InputError, match="lacks coordinates"):
        JetSchema.load(path)
    path.write_text(base + "coordinates: {eta: a, phi: b, pt: c}\n")
    with pytest.raises(InputError, match="coordinates must name features for eta, phi, pt"):
        JetSchema.load(path)
    path.write_text(base + "coordinates: {eta: a, phi: b, pt: a}\n")
    assert JetSchema.load(path).columns == ["a", "b"]
