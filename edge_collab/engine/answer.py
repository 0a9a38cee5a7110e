"""The answer being written: its tokens in the writer's context, who wrote each,
and the checks that end it (stop strings, repetition).

Tokens become *final* at the end of each engine step; only final tokens are
streamed, checked and counted, so a rolled-back branch is never shown.
"""

from __future__ import annotations

import codecs
from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Sequence

from edge_collab.backends.base import ModelBackend
from edge_collab.engine.pieces import Piece, Source
from edge_collab.engine.stats import GenerationStats

_REPEAT_MIN_UNITS = 12  # a loop must span this many word steps before it counts
_REPEAT_MAX_PERIOD = 64


def repeats_at_end(units: Sequence[bytes]) -> bool:
    """Whether the last units are one block repeated: a single word 12 times,
    or any block of up to 64 units at least 3 times."""
    count = len(units)
    for period in range(1, min(_REPEAT_MAX_PERIOD, count // 3) + 1):
        repetitions = max(3, -(-_REPEAT_MIN_UNITS // period))
        span = period * repetitions
        if span > count or units[-1] != units[-1 - period]:
            continue
        block = list(units[-period:])
        if all(list(units[count - k * period : count - (k - 1) * period]) == block for k in range(2, repetitions + 1)):
            return True
    return False


class Answer:
    """The writer's context beyond the prompt, with a source per token."""

    def __init__(self, writer: ModelBackend, prompt_length: int, stop: Sequence[str] = (), repeat_guard: bool = True):
        self.writer = writer
        self.repeat_guard = repeat_guard
        self.prompt_length = prompt_length
        self.sources: list[Source] = []
        self.units: list[bytes] = []  # text of each finished step, for the repeat guard
        self._stop = [s.encode("utf-8") for s in stop]
        self._holdback = max((len(s) for s in self._stop), default=1) - 1
        self._final_tokens = 0
        self._final_mentor_tokens = 0
        self._final_bytes = bytearray()
        self._token_ends: list[int] = []  # byte offset where each final token ends
        self._emitted_bytes = 0
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def __len__(self) -> int:
        return len(self.writer) - self.prompt_length

    def tokens(self, start: int = 0) -> list[int]:
        return self.writer.tokens_from(self.prompt_length + start)

    def label_new(self, source: Source) -> None:
        """Attribute every token appended since the last call to `source`."""
        self.sources.extend([source] * (len(self) - len(self.sources)))

    def rollback(self, length: int) -> None:
        if length < self._final_tokens:
            raise ValueError("cannot roll back past final tokens")
        self.writer.truncate(self.prompt_length + length)
        del self.sources[length:]

    def finish_step(self, upto: int | None = None) -> str | None:
        """Make the tokens final (those before answer position `upto`, if given:
        the audit policy keeps what the mentor has not read open to a rollback).
        Returns a stop reason when the answer must end here ("stop" for a stop
        string, "repeat" for a loop), else None."""
        new_tokens = self.tokens(self._final_tokens)
        if upto is not None:
            new_tokens = new_tokens[: max(0, upto - self._final_tokens)]
        step_start = len(self._final_bytes)
        for token in new_tokens:
            self._final_bytes += self.writer.token_bytes(token)
            self._token_ends.append(len(self._final_bytes))
        self._final_mentor_tokens += sum(
            1 for s in self.sources[self._final_tokens : self._final_tokens + len(new_tokens)] if s is Source.MENTOR
        )
        self._final_tokens += len(new_tokens)
        if self._stop and self._cut_at_stop_string(step_start):
            return "stop"
        if new_tokens:
            self.units.append(bytes(self._final_bytes[step_start:]))
            if self.repeat_guard and repeats_at_end(self.units):
                return "repeat"
        return None

    def _cut_at_stop_string(self, step_start: int) -> bool:
        window_start = max(0, step_start - self._holdback)
        found = [i for i in (self._final_bytes.find(s, window_start) for s in self._stop) if i >= 0]
        if not found:
            return False
        cut = min(found)
        keep_tokens = bisect_left(self._token_ends, cut) + 1 if cut else 0
        del self._final_bytes[cut:]
        del self._token_ends[keep_tokens:]
        self._final_tokens = keep_tokens
        self.writer.truncate(self.prompt_length + keep_tokens)
        del self.sources[keep_tokens:]
        self._final_mentor_tokens = sum(1 for s in self.sources if s is Source.MENTOR)
        return True

    def trim_to(self, length: int) -> None:
        """Cut the answer to `length` tokens (the max-tokens cap)."""
        if length < len(self):
            self.rollback(max(length, self._final_tokens))

    def emit(self, final: bool = False) -> Iterator[Piece]:
        """Pieces of final text not yet emitted, grouped by source. Holds back a
        possible stop-string prefix until the answer is complete."""
        limit = len(self._final_bytes) if final else max(self._emitted_bytes, len(self._final_bytes) - self._holdback)
        while self._emitted_bytes < limit:
            index = bisect_right(self._token_ends, self._emitted_bytes)
            source = self.sources[index]
            end = index
            while end + 1 < len(self._token_ends) and self.sources[end + 1] == source and self._token_ends[end] < limit:
                end += 1
            stop_at = min(self._token_ends[end], limit)
            chunk = bytes(self._final_bytes[self._emitted_bytes : stop_at])
            self._emitted_bytes = stop_at
            text = self._decoder.decode(chunk, final=final and stop_at == limit)
            if text:
                yield Piece(text, source)

    def count_into(self, stats: GenerationStats, stop_reason: str | None, wall_s: float) -> None:
        """The answer's own statistics: why it ended, its length and the mentor's part."""
        stats.stop_reason = stop_reason or "eos"
        stats.prompt_tokens = self.prompt_length
        stats.tokens_total = self.final_tokens
        stats.tokens_mentor = self.mentor_tokens
        stats.wall_s = wall_s

    @property
    def text(self) -> str:
        return bytes(self._final_bytes).decode("utf-8", errors="replace")

    @property
    def mentor_tokens(self) -> int:
        """Final answer tokens that came from adopted mentor segments."""
        return self._final_mentor_tokens

    @property
    def final_tokens(self) -> int:
        return self._final_tokens
