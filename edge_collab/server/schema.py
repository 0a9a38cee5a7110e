"""Request bodies, validated strictly: unknown fields and out-of-range values
are client errors (400), never silently dropped.

edge-collab's own fields are built from the settings' declarations
(edge_collab/settings.py), so a request accepts exactly what the command line
and the Python API accept. What the server takes from OpenAI's API, and what
it refuses on purpose, is listed once, in `OPENAI_FIELDS` and `NOT_PER_REQUEST`
(docs/server.md shows both).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator

from edge_collab.engine.methods import METHOD_NAMES
from edge_collab.errors import SettingsError
from edge_collab.settings import GENERATION_KINDS, GENERATION_OPTIONS, check_value

# OpenAI's request fields the server takes, and how.
OPENAI_FIELDS = {
    "model": "optional; must name this server's model",
    "messages": "chat: system, user and assistant messages with string content",
    "prompt": "completions: one non-empty string",
    "max_tokens": "the answer's cap (max_new_tokens)",
    "max_completion_tokens": "chat: max_tokens under its newer name",
    "temperature": "0 is greedy",
    "seed": "seeds probes and sampling",
    "stop": "a string or up to 4",
    "stream": "server-sent events, one per run of same-source text",
    "stream_options": "include_usage only",
    "top_p": "accepted only as 1 (sampling uses the temperature alone)",
    "n": "accepted only as 1 (one answer per request)",
    "echo": "completions: accepted only as false",
    "user": "accepted and ignored (nothing is logged per user)",
}
# Settings a request cannot change, on purpose, and why.
NOT_PER_REQUEST = {
    "student, mentor": "the server loads its models once, at start (edge-collab serve --student/--mentor)",
    "verifier": "chosen when the server starts (--verifier)",
    "n_ctx, threads, gpu_layers": "how the models are loaded, at start",
    "word_extra_tokens, repeat_guard": "the loop's own safeguards, set in the Python API only",
    "logprobs, tools, response_format, ...": "not implemented: any field not listed here is refused with a 400",
}


class _Strict(BaseModel):
    # strict: "10", true and "yes" are not numbers or booleans; JSON's 1 still counts as 1.0
    model_config = ConfigDict(extra="forbid", strict=True)


class Message(_Strict):
    role: Literal["system", "user", "assistant"]
    content: str
    name: str | None = None


class StreamOptions(_Strict):
    include_usage: bool = False


def _request_field(name: str) -> tuple[Any, Any]:
    """A request field for the setting `name`: optional, with the setting's type
    and help; its range goes into the JSON schema, and is checked by the settings'
    own function (`_Common._as_settings_allow`), so messages match the CLI's."""
    option, kind = GENERATION_OPTIONS[name], GENERATION_KINDS[name]
    bounds: dict[str, Any] = {}
    if option.low is not None and not option.also:
        bounds["minimum"] = option.low
    if option.high is not None:
        bounds["exclusiveMaximum" if option.high_open else "maximum"] = option.high
    annotation: Any
    if name == "method":
        annotation = Literal[METHOD_NAMES]  # type: ignore[valid-type]
    elif option.choices is not None:
        annotation = Literal[option.choices]  # type: ignore[valid-type]
    elif kind == "strings":
        annotation = str | list[str]
        bounds = {}
    else:
        annotation = {"int": int, "float": float, "bool": bool, "str": str}[kind]
    return annotation | None, Field(default=None, description=option.help, json_schema_extra=bounds or None)


# The settings a request may set, under their request names (max_tokens for max_new_tokens).
REQUEST_SETTINGS = {option.request: name for name, option in GENERATION_OPTIONS.items() if option.request is not None}

_SettingFields: type[BaseModel] = create_model(  # type: ignore[call-overload]
    "SettingFields",
    __base__=_Strict,
    **{request: _request_field(name) for request, name in REQUEST_SETTINGS.items()},
)


class _Common(_SettingFields):  # type: ignore[misc,valid-type]
    """Fields both endpoints take (edge-collab's own pass through the openai client's `extra_body`)."""

    model: str | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    n: int = Field(default=1, ge=1, le=1)
    user: str | None = None

    @field_validator(*REQUEST_SETTINGS)
    @classmethod
    def _as_settings_allow(cls, value: Any, info: Any) -> Any:
        """The settings' own check, so a request is refused exactly where the CLI and API refuse."""
        if value is None:
            return value
        name = REQUEST_SETTINGS[info.field_name]
        try:
            check_value(name, GENERATION_OPTIONS[name], value, GENERATION_KINDS[name])
        except SettingsError as error:
            raise ValueError(str(error)) from None
        return value

    @field_validator("top_p")
    @classmethod
    def _top_p(cls, value: float | None) -> float | None:
        if value is not None and value != 1.0:
            raise ValueError("only top_p = 1 is supported (sampling uses the temperature alone)")
        return value

    def overrides(self) -> dict[str, object]:
        """GenerationSettings fields this request changes."""
        changes: dict[str, object] = {}
        for request, name in REQUEST_SETTINGS.items():
            value = getattr(self, request)
            if value is not None:
                changes[name] = (value,) if name == "stop" and isinstance(value, str) else value
        if "stop" in changes:
            changes["stop"] = tuple(changes["stop"])  # type: ignore[arg-type]
        return changes


class ChatRequest(_Common):
    messages: list[Message] = Field(min_length=1)
    max_completion_tokens: int | None = None

    @field_validator("max_completion_tokens")
    @classmethod
    def _max_completion_tokens(cls, value: int | None) -> int | None:
        if value is not None:
            option = GENERATION_OPTIONS["max_new_tokens"]
            try:
                check_value("max_completion_tokens", option, value, "int")
            except SettingsError as error:
                raise ValueError(str(error)) from None
        return value

    def overrides(self) -> dict[str, object]:
        changes = super().overrides()
        if self.max_completion_tokens is not None:
            changes["max_new_tokens"] = self.max_completion_tokens
        return changes


class CompletionRequest(_Common):
    prompt: str = Field(min_length=1)
    echo: bool = False

    @field_validator("echo")
    @classmethod
    def _no_echo(cls, value: bool) -> bool:
        if value:
            raise ValueError("echo is not supported: the reply holds the completion only (send false or leave it out)")
        return value
