"""Probe, consult and verify at one word: steps 3 to 5 of docs/method.md.

The mentor scores the student's word. Where it would have written the same,
nothing else happens. Where the two part (the split), each writes a
lookahead segment from there; the verifier keeps one, the loser's tokens are
rolled back by cache truncation, and the student carries on after the kept
segment. The takeover baseline skips the verifier: the mentor writes to the
end of the sentence and is always kept.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import replace

from edge_collab.engine.answer import Answer
from edge_collab.engine.divergence_scores import divergence_scores
from edge_collab.engine.mentor import Audit, MentorLink
from edge_collab.engine.pieces import Source
from edge_collab.engine.run import Run
from edge_collab.engine.sampling import TokenScore
from edge_collab.engine.stats import GenerationStats
from edge_collab.engine.trigger import Trigger
from edge_collab.engine.writer import ModelWriter, Written
from edge_collab.errors import ContextOverflowError, MentorUnavailableError
from edge_collab.verifiers.base import Divergence, Verdict, fixed_choice, needs_scores
from edge_collab.verifiers.features import Position, position_of

logger = logging.getLogger(__name__)

TAKEOVER_MAX_TOKENS = 64  # a "sentence" that runs longer is cut here


class Consultation:
    """The mentor's part of one answer. `active` turns False for good once the
    mentor's context is full: the student then writes the rest alone."""

    def __init__(
        self,
        run: Run,
        link: MentorLink,
        answer: Answer,
        writer: ModelWriter,
        stats: GenerationStats,
        adopts: Callable[[Verdict], bool],
        takeover: bool = False,
    ):
        self.run, self.link, self.answer, self.writer, self.stats = run, link, answer, writer, stats
        self._adopts = adopts
        self._takeover = takeover
        self._wants_scores = needs_scores(run.verifier)
        self._fired_at: Position | None = None  # where the last trigger fired (the audit policy)
        self.active = True

    def at_word(self, word_start: int, word: list[int]) -> bool:
        """Probe the word (answer tokens from `word_start`) and, where the
        mentor would have written otherwise, consult. Returns whether the answer ended."""
        self.stats.probes += 1
        self._fired_at = None
        try:
            split = self.link.probe(word_start, word)
        except ContextOverflowError:
            return self._mentor_is_full()
        return self.after_probe(word_start, split)

    def start_probe(self, word_start: int, word: list[int]) -> Future[int | None]:
        """The probe of `at_word`, in flight while the student writes on; its
        result goes to `after_probe` (engine/word_loop.py)."""
        self.stats.probes += 1
        self._fired_at = None
        return self.link.start_probe(word_start, word)

    def finish_probe(self, pending: Future[int | None], word_start: int, on_split: Callable[[], None]) -> bool:
        """`after_probe` once the probe is in; `on_split` runs where the two part,
        before the consultation (it drops what the student wrote meanwhile)."""
        try:
            split = pending.result()
        except ContextOverflowError:
            return self._mentor_is_full()
        if split is not None:
            on_split()
        return self.after_probe(word_start, split)

    def after_probe(self, word_start: int, split: int | None) -> bool:
        """Consult where the probe found the two part; returns whether the answer ended."""
        if split is None:
            return False
        self.stats.divergences += 1
        if self._takeover:
            return self._take_over(split)
        return self._consult(word_start, split)

    def unread(self, frontier: int) -> int:
        """Answer tokens before `frontier` the mentor has not read yet (the audit policy)."""
        return self.link.unread(frontier)

    def first_candidate(self, trigger: Trigger, frontier: int) -> int | None:
        """The first answer position before `frontier` that the mentor has not
        read and where `trigger` could fire, judging by the student's own score
        there. Before it nothing the mentor reads can roll the answer back, so
        those tokens may be final and need not be read yet: with CoSD's rule the
        mentor reads only where the student was unsure, in longer (cheaper)
        batches. Final tokens are past that test already, so the scan starts
        after them."""
        for position, score in self._unread_scores(frontier):
            if score is None or trigger.may_fire(score):
                return position
        return None

    def least_unread_probability(self, frontier: int) -> float:
        """The least probability the student gave a token before `frontier`
        that the mentor has not read and that is still open (1 where there is
        none)."""
        unread = self._unread_scores(frontier)
        return math.exp(min((score.logprob for _, score in unread if score is not None), default=0.0))

    def first_unsure(self, frontier: int, below: float) -> int | None:
        """The first open answer position before `frontier`, not read by the
        mentor, where the student gave its token less than `below` probability."""
        bar = math.log(below)
        for position, score in self._unread_scores(frontier):
            if score is not None and score.logprob < bar:
                return position
        return None

    def _unread_scores(self, frontier: int) -> Iterator[tuple[int, TokenScore | None]]:
        """The student's score (None where it was not recorded) of each open
        token before `frontier` that the mentor has not read. Final tokens
        (shown, never rolled back) are left out: no trigger can act at them,
        so an unsure one must not make a batch due or end it early."""
        scores = self.writer.scores
        assert scores is not None, "the audit policy needs the student's scores recorded"
        start = max(frontier - self.link.unread(frontier), self.answer.final_tokens)
        offset = self.answer.prompt_length
        for position in range(start, frontier):
            yield position, scores.get(offset + position)

    def audit(self, trigger: Trigger, pressure: float, frontier: int) -> tuple[bool, bool]:
        """Let the mentor read what it has not read up to `frontier` and ask the
        trigger at each position, in order; at the first that fires, consult
        there. Returns (whether a segment was fetched, whether the answer ended)."""
        try:
            audit = self.link.audit(frontier)
        except ContextOverflowError:
            return False, self._mentor_is_full()
        return self.after_audit(audit, trigger, pressure)

    def start_audit(self, frontier: int) -> Future[Audit]:
        """The reading of `audit`, in flight while the student writes on; its
        result goes to `finish_audit` (engine/word_loop.py)."""
        return self.link.start_audit(frontier)

    def read_final(self, upto: int) -> Future[None] | None:
        """Let the mentor read the final answer tokens before `upto` that it has
        not read, on its own thread while the student writes on, where it has
        one: no trigger can fire at final tokens, but once the
        student writes one where it could, the mentor has less to read before
        it can judge it. None where there is nothing to read or no thread."""
        return self.link.start_read_ahead(upto)

    def finish_read_final(self, pending: Future[None]) -> None:
        """Wait for a `read_final`; a mentor whose context filled goes quiet."""
        try:
            pending.result()
        except ContextOverflowError:
            if self.active:
                self._mentor_is_full()

    def finish_audit(
        self, pending: Future[Audit], trigger: Trigger, pressure: float, on_fire: Callable[[], None]
    ) -> tuple[bool, bool]:
        """`audit` once its reading is in; `on_fire` runs where the trigger fires,
        before the consultation (it drops what the student wrote meanwhile)."""
        try:
            audit = pending.result()
        except ContextOverflowError:
            return False, self._mentor_is_full()
        return self.after_audit(audit, trigger, pressure, on_fire)

    def after_audit(
        self, audit: Audit, trigger: Trigger, pressure: float, on_fire: Callable[[], None] | None = None
    ) -> tuple[bool, bool]:
        self.stats.audits += 1
        scores = self.writer.scores
        assert scores is not None, "the audit policy needs the student's scores recorded"
        offset = self.answer.prompt_length
        for index, (token, view) in enumerate(zip(audit.tokens, audit.views, strict=True)):
            if view is None:
                continue
            at = offset + audit.start + index
            student_view = -math.inf if view.token == token else self.writer.logprob_at(at, view.token)
            student_logits = self.writer.recent_logits.get(at)
            position = position_of(audit.start + index, token, scores[at], view, student_view, student_logits)
            if trigger.score(position) > -pressure:
                if on_fire is not None:
                    on_fire()
                self._fired_at = position
                self.link.split_at(audit, index, trigger.choice(position))
                self.stats.divergences += 1
                split = audit.start + index
                try:
                    return True, self._take_over(split) if self._takeover else self._consult(split, split)
                except MentorUnavailableError:
                    # A served mentor failed to write its segment (counted and
                    # logged by the link): the student's text stays.
                    self.link.reject()
                    return False, False
        return False, False

    def _consult(self, word_start: int, split: int) -> bool:
        """Both segments from the split; the verifier keeps one."""
        if fixed_choice(self.run.verifier) is True:
            return self._take_mentor(split, self.run.settings.segment_tokens)
        k = self.run.settings.segment_tokens
        # The student's segment is k tokens from the split, or the rest of its
        # word if that is longer: cutting inside the word would throw away
        # evaluated tokens only to evaluate them again.
        student_segment = self.writer.segment(max(0, split + k - len(self.answer)))
        self.answer.label_new(Source.STUDENT)
        mentor_scores: list[TokenScore] | None = [] if self._wants_scores else None
        try:
            if self._wants_scores:
                self.link.read_student_segment()
            mentor_segment = self.link.mentor_segment(k, mentor_scores)
        except ContextOverflowError:
            return self._mentor_is_full()
        try:
            verdict = self._verify(word_start, split, mentor_segment, mentor_scores)
        except ContextOverflowError:
            self.link.reject()  # no room to judge: keep the student's segment
            return student_segment.ended
        if not self._adopts(verdict):
            logger.debug("divergence at answer token %d: the student's segment is kept", split)
            self.link.reject()
            return student_segment.ended
        logger.debug("divergence at answer token %d: the mentor's segment is adopted", split)
        self._keep_mentor(split, mentor_segment)
        return mentor_segment.ended

    def _verify(
        self, word_start: int, split: int, mentor_segment: Written, mentor_scores: list[TokenScore] | None
    ) -> Verdict:
        answer, student = self.answer, self.run.student
        divergence = Divergence(
            prefix_length=answer.prompt_length + split,
            answer_start=answer.prompt_length + answer.final_tokens,
            student_text=student.detokenize(answer.tokens(split)).decode("utf-8", errors="replace"),
            mentor_text=self.link.mentor_text(mentor_segment).decode("utf-8", errors="replace"),
            position=self._fired_at,
        )
        if mentor_scores is not None:
            scores = divergence_scores(
                self.run, self.link, answer, self.writer, word_start, split, mentor_segment, mentor_scores, self.stats
            )
            divergence = replace(divergence, scores=scores)
        assert self.run.verifier is not None
        verdict = self.run.verifier.choose(divergence)
        self.stats.verifier_calls += 1
        self.stats.verifier_off_choice += verdict.off_choice
        return verdict

    def _keep_mentor(self, split: int, segment: Written) -> None:
        """Roll the student back to the split and append the mentor's segment."""
        self.stats.student_discarded_tokens += len(self.answer) - split
        self.answer.rollback(split)
        self.link.adopt(segment)
        self.answer.label_new(Source.MENTOR)
        self.stats.adoptions += 1

    def _take_over(self, split: int) -> bool:
        """Baseline: the mentor writes from the split to the end of the sentence, always kept."""
        return self._take_mentor(split, TAKEOVER_MAX_TOKENS, until_sentence_end=True)

    def _take_mentor(self, split: int, count: int, until_sentence_end: bool = False) -> bool:
        """The mentor's segment, kept without a verdict (the student's would be dropped unread)."""
        try:
            segment = self.link.mentor_segment(count, until_sentence_end=until_sentence_end)
        except ContextOverflowError:
            return self._mentor_is_full()
        self._keep_mentor(split, segment)
        return segment.ended

    def _mentor_is_full(self) -> bool:
        logger.info("the mentor's context is full: the student writes the rest of this answer alone")
        self.active = False  # no room left for the mentor: the student goes on alone
        self.link.give_up()
        return False
