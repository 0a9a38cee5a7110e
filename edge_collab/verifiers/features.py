"""Features of a divergence that any student/mentor pair produces.

Both models judge both segments: each model's log-probabilities on its own
segment and on the other's (cross-scoring costs one batched pass per model,
no decoding), each model's uncertainty where the branches part, and where in
the answer this happens. The order and the version are part of every trained
verifier file; a verifier trained on other features is refused.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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
