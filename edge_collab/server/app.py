"""The server: /v1/chat/completions, /v1/completions, /v1/models, /health.

Requests are validated strictly (server/schema.py); one generation runs at a
time on the models' own thread, behind a bounded queue (server/worker.py);
streams are server-sent events (server/stream.py). Errors have OpenAI's shape
(server/bodies.py), and every request is logged with its id.
"""

from __future__ import annotations

import hmac
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sse_starlette.sse import EventSourceResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from edge_collab.engine.generation import Generation
from edge_collab.engine.result import GenerationResult
from edge_collab.errors import (
    ContextOverflowError,
    EdgeCollabError,
    IncompatiblePairError,
    MentorUnavailableError,
    SettingsError,
)
from edge_collab.pair import CollabPair
from edge_collab.server.bodies import ErrorBody, Reply, error_response, openapi_with_our_errors
from edge_collab.server.guards import LOOPBACK_NAMES, AllowedHosts, BodyLimit
from edge_collab.server.schema import ChatRequest, CompletionRequest
from edge_collab.server.stream import stream_events
from edge_collab.server.worker import Busy, Gate, ModelsThread, Turn

logger = logging.getLogger(__name__)
CLIENT_ERRORS = (SettingsError, ContextOverflowError, IncompatiblePairError)


@dataclass(frozen=True)
class ServerSettings:
    model_name: str = "edge-collab"
    api_key: str | None = None
    queue_size: int = 8  # requests that may wait while one generates
    max_body_bytes: int = 1 << 20
    retry_after_s: int = 2
    # Host header names answered; None: any (see server/guards.py). The default
    # suits a server on loopback.
    allowed_hosts: frozenset[str] | None = frozenset(LOOPBACK_NAMES)


def create_app(pair: CollabPair, settings: ServerSettings | None = None) -> FastAPI:
    config = settings or ServerSettings()
    models = ModelsThread()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        models.shutdown()

    app = FastAPI(
        title="edge-collab",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
        responses={400: {"description": "Bad request", "model": ErrorBody}},
    )
    _add_middleware(app, config)
    _add_error_handlers(app)
    app.openapi = lambda: openapi_with_our_errors(app)  # type: ignore[method-assign]
    completions = Completions(pair, config, models)
    app.state.completions = completions  # for /health, and for tests that hold its gate

    @app.get("/health")
    async def health() -> Response:
        stuck = completions.gate.stuck_for(models)
        if stuck is not None:
            message = f"the generation worker is stuck: held for {stuck:.0f} s with no generation running"
            return JSONResponse({"status": "error", "message": message}, status_code=503)
        return JSONResponse({"status": "ok", "generating": completions.gate.held, "waiting": completions.gate.waiting})

    @app.get("/v1/models")
    async def list_models() -> dict[str, Any]:
        return {
            "object": "list",
            "data": [{"id": config.model_name, "object": "model", "created": 0, "owned_by": "edge-collab"}],
        }

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request, body: ChatRequest) -> Response:
        messages = [{"role": m.role, "content": m.content} for m in body.messages]
        overrides = body.overrides()
        return await completions.respond(lambda: pair.chat(messages, stream=True, **overrides), request, body, True)

    @app.post("/v1/completions")
    async def text_completions(request: Request, body: CompletionRequest) -> Response:
        overrides = body.overrides()
        return await completions.respond(
            lambda: pair.complete(body.prompt, stream=True, **overrides), request, body, False
        )

    return app


class Completions:
    """Both completion endpoints: wait for the models, start, answer whole or streamed."""

    def __init__(self, pair: CollabPair, config: ServerSettings, models: ModelsThread):
        self.pair, self.config, self.models = pair, config, models
        self.gate = Gate(config.queue_size)

    async def respond(
        self, start: Callable[[], Any], request: Request, body: ChatRequest | CompletionRequest, chat: bool
    ) -> Response:
        if body.model not in (None, self.config.model_name):
            message = f"model {body.model!r} does not exist; this server serves {self.config.model_name!r}"
            return error_response(404, message, "not_found_error", "model")
        try:
            await self.gate.acquire()
        except Busy:
            headers = {"Retry-After": str(self.config.retry_after_s)}
            return error_response(429, "the server is busy; try again shortly", "rate_limit_error", headers=headers)
        turn = Turn(self.gate)
        try:
            generation = await self.models.call(start)
        except BaseException as error:
            turn.release()  # whatever failed, the next request must find the worker free
            refused = _refusal(error)
            if refused is None:
                raise
            return refused
        reply = Reply(
            f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex[:24]}", int(time.time()), self.config.model_name, chat
        )
        if body.stream:
            include_usage = bool(body.stream_options and body.stream_options.include_usage)
            events = stream_events(
                generation,
                self.models,
                request,
                reply,
                include_usage,
                turn.release,
                lambda r: log_generation(request, r),
            )
            return EventSourceResponse(events, ping=15)
        return await self._whole(generation, request, reply, turn)

    async def _whole(self, generation: Generation, request: Request, reply: Reply, turn: Turn) -> Response:
        try:
            result = await self.models.call(generation.run)
        except Exception as error:
            refused = _refusal(error)
            if refused is None:
                raise
            return refused
        finally:
            turn.release()
        log_generation(request, result)
        return JSONResponse(reply.final(result, generation.opens_thinking))


def _refusal(error: BaseException) -> JSONResponse | None:
    """The answer to a generation that could not start; None for an unexpected error."""
    if isinstance(error, CLIENT_ERRORS):
        return error_response(400, str(error))
    if isinstance(error, MentorUnavailableError):
        return error_response(503, str(error), "server_error")
    if isinstance(error, EdgeCollabError):
        return error_response(500, str(error), "server_error")
    return None


def _add_middleware(app: FastAPI, config: ServerSettings) -> None:
    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Response:
        if request.url.path.startswith("/v1/") and config.api_key is not None:
            supplied = request.headers.get("authorization", "")
            expected = f"Bearer {config.api_key}"
            if not hmac.compare_digest(supplied.encode(), expected.encode()):
                return error_response(401, "missing or wrong API key", "authentication_error")
        response: Response = await call_next(request)
        return response

    # Outside the key check, inside the log (added later = further out): the
    # body's size is held however it arrives, and a foreign Host is refused first.
    app.add_middleware(BodyLimit, max_bytes=config.max_body_bytes)
    app.add_middleware(AllowedHosts, hosts=config.allowed_hosts)

    @app.middleware("http")
    async def log_request(request: Request, call_next: Any) -> Response:
        """Outermost (added last): one line per request, with its id (also sent
        back as X-Request-Id), route, status and time to the response's start
        (a stream logs what its generation did when it ends)."""
        request.state.id = uuid.uuid4().hex[:12]
        started = time.perf_counter()
        response: Response = await call_next(request)
        response.headers["X-Request-Id"] = request.state.id
        elapsed = time.perf_counter() - started
        logger.info(
            "request %s %s %s %d %.3fs",
            request.state.id,
            request.method,
            request.url.path,
            response.status_code,
            elapsed,
        )
        return response


def _add_error_handlers(app: FastAPI) -> None:
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
        kind = "not_found_error" if error.status_code == 404 else "invalid_request_error"
        headers = dict(error.headers) if error.headers else None  # 405 keeps its Allow
        return error_response(error.status_code, str(error.detail), kind, headers=headers)


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
    trouble = stats.mentor_trouble()
    if trouble:
        logger.warning("request %s: %s", request.state.id, trouble)
