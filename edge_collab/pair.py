"""The Python API: a student and a mentor, opened together, generating answers.

    with CollabPair.open() as pair:               # the installed default pair
        result = pair.generate("What is 17 * 23?")
        print(result.text, result.stats.mentor_share)

The mentor is loaded on first use, so student-only work never pays for it.
A pair runs one generation at a time: share it between threads only behind a lock.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal, overload

from edge_collab.backends.base import ModelBackend
from edge_collab.backends.chat_prompt import validate_messages
from edge_collab.backends.llamacpp import LlamaCppBackend
from edge_collab.engine.generation import Generation, GenerationResult, Prompts, start_generation
from edge_collab.errors import SettingsError, UnknownPresetError, VerifierError
from edge_collab.presets.registry import DEFAULT_PAIR, load_pairs, resolve_model
from edge_collab.probing import MentorBudget
from edge_collab.remote.client import ENV_API_KEY, CompletionClient, RemoteSettings
from edge_collab.remote.mentor import RemoteMentor
from edge_collab.settings import GenerationSettings, ModelSettings
from edge_collab.verifiers import SelfVerifier, Verifier
from edge_collab.verifiers.fixed import FIXED_VERIFIERS
from edge_collab.verifiers.onnx_verifier import OnnxVerifier

VERIFIERS = ("self", "onnx", *FIXED_VERIFIERS)
SHIPPED_VERIFIER = Path(__file__).parent / "verifiers" / "data" / "default_pair.onnx"


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


def _shipped_verifier(student: ModelBackend) -> Verifier:
    if not SHIPPED_VERIFIER.is_file():
        raise VerifierError(
            "no learned verifier is shipped for the default pair yet; train one "
            "(edge-collab verifier collect / train) and pass its .onnx path"
        )
    return OnnxVerifier(SHIPPED_VERIFIER, student=student)


class CollabPair:
    """A student model and a mentor model with the settings to combine them."""

    def __init__(
        self,
        student: ModelBackend,
        mentor: ModelBackend | RemoteMentor | Path | None = None,
        *,
        settings: GenerationSettings | None = None,
        mentor_settings: ModelSettings | None = None,
        verifier: str = "self",
    ):
        if verifier not in VERIFIERS and not verifier.endswith(".onnx"):
            raise SettingsError(f"verifier must be one of {', '.join(VERIFIERS)} or a .onnx file, not {verifier!r}")
        self.student = student
        self._mentor = mentor
        self._mentor_settings = mentor_settings or ModelSettings()
        self.settings = settings or GenerationSettings()
        self.verifier_name = verifier
        self._verifier: Verifier | None = None
        self._budgets: dict[tuple[str, float], MentorBudget] = {}

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
        student_only = settings is not None and settings.mode == "student"
        # A student-only run must not need the mentor installed; otherwise a bad
        # mentor argument fails now, before anything is loaded.
        mentor_arg: RemoteMentor | Path | None
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
    def mentor(self) -> ModelBackend | RemoteMentor:
        if self._mentor is None:
            raise SettingsError("this pair has no mentor")
        if isinstance(self._mentor, Path):
            self._mentor = LlamaCppBackend(self._mentor, self._mentor_settings)
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
        if self.verifier_name == "onnx":
            return SHIPPED_VERIFIER
        return Path(self.verifier_name) if self.verifier_name.endswith(".onnx") else None

    @property
    def verifier(self) -> Verifier:
        if self._verifier is None:
            choices: dict[str, Callable[[], Verifier]] = {
                "self": lambda: SelfVerifier(self.student),
                "onnx": lambda: _shipped_verifier(self.student),
                **FIXED_VERIFIERS,
            }
            name = self.verifier_name
            # Asked for only in collab mode, where the student is loaded anyway;
            # a learned verifier uses it only if it reads hidden states.
            self._verifier = choices[name]() if name in choices else OnnxVerifier(name, student=self.student)
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
        needs_mentor = settings.mode != "student"
        mentor = self.mentor if needs_mentor else None
        mentor_prompt: list[int] | str | None = None
        if isinstance(mentor, RemoteMentor):
            # A server tokenizes for itself; it gets the student's rendering of the conversation.
            mentor_prompt = self._prompt_text(messages)
        elif mentor is not None:
            mentor_prompt = mentor.chat_prompt(messages)
        prompts = Prompts(
            student=self.student.chat_prompt(messages) if settings.mode != "mentor" else [],
            mentor=mentor_prompt,
        )
        verifier = self.verifier if settings.mode == "collab" else None
        generation = start_generation(self.student, mentor, verifier, settings, prompts, self._budget_for(settings))
        return generation if stream else generation.run()

    def complete(self, text: str, *, stream: bool = False, **overrides: object) -> GenerationResult | Generation:
        """Continue raw text (no chat template), as /v1/completions does."""
        if not text:
            raise SettingsError("the prompt is empty")
        settings = self.settings.with_changes(**overrides) if overrides else self.settings
        mentor = self.mentor if settings.mode != "student" else None
        mentor_prompt: list[int] | str | None = None
        if isinstance(mentor, RemoteMentor):
            mentor_prompt = text
        elif mentor is not None:
            mentor_prompt = mentor.plain_prompt(text)
        student_prompt = self.student.plain_prompt(text) if settings.mode != "mentor" else []
        verifier = self.verifier if settings.mode == "collab" else None
        generation = start_generation(
            self.student, mentor, verifier, settings, Prompts(student_prompt, mentor_prompt), self._budget_for(settings)
        )
        return generation if stream else generation.run()

    @overload
    def generate(self, prompt: str, *, stream: Literal[False] = ..., **overrides: object) -> GenerationResult: ...
    @overload
    def generate(self, prompt: str, *, stream: Literal[True], **overrides: object) -> Generation: ...

    def generate(self, prompt: str, *, stream: bool = False, **overrides: object) -> GenerationResult | Generation:
        """Answer one user message (the chat template is applied)."""
        return self.chat([{"role": "user", "content": prompt}], stream=stream, **overrides)  # type: ignore[call-overload,no-any-return]

    def _prompt_text(self, messages: Sequence[dict[str, str]]) -> str:
        render = getattr(self.student, "chat_prompt_text", None)
        if render is None:
            raise SettingsError(f"{self.student.name} cannot render prompts as text for a remote mentor")
        return str(render(messages))

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
        if settings.mode not in ("collab", "takeover") or settings.mentor_budget is None:
            return None
        key = (settings.mode, settings.mentor_budget)
        if fresh or key not in self._budgets:
            self._budgets[key] = MentorBudget(settings.mentor_budget)
        return self._budgets[key]

    def close(self) -> None:
        self.student.close()
        if isinstance(self._mentor, ModelBackend | RemoteMentor):
            self._mentor.close()

    def __enter__(self) -> CollabPair:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
