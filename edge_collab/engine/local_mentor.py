"""A mentor that is a GGUF model in this process (the Mentor protocol of engine/mentor.py).

Where the two models' threads fit the machine's cores (say `--threads 1` on
two cores, or a mentor on the GPU), the mentor probes and audits on a thread
of its own while the student writes on: the answer is the one probing in turn
gives (tested), only sooner. Where they would share cores, each waits for the
other, since two models decoding on the same cores only slow each other down.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

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

ENV_OVERLAP = "EDGE_COLLAB_OVERLAP"  # "on" or "off" overrides the rule by cores (for measuring both)


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows have no affinity call
        return os.cpu_count() or 1


def fits_side_by_side(student: ModelBackend, mentor: ModelBackend) -> bool:
    """Whether both models can compute at once without sharing a core: their
    CPU threads together fit the cores (a model wholly on the GPU needs next to none)."""
    if student.cpu_threads is None or mentor.cpu_threads is None:
        return False
    return student.cpu_threads + mentor.cpu_threads <= usable_cores()


class LocalMentor:
    can_score = True  # it reads both segments with its own model on a scratch branch

    def __init__(self, backend: ModelBackend, overlap: bool | None = None):
        """`overlap`: probe and audit on the mentor's own thread (None: where the
        threads fit the cores, unless EDGE_COLLAB_OVERLAP says on or off)."""
        self.backend = backend
        self.name = backend.name
        self.overlap = overlap
        self._executor: ThreadPoolExecutor | None = None

    def overlaps_with(self, student: ModelBackend) -> bool:
        """Whether links to answers by `student` probe and audit on the mentor's own thread."""
        if self.overlap is not None:
            return self.overlap
        named = os.environ.get(ENV_OVERLAP, "").strip().lower()
        if named in ("on", "off"):
            return named == "on"
        return fits_side_by_side(student, self.backend)

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
        executor = None
        if self.overlaps_with(answer.writer):
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="edge-collab-mentor")
            executor = self._executor
        return make_link(answer.writer, self.backend, writer, prompt, answer, executor)

    def alone(self, student: ModelBackend, prompt: MentorPrompt, settings: GenerationSettings) -> Steps:
        assert isinstance(prompt, list)
        return WordLoop(Run(student, self, None, settings, Prompts([], prompt)), by_mentor=True)

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)  # nothing may still run on the model it frees
        self.backend.close()
