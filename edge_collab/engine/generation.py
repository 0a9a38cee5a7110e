"""One generation: the loop of METHOD.md, step by step.

    propose  the writer decodes one word step
    decide   the probe policy flips its coin
    probe    the mentor scores the word (no decoding when it agrees)
    consult  on a mismatch both write a lookahead segment from the split
    verify   the verifier keeps one segment; the student carries on

Modes "student" and "mentor" run the same loop with one model and no probes,
so the three are comparable token for token.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np

from edge_collab.backends.base import BackendCounters, ModelBackend
from edge_collab.engine.answer import Answer
from edge_collab.engine.baselines import TokenLevelLoop, require_shared_tokenizer
from edge_collab.engine.mentor_link import MentorLink, make_link
from edge_collab.engine.pieces import Piece, Source
from edge_collab.engine.sampling import TokenChooser, TokenScore, token_logprobs
from edge_collab.engine.stats import GenerationStats
from edge_collab.engine.writer import ModelWriter, Written
from edge_collab.errors import ContextOverflowError, IncompatiblePairError, SettingsError
from edge_collab.probing import MentorBudget, ProbePolicy, RandomProbePolicy, UncertaintyProbePolicy, step_signal
from edge_collab.remote.alone import StreamedAnswer, stream_answer
from edge_collab.remote.mentor import RemoteLink, RemoteMentor
from edge_collab.settings import TOKEN_LEVEL_BASELINES, GenerationSettings
from edge_collab.verifiers.base import Divergence, Verdict, Verifier, is_graded, needs_scores
from edge_collab.verifiers.features import DivergenceScores


@dataclass
class Prompts:
    """The same request tokenized for each model (each applies its own template);
    a remote mentor gets the prompt as text."""

    student: list[int]
    mentor: list[int] | str | None = None


Mentor = ModelBackend | RemoteMentor
_TAKEOVER_MAX_TOKENS = 64  # a "sentence" that runs longer is cut here


@dataclass
class GenerationResult:
    text: str
    pieces: list[Piece]
    stats: GenerationStats

    def to_dict(self) -> dict[str, object]:
        return {
            "text": self.text,
            "pieces": [p.to_dict() for p in self.pieces],
            "stats": self.stats.to_dict(),
        }


class _Steps(Protocol):
    pieces: list[Piece]
    result: GenerationResult | None

    def steps(self) -> Iterator[Piece]: ...


class Generation:
    """A generation in progress: iterate for streamed pieces; once iteration
    ends, `result` holds the text, all pieces and the statistics."""

    def __init__(self, loop: _Steps):
        self._loop = loop
        self._steps = loop.steps()

    def __iter__(self) -> Iterator[Piece]:
        return self._steps

    @property
    def pieces(self) -> list[Piece]:
        """Pieces emitted so far."""
        return self._loop.pieces

    @property
    def result(self) -> GenerationResult | None:
        return self._loop.result

    def run(self) -> GenerationResult:
        """Consume the rest of the stream and return the result."""
        for _ in self._steps:
            pass
        assert self._loop.result is not None
        return self._loop.result


def start_generation(
    student: ModelBackend,
    mentor: Mentor | None,
    verifier: Verifier | None,
    settings: GenerationSettings,
    prompts: Prompts,
    budget: MentorBudget | None = None,
) -> Generation:
    """Prepare a generation; nothing runs until it is iterated. A `budget`
    controller, if given, is updated as the answer grows and keeps its state."""
    if settings.mode != "student" and (mentor is None or prompts.mentor is None):
        raise SettingsError(f"mode {settings.mode} needs a mentor")
    if settings.mode == "collab" and verifier is None:
        raise SettingsError("collab mode needs a verifier")
    writer, prompt = (mentor, prompts.mentor) if settings.mode == "mentor" else (student, prompts.student)
    if isinstance(writer, ModelBackend) and isinstance(prompt, list) and len(prompt) >= writer.n_ctx:
        raise ContextOverflowError(
            f"the prompt is {len(prompt)} tokens but {writer.name}'s context holds {writer.n_ctx}; "
            "shorten it or raise --n-ctx"
        )
    if isinstance(mentor, RemoteMentor) and settings.mode == "collab" and needs_scores(verifier):
        raise IncompatiblePairError(
            "the learned verifier needs a local mentor (it reads both segments with both models)"
        )
    if settings.mode in TOKEN_LEVEL_BASELINES:
        require_shared_tokenizer(student, mentor, settings.mode)
        assert isinstance(mentor, ModelBackend)
        return Generation(TokenLevelLoop(student, mentor, settings, prompts))
    return Generation(_Loop(student, mentor, verifier, settings, prompts, budget))


class _Loop:
    def __init__(
        self,
        student: ModelBackend,
        mentor: Mentor | None,
        verifier: Verifier | None,
        settings: GenerationSettings,
        prompts: Prompts,
        budget: MentorBudget | None,
    ):
        self.student, self.mentor, self.verifier = student, mentor, verifier
        self.settings, self.prompts, self.budget = settings, prompts, budget
        self._graded = is_graded(verifier)  # read once: the probe pressure is asked at every word step
        self.pieces: list[Piece] = []
        self.result: GenerationResult | None = None
        self.stats = GenerationStats(mode=settings.mode)
        writer_seed, mentor_seed, probe_seed = np.random.SeedSequence(settings.seed).spawn(3)
        self._rngs = {
            "writer": np.random.default_rng(writer_seed),
            "mentor": np.random.default_rng(mentor_seed),
            "probe": np.random.default_rng(probe_seed),
        }

    def steps(self) -> Iterator[Piece]:
        settings = self.settings
        by_mentor = settings.mode == "mentor"
        if by_mentor and isinstance(self.mentor, RemoteMentor):
            yield from self._remote_mentor_alone(self.mentor)
            return
        backend = self.mentor if by_mentor else self.student
        prompt = self.prompts.mentor if by_mentor else self.prompts.student
        assert isinstance(backend, ModelBackend) and isinstance(prompt, list)
        started = time.perf_counter()
        before = {m: m.counters.snapshot() for m in {self.student, self.mentor} if m is not None}
        backend.discard_branch()
        backend.reset_to(prompt)
        answer = Answer(backend, len(prompt), settings.stop, settings.repeat_guard)
        writer = ModelWriter(
            backend, TokenChooser(settings.temperature, self._rngs["writer"]), record_scores=needs_scores(self.verifier)
        )
        source = Source.MENTOR if by_mentor else Source.STUDENT
        policy = self._policy()
        may_probe = settings.probe_rate > 0 or settings.probe_policy != "random" or self.budget is not None
        link = self._link(answer) if settings.mode in ("collab", "takeover") and may_probe else None
        self._mentor_active = link is not None

        stop_reason = None
        try:
            while stop_reason is None:
                if len(answer) >= settings.max_new_tokens:
                    stop_reason = "length"
                    break
                word_start = len(answer)
                # The signal reads the logits the writer is about to use: no extra evaluation.
                signal = step_signal(backend.next_logits()) if self._mentor_active and policy.needs_signal else None
                word = writer.word(settings.word_extra_tokens)
                if word.ended:
                    stop_reason = "eos"
                    break
                answer.label_new(source)
                if self._mentor_active and policy.should_probe(signal, self._probe_pressure):
                    assert link is not None
                    if self._consult(link, answer, writer, word_start, word.tokens):
                        stop_reason = "eos"
                if len(answer) > settings.max_new_tokens:
                    answer.trim_to(settings.max_new_tokens)
                    stop_reason = "length"
                final_before, mentor_before = answer.final_tokens, answer.mentor_tokens
                stop_reason = answer.finish_step() or stop_reason
                if self.budget is not None:
                    self.budget.update(answer.final_tokens - final_before, answer.mentor_tokens - mentor_before)
                yield from self._emit(answer, final=False)
        except ContextOverflowError:
            stop_reason = "context"  # the answer filled the context: keep what was written
            self.student.discard_branch()
            answer.label_new(source)
            answer.finish_step()
        yield from self._emit(answer, final=True)

        self.stats.probe_level = policy.level(self._probe_pressure)
        self.stats.budget_pressure = self._pressure
        self._fill_stats(answer, writer, link, before, time.perf_counter() - started, stop_reason)
        self.result = GenerationResult(answer.text, list(self.pieces), self.stats)

    def _remote_mentor_alone(self, mentor: RemoteMentor) -> Iterator[Piece]:
        """Mentor-alone mode on a server: one streamed completion, its pieces
        passed on as they come, counted in student tokens."""
        assert isinstance(self.prompts.mentor, str)
        started = time.perf_counter()
        client = mentor.client
        trips, seconds = client.counters.round_trips, client.counters.network_s
        streamed = StreamedAnswer()
        for text in stream_answer(client, self.prompts.mentor, self.settings, streamed):
            piece = Piece(text, Source.MENTOR)
            self.pieces.append(piece)
            yield piece
        stats = self.stats
        stats.tokens_total = stats.tokens_mentor = len(self.student.tokenize(streamed.text.encode("utf-8")))
        stats.mentor_decode_tokens = streamed.decoded or stats.tokens_total
        stats.stop_reason = streamed.stop_reason
        stats.mentor_round_trips = client.counters.round_trips - trips
        stats.mentor_network_s = stats.mentor_s = client.counters.network_s - seconds
        stats.wall_s = time.perf_counter() - started
        stats.finish()
        self.result = GenerationResult(streamed.text, list(self.pieces), stats)

    def _emit(self, answer: Answer, final: bool) -> Iterator[Piece]:
        for piece in answer.emit(final=final):
            self.pieces.append(piece)
            yield piece

    @property
    def _pressure(self) -> float:
        return self.budget.pressure if self.budget is not None else 0.0

    @property
    def _probe_pressure(self) -> float:
        """A graded verifier lets the budget move its adoption bar, which costs
        nothing; otherwise the budget has only the probe rate or threshold to move."""
        return 0.0 if self._graded else self._pressure

    def _adopts(self, verdict: Verdict) -> bool:
        if verdict.lean is None or not self._graded:
            return verdict.adopt_mentor
        return verdict.lean + self._pressure > 0.0

    def _policy(self) -> ProbePolicy:
        if self.settings.probe_policy == "uncertainty":
            return UncertaintyProbePolicy(self.settings.uncertainty_threshold)
        return RandomProbePolicy(self.settings.probe_rate, self._rngs["probe"])

    def _link(self, answer: Answer) -> MentorLink | RemoteLink:
        if isinstance(self.mentor, RemoteMentor):
            assert isinstance(self.prompts.mentor, str)
            return RemoteLink(self.mentor, self.prompts.mentor, answer, self.settings.segment_tokens)
        assert self.mentor is not None and isinstance(self.prompts.mentor, list)
        mentor_writer = ModelWriter(
            self.mentor,
            TokenChooser(self.settings.temperature, self._rngs["mentor"]),
            record_scores=needs_scores(self.verifier),
        )
        return make_link(self.student, self.mentor, mentor_writer, self.prompts.mentor, answer)

    def _consult(
        self, link: MentorLink | RemoteLink, answer: Answer, writer: ModelWriter, word_start: int, word: list[int]
    ) -> bool:
        """Probe, and on divergence consult and verify. Returns whether the
        answer has ended."""
        stats, k = self.stats, self.settings.segment_tokens
        wants_scores = needs_scores(self.verifier)
        stats.probes += 1
        try:
            split = link.probe(word_start, word)
        except ContextOverflowError:
            return self._mentor_is_full(link)
        if split is None:
            return False
        stats.divergences += 1
        if self.settings.mode == "takeover":
            return self._take_over(link, answer, split)
        # The student's segment is k tokens from the split, or the rest of its
        # word if that is longer: cutting inside the word would throw away
        # evaluated tokens only to evaluate them again.
        student_segment = writer.segment(max(0, split + k - len(answer)))
        answer.label_new(Source.STUDENT)
        mentor_scores: list[TokenScore] | None = [] if wants_scores else None
        try:
            if wants_scores:
                link.read_student_segment()
            mentor_segment = link.mentor_segment(k, mentor_scores)
        except ContextOverflowError:
            return self._mentor_is_full(link)
        divergence = Divergence(
            prefix_length=answer.prompt_length + split,
            answer_start=answer.prompt_length + answer.final_tokens,
            student_text=self.student.detokenize(answer.tokens(split)).decode("utf-8", errors="replace"),
            mentor_text=link.mentor_text(mentor_segment).decode("utf-8", errors="replace"),
        )
        assert self.verifier is not None
        try:
            if mentor_scores is not None:
                divergence = replace(
                    divergence,
                    scores=self._scores(link, answer, writer, word_start, split, mentor_segment, mentor_scores),
                )
            verdict = self.verifier.choose(divergence)
        except ContextOverflowError:
            link.reject()  # no room to judge: keep the student's segment
            return student_segment.ended
        stats.verifier_calls += 1
        stats.verifier_off_choice += verdict.off_choice
        if not self._adopts(verdict):
            link.reject()
            return student_segment.ended
        answer.rollback(split)
        link.adopt(mentor_segment)
        answer.label_new(Source.MENTOR)
        stats.adoptions += 1
        return mentor_segment.ended

    def _take_over(self, link: MentorLink | RemoteLink, answer: Answer, split: int) -> bool:
        """Baseline: the mentor writes from the split to the end of the sentence, always kept."""
        try:
            segment = link.mentor_segment(_TAKEOVER_MAX_TOKENS, until_sentence_end=True)
        except ContextOverflowError:
            return self._mentor_is_full(link)
        answer.rollback(split)
        link.adopt(segment)
        answer.label_new(Source.MENTOR)
        self.stats.adoptions += 1
        return segment.ended

    def _mentor_is_full(self, link: MentorLink | RemoteLink) -> bool:
        self._mentor_active = False  # no room left for the mentor: the student goes on alone
        link.mentor.discard_branch()
        return False

    def _scores(
        self,
        link: MentorLink | RemoteLink,
        answer: Answer,
        writer: ModelWriter,
        word_start: int,
        split: int,
        mentor_segment: Written,
        mentor_scores: list[TokenScore],
    ) -> DivergenceScores:
        """Both models' view of both segments (see verifiers/features.py)."""
        assert writer.scores is not None
        start = answer.prompt_length + split
        own = [writer.scores[position] for position in range(start, answer.prompt_length + len(answer))]
        mentor_tokens_as_student = link.as_student_tokens(mentor_segment)
        cross = np.zeros(0)
        at_split_row = writer.recent_logits.get(start)
        if mentor_tokens_as_student and at_split_row is not None:
            # The row predicting the split position is the one the student wrote
            # A's first token from; the rest of B is read on a scratch branch.
            self.student.begin_branch(start)
            try:
                rows = self.student.score(mentor_tokens_as_student, predict_first=False)
            finally:
                self.student.end_branch(keep=False)
            cross = token_logprobs(np.vstack([at_split_row[None, :], rows[:-1]]), mentor_tokens_as_student)
        at_split = writer.scores.get(start) or (own[0] if own else TokenScore(0.0, 0.0, 0.0))
        mentor_at_split = mentor_scores[0] if mentor_scores else TokenScore(0.0, 0.0, 0.0)
        return DivergenceScores(
            student_own=np.array([score.logprob for score in own]),
            student_cross=cross,
            mentor_own=np.array([score.logprob for score in mentor_scores]),
            mentor_cross=link.student_segment_logprobs,
            student_entropy=at_split.entropy,
            student_margin=at_split.margin,
            mentor_entropy=mentor_at_split.entropy,
            mentor_margin=mentor_at_split.margin,
            agreed_word_tokens=split - word_start,
            answer_position=split / self.settings.max_new_tokens,
            probes_so_far=self.stats.probes,
            adoptions_so_far=self.stats.adoptions,
        )

    def _fill_stats(
        self,
        answer: Answer,
        writer: ModelWriter,
        link: MentorLink | RemoteLink | None,
        before: dict[Mentor, BackendCounters],
        wall_s: float,
        stop_reason: str | None,
    ) -> None:
        stats = self.stats
        stats.stop_reason = stop_reason or "eos"
        stats.prompt_tokens = answer.prompt_length
        stats.tokens_total = answer.final_tokens
        stats.tokens_mentor = answer.mentor_tokens
        stats.wall_s = wall_s
        student = self.student.counters.since(before[self.student])
        stats.reevaluated_tokens = student.reevaluated_tokens
        if self.settings.mode != "mentor":
            stats.student_s = student.seconds
            stats.student_eval_tokens = student.evaluated_tokens
            stats.student_decode_tokens = writer.decoded_tokens
            stats.verifier_eval_tokens = student.branch_tokens
        if self.mentor is not None and self.mentor in before:
            mentor = self.mentor.counters.since(before[self.mentor])
            stats.mentor_s = mentor.seconds
            if self.mentor is not self.student:
                stats.reevaluated_tokens += mentor.reevaluated_tokens
            if self.settings.mode == "mentor":
                stats.mentor_decode_tokens = writer.decoded_tokens
                stats.mentor_prefill_tokens = max(0, mentor.evaluated_tokens - writer.decoded_tokens)
            elif link is not None:
                stats.mentor_decode_tokens = link.decode_tokens
                stats.mentor_prefill_tokens = link.prefill_tokens
            if isinstance(link, RemoteLink):
                stats.mentor_round_trips = link.stats.round_trips
                stats.mentor_network_s = link.stats.network_s
                stats.mentor_failures = link.stats.failures
                stats.mentor_skipped_probes = link.stats.skipped_probes
        stats.finish()
