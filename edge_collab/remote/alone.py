"""Answers a served mentor writes alone (mentor-alone mode with --mentor URL):
one streamed completion, passed on as it comes and cut at the stop strings."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass

from edge_collab.backends.base import ModelBackend
from edge_collab.engine.pieces import Piece, Source
from edge_collab.engine.result import GenerationResult
from edge_collab.engine.stats import GenerationStats
from edge_collab.remote.client import CompletionClient
from edge_collab.settings import GenerationSettings


@dataclass
class StreamedAnswer:
    """What the stream gave, filled in as it goes."""

    text: str = ""
    decoded: int = 0  # server events that carried text: one token each on the engines we know
    stop_reason: str = "eos"


def _first_stop(text: str, stops: tuple[str, ...]) -> int | None:
    return min((text.index(stop) for stop in stops if stop in text), default=None)


def stream_answer(
    client: CompletionClient, prompt: str, settings: GenerationSettings, answer: StreamedAnswer
) -> Iterator[str]:
    """The answer's new text, piece by piece. Stop strings are found here, not by
    the server (whose finish_reason would not tell a stop string from the end of
    the text); holding back as many characters as the longest one keeps a stop
    string that spans two events out of what is shown. At a stop the stream is
    closed, which ends the server's work on it."""
    stops = settings.stop
    hold = max((len(stop) for stop in stops), default=0)
    received = ""
    shown = 0
    cut = None
    finish_reason = None
    with closing(client.stream(prompt, settings.max_new_tokens)) as events:
        for text, event_finish in events:
            finish_reason = event_finish or finish_reason
            answer.decoded += bool(text)
            received += text
            cut = _first_stop(received, stops)
            visible = len(received) - hold if cut is None else cut
            if visible > shown:
                yield received[shown:visible]
                shown = visible
            if cut is not None:
                break
    end = len(received) if cut is None else cut
    if end > shown:
        yield received[shown:end]
    answer.text = received[:end]
    if cut is not None:
        answer.stop_reason = "stop"
    elif finish_reason == "length":
        answer.stop_reason = "length"


class RemoteAlone:
    """The "mentor" method on a server: one streamed completion, its pieces
    passed on as they come, counted in the student's tokens."""

    def __init__(self, client: CompletionClient, student: ModelBackend, prompt: str, settings: GenerationSettings):
        self.client, self.student, self.prompt, self.settings = client, student, prompt, settings
        self.pieces: list[Piece] = []
        self.result: GenerationResult | None = None

    def steps(self) -> Iterator[Piece]:
        started = time.perf_counter()
        counters = self.client.counters
        trips, seconds = counters.round_trips, counters.network_s
        streamed = StreamedAnswer()
        for text in stream_answer(self.client, self.prompt, self.settings, streamed):
            piece = Piece(text, Source.MENTOR)
            self.pieces.append(piece)
            yield piece
        stats = GenerationStats(method=self.settings.method)
        stats.tokens_total = stats.tokens_mentor = len(self.student.tokenize(streamed.text.encode("utf-8")))
        stats.mentor_decode_tokens = streamed.decoded or stats.tokens_total
        stats.stop_reason = streamed.stop_reason
        stats.mentor_round_trips = counters.round_trips - trips
        stats.mentor_network_s = stats.mentor_s = counters.network_s - seconds
        stats.wall_s = time.perf_counter() - started
        stats.finish()
        self.result = GenerationResult(streamed.text, list(self.pieces), stats)
