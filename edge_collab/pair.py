"""The Python API: a student and a mentor, opened together, generating answers.

    with CollabPair.open() as pair:               # the installed default pair
        result = pair.generate("What is 17 * 23?")
        print(result.text, result.stats.mentor_share)

The mentor is loaded on first use, so student-only work never pays for it.
A pair runs one generation at a time: share it between threads only behind a lock.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Literal, overload

from edge_collab.backends.base import ModelBackend
from edge_collab.backends.chat_prompt import validate_messages
from edge_collab.backends.llamacpp import LlamaCppBackend
from edge_collab.engine.budget import MentorBudget
from edge_collab.engine.generation import Generation, start_generation
from edge_collab.engine.local_mentor import LocalMentor
from edge_collab.engine.mentor import Mentor
from edge_collab.engine.methods import method_named
from edge_collab.engine.result import GenerationResult, MentorPrompt, Prompts
from edge_collab.errors import SettingsError, UnknownPresetError
from edge_collab.presets.registry import DEFAULT_PAIR, load_pairs, resolve_model
from edge_collab.remote.client import ENV_API_KEY, CompletionClient, RemoteSettings
from edge_collab.remote.mentor import RemoteMentor
from edge_collab.settings import GenerationSettings, ModelSettings
from edge_collab.thinking import prompt_opens_thinking
from edge_collab.verifiers.base import Verifier
from edge_collab.verifiers.named import check_verifier_name, open_verifier, verifier_file


def is_url(spec: object) -> bool:
    return isinstance(spec, str) and spec.startswith(("http://", "https://"))


def _resolve(spec: str | Path | None, role: Literal["student", "mentor"], data_dir: str | Path | None) -> Path:
    if spec is None:
        pair = load_pairs()[DEFAULT_PAIR]
        return resolve_model(getattr(pair, role), data_dir, pair_hint=DEFAULT_PAIR)
    if isinstance(spec, Path):
        return resolve_model(str(spec), data_dir)
    pairs = load_pairs()
    if spec in pairs:
        raise UnknownPresetError(f"{spec!r} names a pair; pass one model (for example {getattr(pairs[spec], role)})")
    return resolve_model(spec, data_dir)


class CollabPair:
    """A student model and a mentor model with the settings to combine them."""

    def __init__(
        self,
        student: ModelBackend,
        mentor: Mentor | ModelBackend | Path | None = None,
        *,
        settings: GenerationSettings | None = None,
        mentor_settings: ModelSettings | None = None,
        verifier: str = "self",
    ):
        """`mentor`: a Mentor, a model in process, or a .gguf path loaded on first use."""
        check_verifier_name(verifier)
        self.student = student
        self._mentor: Mentor | Path | None = LocalMentor(mentor) if isinstance(mentor, ModelBackend) else mentor
        self._mentor_settings = mentor_settings or ModelSettings()
        self.settings = settings or GenerationSettings()
        method_named(self.settings.method)
        self.verifier_name = verifier
        self._verifier: Verifier | None = None
        self._budgets: dict[tuple[str, float], MentorBudget] = {}
        self._budget_scopes: dict[str, dict[tuple[str, float], MentorBudget]] = {}

    @classmethod
    def open(
        cls,
        student: str | Path | None = None,
        mentor: str | Path | None = None,
        *,
        settings: GenerationSettings | None = None,
        student_settings: ModelSettings | None = None,
        mentor_settings: ModelSettings | None = None,
        verifier: str = "self",
        data_dir: str | Path | None = None,
        mentor_model: str | None = None,
        mentor_api_key: str | None = None,
        remote_settings: RemoteSettings | None = None,
    ) -> CollabPair:
        """Open models by preset name or .gguf path (None: the default pair). The
        mentor may also be a server URL (http://host:port[/v1]); it is checked
        before anything is loaded."""
        student_path = _resolve(student, "student", data_dir)
        student_only = settings is not None and not method_named(settings.method).needs_mentor
        # A student-only run must not need the mentor installed; otherwise a bad
        # mentor argument fails now, before anything is loaded.
        mentor_arg: Mentor | Path | None
        if is_url(mentor):
            assert isinstance(mentor, str)
            key = mentor_api_key or os.environ.get(ENV_API_KEY)
            client = CompletionClient(mentor, api_key=key, model=mentor_model, settings=remote_settings)
            try:
                client.check()
            except BaseException:
                client.close()
                raise
            mentor_arg = RemoteMentor(client)
        else:
            mentor_arg = None if student_only and mentor is None else _resolve(mentor, "mentor", data_dir)
        try:
            backend = LlamaCppBackend(student_path, student_settings)
        except BaseException:
            if isinstance(mentor_arg, RemoteMentor):
                mentor_arg.close()
            raise
        return cls(backend, mentor_arg, settings=settings, mentor_settings=mentor_settings, verifier=verifier)

    @property
    def mentor(self) -> Mentor:
        if self._mentor is None:
            raise SettingsError("this pair has no mentor")
        if isinstance(self._mentor, Path):  # loaded on first use
            self._mentor = LocalMentor(LlamaCppBackend(self._mentor, self._mentor_settings))
        return self._mentor

    @property
    def mentor_name(self) -> str:
        """The mentor's name, without loading it."""
        if self._mentor is None:
            return ""
        return self._mentor.stem if isinstance(self._mentor, Path) else self._mentor.name

    @property
    def verifier_file(self) -> Path | None:
        """The learned verifier's file; None for the self and fixed verifiers."""
        return verifier_file(self.verifier_name)

    @property
    def verifier(self) -> Verifier:
        if self._verifier is None:
            self._verifier = open_verifier(self.verifier_name, self.student)
        return self._verifier

    @overload
    def chat(
        self, messages: Sequence[dict[str, str]], *, stream: Literal[False] = ..., **overrides: object
    ) -> GenerationResult: ...
    @overload
    def chat(self, messages: Sequence[dict[str, str]], *, stream: Literal[True], **overrides: object) -> Generation: ...

    def chat(
        self, messages: Sequence[dict[str, str]], *, stream: bool = False, **overrides: object
    ) -> GenerationResult | Generation:
        """Answer a conversation ([{"role": ..., "content": ...}, ...]).
        `overrides` change GenerationSettings fields for this call only."""
        validate_messages(messages)
        settings = self.settings.with_changes(**overrides) if overrides else self.settings
        method = method_named(settings.method)
        mentor = self.mentor if method.needs_mentor else None
        # A mentor guiding the student continues the student's answer: its own
        # thinking section stays closed. Alone, it thinks as the settings say.
        mentor_thinking = settings.think if not method.uses_student else False
        mentor_prompt = mentor.chat_prompt(messages, self.student, mentor_thinking) if mentor is not None else None
        student_prompt = self.student.chat_prompt(messages, settings.think) if method.uses_student else []
        return self._start(settings, Prompts(student_prompt, mentor_prompt), mentor, stream)

    def complete(self, text: str, *, stream: bool = False, **overrides: object) -> GenerationResult | Generation:
        """Continue raw text (no chat template), as /v1/completions does."""
        if not text:
            raise SettingsError("the prompt is empty")
        settings = self.settings.with_changes(**overrides) if overrides else self.settings
        method = method_named(settings.method)
        mentor = self.mentor if method.needs_mentor else None
        mentor_prompt: MentorPrompt | None = mentor.plain_prompt(text, self.student) if mentor is not None else None
        student_prompt = self.student.plain_prompt(text) if method.uses_student else []
        return self._start(settings, Prompts(student_prompt, mentor_prompt), mentor, stream)

    def _start(
        self, settings: GenerationSettings, prompts: Prompts, mentor: Mentor | None, stream: bool
    ) -> GenerationResult | Generation:
        verifier = self.verifier if method_named(settings.method).needs_verifier else None
        generation = start_generation(self.student, mentor, verifier, settings, prompts, self._budget_for(settings))
        writer = self.student if prompts.student else getattr(mentor, "backend", None)
        written = prompts.student or prompts.mentor
        if writer is not None and isinstance(written, list) and written:
            generation.opens_thinking = prompt_opens_thinking(
                writer.detokenize(written[-8:]).decode("utf-8", "replace")
            )
        return generation if stream else generation.run()

    @overload
    def generate(self, prompt: str, *, stream: Literal[False] = ..., **overrides: object) -> GenerationResult: ...
    @overload
    def generate(self, prompt: str, *, stream: Literal[True], **overrides: object) -> Generation: ...

    def generate(self, prompt: str, *, stream: bool = False, **overrides: object) -> GenerationResult | Generation:
        """Answer one user message (the chat template is applied)."""
        return self.chat([{"role": "user", "content": prompt}], stream=stream, **overrides)  # type: ignore[call-overload,no-any-return]

    def restart_budget(self, pressure: float = 0.0, **overrides: object) -> None:
        """Restart the budget controller at `pressure`: 0 for a run of its own,
        or the pressure an interrupted run recorded last, so that a resumed
        evaluation behaves as one unbroken run. Without this, runs made one
        after another through the same pair (a sweep's grid points, the tasks
        of one `eval`) would each inherit the previous run's pressure."""
        settings = self.settings.with_changes(**overrides) if overrides else self.settings
        budget = self._budget_for(settings, fresh=True)
        if budget is not None:
            budget.pressure = pressure

    def _budget_for(self, settings: GenerationSettings, fresh: bool = False) -> MentorBudget | None:
        """The pair's budget controller for this method and target; it keeps its
        state across calls, so a series of answers converges as one run. Each
        method has its own: their shares respond to the pressure differently."""
        if not method_named(settings.method).probes or settings.mentor_budget is None:
            return None
        key = (settings.method, settings.mentor_budget)
        if fresh or key not in self._budgets:
            self._budgets[key] = MentorBudget(settings.mentor_budget)
        return self._budgets[key]

    @contextmanager
    def budget_scope(self, name: str) -> Iterator[None]:
        """Budget controllers of the scope `name` for the calls inside, kept
        apart from the pair's own: series of answers interleaved through one
        pair (the bench's rows) each converge as a run of their own."""
        own = self._budgets
        self._budgets = self._budget_scopes.setdefault(name, {})
        try:
            yield
        finally:
            self._budgets = own

    def close(self) -> None:
        self.student.close()
        if self._mentor is not None and not isinstance(self._mentor, Path):  # a path was never loaded
            self._mentor.close()

    def __enter__(self) -> CollabPair:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
