"""What a generation is asked and what it gives back, whatever the method."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from edge_collab.engine.pieces import Piece
from edge_collab.engine.stats import GenerationStats

# A request as the mentor reads it: token ids for a model in process, text for
# a server, which tokenizes for itself. Only the mentor's own link reads it.
MentorPrompt = list[int] | str


@dataclass
class Prompts:
    """The same request prepared for each model (each applies its own template)."""

    student: list[int]
    mentor: MentorPrompt | None = None


@dataclass
class GenerationResult:
    text: str
    pieces: list[Piece]
    stats: GenerationStats

    def to_dict(self) -> dict[str, object]:
        return {
            "text": self.text,
            "pieces": [p.to_dict() for p in self.pieces],
            "stats": self.stats.to_dict(),
        }


class Steps(Protocol):
    """A method's loop: `steps()` yields pieces as they become final and sets
    `result` when it ends."""

    pieces: list[Piece]
    result: GenerationResult | None

    def steps(self) -> Iterator[Piece]: ...
