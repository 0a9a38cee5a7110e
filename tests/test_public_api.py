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
