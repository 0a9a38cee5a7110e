"""The verifier protocol: one method, plain data in and out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from edge_collab.verifiers.features import DivergenceScores, Position


@dataclass(frozen=True)
class Divergence:
    """A point where student and mentor would continue differently.

    prefix_length: tokens of the student's context both branches share.
    answer_start: where the answer begins in the student's context.
    student_text / mentor_text: segment A (student) and segment B (mentor).
    scores: both models' view of both segments, computed only for verifiers
        that ask for it (`needs_scores`).
    position: under the audit policy, what the trigger saw where it fired.
    """

    prefix_length: int
    answer_start: int
    student_text: str
    mentor_text: str
    scores: DivergenceScores | None = None
    position: Position | None = None


@dataclass(frozen=True)
class Verdict:
    adopt_mentor: bool
    off_choice: bool = False  # the verifier's free answer was neither option
    # How far the verifier leans to the mentor, in log-odds (> 0: adopt); None
    # for verifiers without a graded opinion (fixed sides). A mentor-budget
    # controller moves the adoption bar on this scale.
    lean: float | None = None


class Verifier(Protocol):
    def choose(self, divergence: Divergence) -> Verdict: ...


def is_graded(verifier: object) -> bool:
    """Whether the verifier's verdicts carry a `lean` (class attribute `graded`)."""
    return bool(getattr(verifier, "graded", False))


def fixed_choice(verifier: object) -> bool | None:
    """True or False for a verifier whose choice is known before it sees the
    segments (class attribute `fixed_choice`: always the mentor's, always the
    student's); None for one that judges. The engine then writes only the
    segment that will be kept."""
    choice = getattr(verifier, "fixed_choice", None)
    return choice if isinstance(choice, bool) else None


def needs_scores(verifier: object) -> bool:
    """Whether the engine must compute `Divergence.scores` for this verifier."""
    return bool(getattr(verifier, "needs_scores", False))
