"""A generation streamed as server-sent events: the models' thread produces
pieces, the event loop sends them, and a client that goes away stops the
generation at its next piece."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import Request

from edge_collab.engine.generation import Generation
from edge_collab.engine.result import GenerationResult
from edge_collab.errors import EdgeCollabError
from edge_collab.server.bodies import Reply, finish_reason, runs_by_source, usage
from edge_collab.server.worker import ModelsThread
from edge_collab.thinking import ThinkingStream

logger = logging.getLogger(__name__)
Event = dict[str, str]


def _produce(generation: Generation, emit: Callable[[str, Any], None], stop: threading.Event, request_id: str) -> None:
    """On the models' thread: every piece, then ("done", result) or ("error", error)."""
    try:
        for piece in generation:
            emit("piece", piece)
            if stop.is_set():
                generation.close()  # ends the engine's loop: the models stop working
                break
        emit("done", generation.result)
    except Exception as error:  # reported to the client as an error event
        if not isinstance(error, EdgeCollabError):
            logger.error("request %s: the generation failed", request_id, exc_info=error)
        emit("error", error)


async def stream_events(
    generation: Generation,
    models: ModelsThread,
    request: Request,
    reply: Reply,
    include_usage: bool,
    release: Callable[[], None],
    on_result: Callable[[GenerationResult | None], None],
) -> AsyncIterator[Event]:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    stop = threading.Event()

    def emit(kind: str, value: Any) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, (kind, value))

    def work() -> None:
        try:
            _produce(generation, emit, stop, request.state.id)
        finally:
            loop.call_soon_threadsafe(release)

    models.submit(work)
    thinking = ThinkingStream(starts_inside=generation.opens_thinking)
    try:
        if reply.chat:
            yield {"data": json.dumps(reply.opening_chunk())}
        while True:
            # Take everything the worker has produced since the last wake-up:
            # one disconnect check and one event per run of same-source text.
            events = [await queue.get()]
            while not queue.empty():
                events.append(queue.get_nowait())
            pieces = [value for kind, value in events if kind == "piece"]
            if pieces and not stop.is_set():
                if await request.is_disconnected():
                    stop.set()
                else:
                    for text, source in runs_by_source(pieces):
                        for field, part in _fields(thinking, text, reply.chat):
                            yield {"data": json.dumps(reply.chunk(part, source, None, field))}
            ending = next(((kind, value) for kind, value in events if kind != "piece"), None)
            if ending is not None:
                for field, part in _as_fields(thinking.finish()) if reply.chat else []:  # held at a tag's start
                    yield {"data": json.dumps(reply.chunk(part, None, None, field))}
                release()  # before [DONE], so the client's next request finds the server free
                for event in _closing_events(reply, *ending, include_usage, on_result):
                    yield event
                break
    finally:
        stop.set()


def _fields(thinking: ThinkingStream, text: str, chat: bool) -> list[tuple[str, str]]:
    """(delta field, text) for a run of text: a chat stream sends a thinking
    section's text as reasoning_content; completions send text as it is."""
    return _as_fields(thinking.feed(text)) if chat else [("content", text)]


def _as_fields(runs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [("reasoning_content" if kind == "thinking" else "content", part) for kind, part in runs]


def _closing_events(
    reply: Reply, kind: str, value: Any, include_usage: bool, on_result: Callable[[GenerationResult | None], None]
) -> list[Event]:
    if kind == "error":
        message = str(value) if isinstance(value, EdgeCollabError) else "generation failed"
        return [
            {"data": json.dumps({"error": {"message": message, "type": "server_error", "param": None, "code": None}})}
        ]
    result: GenerationResult | None = value
    on_result(result)
    events = []
    if result is not None:
        final = reply.chunk(None if reply.chat else "", None, finish_reason(result.stats))
        if include_usage:
            final["usage"] = usage(result.stats)
        events.append({"data": json.dumps(final)})
    return [*events, {"data": "[DONE]"}]
