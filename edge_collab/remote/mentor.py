"""A mentor behind an OpenAI-compatible completion server (the Mentor protocol
of engine/mentor.py). Probes go through `RemoteLink` (remote/link.py); an
answer the mentor writes alone is one streamed completion (remote/alone.py)."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from edge_collab.backends.base import BackendCounters, ModelBackend
from edge_collab.backends.chat_prompt import defuse
from edge_collab.engine.answer import Answer
from edge_collab.engine.result import MentorPrompt, Steps
from edge_collab.remote.alone import RemoteAlone
from edge_collab.remote.breaker import CircuitBreaker
from edge_collab.remote.client import CompletionClient
from edge_collab.remote.link import RemoteLink
from edge_collab.settings import GenerationSettings


class RemoteMentor:
    """A mentor served over HTTP."""

    def __init__(self, client: CompletionClient, breaker: CircuitBreaker | None = None):
        self.client = client
        self.breaker = breaker or CircuitBreaker()
        self.counters = BackendCounters()
        self.name = client.model or client.url
        # One probe in flight at a time, on its own thread: the student writes on meanwhile.
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="edge-collab-probe")

    def close(self) -> None:
        self.executor.shutdown(wait=True)
        self.client.close()

    backend = None  # nothing in process
    can_score = False  # a server gives no scores of both segments for a learned verifier

    def chat_prompt(
        self, messages: Sequence[dict[str, str]], student: ModelBackend, thinking: bool | None = False
    ) -> MentorPrompt:
        """A server tokenizes for itself; it gets the student's rendering of the
        conversation (so a thinking section follows the student's template)."""
        return student.chat_prompt_text(messages, thinking=thinking)

    def plain_prompt(self, text: str, student: ModelBackend | None = None) -> MentorPrompt:
        """Raw text, which the student reads as plain text: the server must too."""
        return defuse(text, student.special_texts()) if student is not None else text

    def open_link(
        self,
        answer: Answer,
        prompt: MentorPrompt,
        settings: GenerationSettings,
        rng: np.random.Generator,
        record_scores: bool,
    ) -> RemoteLink:
        assert isinstance(prompt, str)
        return RemoteLink(
            self.client,
            self.breaker,
            self.counters,
            prompt,
            answer,
            settings.segment_tokens,
            self.executor,
            token_prompts=self.client.takes_tokens_of(answer.writer),
        )

    def alone(self, student: ModelBackend, prompt: MentorPrompt, settings: GenerationSettings) -> Steps:
        assert isinstance(prompt, str)
        return RemoteAlone(self.client, student, prompt, settings)
