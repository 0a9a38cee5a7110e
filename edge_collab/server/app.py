"""The server: /v1/chat/completions, /v1/completions, /v1/models, /health.

One generation runs at a time per model pair (the models hold one KV cache
each); others wait in a bounded queue, and beyond it get 429 with Retry-After.
Generation runs on one long-lived worker thread: llama.cpp's CPU backend keeps
an OpenMP thread team per calling thread, and handing the models to a new
thread per request (measured) made the server ~15% slower than the Python API.
A client that disconnects mid-stream stops
its generation at the next piece. Errors have OpenAI's shape:
{"error": {"message", "type", "param", "code"}}.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sse_starlette.sse import EventSourceResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from edge_collab.engine.generation import Generation
from edge_collab.engine.result import GenerationResult
from edge_collab.engine.stats import GenerationStats
from edge_collab.errors import (
    ContextOverflowError,
    EdgeCollabError,
    IncompatiblePairError,
    MentorUnavailableError,
    SettingsError,
)
from edge_collab.pair import CollabPair
from edge_collab.server.schema import ChatRequest, CompletionRequest

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServerSettings:
    model_name: str = "edge-collab"
    api_key: str | None = None
    queue_size: int = 8  # requests that may wait while one generates
    max_body_bytes: int = 1 << 20
    retry_after_s: int = 2


def error_response(
    status: int,
    message: str,
    kind: str = "invalid_request_error",
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {"error": {"message": message, "type": kind, "param": param, "code": None}}
    return JSONResponse(body, status_code=status, headers=headers)


class _Busy(Exception):
    pass


class _Gate:
    """One generation at a time, at most `queue_size` waiting."""

    def __init__(self, queue_size: int):
        self._lock = asyncio.Lock()
        self._waiting = 0
        self._queue_size = queue_size

    async def acquire(self) -> None:
        if self._lock.locked() and self._waiting >= self._queue_size:
            raise _Busy
        self._waiting += 1
        try:
            await self._lock.acquire()
        finally:
            self._waiting -= 1

    def release(self) -> None:
        self._lock.release()


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
    }


def finish_reason(stats: GenerationStats) -> str:
    return "length" if stats.stop_reason in ("length", "context") else "stop"


def create_app(pair: CollabPair, settings: ServerSettings | None = None) -> FastAPI:
    config = settings or ServerSettings()
    models_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="edge-collab-models")

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        # Let a generation that is ending finish before the caller frees the models.
        models_thread.shutdown(wait=True, cancel_futures=True)

    app = FastAPI(title="edge-collab", docs_url=None, redoc_url=None, lifespan=lifespan)
    gate = _Gate(config.queue_size)

    async def on_models_thread(work: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(models_thread, work, *args)

    @app.middleware("http")
    async def guard(request: Request, call_next):  # type: ignore[no-untyped-def]
        if request.url.path.startswith("/v1/"):
            if config.api_key is not None:
                supplied = request.headers.get("authorization", "")
                expected = f"Bearer {config.api_key}"
                if not hmac.compare_digest(supplied.encode(), expected.encode()):
                    return error_response(401, "missing or wrong API key", "authentication_error")
            declared = request.headers.get("content-length")
            if declared is not None and (not declared.isdigit() or int(declared) > config.max_body_bytes):
                return error_response(413, f"request body over {config.max_body_bytes} bytes")
        return await call_next(request)

    @app.middleware("http")
    async def log_request(request: Request, call_next):  # type: ignore[no-untyped-def]
        """Outermost (added last): one line per request: its id (also sent back as X-Request-Id), route,
        status and time to the response's start (a stream logs its end itself)."""
        request.state.id = uuid.uuid4().hex[:12]
        started = time.perf_counter()
        response = await call_next(request)
        response.headers["X-Request-Id"] = request.state.id
        logger.info(
            "request %s %s %s %d %.3fs",
            request.state.id,
            request.method,
            request.url.path,
            response.status_code,
            time.perf_counter() - started,
        )
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0] if error.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
        message = (
            "request body is not valid JSON"
            if first.get("type") == "json_invalid"
            else str(first.get("msg", "bad request")).removeprefix("Value error, ")
        )
        return error_response(400, f"{where}: {message}" if where else message, param=where or None)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        # The traceback stays here; the client gets a clean body.
        logger.error("request %s failed", getattr(request.state, "id", "-"), exc_info=error)
        return error_response(500, "the server failed on this request (its log has the details)", "server_error")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        return error_response(
            error.status_code,
            str(error.detail),
            "not_found_error" if error.status_code == 404 else "invalid_request_error",
        )

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {
            "object": "list",
            "data": [{"id": config.model_name, "object": "model", "created": 0, "owned_by": "edge-collab"}],
        }

    def check_model(name: str | None) -> JSONResponse | None:
        if name not in (None, config.model_name):
            return error_response(
                404,
                f"model {name!r} does not exist; this server serves {config.model_name!r}",
                "not_found_error",
                "model",
            )
        return None

    async def run(start: Any, request: Request, body: ChatRequest | CompletionRequest, chat: bool):  # type: ignore[no-untyped-def]
        missing = check_model(body.model)
        if missing is not None:
            return missing
        try:
            await gate.acquire()
        except _Busy:
            return error_response(
                429,
                "the server is busy; try again shortly",
                "rate_limit_error",
                headers={"Retry-After": str(config.retry_after_s)},
            )
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                gate.release()

        try:
            generation = await on_models_thread(start)
        except (SettingsError, ContextOverflowError, IncompatiblePairError) as error:
            release()
            return error_response(400, str(error))
        except MentorUnavailableError as error:
            release()
            return error_response(503, str(error), "server_error")
        except EdgeCollabError as error:
            release()
            return error_response(500, str(error), "server_error")
        except BaseException:
            release()  # whatever failed, the next request must find the worker free
            raise
        ident = f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex[:24]}"
        created = int(time.time())
        if not body.stream:
            try:
                result = await on_models_thread(_run_to_end, generation)
            except (SettingsError, ContextOverflowError, IncompatiblePairError) as error:
                return error_response(400, str(error))
            finally:
                release()
            log_generation(request, result)
            return JSONResponse(_final_body(ident, created, config.model_name, result, chat))
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return EventSourceResponse(
            _stream(
                generation, models_thread, request, ident, created, config.model_name, chat, include_usage, release
            ),
            ping=15,
        )

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request, body: ChatRequest):  # type: ignore[no-untyped-def]
        messages = [{"role": m.role, "content": m.content} for m in body.messages]
        overrides = body.overrides()
        return await run(lambda: pair.chat(messages, stream=True, **overrides), request, body, chat=True)

    @app.post("/v1/completions")
    async def completions(request: Request, body: CompletionRequest):  # type: ignore[no-untyped-def]
        overrides = body.overrides()
        return await run(lambda: pair.complete(body.prompt, stream=True, **overrides), request, body, chat=False)

    return app


def log_generation(request: Request, result: GenerationResult | None) -> None:
    """What a generation did, and whether the mentor failed it (the student then went on alone)."""
    if result is None:
        logger.info("request %s: generation stopped early", request.state.id)
        return
    stats = result.stats
    logger.info(
        "request %s: %s, %d tokens, mentor share %.1f%%, %.2fs",
        request.state.id,
        stats.method,
        stats.tokens_total,
        100 * stats.mentor_share,
        stats.wall_s,
    )
    if stats.mentor_failures or stats.mentor_skipped_probes:
        logger.warning(
            "request %s: the mentor failed %d requests; %d probes skipped",
            request.state.id,
            stats.mentor_failures,
            stats.mentor_skipped_probes,
        )


def _run_to_end(generation: Generation) -> GenerationResult:
    return generation.run()


def _final_body(ident: str, created: int, model: str, result: GenerationResult, chat: bool) -> dict[str, Any]:
    choice: dict[str, Any] = {"index": 0, "finish_reason": finish_reason(result.stats), "logprobs": None}
    if chat:
        choice["message"] = {"role": "assistant", "content": result.text}
    else:
        choice["text"] = result.text
    return {
        "id": ident,
        "object": "chat.completion" if chat else "text_completion",
        "created": created,
        "model": model,
        "choices": [choice],
        "usage": usage(result.stats),
        "pieces": [piece.to_dict() for piece in result.pieces],
    }


def _chunk(
    ident: str, created: int, model: str, chat: bool, text: str | None, source: str | None, finish: str | None
) -> dict[str, Any]:
    choice: dict[str, Any] = {"index": 0, "finish_reason": finish, "logprobs": None}
    if chat:
        choice["delta"] = {"content": text} if text is not None else {}
    else:
        choice["text"] = text or ""
    if source is not None:
        choice["source"] = source  # which model wrote this piece: student or mentor
    return {
        "id": ident,
        "object": "chat.completion.chunk" if chat else "text_completion",
        "created": created,
        "model": model,
        "choices": [choice],
    }


def _runs_by_source(pieces: list[Any]) -> list[tuple[str, str]]:
    """Consecutive pieces of one source joined: (text, source) per run."""
    runs: list[tuple[str, str]] = []
    for piece in pieces:
        source = piece.source.value
        if runs and runs[-1][1] == source:
            runs[-1] = (runs[-1][0] + piece.text, source)
        else:
            runs.append((piece.text, source))
    return runs


async def _stream(
    generation: Generation,
    models_thread: ThreadPoolExecutor,
    request: Request,
    ident: str,
    created: int,
    model: str,
    chat: bool,
    include_usage: bool,
    release: Any,
) -> AsyncIterator[dict[str, str]]:
    """Pieces from the worker thread as server-sent events; stops the generation
    when the client goes away."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    stop = threading.Event()

    def produce() -> None:
        try:
            pieces: Iterator[Any] = iter(generation)
            for piece in pieces:
                loop.call_soon_threadsafe(queue.put_nowait, ("piece", piece))
                if stop.is_set():
                    close = getattr(pieces, "close", None)
                    if close is not None:
                        close()  # ends the engine's loop: the models stop working
                    break
            loop.call_soon_threadsafe(queue.put_nowait, ("done", generation.result))
        except Exception as error:  # reported to the client as an error event
            if not isinstance(error, EdgeCollabError):
                logger.error("request %s: the generation failed", request.state.id, exc_info=error)
            loop.call_soon_threadsafe(queue.put_nowait, ("error", error))
        finally:
            loop.call_soon_threadsafe(release)

    models_thread.submit(produce)
    try:
        if chat:
            yield {
                "data": json.dumps(
                    _chunk(ident, created, model, chat, "", None, None)
                    | {
                        "choices": [
                            {
                                "index": 0,
                                "delta": {"role": "assistant", "content": ""},
                                "finish_reason": None,
                                "logprobs": None,
                            }
                        ]
                    }
                )
            }
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
                    for text, source in _runs_by_source(pieces):
                        yield {"data": json.dumps(_chunk(ident, created, model, chat, text, source, None))}
            ending = next(((kind, value) for kind, value in events if kind != "piece"), None)
            if ending is None:
                continue
            kind, value = ending
            release()  # before [DONE], so the client's next request finds the server free
            if kind == "error":
                message = str(value) if isinstance(value, EdgeCollabError) else "generation failed"
                yield {
                    "data": json.dumps(
                        {"error": {"message": message, "type": "server_error", "param": None, "code": None}}
                    )
                }
                break
            result: GenerationResult | None = value
            log_generation(request, result)
            if result is not None:
                final = _chunk(ident, created, model, chat, None if chat else "", None, finish_reason(result.stats))
                if include_usage:
                    final["usage"] = usage(result.stats)
                yield {"data": json.dumps(final)}
            yield {"data": "[DONE]"}
            break
    finally:
        stop.set()
