"""The README's worked examples run as written."""
import re

import pytest

from hin_captum.config import CONFIG_DIR

PROJECT = CONFIG_DIR.parent
SECTION = "## Explain your own PyG model"


def worked_examples() -> list[str]:
    """The complete Python examples (those with imports) of the PyG section of the README."""
    text = (PROJECT / "README.md").read_text()
    section = text[text.index(SECTION):]
    section = section[: section.index("\n## ", len(SECTION))]
    return [block for block in re.findall(r"```python\n(.*?)```", section, re.S) if "import " in block]


def test_the_pyg_section_has_both_worked_examples():
    examples = worked_examples()
    assert len(examples) == 2
    assert "EdgeConv" in examples[0] and "GCN(" in examples[1]


@pytest.mark.parametrize("number", [0, 1])
def test_a_worked_example_runs(number, tmp_path, monkeypatch, capsys):
    (tmp_path / "pretrained").symlink_to(PROJECT / "pretrained")
    monkeypatch.chdir(tmp_path)

    exec(compile(worked_examples()[number], f"README example {number + 1}", "exec"), {"__name__": "readme"})

    assert capsys.readouterr().out.strip()
