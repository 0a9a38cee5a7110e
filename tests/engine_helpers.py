"""Helpers for engine tests: run a generation on tiny backends in one call."""

from __future__ import annotations

from edge_collab.backends.base import ModelBackend
from edge_collab.engine.generation import start_generation
from edge_collab.engine.local_mentor import LocalMentor
from edge_collab.engine.result import GenerationResult, Prompts
from edge_collab.settings import GenerationSettings
from edge_collab.verifiers import SelfVerifier, Verifier

MESSAGES = [{"role": "user", "content": "the cat sat on the mat. what is two plus two?"}]


def generate(
    student: ModelBackend,
    mentor: ModelBackend | None,
    verifier: Verifier | None = None,
    overlap: bool | None = None,
    **settings: object,
) -> GenerationResult:
    options: dict[str, object] = {"max_new_tokens": 80, "probe_rate": 0.5, "seed": 7}
    options.update(settings)
    generation_settings = GenerationSettings(**options)  # type: ignore[arg-type]
    if verifier is None and generation_settings.method == "collab":
        verifier = SelfVerifier(student)
    prompts = Prompts(
        student=student.chat_prompt(MESSAGES),
        mentor=mentor.chat_prompt(MESSAGES) if mentor is not None else None,
    )
    link = LocalMentor(mentor, overlap=overlap) if mentor is not None else None
    return start_generation(student, link, verifier, generation_settings, prompts).run()
