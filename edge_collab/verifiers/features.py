"""Features of a divergence that any student/mentor pair produces.

Both models judge both segments: each model's log-probabilities on its own
segment and on the other's (cross-scoring costs one batched pass per model,
no decoding), each model's uncertainty where the branches part, and where in
the answer this happens. The order and the version are part of every trained
verifier file; a verifier trained on other features is refused.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from edge_collab.engine.sampling import TokenScore, log_softmax

FEATURE_SET_VERSION = 1

FEATURE_NAMES: tuple[str, ...] = (
    "student_own_mean_logprob",  # student on its segment (A)
    "student_own_min_logprob",
    "student_cross_mean_logprob",  # student on the mentor's segment (B)
    "student_cross_min_logprob",
    "mentor_own_mean_logprob",  # mentor on B
    "mentor_own_min_logprob",
    "mentor_cross_mean_logprob",  # mentor on A
    "mentor_cross_min_logprob",
    "student_entropy",  # at the split
    "student_margin",
    "mentor_entropy",
    "mentor_margin",
    "agreed_word_tokens",  # tokens of the probed word both wrote before the split
    "answer_position",  # split / max_new_tokens
    "probes_so_far",
    "adoptions_so_far",
)

_FLOOR = -30.0  # a log-probability below this adds nothing but outliers


@dataclass(frozen=True)
class DivergenceScores:
    student_own: np.ndarray  # log-probabilities, one per token of the segment
    student_cross: np.ndarray
    mentor_own: np.ndarray
    mentor_cross: np.ndarray
    student_entropy: float
    student_margin: float
    mentor_entropy: float
    mentor_margin: float
    agreed_word_tokens: int
    answer_position: float
    probes_so_far: int
    adoptions_so_far: int


def _mean_min(logprobs: np.ndarray) -> tuple[float, float]:
    if logprobs.size == 0:
        return 0.0, 0.0
    clipped = np.maximum(logprobs, _FLOOR)
    return float(clipped.mean()), float(clipped.min())


def feature_vector(scores: DivergenceScores) -> np.ndarray:
    values = [
        *_mean_min(scores.student_own),
        *_mean_min(scores.student_cross),
        *_mean_min(scores.mentor_own),
        *_mean_min(scores.mentor_cross),
        scores.student_entropy,
        scores.student_margin,
        scores.mentor_entropy,
        scores.mentor_margin,
        float(scores.agreed_word_tokens),
        scores.answer_position,
        float(scores.probes_so_far),
        float(scores.adoptions_so_far),
    ]
    return np.asarray(values, dtype=np.float32)


# What a trigger sees at one answer position (engine/trigger.py): both models'
# view of the token written there. A learned trigger reads these, in this order;
# the version is part of every trained trigger file.
POSITION_FEATURE_SET_VERSION = 1

POSITION_FEATURE_NAMES: tuple[str, ...] = (
    "student_logprob",  # of the token it wrote
    "student_entropy",
    "student_margin",
    "mentor_top_logprob",
    "mentor_student_logprob",  # the mentor's log-probability of the student's token
    "mentor_prefers",  # mentor_top_logprob - mentor_student_logprob (0 where they agree)
    "mentor_entropy",
    "mentor_margin",
    "agree",
    "answer_position",  # tokens into the answer, / 512
)


@dataclass(frozen=True)
class Position:
    """Both models' view of one answer position."""

    index: int  # answer position (0: the first token of the answer)
    student_token: int
    student: TokenScore  # the student's log-probability of its token, entropy and margin there
    mentor_token: int  # the mentor's greedy choice there
    mentor_top_logprob: float
    mentor_student_logprob: float  # the mentor's log-probability of the student's token
    mentor_entropy: float
    mentor_margin: float
    # The student's log-probability of the mentor's first choice; -inf where it
    # is not known (its distribution there is no longer kept, or the choice has
    # no student id). Not a feature: the average rule's trigger reads it.
    student_mentor_logprob: float = -math.inf
    # Both models' whole distributions there (the student's logits, the
    # mentor's log-probabilities in the student's ids) where both are in process
    # with one tokenizer, else None. Not features: the average rule mixes them.
    student_logits: np.ndarray | None = field(default=None, compare=False, repr=False)
    mentor_logprobs: np.ndarray | None = field(default=None, compare=False, repr=False)

    @property
    def agree(self) -> bool:
        return self.mentor_token == self.student_token

    def vector(self) -> np.ndarray:
        values = [
            max(self.student.logprob, _FLOOR),
            self.student.entropy,
            self.student.margin,
            max(self.mentor_top_logprob, _FLOOR),
            max(self.mentor_student_logprob, _FLOOR),
            min(self.mentor_top_logprob - self.mentor_student_logprob, -_FLOOR),
            self.mentor_entropy,
            self.mentor_margin,
            float(self.agree),
            self.index / 512,
        ]
        return np.asarray(values, dtype=np.float32)


@dataclass(frozen=True)
class MentorView:
    """The mentor's view of one answer position: its greedy choice there (in
    the student's ids; -1 where it has none, as when a served mentor's choice is
    known only by its text) and how sure it is."""

    token: int
    top_logprob: float
    student_logprob: float  # its log-probability of the student's token
    entropy: float
    margin: float
    # The whole row of log-probabilities, where it is in the student's ids (a
    # mentor in process sharing the student's tokenizer); else None.
    logprobs: np.ndarray | None = field(default=None, compare=False, repr=False)


def mentor_view(mentor_row: np.ndarray, student_token: int) -> MentorView:
    """The view from a whole row of the mentor's logits (a mentor in process)."""
    logprobs = log_softmax(mentor_row)
    probabilities = np.exp(logprobs)
    top = int(np.argmax(logprobs))
    top_two = np.partition(probabilities, -2)[-2:]
    return MentorView(
        token=top,
        top_logprob=float(logprobs[top]),
        student_logprob=float(logprobs[student_token]),
        entropy=float(-(probabilities * logprobs).sum()),
        margin=float(top_two[1] - top_two[0]),
        logprobs=logprobs,
    )


def position_of(
    index: int,
    student_token: int,
    student: TokenScore,
    view: MentorView,
    student_mentor_logprob: float = -math.inf,
    student_logits: np.ndarray | None = None,
) -> Position:
    return Position(
        index=index,
        student_token=student_token,
        student=student,
        mentor_token=view.token,
        mentor_top_logprob=view.top_logprob,
        mentor_student_logprob=view.student_logprob,
        mentor_entropy=view.entropy,
        mentor_margin=view.margin,
        student_mentor_logprob=student_mentor_logprob,
        student_logits=student_logits if view.logprobs is not None else None,
        mentor_logprobs=view.logprobs,
    )
