"""The two small interfaces the engine asks of a mentor.

`Mentor` is a mentor as a whole: a GGUF model in process (`LocalMentor`,
engine/local_mentor.py) or a serving engine over HTTP (`RemoteMentor`,
remote/mentor.py). `MentorLink` is how one answer's loop talks to it: it
follows the answer, answers probes and writes segments. The engine only ever
sees these two protocols, so it never asks which kind of mentor it has.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from edge_collab.backends.base import BackendCounters, ModelBackend
from edge_collab.engine.answer import Answer
from edge_collab.engine.result import MentorPrompt, Steps
from edge_collab.engine.sampling import TokenScore
from edge_collab.engine.stats import GenerationStats
from edge_collab.engine.writer import Written
from edge_collab.settings import GenerationSettings
from edge_collab.verifiers.features import MentorView


@dataclass(frozen=True)
class Audit:
    """What one audit read: answer tokens from `start`, and the mentor's view
    where each was written (views[i] for tokens[i]; None where it has none, as
    where a served mentor's tokens do not start at the student's)."""

    start: int
    tokens: list[int]
    views: list[MentorView | None]


class MentorLink(Protocol):
    """The mentor's side of one answer (docs/method.md, "probe", "consult")."""

    # Set by a probe that diverged, for verifier features: the mentor's
    # distribution at the split, and its log-probabilities of the student's segment.
    split_row: np.ndarray | None
    student_segment_logprobs: np.ndarray

    def probe(self, word_start: int, word: list[int]) -> int | None:
        """Would the mentor have written the student's word (answer tokens from
        `word_start`)? None when it would, else the answer position where the two part."""
        ...

    @property
    def can_overlap(self) -> bool:
        """Whether `start_probe` and `start_audit` run while the student writes
        on (a served mentor; one in process with cores of its own)."""
        ...

    def start_read_ahead(self, upto: int) -> Future[None] | None:
        """Read the final answer tokens before `upto` not read yet, on the
        mentor's own thread; None where there is nothing to read, or the mentor
        reads only what it must (no thread of its own, or a server that many
        students share)."""
        ...

    def start_probe(self, word_start: int, word: list[int]) -> Future[int | None]:
        """`probe`, in flight on another thread; nothing else touches the link
        until its result is taken."""
        ...

    def read_student_segment(self) -> None:
        """Read the rest of the student's segment now (a verifier that compares
        both models on both segments needs it)."""
        ...

    def mentor_segment(
        self, count: int, scores: list[TokenScore] | None = None, until_sentence_end: bool = False
    ) -> Written:
        """The mentor's lookahead of up to `count` tokens from the split."""
        ...

    def mentor_text(self, segment: Written) -> bytes: ...

    def as_student_tokens(self, segment: Written) -> list[int]:
        """The mentor's segment in the student's vocabulary."""
        ...

    def adopt(self, segment: Written) -> None:
        """Append the mentor's segment to the answer (already rolled back to the split)."""
        ...

    def reject(self) -> None:
        """Drop the mentor's segment; the student's stays."""
        ...

    def give_up(self) -> None:
        """The mentor has no room left: drop whatever it has open; the student goes on alone."""
        ...

    @property
    def can_audit(self) -> bool:
        """Whether it can read the answer in batches for the audit policy."""
        ...

    @property
    def audits_within_words(self) -> bool:
        """Whether an audit may end inside a word: true where the two models
        share token ids; positions matched through the text need a word end."""
        ...

    def unread(self, frontier: int) -> int:
        """Answer tokens before `frontier` that the mentor has not read."""
        ...

    def audit(self, frontier: int) -> Audit:
        """Read the answer tokens not yet read, up to answer position `frontier`, in one batch."""
        ...

    def start_audit(self, frontier: int) -> Future[Audit]:
        """`audit`, in flight on another thread; nothing else touches the link
        until its result is taken."""
        ...

    def split_at(self, audit: Audit, index: int, first_token: int | None = None) -> None:
        """Part the branches at tokens[index] of `audit`: the next mentor segment
        starts there, with `first_token` where the trigger names one (a mentor
        in process sharing the student's ids; others write their own)."""
        ...

    def count_into(self, stats: GenerationStats) -> None:
        """Add what the mentor did for this answer to its statistics."""
        ...


class Mentor(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def counters(self) -> BackendCounters:
        """Time and work inside the mentor."""
        ...

    @property
    def backend(self) -> ModelBackend | None:
        """The model in process; None for a served mentor."""
        ...

    @property
    def can_score(self) -> bool:
        """Whether it reads both segments with its own model (a learned verifier needs it)."""
        ...

    def chat_prompt(
        self, messages: Sequence[dict[str, str]], student: ModelBackend, thinking: bool | None = False
    ) -> MentorPrompt:
        """The mentor's prompt. `thinking` False (guiding): a thinking mentor's
        section is rendered closed and empty, so it continues the student's
        answer as answer text (docs/method.md)."""

    def plain_prompt(self, text: str, student: ModelBackend | None = None) -> MentorPrompt: ...

    def open_link(
        self,
        answer: Answer,
        prompt: MentorPrompt,
        settings: GenerationSettings,
        rng: np.random.Generator,
        record_scores: bool,
    ) -> MentorLink:
        """Follow `answer` (the student's context beyond its prompt) from `prompt`."""
        ...

    def alone(self, student: ModelBackend, prompt: MentorPrompt, settings: GenerationSettings) -> Steps:
        """The mentor writing the whole answer itself (the "mentor" method);
        answers are counted in `student`'s tokens."""
        ...

    def close(self) -> None: ...
