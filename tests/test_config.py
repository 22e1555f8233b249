import pytest

from hin_captum.config import feature_names, load_config, unique_names
from hin_captum.errors import InputError


def test_unique_names_number_the_repeats():
    assert unique_names(["a", "b", "a", "a"]) == ["a", "b", "a_2", "a_3"]
    names = unique_names(feature_names())
    assert len(set(names)) == 48 and {"track_pt_2", "track_ptrel_2", "track_dlambdadz_2"} <= set(names)


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
