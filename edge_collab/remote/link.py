"""How the engine probes a mentor served over HTTP (the MentorLink protocol of
engine/mentor.py).

A probe asks the mentor to continue the answer from the start of the
student's word; the mentor's tokens are compared with the student's one by
one, and where they first differ the branches part. Two ways to ask
(CompletionClient.one_request_per_probe):

- two requests at a divergence (the default): ask for the word only; only
  where it differs ask again for the segment from the split. The server
  decodes no more than a local mentor would, and while the student writes on
  during the probe both round trips are hidden.
- one request per probe (probes asked in turn over a slow link): the word's
  length plus a lookahead segment at once; at a divergence the same reply
  already holds the mentor's segment. Every probe then costs the server a
  segment of decoding.

Engines that take token ids and share the student's tokenizer are sent the
student's ids (CompletionClient.takes_tokens_of); others get text. Under the
audit policy a batch is read with one scoring request (remote/scoring.py).

Either way the segment is greedy from the split, so with identical tokenizers
this is exactly the local probe-by-scoring rule and the answers are the same
as with a local mentor. The server keeps its own prefix cache
(llama.cpp and vLLM reuse the common prefix of consecutive prompts), so each
request costs the server only the text appended since the last one.

When the mentor fails (time-out, refused connection, HTTP error, malformed or
truncated reply) the probe is skipped and the student carries on; after
repeated failures a circuit breaker stops probing for a while.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from edge_collab.backends.base import BackendCounters
from edge_collab.backends.chat_prompt import defuse
from edge_collab.engine.answer import Answer
from edge_collab.engine.futures import run_now
from edge_collab.engine.mentor import Audit
from edge_collab.engine.sampling import TokenScore
from edge_collab.engine.stats import GenerationStats
from edge_collab.engine.writer import Written, ends_sentence
from edge_collab.errors import IncompatiblePairError, MentorUnavailableError
from edge_collab.remote.audit import AUDIT_SKIP_MARGIN, AUDIT_TOP_LOGPROBS, student_views
from edge_collab.remote.breaker import CircuitBreaker
from edge_collab.remote.client import Completion, CompletionClient

logger = logging.getLogger(__name__)


@dataclass
class RemoteStats:
    round_trips: int = 0
    network_s: float = 0.0
    failures: int = 0
    skipped_probes: int = 0


def _first_difference(mentor: list[str], student: list[str]) -> int:
    """Index of the first student token the mentor's tokens do not repeat
    (len(student) when the mentor wrote the same tokens)."""
    for index, piece in enumerate(student):
        if index >= len(mentor) or mentor[index] != piece:
            return index
    return len(student)


def _compare_text(completion: Completion, pieces: list[str]) -> tuple[int, list[str], bool] | None:
    """The word-sized reply against the student's tokens, by text: the mentor
    wrote the word when the texts are equal; otherwise the branches part after
    the longest run of the student's tokens that the reply starts with."""
    text = completion.text
    if text == "".join(pieces):
        return None
    split, covered = 0, ""
    while split < len(pieces) - 1 and text.startswith(covered + pieces[split]):
        covered += pieces[split]
        split += 1
    return split, [], completion.finished and text == covered


def _text_agrees(text: str, word: str) -> bool:
    """Without token information: the reply starts with the word, and the word ends there."""
    rest = text[len(word) : len(word) + 1]
    return text.startswith(word) and rest in ("", " ", "\n", "\t")


class RemoteLink:
    """The MentorLink protocol (engine/mentor.py) over HTTP."""

    def __init__(
        self,
        client: CompletionClient,
        breaker: CircuitBreaker,
        counters: BackendCounters,
        prompt_text: str,
        answer: Answer,
        segment_tokens: int,
        executor: ThreadPoolExecutor,
        token_prompts: bool = False,
    ):
        self.token_prompts = token_prompts  # send the student's token ids (client.takes_tokens_of)
        self.client, self.breaker, self.counters, self.executor = client, breaker, counters, executor
        self.split_row: np.ndarray | None = None  # never filled: learned verifiers need a local mentor
        self.student_segment_logprobs = np.zeros(0)
        self.prompt_text = prompt_text
        self.answer = answer
        self.segment_tokens = segment_tokens
        self.prefill_tokens = 0  # the server's prefix cache makes this unknowable here
        self.decode_tokens = 0
        self.stats = RemoteStats()
        self._segment: Written | None = None
        self._segment_pieces: list[str] = []
        self._split = 0
        self._synced = 0  # the audit policy: answer tokens the mentor has read
        self._audit_end = 0
        self.audit_unmatched = 0  # audited student tokens that no mentor token starts with
        self._counters_at_start = (
            client.counters.round_trips,
            client.counters.network_s,
            client.counters.failures,
        )

    @property
    def can_overlap(self) -> bool:
        """Whether a probe runs while the student writes on (engine/word_loop.py)."""
        return self.client.settings.overlap_probes

    def start_read_ahead(self, upto: int) -> None:
        return None  # a server shared by many students reads only what it must

    def probe(self, word_start: int, word: list[int]) -> int | None:
        if not self.breaker.allow():
            self.stats.skipped_probes += 1
            return None
        return self._ask(word_start, *self._request(word_start, word))

    def start_probe(self, word_start: int, word: list[int]) -> Future[int | None]:
        """The probe, asked on another thread while the student writes on; what it
        needs of the answer is read here, before the answer grows. The caller
        takes the result before anything else touches this link."""
        if not self.breaker.allow():
            self.stats.skipped_probes += 1
            return run_now(lambda: None)
        return self.executor.submit(self._ask, word_start, *self._request(word_start, word))

    def _prompt_to(self, position: int) -> str | list[int]:
        """What the server is sent to continue the answer from answer position
        `position`: the student's token ids where the server takes them and
        shares its tokenizer, else the text. The student's own text may hold a
        special token's characters (it can echo what a user typed): as text,
        they are defused so the server reads them as characters too."""
        student = self.answer.writer
        if self.token_prompts:
            return student.tokens[: self.answer.prompt_length + position]
        written = student.detokenize(self.answer.tokens()[:position]).decode("utf-8", errors="replace")
        return self.prompt_text + defuse(written, student.special_texts())

    def _request(self, word_start: int, word: list[int]) -> tuple[str | list[int], list[int], list[str]]:
        student = self.answer.writer
        pieces = [student.token_bytes(t).decode("utf-8", errors="replace") for t in word]
        return self._prompt_to(word_start), word, pieces

    def _ask(self, word_start: int, prompt: str | list[int], word: list[int], pieces: list[str]) -> int | None:
        breaker, student = self.breaker, self.answer.writer
        one_request = self.client.one_request_per_probe
        try:
            budget = len(pieces) + (self.segment_tokens if one_request else 0)
            # With a second request to come, the first needs only the text.
            completion = self.client.complete(prompt, max_tokens=budget, pieces=one_request)
            self.decode_tokens += len(completion.tokens) or len(student.tokenize(completion.text.encode("utf-8")))
            outcome = self._compare(completion, pieces) if one_request else _compare_text(completion, pieces)
            if outcome is None:
                breaker.record_success()
                return None
            split, segment, ended = outcome
            if not one_request and not ended:
                # Second round trip, only at a divergence: the segment from the split.
                agreed = prompt + word[:split] if isinstance(prompt, list) else prompt + "".join(pieces[:split])
                follow = self.client.complete(agreed, max_tokens=self.segment_tokens, pieces=True)
                self.decode_tokens += len(follow.tokens) or 1
                segment = follow.tokens or [follow.text]
                ended = follow.finished and len(segment) < self.segment_tokens
        except MentorUnavailableError as error:
            logger.warning("%s; the probe is skipped and the student goes on", error)
            breaker.record_failure()
            self.stats.skipped_probes += 1
            return None
        finally:
            self._sync_network_stats()
        breaker.record_success()
        self._segment_pieces = segment
        self._segment = Written([], ended=ended, text="".join(segment).encode("utf-8"))
        self._split = word_start + split
        return self._split

    def _compare(self, completion: Completion, pieces: list[str]) -> tuple[int, list[str], bool] | None:
        """None when the mentor wrote the student's word; else (split within the
        word, the mentor's segment so far, whether the mentor ended there)."""
        mentor_tokens = completion.tokens
        if mentor_tokens:
            split = _first_difference(mentor_tokens, pieces)
            if split == len(pieces):
                return None
            segment = mentor_tokens[split : split + self.segment_tokens]
            return split, segment, completion.finished and len(mentor_tokens) <= split + self.segment_tokens
        if _text_agrees(completion.text, "".join(pieces)):
            return None
        return 0, [completion.text], completion.finished

    def read_student_segment(self) -> None:
        raise MentorUnavailableError("a remote mentor cannot score the student's segment for a learned verifier")

    def mentor_segment(
        self, count: int, scores: list[TokenScore] | None = None, until_sentence_end: bool = False
    ) -> Written:
        if self._segment is None:
            self._fetch_segment()  # the audit policy: the split is known, the segment not yet
        assert self._segment is not None
        if until_sentence_end:
            for index, piece in enumerate(self._segment_pieces):
                if ends_sentence(piece.encode("utf-8")):
                    self._segment_pieces = self._segment_pieces[: index + 1]
                    break
            return Written([], ended=False, text="".join(self._segment_pieces).encode("utf-8"))
        return self._segment

    def mentor_text(self, segment: Written) -> bytes:
        return segment.text or b""

    def as_student_tokens(self, segment: Written) -> list[int]:
        return self.answer.writer.tokenize(self.mentor_text(segment))

    def adopt(self, segment: Written) -> None:
        """Append the segment token by token: each of the mentor's tokens becomes
        the student's tokens for the same text, so with identical tokenizers the
        student holds exactly the ids the mentor wrote (as with a local mentor),
        and with others the boundaries stay where the mentor put them."""
        student = self.answer.writer
        tokens = [t for piece in self._segment_pieces for t in student.tokenize(piece.encode("utf-8"))]
        student.append(tokens)
        self._synced = len(self.answer)  # the mentor wrote it: nothing there to audit

    def reject(self) -> None:
        """Nothing to undo: the server caches by prefix. An audit's reading
        stays where it was; the student's segment after it is read next."""
        self._synced = self._audit_end

    def give_up(self) -> None:
        """Nothing is open here: the server owns the cache."""

    @property
    def can_audit(self) -> bool:
        return self.client.can_score

    audits_within_words = False  # the server's tokens are matched to the student's through the text

    def unread(self, frontier: int) -> int:
        return max(0, frontier - self._synced)

    def audit(self, frontier: int) -> Audit:
        """Read the answer tokens not yet read, up to `frontier`, with one scoring
        request: the server reads the prompt and the answer (its prefix cache
        keeps what it read before) and gives its top log-probabilities at each
        token; remote/audit.py matches its tokens to the student's through the
        text. Where the server fails, the batch goes unaudited (counted as a
        skipped probe) and the student carries on."""
        return self._read_batch(*self._batch_to_read(frontier))

    def start_audit(self, frontier: int) -> Future[Audit]:
        """`audit` on another thread while the student writes on; what it needs of
        the answer is read here, before the answer grows."""
        return self.executor.submit(self._read_batch, *self._batch_to_read(frontier))

    def _batch_to_read(self, frontier: int) -> tuple[int, list[int], str]:
        if not self.can_audit:
            raise IncompatiblePairError(
                f"audit probing needs a mentor that can score a prompt (llama-cpp-python's server, vLLM or SGLang); "
                f"this one is {self.client.engine}: use --probe-policy random"
            )
        start = self._synced
        answer_tokens = self.answer.tokens()[:frontier]
        self._synced = self._audit_end = frontier
        if start >= len(answer_tokens):
            return start, answer_tokens, ""  # nothing to read, nothing to send
        student = self.answer.writer
        text = defuse(student.detokenize(answer_tokens).decode("utf-8", errors="replace"), student.special_texts())
        return start, answer_tokens, text

    def _read_batch(self, start: int, answer_tokens: list[int], text: str) -> Audit:
        tokens = answer_tokens[start:]
        if not tokens:
            return Audit(start, [], [])
        unaudited = Audit(start, tokens, [None] * len(tokens))
        if not self.breaker.allow():
            self.stats.skipped_probes += 1
            return unaudited
        student = self.answer.writer
        try:
            scored = self.client.score(
                self.prompt_text + text,
                top=AUDIT_TOP_LOGPROBS,
                skip_tokens=self.answer.prompt_length + start - AUDIT_SKIP_MARGIN,
            )
        except MentorUnavailableError as error:
            logger.warning("%s; this batch goes unaudited and the student goes on", error)
            self.breaker.record_failure()
            self.stats.skipped_probes += 1
            return unaudited
        finally:
            self._sync_network_stats()
        self.breaker.record_success()
        self.decode_tokens += self.client.tokens_decoded_per_score
        views = student_views(scored, self.prompt_text, text, student, answer_tokens, start)
        self.audit_unmatched += sum(view is None for view in views)
        return Audit(start, tokens, views)

    def split_at(self, audit: Audit, index: int, first_token: int | None = None) -> None:
        """The mentor's segment starts at tokens[index] of `audit`: asked for now,
        as a streamed completion from the answer's text up to there. The server
        writes its own first token (no trigger names one for a served mentor:
        its views hold no whole distribution, engine/trigger.py)."""
        self._split = audit.start + index
        self._segment = None

    def _fetch_segment(self) -> None:
        try:
            follow = self.client.complete(self._prompt_to(self._split), max_tokens=self.segment_tokens, pieces=True)
        except MentorUnavailableError as error:
            logger.warning("%s; the student's text stays", error)
            self.breaker.record_failure()
            self.stats.skipped_probes += 1
            raise
        finally:
            self._sync_network_stats()
        self.breaker.record_success()
        self.decode_tokens += len(follow.tokens) or 1
        self._segment_pieces = follow.tokens or ([follow.text] if follow.text else [])
        ended = follow.finished and len(self._segment_pieces) < self.segment_tokens
        self._segment = Written([], ended=ended, text="".join(self._segment_pieces).encode("utf-8"))

    def count_into(self, stats: GenerationStats) -> None:
        stats.mentor_decode_tokens = self.decode_tokens
        stats.mentor_prefill_tokens = self.prefill_tokens
        stats.mentor_round_trips = self.stats.round_trips
        stats.mentor_network_s = self.stats.network_s
        stats.mentor_failures = self.stats.failures
        stats.mentor_skipped_probes = self.stats.skipped_probes
        stats.audit_unmatched_tokens = self.audit_unmatched

    def _sync_network_stats(self) -> None:
        trips, seconds, failures = self._counters_at_start
        counters = self.client.counters
        self.stats.round_trips = counters.round_trips - trips
        self.stats.network_s = counters.network_s - seconds
        self.stats.failures = counters.failures - failures
        self.counters.seconds = counters.network_s
