"""An answer written one word step at a time: the loop of docs/method.md.

    propose  the writer decodes one word step
    decide   the probe policy says whether to probe here
    probe    the mentor scores the word (no decoding when it agrees)
    consult  on a mismatch both write a lookahead segment from the split
    verify   the verifier keeps one segment; the student carries on

Probe, consult and verify live in engine/consult.py. The student alone and a
mentor in process alone run this same loop with no probes, so every method
built on it is comparable token for token with them.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, wait
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from edge_collab.backends.base import BackendCounters, ModelBackend
from edge_collab.engine.answer import Answer
from edge_collab.engine.consult import Consultation
from edge_collab.engine.pieces import Piece, Source
from edge_collab.engine.probe_policy import (
    AuditPolicy,
    ProbePolicy,
    RandomProbePolicy,
    StepSignal,
    UncertaintyProbePolicy,
    step_signal,
)
from edge_collab.engine.result import GenerationResult
from edge_collab.engine.run import Run
from edge_collab.engine.sampling import TokenChooser
from edge_collab.engine.stats import GenerationStats
from edge_collab.engine.trigger import trigger_for
from edge_collab.engine.writer import RECENT_LOGITS, ModelWriter, Written
from edge_collab.errors import ContextOverflowError
from edge_collab.verifiers.base import Verdict, is_graded, needs_scores


@dataclass
class _Ahead:
    """A word the student wrote while a probe was in flight: decided on (probe
    or not) only once the probe's verdict is in, in the order written."""

    start: int
    word: Written
    signal: StepSignal | None
    checkpoint: tuple[Mapping[str, Any], int | None]  # the writer's, before this word


@contextmanager
def _settled(pending: Future[Any]) -> Iterator[None]:
    """Whatever goes wrong while the student writes ahead, the mentor's thread
    is done before it propagates: nothing may touch the mentor's model after."""
    try:
        yield
    except BaseException:
        wait([pending])
        raise


class WordLoop:
    """One answer by the student (or a mentor in process, `by_mentor`), with
    the mentor consulted at probes when `consults` ("verify" for collab,
    "takeover" for the takeover baseline)."""

    def __init__(self, run: Run, *, by_mentor: bool = False, consults: str | None = None):
        self.run, self.settings, self.student = run, run.settings, run.student
        mentor = run.mentor.backend if by_mentor and run.mentor is not None else None
        self.backend: ModelBackend = mentor if mentor is not None else run.student
        prompt = run.prompts.mentor if by_mentor else run.prompts.student
        assert isinstance(prompt, list)
        self.prompt = prompt
        if len(prompt) >= self.backend.n_ctx:
            raise ContextOverflowError(
                f"the prompt is {len(prompt)} tokens but {self.backend.name}'s context holds {self.backend.n_ctx}; "
                "shorten it or raise --n-ctx"
            )
        self.by_mentor, self.consults = by_mentor, consults
        self.source = Source.MENTOR if by_mentor else Source.STUDENT
        self.pieces: list[Piece] = []
        self.result: GenerationResult | None = None
        self.stats = GenerationStats(method=self.settings.method)
        writer_seed, mentor_seed, probe_seed = np.random.SeedSequence(self.settings.seed).spawn(3)
        self._rngs = {
            "writer": np.random.default_rng(writer_seed),
            "mentor": np.random.default_rng(mentor_seed),
            "probe": np.random.default_rng(probe_seed),
        }
        self._graded = is_graded(run.verifier)  # read once: the probe pressure is asked at every word step
        self._consultation: Consultation | None = None
        self._ahead: deque[_Ahead] = deque()  # written while a probe was in flight
        self._reading_final: list[Future[Any]] = []  # the mentor reading final tokens ahead of need, in order

    def steps(self) -> Iterator[Piece]:
        started = time.perf_counter()
        before = self._counters()
        answer, writer = self._start()
        stop_reason = None
        try:
            while stop_reason is None:
                stop_reason = self._word_step(answer, writer)
                yield from self._emit(answer, final=False)
        except ContextOverflowError:
            stop_reason = "context"  # the answer filled the context: keep what was written
            self.student.discard_branch()
            answer.label_new(self.source)
        finally:
            self._settle_final_read()  # nothing may run on the mentor's model after the answer
        self._drop_ahead(answer, writer)  # words written ahead of an answer that ended are not part of it
        stop_reason = self._finish(answer) or stop_reason  # what an audit had still kept open
        yield from self._emit(answer, final=True)
        self.stats.probe_level = self._policy.level(self._probe_pressure)
        self.stats.budget_pressure = self._pressure
        self._fill_stats(answer, writer, before, time.perf_counter() - started, stop_reason)
        self.result = GenerationResult(answer.text, list(self.pieces), self.stats)

    def _start(self) -> tuple[Answer, ModelWriter]:
        """Both contexts set to their prompts (keeping what the caches share with them)."""
        settings = self.settings
        self.backend.discard_branch()
        self.backend.reset_to(self.prompt)
        answer = Answer(self.backend, len(self.prompt), settings.stop, settings.repeat_guard)
        record_scores = needs_scores(self.run.verifier)
        auditing = settings.probe_policy == "audit" and self.consults is not None
        chooser = TokenChooser(settings.temperature, self._rngs["writer"])
        # A trigger reads the student's scores; the average rule its whole
        # distributions too, at every token of a batch and of what is written
        # ahead of it (other triggers need no more than a verifier does).
        mixes = auditing and settings.trigger == "average"
        keep_logits = max(RECENT_LOGITS, 2 * settings.audit_tokens + 16) if mixes else RECENT_LOGITS
        writer = ModelWriter(self.backend, chooser, record_scores or auditing, keep_logits)
        self._policy = self._probe_policy()
        self._trigger = trigger_for(settings)
        may_probe = settings.probe_rate > 0 or settings.probe_policy != "random" or self.run.budget is not None
        if self.consults is not None and may_probe:
            mentor, prompt = self.run.mentor, self.run.prompts.mentor
            assert mentor is not None and prompt is not None
            link = mentor.open_link(answer, prompt, settings, self._rngs["mentor"], record_scores)
            if auditing and not link.can_audit:
                link.audit(0)  # says, in one line, why this pair cannot be audited
            self._consultation = Consultation(
                self.run, link, answer, writer, self.stats, self._adopts, takeover=self.consults == "takeover"
            )
        return answer, writer

    def _word_step(self, answer: Answer, writer: ModelWriter) -> str | None:
        """One word of the answer; returns why the answer ends here, if it does."""
        settings = self.settings
        ahead = self._ahead.popleft() if self._ahead else None
        word_start = ahead.start if ahead is not None else len(answer)
        if word_start >= settings.max_new_tokens:
            return "length"
        consultation = self._consultation if self._consultation is not None and self._consultation.active else None
        if ahead is not None:  # written while the last probe was in flight
            signal, word = ahead.signal, ahead.word
        else:
            # The signal reads the logits the writer is about to use: no extra evaluation.
            signal = step_signal(self.backend.next_logits()) if consultation and self._policy.needs_signal else None
            word = writer.word(settings.word_extra_tokens)  # propose
        frontier = self._ahead[0].start if self._ahead else len(answer)  # the end of this word
        if word.ended and not self._audit_due(consultation, frontier, at_end=True):  # the last words are audited too
            return "eos"
        answer.label_new(self.source)
        stop_reason = None
        audit_due = self._audit_due(consultation, frontier, at_end=word.ended)  # decide: the mentor reads a batch
        if audit_due and self._reading_final:
            assert consultation is not None
            self._settle_final_read()
            audit_due = consultation.active  # its context may have filled as it read ahead
        if audit_due:
            assert consultation is not None
            batch_end = frontier if word.ended else self._early_end(consultation, frontier)
            if consultation.link.can_overlap and not word.ended:
                fetched, ended = self._audit_writing_on(answer, writer, consultation, batch_end)
            else:
                fetched, ended = consultation.audit(self._trigger, self._probe_pressure, batch_end)
            stop_reason = "eos" if ended or (word.ended and not fetched) else None
        elif consultation is not None and self._policy.should_probe(signal, self._probe_pressure):  # decide
            if consultation.link.can_overlap:
                ended = self._probe_writing_on(answer, writer, consultation, word_start, word.tokens)
            else:
                ended = consultation.at_word(word_start, word.tokens)  # probe, consult, verify
            stop_reason = "eos" if ended else None
        word_end = self._ahead[0].start if self._ahead else len(answer)
        if word_end > settings.max_new_tokens:
            self._drop_ahead(answer, writer)
            answer.trim_to(settings.max_new_tokens)
            stop_reason = "length"
        upto = self._final_upto(answer, word_end)
        stop_reason = self._finish(answer, upto) or stop_reason
        if stop_reason is not None:
            self._drop_ahead(answer, writer)
        elif consultation is not None and consultation.active:
            self._read_final_ahead(consultation, answer.final_tokens)
        return stop_reason

    def _read_final_ahead(self, consultation: Consultation, upto: int) -> None:
        """Under the audit policy, with a mentor that has a thread of its own:
        let it read the final tokens it has not read yet (before `upto`). A
        trigger gated on the student's own score (CoSD's rule) leaves many
        tokens final without a read; reading them while the student writes on
        leaves a short batch for when a token it could fire at comes, instead
        of a long one the student waits for."""
        if isinstance(self._policy, AuditPolicy):
            pending = consultation.read_final(upto)
            if pending is not None:
                self._reading_final.append(pending)

    def _settle_final_read(self) -> None:
        """Wait for the reads of final tokens in flight and take their outcome."""
        pending, self._reading_final = self._reading_final, []
        if pending and self._consultation is not None:
            for read in pending:
                self._consultation.finish_read_final(read)

    def _probe_writing_on(
        self, answer: Answer, writer: ModelWriter, consultation: Consultation, word_start: int, word: list[int]
    ) -> bool:
        """Probe the mentor while the student writes on: the words written
        meanwhile are kept when the mentor agrees (and decided on in turn, as if
        written after), rolled back when it does not. With the same seed the
        answer is the one the probe in turn gives, token for token (tested)."""
        pending = consultation.start_probe(word_start, word)
        with _settled(pending):
            self._write_ahead(answer, writer, pending, self.settings.segment_tokens)
        return consultation.finish_probe(pending, word_start, lambda: self._roll_back_ahead(answer, writer))

    def _audit_writing_on(
        self, answer: Answer, writer: ModelWriter, consultation: Consultation, frontier: int
    ) -> tuple[bool, bool]:
        """Let the mentor read its batch while the student writes the next one:
        where the trigger fires, the words written meanwhile are rolled back
        before the mentor's segment; where it does not, they are kept (and
        audited in turn). The answer is the one auditing in turn gives (tested)."""
        pending = consultation.start_audit(frontier)
        with _settled(pending):
            ahead_of_batch = len(answer) - frontier  # words already written during the last batch's reading
            self._write_ahead(answer, writer, pending, self.settings.audit_tokens - ahead_of_batch)
        return consultation.finish_audit(
            pending, self._trigger, self._probe_pressure, lambda: self._roll_back_ahead(answer, writer)
        )

    def _roll_back_ahead(self, answer: Answer, writer: ModelWriter) -> None:
        self.stats.tokens_ahead_rolled_back += self._drop_ahead(answer, writer)

    def _write_ahead(self, answer: Answer, writer: ModelWriter, pending: Future[Any], limit: int) -> None:
        """Words written while `pending` is in flight, up to `limit` tokens, each
        queued to be decided on in turn once the mentor's answer is in."""
        settings = self.settings
        written_ahead = 0
        if self._ahead and self._ahead[-1].word.ended:
            return  # the answer already ends within what was written ahead
        while not pending.done() and written_ahead < limit:
            start, checkpoint = len(answer), writer.checkpoint()
            if start >= settings.max_new_tokens:
                break
            try:
                signal = step_signal(self.backend.next_logits()) if self._policy.needs_signal else None
                ahead = writer.word(settings.word_extra_tokens)
            except ContextOverflowError:
                # The context is full: leave this word to be written (and to
                # overflow) in turn, after the verdict, as without overlap.
                answer.rollback(start)
                writer.restore(checkpoint, answer.prompt_length + start)
                break
            self._ahead.append(_Ahead(start, ahead, signal, checkpoint))
            written_ahead += len(ahead.tokens)
            if ahead.ended:
                break
        self.stats.tokens_written_ahead += written_ahead

    def _drop_ahead(self, answer: Answer, writer: ModelWriter) -> int:
        """Roll back the words written ahead, and the writer's random state with
        them; returns how many tokens went."""
        if not self._ahead:
            return 0
        first = self._ahead[0]
        dropped = len(answer) - first.start
        answer.rollback(first.start)
        writer.restore(first.checkpoint, answer.prompt_length + first.start)
        self._ahead.clear()
        return dropped

    def _finish(self, answer: Answer, upto: int | None = None) -> str | None:
        """Make the step's tokens final (those before `upto`) and tell the budget."""
        final_before, mentor_before = answer.final_tokens, answer.mentor_tokens
        stop_reason = answer.finish_step(upto)
        if self.run.budget is not None:
            self.run.budget.update(answer.final_tokens - final_before, answer.mentor_tokens - mentor_before)
        return stop_reason

    def _final_upto(self, answer: Answer, word_end: int) -> int | None:
        """Where this step's tokens stop being final: not past the words written
        ahead, nor, under the audit policy, past what the mentor has read (tokens
        stay open to a rollback until then, not shown); None: all are final."""
        consultation = self._consultation
        if consultation is not None and consultation.active and isinstance(self._policy, AuditPolicy):
            candidate = consultation.first_candidate(self._trigger, word_end)
            return word_end if candidate is None else candidate
        return word_end if self._ahead else None

    def _emit(self, answer: Answer, final: bool) -> Iterator[Piece]:
        for piece in answer.emit(final=final):
            self.pieces.append(piece)
            yield piece

    # ---- the budget's pressure ---------------------------------------------
    @property
    def _pressure(self) -> float:
        return self.run.budget.pressure if self.run.budget is not None else 0.0

    @property
    def _probe_pressure(self) -> float:
        """A graded verifier lets the budget move its adoption bar, which costs
        nothing; otherwise the budget has only the probe rate or threshold to move."""
        return 0.0 if self._graded else self._pressure

    def _adopts(self, verdict: Verdict) -> bool:
        """The verifier's choice, with the budget's pressure added to a graded verifier's lean."""
        if verdict.lean is None or not self._graded:
            return verdict.adopt_mentor
        return verdict.lean + self._pressure > 0.0

    def _audit_due(self, consultation: Consultation | None, frontier: int, at_end: bool) -> bool:
        """Under the audit policy: whether the mentor reads now, up to `frontier`
        (a full batch, or what is left at the end)."""
        if consultation is None or not isinstance(self._policy, AuditPolicy):
            return False
        if consultation.first_candidate(self._trigger, frontier) is None:
            return False  # nothing there the trigger could fire at: read it later, with what follows
        unread = consultation.unread(frontier)
        if at_end:
            return unread > 0
        unsure = self._policy.unsure_below > 0.0  # spares the scan where batches only end full
        return self._policy.due(unread, consultation.least_unread_probability(frontier) if unsure else 1.0)

    def _early_end(self, consultation: Consultation, frontier: int) -> int:
        """Where a due batch stops: at `frontier` (the word's end), or, with
        `audit_early_end` "token", just after the first unread token the
        student was unsure of. The mentor's view there is all the trigger
        needs to fire at it; the rest of the word is read with the next batch
        if it does not fire, and never if it does. The answer's last word is
        read to its end (nothing after it would read the rest)."""
        below = self.settings.audit_unsure_below
        if self.settings.audit_early_end != "token" or below <= 0 or not consultation.link.audits_within_words:
            return frontier
        unsure = consultation.first_unsure(frontier, below)
        return frontier if unsure is None else unsure + 1

    def _probe_policy(self) -> ProbePolicy:
        if self.settings.probe_policy == "audit":
            settings = self.settings
            return AuditPolicy(settings.audit_tokens, settings.trigger_threshold, settings.audit_unsure_below)
        if self.settings.probe_policy == "uncertainty":
            return UncertaintyProbePolicy(self.settings.uncertainty_threshold)
        return RandomProbePolicy(self.settings.probe_rate, self._rngs["probe"])

    # ---- statistics --------------------------------------------------------
    def _counters(self) -> dict[str, BackendCounters]:
        mentor = self.run.mentor
        before = {"student": self.student.counters.snapshot()}
        if mentor is not None:
            before["mentor"] = mentor.counters.snapshot()
        return before

    def _fill_stats(
        self,
        answer: Answer,
        writer: ModelWriter,
        before: dict[str, BackendCounters],
        wall_s: float,
        stop_reason: str | None,
    ) -> None:
        stats = self.stats
        answer.count_into(stats, stop_reason, wall_s)
        student = self.student.counters.since(before["student"])
        stats.reevaluated_tokens = student.reevaluated_tokens
        if not self.by_mentor:
            stats.student_s = student.seconds
            stats.student_eval_tokens = student.evaluated_tokens
            stats.student_decode_tokens = writer.decoded_tokens
            stats.verifier_eval_tokens = student.branch_tokens
        if self.run.mentor is not None:
            self._fill_mentor_stats(writer, self.run.mentor.counters.since(before["mentor"]))
        stats.finish()

    def _fill_mentor_stats(self, writer: ModelWriter, mentor: BackendCounters) -> None:
        stats = self.stats
        stats.mentor_s = mentor.seconds
        stats.mentor_forward_passes = mentor.forward_calls
        if self.run.mentor is not None and self.run.mentor.backend is not self.student:
            stats.reevaluated_tokens += mentor.reevaluated_tokens
        if self.by_mentor:
            stats.mentor_decode_tokens = writer.decoded_tokens
            stats.mentor_prefill_tokens = max(0, mentor.evaluated_tokens - writer.decoded_tokens)
        elif self._consultation is not None:
            self._consultation.link.count_into(stats)
