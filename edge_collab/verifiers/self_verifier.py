"""The paper's free verifier: the student judges the two segments itself.

The student reads the shared prefix followed by the question below, and the
probabilities of "A" and "B" as its next token decide. Comparing the two
probabilities, instead of reading a free token, matters: on multiple-choice
questions small models often answer with the task's own option letters
("C"), which we count as `off_choice` (docs/method.md, "Pitfalls").

The prompt runs on a scratch branch of the student's KV cache, so judging
never changes what the student writes next.
"""

from __future__ import annotations

import numpy as np

from edge_collab.backends.base import ModelBackend
from edge_collab.backends.seam import seam_tokens
from edge_collab.errors import VerifierError
from edge_collab.verifiers.base import Divergence, Verdict

QUESTION = (
    "\nNow I will choose the next sequence that could lead to the correct answer. "
    "Option (A): {a}, Option (B): {b}. My choice: Option ("
)


class SelfVerifier:
    graded = True

    def __init__(self, student: ModelBackend):
        self.student = student
        self._option_a = self._single_token(b"A")
        self._option_b = self._single_token(b"B")

    def _single_token(self, text: bytes) -> int:
        tokens = self.student.tokenize(text)
        if not tokens:
            raise VerifierError(f"{self.student.name}: cannot tokenize the option letter {text.decode()}")
        return tokens[0]

    def _prompt(self, divergence: Divergence) -> tuple[int, list[int]]:
        """Where the question branches off the student's context, and its tokens."""
        question = QUESTION.format(a=divergence.student_text, b=divergence.mentor_text).encode("utf-8")
        prefix = self.student.tokens[: divergence.prefix_length]
        return seam_tokens(self.student, prefix, question, divergence.answer_start)

    def choose(self, divergence: Divergence) -> Verdict:
        return self._verdict(self.student.branch_logits(*self._prompt(divergence)))

    def choose_and_read(self, divergence: Divergence) -> tuple[Verdict, np.ndarray]:
        """The verdict, and the student's last hidden state at the end of the
        question: the paper's learned verifier reads that instead of "A"/"B"."""
        logits, hidden = self.student.branch_logits_and_hidden(*self._prompt(divergence))
        return self._verdict(logits), hidden

    def _verdict(self, logits: np.ndarray) -> Verdict:
        lean = float(logits[self._option_b] - logits[self._option_a])  # log-odds of B against A
        raw_choice = int(np.argmax(logits))
        return Verdict(
            adopt_mentor=lean > 0.0,
            off_choice=raw_choice not in (self._option_a, self._option_b),
            lean=lean,
        )
