"""What a generation yields: text pieces tagged with the model that wrote them."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Source(StrEnum):
    STUDENT = "student"
    MENTOR = "mentor"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Piece:
    text: str
    source: Source

    def to_dict(self) -> dict[str, str]:
        return {"text": self.text, "source": self.source.value}
