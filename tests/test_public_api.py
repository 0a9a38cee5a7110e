"""The public names are exactly the ones the README documents."""

from __future__ import annotations

import re
from pathlib import Path

import edge_collab

README = Path(__file__).resolve().parents[1] / "README.md"


def test_all_matches_the_readme():
    text = README.read_text(encoding="utf-8")
    paragraph = text.split("Public names (`edge_collab.__all__`):", 1)[1].split("\n\n", 1)[0]
    documented = set(re.findall(r"`(\w+)`", paragraph))
    assert documented == set(edge_collab.__all__)
    for name in edge_collab.__all__:
        assert hasattr(edge_collab, name)


def test_the_readme_example_app_is_the_shipped_script():
    text = README.read_text(encoding="utf-8")
    block = text.split("pair is installed):\n\n```python\n", 1)[1].split("```", 1)[0]
    script = README.parent / "scripts" / "example_app.py"
    assert block == script.read_text(encoding="utf-8")
    assert len(block.splitlines()) <= 20
