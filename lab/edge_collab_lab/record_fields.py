"""Fields of the divergence records that `verifier collect` writes beside the
features: the hidden states a verifier may read, and the mentor's judgement."""

from __future__ import annotations

import base64

import numpy as np

# The record field holding the student's hidden state at the end of the self
# verifier's question (collect --hidden-state), encoded by encode_hidden_state.
HIDDEN_FIELD = "verifier_question_hidden"
# The same for the mentor reading that question (collect --mentor-judge), and
# its log-odds for its own segment offered as option B, then as option A.
MENTOR_HIDDEN_FIELD = "mentor_question_hidden"
MENTOR_JUDGE_FIELDS = ("mentor_judge_lean", "mentor_judge_lean_swapped")


def encode_hidden_state(hidden: np.ndarray) -> str:
    """A hidden-state vector as base64 of little-endian float16: a quarter of
    JSON's size, and float16 keeps far more precision than a probe can use."""
    return base64.b64encode(np.asarray(hidden, dtype="<f2").tobytes()).decode("ascii")


def decode_hidden_state(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype="<f2").astype(np.float32)
