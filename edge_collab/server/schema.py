"""Request bodies, validated strictly: unknown fields and out-of-range values
are client errors (400), never silently dropped."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from edge_collab.settings import PROBE_POLICIES


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Message(_Strict):
    role: Literal["system", "user", "assistant"]
    content: str
    name: str | None = None


class StreamOptions(_Strict):
    include_usage: bool = False


class _Common(_Strict):
    """Fields both endpoints take. The mentor fields are edge-collab's own."""

    model: str | None = None
    max_tokens: int | None = Field(default=None, ge=1, le=32768)
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)  # accepted for compatibility; must be 1 if given
    seed: int | None = Field(default=None, ge=0, lt=2**63)
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int = Field(default=1, ge=1, le=1)
    user: str | None = None
    # edge-collab's own (OpenAI clients pass them through `extra_body`)
    mode: Literal["collab", "student", "mentor"] | None = None
    probe_rate: float | None = Field(default=None, ge=0.0, le=1.0)
    segment_tokens: int | None = Field(default=None, ge=1, le=256)
    probe_policy: str | None = None
    mentor_budget: float | None = Field(default=None, ge=0.0, lt=1.0)  # 0: no controller

    @field_validator("stop")
    @classmethod
    def _stops(cls, value: str | list[str] | None) -> str | list[str] | None:
        stops = [value] if isinstance(value, str) else value or []
        if len(stops) > 4 or any(not s for s in stops):
            raise ValueError("stop takes up to 4 non-empty strings")
        return value

    @field_validator("top_p")
    @classmethod
    def _top_p(cls, value: float | None) -> float | None:
        if value is not None and value != 1.0:
            raise ValueError("only top_p = 1 is supported (sampling uses the temperature alone)")
        return value

    @field_validator("probe_policy")
    @classmethod
    def _policy(cls, value: str | None) -> str | None:
        if value is not None and value not in PROBE_POLICIES:
            raise ValueError(f"probe_policy must be one of {', '.join(PROBE_POLICIES)}")
        return value

    def overrides(self) -> dict[str, object]:
        """GenerationSettings fields this request changes."""
        stops = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        changes: dict[str, object] = {
            "temperature": self.temperature,
            "stop": tuple(stops),
            "mode": self.mode,
            "probe_rate": self.probe_rate,
            "segment_tokens": self.segment_tokens,
            "probe_policy": self.probe_policy,
            "mentor_budget": self.mentor_budget,
            "max_new_tokens": self.max_tokens,
            "seed": self.seed,
        }
        given = {key: value for key, value in changes.items() if value is not None}
        if self.mentor_budget == 0:
            given["mentor_budget"] = None  # the fixed loop, whatever the server's default
        return given


class ChatRequest(_Common):
    messages: list[Message] = Field(min_length=1)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=32768)

    def overrides(self) -> dict[str, object]:
        changes = super().overrides()
        if self.max_completion_tokens is not None:
            changes["max_new_tokens"] = self.max_completion_tokens
        return changes


class CompletionRequest(_Common):
    prompt: str = Field(min_length=1)
    echo: bool = False
