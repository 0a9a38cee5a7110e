"""Token-level ways to combine a small and a large model from the literature, on the same
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

`takeover` (engine/consult.py) probes like collab, but after every divergence
the mentor writes the rest of the sentence, with no verifier: the imitation-
heavy style MentorCollab argues against.

The mentor is read lazily: it evaluates the tokens written since it last
looked, in one batch, only when a rule needs its distribution.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from typing import Protocol

import numpy as np

from edge_collab.backends.base import BackendCounters, ModelBackend
from edge_collab.engine.answer import Answer
from edge_collab.engine.pieces import Piece, Source
from edge_collab.engine.result import GenerationResult
from edge_collab.engine.run import Run
from edge_collab.engine.sampling import TokenChooser, distribution_shape, log_softmax
from edge_collab.engine.stats import GenerationStats
from edge_collab.errors import ContextOverflowError, IncompatiblePairError
from edge_collab.settings import GenerationSettings


def _top(logits: np.ndarray) -> tuple[int, float]:
    logprobs = log_softmax(logits)
    token = int(np.argmax(logprobs))
    return token, float(math.exp(logprobs[token]))


class Reader(Protocol):
    """What a rule may ask of the loop."""

    settings: GenerationSettings
    chooser: TokenChooser

    def student_logits(self) -> np.ndarray: ...

    def mentor_logits(self) -> np.ndarray: ...


class TokenRule(Protocol):
    def decide(self, loop: Reader) -> tuple[int, Source]:
        """The next token and who it counts for."""
        ...


class Cosd:
    def decide(self, loop: Reader) -> tuple[int, Source]:
        s, student_logits = loop.settings, loop.student_logits()
        student_top, student_p = _top(student_logits)
        if student_p < s.cosd_alpha:
            mentor_top, mentor_p = _top(loop.mentor_logits())
            if mentor_top != student_top and mentor_p > s.cosd_beta * student_p:
                return mentor_top, Source.MENTOR
        return loop.chooser.choose(student_logits), Source.STUDENT


class Nudging:
    def decide(self, loop: Reader) -> tuple[int, Source]:
        student_logits = loop.student_logits()
        if _top(student_logits)[1] < loop.settings.nudging_gamma:
            return loop.chooser.choose(loop.mentor_logits()), Source.MENTOR
        return loop.chooser.choose(student_logits), Source.STUDENT


class RStitch:
    def __init__(self) -> None:
        self._mentor_writing = False

    def decide(self, loop: Reader) -> tuple[int, Source]:
        tau, student_logits = loop.settings.rstitch_tau, loop.student_logits()
        if not self._mentor_writing:
            self._mentor_writing = _normalised_entropy(student_logits) > tau
        if not self._mentor_writing:
            return loop.chooser.choose(student_logits), Source.STUDENT
        mentor_logits = loop.mentor_logits()
        if _normalised_entropy(mentor_logits) < tau:
            self._mentor_writing = False  # the mentor writes this token, the student the next
        return loop.chooser.choose(mentor_logits), Source.MENTOR


class Average:
    def decide(self, loop: Reader) -> tuple[int, Source]:
        student_logits = loop.student_logits()
        student_top, _ = _top(student_logits)
        mixed = np.logaddexp(log_softmax(student_logits), log_softmax(loop.mentor_logits())) - math.log(2)
        token = loop.chooser.choose(mixed)
        return token, Source.MENTOR if token != student_top else Source.STUDENT


def _normalised_entropy(logits: np.ndarray) -> float:
    entropy, _ = distribution_shape(logits)
    return entropy / math.log(len(logits))


def shared_tokenizer_mentor(run: Run) -> ModelBackend:
    """The mentor's model, if it is in process and shares the student's tokenizer."""
    mentor = run.mentor.backend if run.mentor is not None else None
    if mentor is None or run.student.tokenizer_fingerprint() != mentor.tokenizer_fingerprint():
        raise IncompatiblePairError(
            f"{run.settings.method} decides token by token and needs the student and a local mentor with one "
            "tokenizer; use collab (text handoff) for this pair"
        )
    return mentor


class TokenLevelLoop:
    """One answer by a token-level method (see the module docstring)."""

    def __init__(self, run: Run, rule: TokenRule):
        self.student, self.mentor = run.student, shared_tokenizer_mentor(run)
        self.settings, self.prompts, self.rule = run.settings, run.prompts, rule
        self.pieces: list[Piece] = []
        self.result: GenerationResult | None = None
        self.stats = GenerationStats(method=self.settings.method)
        self.chooser = TokenChooser(self.settings.temperature, np.random.default_rng(self.settings.seed))
        self._answer: Answer | None = None
        self._mentor_synced = 0

    def student_logits(self) -> np.ndarray:
        return self.student.next_logits()

    def mentor_logits(self) -> np.ndarray:
        """The mentor's distribution after the current answer (catching up in one batch)."""
        assert self._answer is not None
        self.mentor.append(self._answer.tokens(self._mentor_synced))
        self._mentor_synced = len(self._answer)
        return self.mentor.next_logits()

    def steps(self) -> Iterator[Piece]:
        started = time.perf_counter()
        before = {m: m.counters.snapshot() for m in (self.student, self.mentor)}
        answer = self._start()
        stop_reason = None
        mentor_written = 0
        try:
            while stop_reason is None:
                if len(answer) >= self.settings.max_new_tokens:
                    stop_reason = "length"
                    break
                token, source = self.rule.decide(self)
                if self.student.is_end(token):
                    stop_reason = "eos"
                    break
                self.student.append([token])
                answer.label_new(source)
                mentor_written += source is Source.MENTOR
                stop_reason = answer.finish_step()
                yield from self._emit(answer)
        except ContextOverflowError:
            stop_reason = "context"
            answer.finish_step()
        yield from self._emit(answer, final=True)
        self._fill_stats(answer, before, mentor_written, stop_reason, time.perf_counter() - started)
        self.result = GenerationResult(answer.text, list(self.pieces), self.stats)

    def _start(self) -> Answer:
        assert isinstance(self.prompts.mentor, list)
        for model in (self.student, self.mentor):
            model.discard_branch()
        self.student.reset_to(self.prompts.student)
        self.mentor.reset_to(self.prompts.mentor)
        s = self.settings
        self._answer = Answer(self.student, len(self.prompts.student), s.stop, s.repeat_guard)
        return self._answer

    def _emit(self, answer: Answer, final: bool = False) -> Iterator[Piece]:
        for piece in answer.emit(final=final):
            self.pieces.append(piece)
            yield piece

    def _fill_stats(
        self,
        answer: Answer,
        before: dict[ModelBackend, BackendCounters],
        mentor_written: int,
        stop_reason: str | None,
        wall_s: float,
    ) -> None:
        student, mentor = (m.counters.since(before[m]) for m in (self.student, self.mentor))
        stats = self.stats
        answer.count_into(stats, stop_reason, wall_s)
        stats.mentor_decode_tokens = mentor_written
        stats.mentor_prefill_tokens = mentor.evaluated_tokens
        stats.student_eval_tokens = student.evaluated_tokens
        stats.student_decode_tokens = answer.final_tokens - answer.mentor_tokens
        stats.reevaluated_tokens = student.reevaluated_tokens + mentor.reevaluated_tokens
        stats.student_s, stats.mentor_s = student.seconds, mentor.seconds
        stats.mentor_forward_passes = mentor.forward_calls
        stats.finish()
