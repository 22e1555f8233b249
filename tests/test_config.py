import pytest

from hin_captum.config import load_config
from hin_captum.util import InputError


def test_a_config_is_found_by_name_or_path(tmp_path):
    path = tmp_path / "mine.yml"
    path.write_text("answer: 42\n")
    assert load_config(path) == {"answer": 42}
    assert load_config("attribute") == load_config("attribute.yml")


@pytest.mark.parametrize("text, message", [("[1, 2]", "YAML mapping"), ("a: [", "not valid YAML")])
def test_a_bad_config_is_refused_in_one_line(tmp_path, text, message):
    path = tmp_path / "bad.yml"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        load_config(path)


def test_an_unknown_config_name_lists_the_known_ones():
    with pytest.raises(InputError, match="attribute"):
        load_config("no-such-config")
