"""Response bodies in OpenAI's shapes, with edge-collab's additions (who wrote
each piece, the mentor's statistics in `usage`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from edge_collab.engine.pieces import Piece
from edge_collab.engine.result import GenerationResult
from edge_collab.engine.stats import GenerationStats
from edge_collab.server.guards import error_body
from edge_collab.thinking import split_thinking


def error_response(
    status: int,
    message: str,
    kind: str = "invalid_request_error",
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """An OpenAI-style error (server/guards.py error_body) with its status."""
    return JSONResponse(error_body(message, kind, param), status_code=status, headers=headers)


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorBody(BaseModel):
    """What every 4xx and 5xx carries."""

    error: ErrorDetail


def openapi_with_our_errors(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI schema, saying what the server really answers to a bad body:
    FastAPI documents its own 422, but requests are refused with 400 in
    OpenAI's error shape (server/app.py turns validation errors into 400)."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                operation.get("responses", {}).pop("422", None)
        for name in ("HTTPValidationError", "ValidationError"):
            schema.get("components", {}).get("schemas", {}).pop(name, None)
        app.openapi_schema = schema
    return app.openapi_schema


def usage(stats: GenerationStats) -> dict[str, Any]:
    return {
        "prompt_tokens": stats.prompt_tokens,
        "completion_tokens": stats.tokens_total,
        "total_tokens": stats.prompt_tokens + stats.tokens_total,
        # edge-collab's mentor statistics, beside OpenAI's fields
        "mentor_tokens": stats.tokens_mentor,
        "mentor_share": stats.mentor_share,
        "probes": stats.probes,
        "divergences": stats.divergences,
        "adoptions": stats.adoptions,
        "mentor_decode_tokens": stats.mentor_decode_tokens,
        "mentor_failures": stats.mentor_failures,
        "mentor_skipped_probes": stats.mentor_skipped_probes,
        # In words, when the mentor failed this answer; null when it did not.
        "mentor_warning": stats.mentor_trouble(),
    }


def finish_reason(stats: GenerationStats) -> str:
    return "length" if stats.stop_reason in ("length", "context") else "stop"


@dataclass(frozen=True)
class Reply:
    """Who the bodies of one reply are for: its id, time, model and endpoint."""

    ident: str
    created: int
    model: str
    chat: bool

    def final(self, result: GenerationResult, opens_thinking: bool = False) -> dict[str, Any]:
        """The whole answer, for a request that did not stream."""
        choice: dict[str, Any] = {"index": 0, "finish_reason": finish_reason(result.stats), "logprobs": None}
        if self.chat:
            # A thinking model's section apart, as llama-server and vLLM return it.
            thinking, answer = split_thinking(result.text, opens_thinking)
            choice["message"] = {"role": "assistant", "content": answer}
            if thinking:
                choice["message"]["reasoning_content"] = thinking
        else:
            choice["text"] = result.text
        return {
            "id": self.ident,
            "object": "chat.completion" if self.chat else "text_completion",
            "created": self.created,
            "model": self.model,
            "choices": [choice],
            "usage": usage(result.stats),
            "pieces": [piece.to_dict() for piece in result.pieces],
        }

    def chunk(self, text: str | None, source: str | None, finish: str | None, field: str = "content") -> dict[str, Any]:
        """One streamed event; `source` says which model wrote its text; `field`
        is "reasoning_content" for a thinking section's text (chat)."""
        choice: dict[str, Any] = {"index": 0, "finish_reason": finish, "logprobs": None}
        if self.chat:
            choice["delta"] = {field: text} if text is not None else {}
        else:
            choice["text"] = text or ""
        if source is not None:
            choice["source"] = source  # which model wrote this piece: student or mentor
        return {
            "id": self.ident,
            "object": "chat.completion.chunk" if self.chat else "text_completion",
            "created": self.created,
            "model": self.model,
            "choices": [choice],
        }

    def opening_chunk(self) -> dict[str, Any]:
        """A chat stream opens with the assistant's role, as OpenAI's does."""
        opening = self.chunk("", None, None)
        opening["choices"] = [
            {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None, "logprobs": None}
        ]
        return opening


def runs_by_source(pieces: list[Piece]) -> list[tuple[str, str]]:
    """Consecutive pieces of one source joined: (text, source) per run."""
    runs: list[tuple[str, str]] = []
    for piece in pieces:
        source = piece.source.value
        if runs and runs[-1][1] == source:
            runs[-1] = (runs[-1][0] + piece.text, source)
        else:
            runs.append((piece.text, source))
    return runs
