"""The verifier protocol: one method, plain data in and out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from edge_collab.verifiers.features import DivergenceScores


@dataclass(frozen=True)
class Divergence:
    """A point where student and mentor would continue differently.

    prefix_length: tokens of the student's context both branches share.
    answer_start: where the answer begins in the student's context.
    student_text / mentor_text: segment A (student) and segment B (mentor).
    scores: both models' view of both segments, computed only for verifiers
        that ask for it (`needs_scores`).
    """

    prefix_length: int
    answer_start: int
    student_text: str
    mentor_text: str
    scores: DivergenceScores | None = None


@dataclass(frozen=True)
class Verdict:
    adopt_mentor: bool
    off_choice: bool = False  # the verifier's free answer was neither option
    margin: float = 0.0  # confidence in the choice, verifier-specific units


class Verifier(Protocol):
    def choose(self, divergence: Divergence) -> Verdict: ...


def needs_scores(verifier: object) -> bool:
    """Whether the engine must compute `Divergence.scores` for this verifier."""
    return bool(getattr(verifier, "needs_scores", False))
