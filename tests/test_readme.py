"""The README's worked examples run as written."""
import re

import pytest

from hin_captum.config import PACKAGE_DIR

PROJECT = PACKAGE_DIR.parent
SECTIONS = ("## Explain your own PyG model", "## Rules, composites and your own rule", "## Explain ParticleNet and ParT",
            "## Attention layers")


def worked_examples() -> list[str]:
    """The complete Python examples (those with imports) of the README sections that have them."""
    text = (PROJECT / "README.md").read_text()
    examples = []
    for heading in SECTIONS:
        section = text[text.index(heading):]
        section = section[: section.index("\n## ", len(heading))]
        examples += [block for block in re.findall(r"```python\n(.*?)```", section, re.S) if "import " in block]
    return examples


def test_the_readme_has_its_five_worked_examples():
    examples = worked_examples()
    assert len(examples) == 5
    assert "EdgeConv" in examples[0] and "GCN(" in examples[1] and "class RelativeEpsilon(Rule)" in examples[2]
    assert "load_weaver" in examples[3] and "TransformerEncoder" in examples[4]


@pytest.mark.parametrize("number", range(5))
def test_a_worked_example_runs(number, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # the examples find the bundled files from anywhere

    exec(compile(worked_examples()[number], f"README example {number + 1}", "exec"), {"__name__": "readme"})

    assert capsys.readouterr().out.strip()
