"""Ways to combine a small and a large model from the literature, on the same
engine, backends and statistics as collab, so comparisons are like for like.

Token-level methods decide every token and need one tokenizer for both models:

- `cosd` (CoSD, Collaborative Speculative Decoding): the student proposes its
  top token; when its probability is below α and the mentor's top token
  probability exceeds β times the student's, the mentor's token is kept.
  α = β = 0.5.
- `nudging` (Nudging, Fei et al.): the mentor writes the token whenever the
  student's top-token probability is below γ = 0.4.
- `rstitch` (R-Stitch): the student writes until its normalised entropy
  (entropy / ln vocabulary size) exceeds τ; the mentor then writes until its
  own normalised entropy falls below τ. τ = 0.15.
- `average`: the two next-token distributions are mixed 50/50 (a token counts
  as the mentor's when the mix changes the student's choice).

`takeover` (in generation.py) probes like collab, but after every divergence
the mentor writes the rest of the sentence, with no verifier: the imitation-
heavy style MentorCollab argues against.

The mentor is read lazily: it evaluates the tokens written since it last
looked, in one batch, only when a rule needs its distribution.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

from edge_collab.backends.base import ModelBackend
from edge_collab.engine.answer import Answer
from edge_collab.engine.pieces import Piece, Source
from edge_collab.engine.sampling import TokenChooser, distribution_shape, log_softmax
from edge_collab.engine.stats import GenerationStats
from edge_collab.errors import ContextOverflowError, IncompatiblePairError
from edge_collab.settings import GenerationSettings

if TYPE_CHECKING:
    from edge_collab.engine.generation import GenerationResult, Prompts


def require_shared_tokenizer(student: ModelBackend, mentor: object, method: str) -> None:
    if not isinstance(mentor, ModelBackend) or student.tokenizer_fingerprint() != mentor.tokenizer_fingerprint():
        raise IncompatiblePairError(
            f"{method} decides token by token and needs the student and a local mentor with one tokenizer; "
            "use collab (text handoff) for this pair"
        )


def _top(logits: np.ndarray) -> tuple[int, float]:
    logprobs = log_softmax(logits)
    token = int(np.argmax(logprobs))
    return token, float(math.exp(logprobs[token]))


class TokenLevelLoop:
    """One answer by a token-level method (see the module docstring)."""

    def __init__(self, student: ModelBackend, mentor: ModelBackend, settings: GenerationSettings, prompts: Prompts):
        self.student, self.mentor, self.settings, self.prompts = student, mentor, settings, prompts
        self.pieces: list[Piece] = []
        self.result: GenerationResult | None = None
        self.stats = GenerationStats(mode=settings.mode)
        self._chooser = TokenChooser(settings.temperature, np.random.default_rng(settings.seed))
        self._mentor_writing = False  # rstitch's state
        self._mentor_synced = 0

    def _mentor_logits(self, answer: Answer) -> np.ndarray:
        """The mentor's distribution after the current answer (catching up in one batch)."""
        self.mentor.append(answer.tokens(self._mentor_synced))
        self._mentor_synced = len(answer)
        return self.mentor.next_logits()

    def _decide(self, answer: Answer) -> tuple[int, Source]:
        s = self.settings
        student_logits = self.student.next_logits()
        student_top, student_p = _top(student_logits)
        if s.mode == "cosd":
            if student_p >= s.cosd_alpha:
                return self._chooser.choose(student_logits), Source.STUDENT
            mentor_top, mentor_p = _top(self._mentor_logits(answer))
            if mentor_top != student_top and mentor_p > s.cosd_beta * student_p:
                return mentor_top, Source.MENTOR
            return self._chooser.choose(student_logits), Source.STUDENT
        if s.mode == "nudging":
            if student_p < s.nudging_gamma:
                return self._chooser.choose(self._mentor_logits(answer)), Source.MENTOR
            return self._chooser.choose(student_logits), Source.STUDENT
        if s.mode == "rstitch":
            if not self._mentor_writing:
                entropy, _ = distribution_shape(student_logits)
                self._mentor_writing = entropy / math.log(len(student_logits)) > s.rstitch_tau
            if self._mentor_writing:
                mentor_logits = self._mentor_logits(answer)
                entropy, _ = distribution_shape(mentor_logits)
                if entropy / math.log(len(mentor_logits)) < s.rstitch_tau:
                    self._mentor_writing = False  # the mentor writes this token, the student the next
                return self._chooser.choose(mentor_logits), Source.MENTOR
            return self._chooser.choose(student_logits), Source.STUDENT
        # average
        mixed = np.logaddexp(log_softmax(student_logits), log_softmax(self._mentor_logits(answer))) - math.log(2)
        token = self._chooser.choose(mixed)
        return token, Source.MENTOR if token != student_top else Source.STUDENT

    def steps(self) -> Iterator[Piece]:
        s = self.settings
        assert isinstance(self.prompts.mentor, list)
        started = time.perf_counter()
        before = {m: m.counters.snapshot() for m in (self.student, self.mentor)}
        for model in (self.student, self.mentor):
            model.discard_branch()
        self.student.reset_to(self.prompts.student)
        self.mentor.reset_to(self.prompts.mentor)
        answer = Answer(self.student, len(self.prompts.student), s.stop, s.repeat_guard)
        stop_reason = None
        mentor_written = 0
        try:
            while stop_reason is None:
                if len(answer) >= s.max_new_tokens:
                    stop_reason = "length"
                    break
                token, source = self._decide(answer)
                if self.student.is_end(token):
                    stop_reason = "eos"
                    break
                self.student.append([token])
                answer.label_new(source)
                mentor_written += source is Source.MENTOR
                stop_reason = answer.finish_step()
                for piece in answer.emit():
                    self.pieces.append(piece)
                    yield piece
        except ContextOverflowError:
            stop_reason = "context"
            answer.finish_step()
        for piece in answer.emit(final=True):
            self.pieces.append(piece)
            yield piece
        student, mentor = (m.counters.since(before[m]) for m in (self.student, self.mentor))
        stats = self.stats
        stats.stop_reason = stop_reason or "eos"
        stats.prompt_tokens = answer.prompt_length
        stats.tokens_total = answer.final_tokens
        stats.tokens_mentor = answer.mentor_tokens
        stats.mentor_decode_tokens = mentor_written
        stats.mentor_prefill_tokens = mentor.evaluated_tokens
        stats.student_eval_tokens = student.evaluated_tokens
        stats.student_decode_tokens = answer.final_tokens - answer.mentor_tokens
        stats.reevaluated_tokens = student.reevaluated_tokens + mentor.reevaluated_tokens
        stats.student_s, stats.mentor_s = student.seconds, mentor.seconds
        stats.wall_s = time.perf_counter() - started
        stats.finish()
        from edge_collab.engine.generation import GenerationResult

        self.result = GenerationResult(answer.text, list(self.pieces), stats)
