"""How a mentor in process follows the answer and answers a probe.

A probe asks: would the mentor have written the student's next word? The
mentor reads the answer text it has not seen yet *plus the student's word* in
one batched forward pass and compares its greedy choice at each of the word's
positions with the word's tokens (docs/method.md, "Probing by scoring"). Agreement
costs no decoding and leaves the mentor caught up; only a mismatch makes the
mentor decode its lookahead segment. The segment is decoded on a branch of the
mentor's cache, so a rejected segment is dropped while the scored word stays
cached and is never evaluated twice.

`TokenLink` passes token ids (identical tokenizers); `TextLink` passes text,
so any two models can be paired.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any

import numpy as np

from edge_collab.backends.base import ModelBackend
from edge_collab.backends.seam import seam_tokens
from edge_collab.engine.answer import Answer
from edge_collab.engine.futures import run_now
from edge_collab.engine.mentor import Audit
from edge_collab.engine.sampling import TokenScore, log_softmax, score_token, token_logprobs
from edge_collab.engine.stats import GenerationStats
from edge_collab.engine.writer import ModelWriter, Written, ends_sentence
from edge_collab.errors import ContextOverflowError, IncompatiblePairError
from edge_collab.verifiers.features import MentorView, mentor_view


def _first_mismatch(rows: np.ndarray, tokens: list[int]) -> int | None:
    choices = rows[: len(tokens)].argmax(axis=1)
    mismatches = np.flatnonzero(choices != np.asarray(tokens))
    return int(mismatches[0]) if mismatches.size else None


# Final tokens read ahead in passes of at least this many: one pass of 16 costs
# the mentor little more than one of 8 (docs/benchmark.md), so it keeps up
# with the student on a core of its own.
READ_AHEAD_TOKENS = 16


class LocalLink(ABC):
    """The MentorLink protocol (engine/mentor.py) on a ModelBackend.

    With an `executor` the link probes and audits on the mentor's own thread
    while the student writes on (`can_overlap`): everything it needs of the
    answer is read in the caller's thread first, and afterwards the mentor's
    thread touches only the mentor's model."""

    def __init__(
        self,
        mentor: ModelBackend,
        writer: ModelWriter,
        prompt: list[int],
        answer: Answer,
        executor: Executor | None = None,
    ):
        self.mentor = mentor
        self._executor = executor
        self.can_overlap = executor is not None
        self._submit: Callable[..., Future[Any]] = executor.submit if executor is not None else run_now
        self._read_to = 0  # answer tokens the mentor's cache holds, read ahead of `synced` (final ones)
        self.writer = writer
        self.answer = answer
        self.prompt_length = len(prompt)
        self.synced = 0  # answer tokens whose text the mentor's context holds
        self.prefill_tokens = 0
        self.decode_tokens = 0
        self.read_ahead_tokens = 0
        self._word_end = 0  # answer position after the probed word
        self._read_segment = False  # the mentor read the student's whole segment
        self._branch_at = 0  # mentor context length at the split
        self._first_token = 0
        # For verifier features: the mentor's distribution at the split, and its
        # log-probabilities of the student's segment (word part first).
        self.split_row: np.ndarray | None = None
        self.student_segment_logprobs: np.ndarray = np.zeros(0)
        mentor.discard_branch()
        mentor.reset_to(prompt)  # lazy: evaluated with the first probe's batch

    def probe(self, word_start: int, word: list[int]) -> int | None:
        """Score the student's word (answer tokens from `word_start`). Returns
        None when the mentor agrees, else the answer position where the two
        branches part."""
        return self._probe(word_start, self._catch_up(word_start), word)

    def start_probe(self, word_start: int, word: list[int]) -> Future[int | None]:
        """`probe` on the mentor's thread, from the answer as it is now."""
        return self._submit(self._probe, word_start, self._catch_up(word_start), word)

    def _catch_up(self, word_start: int) -> list[int]:
        return self.answer.tokens(self.synced)[: word_start - self.synced]

    def _probe(self, word_start: int, catch_up: list[int], word: list[int]) -> int | None:
        split = self._counting_prefill(lambda: self._score(word_start, catch_up, word))
        if split is None:
            self.synced = word_start + len(word)
        else:
            self._word_end = word_start + len(word)
            self._read_segment = False
        return split

    def read_student_segment(self) -> None:
        """Let the mentor read the rest of the student's segment now (one batch),
        adding to `student_segment_logprobs`. It would read it at the next probe
        anyway if the segment is kept; a verifier that compares both models on
        both segments needs it now."""
        rest = self.answer.tokens(self._word_end)
        if rest:
            logprobs = self._counting_prefill(lambda: self._read(rest))
            self.student_segment_logprobs = np.concatenate([self.student_segment_logprobs, logprobs])
        self._read_segment = True

    def mentor_segment(
        self, count: int, scores: list[TokenScore] | None = None, until_sentence_end: bool = False
    ) -> Written:
        """The mentor's lookahead of up to `count` tokens from the split, on a
        branch of its cache. With `scores`, each token's TokenScore is added."""
        self.mentor.begin_branch(self._branch_at)
        if self.mentor.is_end(self._first_token):
            return Written([], ended=True)
        if scores is not None and self.split_row is not None:
            scores.append(score_token(self.split_row, self._first_token))
        self.mentor.append([self._first_token])
        if until_sentence_end and ends_sentence(self.mentor.token_bytes(self._first_token)):
            self.decode_tokens += 1
            return Written([self._first_token], ended=False)
        rest = self.writer.segment(count - 1, until_sentence_end)
        tokens = [self._first_token, *rest.tokens]
        if scores is not None and self.writer.scores is not None:
            start = len(self.mentor) - len(rest.tokens)
            scores.extend(self.writer.scores[start + i] for i in range(len(rest.tokens)))
        self.decode_tokens += len(tokens)
        return Written(tokens, rest.ended)

    def mentor_text(self, segment: Written) -> bytes:
        return self.mentor.detokenize(segment.tokens)

    def as_student_tokens(self, segment: Written) -> list[int]:
        """The mentor's segment in the student's vocabulary (re-tokenized text; TokenLink shares ids)."""
        return self.answer.writer.tokenize(self.mentor_text(segment)) if segment.tokens else []

    def adopt(self, segment: Written) -> None:
        """Append the mentor's segment to the answer (the student's context,
        already rolled back to the split); the mentor's branch becomes its context."""
        self.mentor.end_branch(keep=True)
        self._append_to_student(segment.tokens)
        self.synced = len(self.answer)

    def reject(self) -> None:
        """Drop the mentor's segment; its context keeps what it read."""
        self.mentor.discard_branch()
        # The student's segment always holds its whole word (see engine/consult.py).
        self.synced = len(self.answer) if self._read_segment else self._word_end

    def give_up(self) -> None:
        self.mentor.discard_branch()

    can_audit = False
    audits_within_words = False

    _can_read_ahead = False  # TokenLink: positions matched through the text would move with a read's end

    def start_read_ahead(self, upto: int) -> Future[None] | None:
        """Read the final answer tokens before `upto` that the mentor has not
        read, on its thread, once there are READ_AHEAD_TOKENS of them (queued
        behind a read still running). No audit judges them (no trigger can
        fire at a final token): the next audit starts from where this stops
        and covers the same tokens. Where a read ends depends on the answer
        alone, never on when the mentor's thread is free: the size of a batch
        moves llama.cpp's logits (other kernels), so a read timed by the
        thread would make the answer depend on timing."""
        start = max(self.synced, self._read_to)
        if self._executor is None or not self._can_read_ahead or upto - start < READ_AHEAD_TOKENS:
            return None
        self._read_to = upto
        self.read_ahead_tokens += upto - start
        return self._executor.submit(self._read_ahead, start, self.answer.tokens(start)[: upto - start])

    def _read_ahead(self, start: int, tokens: list[int]) -> None:
        raise NotImplementedError

    def _read_from(self, start: int, frontier: int) -> int:
        """Where an audit of answer tokens start..frontier begins to read:
        after what was read ahead."""
        return min(max(start, self._read_to), frontier)

    def unread(self, frontier: int) -> int:
        return max(0, frontier - self.synced)

    def audit(self, frontier: int) -> Audit:
        return self._start_audit(frontier, run_now).result()

    def start_audit(self, frontier: int) -> Future[Audit]:
        """`audit` on the mentor's thread, of the answer as it is now."""
        return self._start_audit(frontier, self._submit)

    def _start_audit(self, frontier: int, run: Callable[..., Future[Any]]) -> Future[Audit]:
        raise IncompatiblePairError("this mentor cannot audit the answer; use --probe-policy random")

    def split_at(self, audit: Audit, index: int, first_token: int | None = None) -> None:
        raise IncompatiblePairError("this mentor cannot audit the answer")

    def count_into(self, stats: GenerationStats) -> None:
        stats.mentor_decode_tokens = self.decode_tokens
        stats.mentor_prefill_tokens = self.prefill_tokens
        stats.mentor_read_ahead_tokens = self.read_ahead_tokens

    def _counting_prefill(self, read):  # type: ignore[no-untyped-def]
        before = self.mentor.counters.evaluated_tokens
        try:
            return read()
        finally:
            self.prefill_tokens += self.mentor.counters.evaluated_tokens - before

    @abstractmethod
    def _score(self, word_start: int, catch_up: list[int], word: list[int]) -> int | None: ...

    @abstractmethod
    def _read(self, student_tokens: list[int]) -> np.ndarray: ...

    @abstractmethod
    def _append_to_student(self, mentor_tokens: list[int]) -> None: ...


class TokenLink(LocalLink):
    """Same tokenizer: ids pass as they are, and a mismatch may fall inside a
    word (the agreed tokens before it are kept)."""

    can_audit = True
    audits_within_words = True
    _can_read_ahead = True
    _audit_rows: np.ndarray  # the last audit's rows of the mentor's logits (from _audit_skip on)
    _audit_skip = 0  # the last audit's tokens read ahead before it: no rows, no views

    def _start_audit(self, frontier: int, run: Callable[..., Future[Any]]) -> Future[Audit]:
        """Read the answer's tokens the mentor has not seen, up to `frontier`, in
        one batch, keeping its distribution at each of them."""
        start = self.synced
        tokens = self.answer.tokens(start)[: frontier - start]
        skip = self._read_from(start, frontier) - start
        self.synced = frontier
        return run(self._read_batch, start, tokens, skip)

    def _read_batch(self, start: int, tokens: list[int], skip: int = 0) -> Audit:
        self.mentor.truncate(self.prompt_length + start + skip)
        read = tokens[skip:]
        rows = self._counting_prefill(lambda: self.mentor.score(read)) if read else np.zeros((0, 0))
        self._audit_rows, self._audit_skip = rows[: len(read)], skip
        views: list[MentorView | None] = [None] * skip
        views.extend(mentor_view(row, token) for row, token in zip(self._audit_rows, read, strict=True))
        return Audit(start, tokens, views)

    def _read_ahead(self, start: int, tokens: list[int]) -> None:
        if len(self.mentor) < self.prompt_length + start:
            # A read queued before this one failed (its context filled):
            # nothing may be read on top of the gap it left.
            raise ContextOverflowError(f"{self.mentor.name}: the context filled while reading ahead")
        self.mentor.truncate(self.prompt_length + start)
        self._counting_prefill(lambda: self.mentor.score(tokens))

    def split_at(self, audit: Audit, index: int, first_token: int | None = None) -> None:
        """Make tokens[index] of `audit` the split: the mentor's segment starts
        there (with `first_token`, else its own first choice), on a branch, and
        its cache keeps everything it read."""
        rows = self._audit_rows[index - self._audit_skip :]
        self.split_row = rows[0]
        self.student_segment_logprobs = token_logprobs(rows, audit.tokens[index:])
        self._first_token = int(np.argmax(rows[0])) if first_token is None else first_token
        self._branch_at = self.prompt_length + audit.start + index
        self._word_end = audit.start + len(audit.tokens)
        self._read_segment = False

    def as_student_tokens(self, segment: Written) -> list[int]:
        return list(segment.tokens)

    def _score(self, word_start: int, catch_up: list[int], word: list[int]) -> int | None:
        self.mentor.truncate(self.prompt_length + self.synced)
        self.mentor.append(catch_up)
        rows = self.mentor.score(word)
        mismatch = _first_mismatch(rows, word)
        if mismatch is None:
            return None
        self.split_row = rows[mismatch]
        self.student_segment_logprobs = token_logprobs(rows[mismatch:], word[mismatch:])
        self._first_token = int(np.argmax(rows[mismatch]))
        self._branch_at = self.prompt_length + word_start + mismatch
        return word_start + mismatch

    def _read(self, student_tokens: list[int]) -> np.ndarray:
        rows = self.mentor.score(student_tokens)
        return token_logprobs(rows, student_tokens)

    def _append_to_student(self, mentor_tokens: list[int]) -> None:
        self.answer.writer.append(mentor_tokens)


class TextLink(LocalLink):
    """Different tokenizers: text passes between the models, each tokenizes for
    itself, and the branches part at the start of the probed word (or, under
    the audit policy, at a student token that starts where a mentor token
    does: positions matched through the text)."""

    _word_context = 0  # mentor context length before the probed word
    can_audit = True

    def _start_audit(self, frontier: int, run: Callable[..., Future[Any]]) -> Future[Audit]:
        """Read the answer's text the mentor has not seen, up to `frontier`, in
        one batch (its own tokens, seamed onto its context), and give each
        student token the mentor's view at the mentor token that starts at the
        same byte of the answer; none where no mentor token starts there."""
        student = self.answer.writer
        start = self.synced
        tokens = self.answer.tokens(start)[: frontier - start]
        self.synced = frontier
        at = len(student.detokenize(self.answer.tokens()[:start]))  # where the batch starts in the answer's bytes
        pieces = [student.token_bytes(token) for token in tokens]
        return run(self._read_batch, start, tokens, student.detokenize(tokens), pieces, at)

    def _read_batch(self, start: int, tokens: list[int], text: bytes, pieces: list[bytes], at: int) -> Audit:
        self._audit_positions: dict[int, tuple[int, np.ndarray]] = {}
        if not tokens:
            return Audit(start, [], [])
        before = len(self.mentor)
        new = self._append_text(text)
        keep = len(self.mentor)
        rows_by_position: dict[int, np.ndarray] = {}
        if new:
            if keep < before:  # the seam replaced cached tokens: the row predicting new[0] is gone
                rows = self._counting_prefill(lambda: self.mentor.score(new, predict_first=False))
                rows_by_position = {keep + k: rows[k - 1] for k in range(1, len(new))}
            else:
                rows = self._counting_prefill(lambda: self.mentor.score(new))
                rows_by_position = {keep + k: rows[k] for k in range(len(new))}
        mentor_tokens = self.mentor.tokens
        offsets = _byte_offsets(self.mentor, mentor_tokens, self.prompt_length, keep)
        views: list[MentorView | None] = []
        for index, (token, piece) in enumerate(zip(tokens, pieces, strict=True)):
            position = offsets.get(at)
            at += len(piece)
            row = rows_by_position.get(position) if position is not None else None
            if position is None or row is None:
                views.append(None)
                continue
            self._audit_positions[index] = (position, row)
            views.append(self._view(row, piece, token, mentor_tokens[position]))
        return Audit(start, tokens, views)

    def _view(self, row: np.ndarray, piece: bytes, student_token: int, written: int) -> MentorView:
        """The mentor's view where the student wrote `piece` and the mentor's own
        tokens have `written`: it agrees where its first choice is either."""
        view = mentor_view(row, written)  # its student_logprob: the mentor's own token's
        agrees = view.token == written or self.mentor.token_bytes(view.token) == piece
        own = view.student_logprob
        if self.mentor.token_bytes(written) != piece:  # not one of the mentor's tokens: its first one bounds it
            first = self.mentor.tokenize(piece)[:1]
            if first:
                own = float(log_softmax(row)[first[0]])
        return MentorView(student_token if agrees else -1, view.top_logprob, own, view.entropy, view.margin)

    def split_at(self, audit: Audit, index: int, first_token: int | None = None) -> None:
        """The mentor's segment starts at its token where tokens[index] of `audit`
        starts, with its own first choice (`first_token`, in the student's ids, is
        not one of its tokens; no trigger names one here: engine/trigger.py)."""
        position, row = self._audit_positions[index]
        self.split_row = row
        self.student_segment_logprobs = np.zeros(0)  # the segments are in other vocabularies
        self._first_token = int(np.argmax(row))
        self._branch_at = position
        self._word_end = audit.start + len(audit.tokens)
        self._read_segment = False

    def _score(self, word_start: int, catch_up: list[int], word: list[int]) -> int | None:
        student = self.answer.writer
        if catch_up:
            self.mentor.append(self._append_text(student.detokenize(catch_up)))
        self._word_context = len(self.mentor)
        mentor_word = self.mentor.tokenize(student.detokenize(word))
        if not mentor_word:
            return None
        rows = self.mentor.score(mentor_word)
        if _first_mismatch(rows, mentor_word) is None:
            return None
        self.split_row = rows[0]
        self.student_segment_logprobs = token_logprobs(rows, mentor_word)
        self._first_token = int(np.argmax(rows[0]))
        self._branch_at = self._word_context
        return word_start

    def _append_text(self, text: bytes) -> list[int]:
        keep, tokens = seam_tokens(self.mentor, self.mentor.tokens, text, self.prompt_length)
        self.mentor.truncate(keep)
        return tokens

    def _read(self, student_tokens: list[int]) -> np.ndarray:
        length = len(self.mentor)
        tokens = self._append_text(self.answer.writer.detokenize(student_tokens))
        if not tokens:
            return np.zeros(0)
        if len(self.mentor) < length:
            # The seam replaced cached tokens, so the row predicting the first new
            # token is gone; skip that token's score rather than re-evaluate.
            rows = self.mentor.score(tokens, predict_first=False)
            return token_logprobs(rows[:-1], tokens[1:])
        rows = self.mentor.score(tokens)
        return token_logprobs(rows, tokens)

    def _append_to_student(self, mentor_tokens: list[int]) -> None:
        student = self.answer.writer
        floor = self.answer.prompt_length + self.answer.final_tokens
        keep, tokens = seam_tokens(student, student.tokens, self.mentor.detokenize(mentor_tokens), floor)
        self.answer.rollback(keep - self.answer.prompt_length)
        student.append(tokens)


def _byte_offsets(model: ModelBackend, tokens: list[int], answer_start: int, first: int) -> dict[int, int]:
    """For each of tokens[first:], where it starts in the answer (bytes after
    tokens[answer_start]), keyed by that offset."""
    at = len(model.detokenize(tokens[answer_start:first]))
    offsets: dict[int, int] = {}
    for position in range(first, len(tokens)):
        offsets.setdefault(at, position)
        at += len(model.token_bytes(tokens[position]))
    return offsets


def make_link(
    student: ModelBackend,
    mentor: ModelBackend,
    writer: ModelWriter,
    prompt: list[int],
    answer: Answer,
    executor: Executor | None = None,
) -> LocalLink:
    same = student.tokenizer_fingerprint() == mentor.tokenizer_fingerprint()
    return (TokenLink if same else TextLink)(mentor, writer, prompt, answer, executor)
