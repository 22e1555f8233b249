"""A run's settings: the YAML config holds every default, the command line's options go on top, checked once."""
from pathlib import Path

import pytest

from hin_captum.config import bundled, load_config
from hin_captum.models.files import Checkpoint
from hin_captum.pipeline.settings import RunSettings
from hin_captum.util import InputError


def test_the_config_gives_every_default_and_overrides_go_on_top(tmp_path):
    config = load_config("attribute")
    default = RunSettings.load()
    assert default.files == Checkpoint(str(bundled(config["model"]))) and default.batch_size == config["batch_size"]
    assert default.methods == {"lrp": {}} and default.target == 1 and default.out == Path(config["output"])
    assert default.plots.jets == config["plots"]["jets"] and default.summary == load_config("summary")

    chosen = RunSettings.load(method="lrp,ig", epsilon=0.2, rules=["bn=pass"], reference="zero", target="predicted",
                              batch_size=8, chunk_size="1000", out=tmp_path, plot=0, pdf=True, max_jets=None)
    assert chosen.methods == {"lrp": {"epsilon": 0.2, "rules": {"bn": "pass"}, "reference": "zero"},
                              "ig": {"n_steps": config["methods"]["ig"]["n_steps"], "reference": "zero"}}
    assert chosen.target == "predicted" and chosen.step_size == 1000 and chosen.batch_size == 8
    assert chosen.plots.jets == 0 and chosen.plots.formats == ("png", "pdf") and chosen.max_jets is None

    own = tmp_path / "mine.yml"
    own.write_text((bundled("configs/attribute.yml")).read_text().replace("batch_size: 64", "batch_size: 5"))
    assert RunSettings.load(own).batch_size == 5 and RunSettings.load(own, batch_size=7).batch_size == 7


def test_the_edge_budget_is_a_number_or_none():
    assert RunSettings.load().max_edges == 50_000  # configs/attribute.yml
    assert RunSettings.load(max_edges="1200").max_edges == 1200  # as the command line gives it
    assert RunSettings.load(max_edges="none").max_edges is None and RunSettings.load(max_edges="None").max_edges is None


@pytest.mark.parametrize("overrides, message", [
    ({"method": "lrp,nope"}, "^unknown method 'nope'"),
    ({"method": "ig", "epsilon": 0.1}, "^epsilon only apply to the LRP methods"),
    ({"method": "saliency", "reference": "zero"}, "^--reference only applies to methods that measure"),
    ({"epsilon": -1.0}, "^epsilon must be a number >= 0"),
    ({"rules": ["bn"]}, "^LRP rule 'bn' is not PATTERN=RULE"),
    ({"methods": {"lrp": {"gama": 1}}}, "^unknown method 'lrp' option"),
    ({"batch_size": 0}, "^the batch size must be a whole number of at least 1"),
    ({"chunk_size": "-3"}, "^the chunk size must be a whole number of at least 1"),
    ({"target": "higgs"}, "^unknown target 'higgs'"),
    ({"device": "tpu"}, "^unknown device 'tpu'"),
    ({"threads": 0}, "^--threads must be a whole number of at least 1"),
    ({"max_edges": "lots"}, "^--max-edges must be a positive number of edges or none, got 'lots'"),
    ({"max_edges": 0}, "^--max-edges must be a positive number of edges or none, got 0"),
    ({"batchsize": 3}, "^unknown run setting"),
])
def test_bad_settings_are_refused_in_one_line_before_any_work(overrides, message):
    with pytest.raises(InputError, match=message):
        RunSettings.load(**overrides)
