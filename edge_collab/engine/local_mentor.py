"""A mentor that is a GGUF model in this process (the Mentor protocol of engine/mentor.py)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edge_collab.backends.base import BackendCounters, ModelBackend
from edge_collab.engine.answer import Answer
from edge_collab.engine.local_link import LocalLink, make_link
from edge_collab.engine.result import MentorPrompt, Prompts, Steps
from edge_collab.engine.run import Run
from edge_collab.engine.sampling import TokenChooser
from edge_collab.engine.word_loop import WordLoop
from edge_collab.engine.writer import ModelWriter
from edge_collab.settings import GenerationSettings


class LocalMentor:
    can_score = True  # it reads both segments with its own model on a scratch branch

    def __init__(self, backend: ModelBackend):
        self.backend = backend
        self.name = backend.name

    @property
    def counters(self) -> BackendCounters:
        return self.backend.counters

    def chat_prompt(
        self, messages: Sequence[dict[str, str]], student: ModelBackend, thinking: bool | None = False
    ) -> MentorPrompt:
        return self.backend.chat_prompt(messages, thinking=thinking)

    def plain_prompt(self, text: str, student: ModelBackend | None = None) -> MentorPrompt:
        return self.backend.plain_prompt(text)

    def open_link(
        self,
        answer: Answer,
        prompt: MentorPrompt,
        settings: GenerationSettings,
        rng: np.random.Generator,
        record_scores: bool,
    ) -> LocalLink:
        assert isinstance(prompt, list)
        writer = ModelWriter(self.backend, TokenChooser(settings.temperature, rng), record_scores=record_scores)
        return make_link(answer.writer, self.backend, writer, prompt, answer)

    def alone(self, student: ModelBackend, prompt: MentorPrompt, settings: GenerationSettings) -> Steps:
        assert isinstance(prompt, list)
        return WordLoop(Run(student, self, None, settings, Prompts([], prompt)), by_mentor=True)

    def close(self) -> None:
        self.backend.close()
