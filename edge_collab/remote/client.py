"""A small client for `/v1/completions`, with time-outs, bounded retries and
one kept-alive connection.

The standard library's http.client is enough for one request at a time on one
connection, and keeps the runtime's dependencies small.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import socket
import ssl
import time
import urllib.parse
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import NamedTuple

from edge_collab.backends.base import ModelBackend
from edge_collab.errors import MentorUnavailableError
from edge_collab.remote.scoring import (
    LLAMA_CPP_PYTHON,
    LLAMA_SERVER,
    SCORING_ENGINES,
    SGLANG,
    UNKNOWN,
    VLLM,
    ScoredToken,
    ScoreFormatError,
    engine_of,
    parse_scores,
    score_request,
)

logger = logging.getLogger(__name__)

ENV_API_KEY = "EDGE_COLLAB_MENTOR_API_KEY"
ENV_REQUEST_EXTRA = "EDGE_COLLAB_MENTOR_EXTRA"  # JSON object merged into every completion request


def _default_request_extra() -> dict[str, object]:
    """llama-cpp-python applies a repetition penalty of 1.1 unless told
    otherwise, which makes "greedy" replies differ from greedy; llama-server
    accepts the same field and recent vLLM ignores it with a warning. The
    environment variable replaces it (e.g. '{}' for a server that rejects
    unknown fields)."""
    configured = os.environ.get(ENV_REQUEST_EXTRA)
    if configured is None:
        return {"repeat_penalty": 1.0}
    try:
        extra = json.loads(configured)
    except json.JSONDecodeError:
        raise MentorUnavailableError(f"{ENV_REQUEST_EXTRA} must be a JSON object") from None
    if not isinstance(extra, dict):
        raise MentorUnavailableError(f"{ENV_REQUEST_EXTRA} must be a JSON object")
    return extra


# Tokenized by the server and by the student to see that they share a tokenizer:
# words, digits, spaces and newlines, punctuation, and characters beyond ASCII.
TOKENIZER_SAMPLE = "Hello, world! 12 345 6789\n\tdef f(x):  return x**2  # é, ü, ß, 日本語, ∑ → 🙂"

_RETRYABLE_STATUS = {408, 425, 429, 500, 502, 503, 504}


class MentorRequestError(MentorUnavailableError):
    """One request failed; `retryable` says whether trying again may help."""

    def __init__(self, message: str, retryable: bool):
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class Completion:
    text: str
    tokens: list[str]  # the generated tokens' texts (empty unless asked for, or if the server would not stream)
    finish_reason: str | None = None  # "stop" (the model ended the text), "length" or none given

    @property
    def finished(self) -> bool:
        return self.finish_reason == "stop"


class StreamEvent(NamedTuple):
    text: str
    finish_reason: str | None  # set on the reply's last event only


@dataclass(frozen=True)
class RemoteSettings:
    """connect_timeout_s / read_timeout_s: per request. retry_budget_s: total time
    spent retrying one call before giving up. request_extra: fields added to every
    completion request (see _default_request_extra)."""

    connect_timeout_s: float = 3.0
    read_timeout_s: float = 30.0
    retry_budget_s: float = 6.0
    # "auto": a second request only at divergences, unless probes are asked in
    # turn and the round trip costs more than one_request_rtt_s (one_request_per_probe).
    probe_requests: str = "auto"
    one_request_rtt_s: float = 0.05
    # The student writes on while a probe is in flight (engine/word_loop.py);
    # the answer is the same either way, so this is only for measuring.
    overlap_probes: bool = True
    # Send the student's token ids, not text, to engines that take them
    # (llama-server, vLLM) once their tokenizer is seen to be the student's.
    token_prompts: bool = True
    request_extra: dict[str, object] = field(default_factory=_default_request_extra)


@dataclass
class NetworkCounters:
    round_trips: int = 0
    network_s: float = 0.0
    failures: int = 0


def parse_base_url(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path prefix) of a server URL; the prefix ends in /v1."""
    parsed = urllib.parse.urlsplit(url if "://" in url else f"http://{url}")
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise MentorUnavailableError(f"mentor URL must look like http://host:port[/v1], not {url!r}")
    try:
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
    except ValueError:
        raise MentorUnavailableError(f"mentor URL has a bad port: {url!r}") from None
    path = parsed.path.rstrip("/")
    if not path.endswith("/v1"):
        path += "/v1"
    return parsed.scheme, parsed.hostname, port, path


class CompletionClient:
    def __init__(
        self, url: str, *, api_key: str | None = None, model: str | None = None, settings: RemoteSettings | None = None
    ):
        self.url = url
        self.scheme, self.host, self.port, self.prefix = parse_base_url(url)
        self.model = model
        self.settings = settings or RemoteSettings()
        self.counters = NetworkCounters()
        self._api_key = api_key
        self._connection: http.client.HTTPConnection | None = None
        self.round_trip_s: float | None = None  # measured by check()
        self.engine = UNKNOWN  # which serving engine, from /v1/models (check())
        self._bos: bool | None = None  # llama-cpp-python: whether its model adds a BOS token
        self._same_tokens: dict[str, bool] = {}  # student tokenizer fingerprint -> takes_tokens_of

    def __repr__(self) -> str:  # never shows the key
        return f"CompletionClient({self.url!r}, model={self.model!r})"

    # ---- connection ------------------------------------------------------
    def _connect(self) -> http.client.HTTPConnection:
        if self._connection is None:
            timeout = self.settings.connect_timeout_s
            if self.scheme == "https":
                self._connection = http.client.HTTPSConnection(
                    self.host, self.port, timeout=timeout, context=ssl.create_default_context()
                )
            else:
                self._connection = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
            self._connection.connect()
            assert self._connection.sock is not None
            self._connection.sock.settimeout(self.settings.read_timeout_s)
        return self._connection

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _send(self, method: str, path: str, body: dict | None, root: bool = False) -> http.client.HTTPResponse:  # type: ignore[type-arg]
        """Send one request (to `path` under /v1, or at the server's root); the
        response of a 200, its body not yet read."""
        headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        payload = json.dumps(body).encode() if body is not None else None
        self.counters.round_trips += 1
        with self._network_time():
            base = self.prefix.removesuffix("/v1") if root else self.prefix
            response = self._exchange(method, base + path, payload, headers)
            if response.status == 200:
                return response
            raw = response.read()
        if response.status == 401 or response.status == 403:
            raise MentorRequestError(f"mentor at {self.url} refused the API key (HTTP {response.status})", False)
        if response.status == 404:
            raise MentorRequestError(f"mentor at {self.url}: {path} not found (HTTP 404); check the URL", False)
        detail = raw[:200].decode("utf-8", errors="replace").strip()
        raise MentorRequestError(
            f"mentor at {self.url} answered HTTP {response.status}: {detail}",
            retryable=response.status in _RETRYABLE_STATUS,
        )

    def _exchange(
        self, method: str, path: str, payload: bytes | None, headers: dict[str, str]
    ) -> http.client.HTTPResponse:
        """Send a request and read its status line. A kept-alive connection that
        the server closed in the meantime (llama-server closes it after each
        streamed reply) is replaced once, silently, as HTTP clients do; the
        request is safe to send again (greedy, and servers cache by prefix)."""
        reused = self._connection is not None
        try:
            connection = self._connect()
            connection.request(method, path, body=payload, headers=headers)
            return connection.getresponse()
        except (
            http.client.RemoteDisconnected,
            http.client.ImproperConnectionState,
            BrokenPipeError,
            ConnectionResetError,
        ):
            if not reused:
                raise
            self.close()
            connection = self._connect()
            connection.request(method, path, body=payload, headers=headers)
            return connection.getresponse()

    @contextmanager
    def _network_time(self) -> Iterator[None]:
        """Counts the time inside as network + server time; a transport failure
        closes the connection (a half-read one is not reused) and is retryable."""
        started = time.perf_counter()
        try:
            yield
        except (TimeoutError, OSError, http.client.HTTPException) as error:
            self.close()
            reason = (
                "timed out" if isinstance(error, (TimeoutError, socket.timeout)) else str(error) or type(error).__name__
            )
            raise MentorRequestError(f"mentor at {self.url} unreachable: {reason}", retryable=True) from None
        finally:
            self.counters.network_s += time.perf_counter() - started

    def _request_once(self, method: str, path: str, body: dict | None, root: bool = False) -> tuple[bytes, str]:  # type: ignore[type-arg]
        """The body of a 200 reply and its content type."""
        response = self._send(method, path, body, root)
        with self._network_time():
            raw = response.read()
        return raw, response.getheader("Content-Type", "")

    def _json_object(self, raw: bytes) -> dict:  # type: ignore[type-arg]
        try:
            data = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise MentorRequestError(f"mentor at {self.url} sent a response that is not JSON", True) from None
        if not isinstance(data, dict):
            raise MentorRequestError(f"mentor at {self.url} sent an unexpected response", True)
        return data

    def _call(self, method: str, path: str, body: dict | None, parse, root: bool = False):  # type: ignore[no-untyped-def,type-arg]
        """One call parsed by `parse(raw, content_type)`, retried with exponential
        backoff within the retry budget (`root`: `path` at the server's root, beside /v1)."""
        return self._retried(lambda: parse(*self._request_once(method, path, body, root)))

    def _retried(self, attempt):  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + self.settings.retry_budget_s
        delay = 0.2
        while True:
            try:
                return attempt()
            except MentorRequestError as error:
                self.counters.failures += 1
                if not error.retryable or time.monotonic() + delay > deadline:
                    raise
                logger.debug("%s; trying again in %.1f s", error, delay)
                time.sleep(delay)
                delay *= 2

    def request(self, method: str, path: str, body: dict | None = None, root: bool = False) -> dict:  # type: ignore[type-arg]
        """One JSON call, retried with exponential backoff within the retry budget."""
        return self._call(method, path, body, lambda raw, _: self._json_object(raw), root)  # type: ignore[no-any-return]

    # ---- API -------------------------------------------------------------
    def list_models(self) -> list[str]:
        return list(self._model_owners())

    def _model_owners(self) -> dict[str, object]:
        """Each served model's id and its owned_by (which names the engine)."""
        data = self.request("GET", "/models")
        models = data.get("data")
        if not isinstance(models, list):
            raise MentorRequestError(f"mentor at {self.url}: /v1/models gave no model list", False)
        return {str(m.get("id")): m.get("owned_by") for m in models if isinstance(m, dict)}

    @property
    def can_score(self) -> bool:
        """Whether the engine can score a prompt without generating (remote/scoring.py)."""
        return self.engine in SCORING_ENGINES and (self.engine != LLAMA_CPP_PYTHON or self._bos is not None)

    @property
    def tokens_decoded_per_score(self) -> int:
        """What a scoring request decodes: SGLang none, the others one token
        (their completions endpoints generate at least one)."""
        return 0 if self.engine == SGLANG else 1

    def score(self, prompt: str, top: int, skip_tokens: int) -> list[ScoredToken]:
        """The engine's reading of `prompt`: each token's text with the top
        log-probabilities before it (remote/scoring.py)."""
        path, body = score_request(self.engine, prompt, self.model, top, skip_tokens)
        root = path == "/generate"  # SGLang's native endpoint sits beside /v1, not under it
        if not root:  # the completions endpoints take the fields every completion request gets
            body = {**body, **self.settings.request_extra}

        def scored(raw: bytes, _: str) -> list[ScoredToken]:
            try:
                return parse_scores(self.engine, self._json_object(raw), adds_bos=bool(self._bos))
            except ScoreFormatError as error:
                raise MentorRequestError(f"mentor at {self.url} did not score the prompt ({error})", False) from None

        return self._call("POST", path, body, scored, root)  # type: ignore[no-any-return]

    def _adds_bos(self) -> bool | None:
        """Whether llama-cpp-python's model starts every prompt with a BOS token
        (an empty text tokenizes to one token then); None where the server does
        not say (then it is not used for scoring)."""
        body: dict[str, object] = {"input": ""}
        if self.model:
            body["model"] = self.model
        reply = self._root_call("/extras/tokenize/count", body, "its prompts are not scored")
        count = None if reply is None else reply.get("count")
        return count > 0 if isinstance(count, int) else None

    def _root_call(self, path: str, body: dict[str, object], otherwise: str) -> dict | None:  # type: ignore[type-arg]
        """One JSON call to an endpoint at the server's root (beside /v1), for
        what the client asks once to choose how to talk; None, logged with what
        is done `otherwise`, where the server does not answer it."""
        try:
            return self.request("POST", path, body, root=True)
        except MentorRequestError as error:
            logger.info("%s: %s", error, otherwise)
            return None

    @property
    def one_request_per_probe(self) -> bool:
        """Whether a probe asks for the word and a segment at once. While the
        student writes on during a probe, both round trips of a divergence are
        hidden behind its writing, and a segment asked for at every probe would
        multiply what the server decodes (10.7 probes against 1.6 divergences
        per 100 answer tokens on the default pair): "auto" then always asks
        twice. Probing in turn, one request pays once the round trip passes
        `one_request_rtt_s`."""
        mode = self.settings.probe_requests
        if mode == "auto":
            if self.settings.overlap_probes:
                return False
            return self.round_trip_s is not None and self.round_trip_s >= self.settings.one_request_rtt_s
        return mode == "one"

    def takes_tokens_of(self, student: ModelBackend) -> bool:
        """Whether prompts go to this server as the student's token ids: the
        engine takes them (llama-server, vLLM) and tokenizes a sample text
        exactly as the student does (one tokenizer). Asked once per student
        tokenizer; where the server cannot say, text is sent."""
        if not self.settings.token_prompts or self.engine not in (LLAMA_SERVER, VLLM):
            return False
        fingerprint = student.tokenizer_fingerprint()
        if fingerprint not in self._same_tokens:
            self._same_tokens[fingerprint] = self._tokenizes_like(student)
        return self._same_tokens[fingerprint]

    def _tokenizes_like(self, student: ModelBackend) -> bool:
        if self.engine == LLAMA_SERVER:
            body: dict[str, object] = {"content": TOKENIZER_SAMPLE, "add_special": False, "parse_special": False}
        else:
            body = {"prompt": TOKENIZER_SAMPLE, "add_special_tokens": False, "model": self.model}
        reply = self._root_call("/tokenize", body, "prompts go as text")
        if reply is None:
            return False
        same = reply.get("tokens") == student.tokenize(TOKENIZER_SAMPLE.encode("utf-8"))
        if not same:
            logger.info("mentor at %s tokenizes otherwise than the student: prompts go as text", self.url)
        return same

    def check(self) -> None:
        """Fail now, clearly, if the server is unreachable, refuses the key or lacks
        the model; measures the round trip on a warm connection."""
        self.list_models()
        started = time.perf_counter()
        owners = self._model_owners()
        self.round_trip_s = time.perf_counter() - started
        models = list(owners)
        if self.model is None:
            if len(models) != 1:
                raise MentorUnavailableError(
                    f"mentor at {self.url} serves {len(models)} models; choose one with --mentor-model"
                )
            self.model = models[0]
        elif self.model not in models:
            raise MentorUnavailableError(
                f"mentor at {self.url} has no model {self.model!r} (it serves: {', '.join(models) or 'none'})"
            )
        self.engine = engine_of(owners[self.model])
        if self.engine == LLAMA_CPP_PYTHON:
            self._bos = self._adds_bos()

    def complete(self, prompt: str | list[int], max_tokens: int, pieces: bool = False) -> Completion:
        """Greedy completion. With `pieces`, the reply is streamed so that each
        event carries one generated token's text: that keeps the mentor's token
        boundaries without asking for logprobs, which llama-cpp-python computes
        by sorting the whole vocabulary for every token (measured: 16 tokens
        with logprobs took 4-5 s on the default mentor, without 0.8 s)."""
        body = self._completion_body(prompt, max_tokens, stream=pieces)
        return self._call("POST", "/completions", body, self._completion)  # type: ignore[no-any-return]

    def _completion_body(self, prompt: str | list[int], max_tokens: int, stream: bool) -> dict[str, object]:
        body: dict[str, object] = {
            "prompt": prompt,
            "max_tokens": max_tokens,
            "temperature": 0.0,
            **self.settings.request_extra,
        }
        if stream:
            body["stream"] = True
        if self.model:
            body["model"] = self.model
        return body

    def stream(self, prompt: str, max_tokens: int) -> Generator[StreamEvent, None, None]:
        """Token texts as the server writes them, for answers the mentor writes
        alone, each with its event's finish_reason (None until the last).
        Retried like any call until the reply starts; a failure after that
        raises, and what was already streamed stays with the caller. A server
        that ignores "stream" answers in one piece."""
        body = self._completion_body(prompt, max_tokens, stream=True)
        response = self._retried(lambda: self._send("POST", "/completions", body))
        if not response.getheader("Content-Type", "").startswith("text/event-stream"):
            with self._network_time():
                raw = response.read()
            whole = self._completion(raw, "")
            yield StreamEvent(whole.text, whole.finish_reason)
            return
        finished = False
        try:
            while not finished:
                with self._network_time():
                    line = response.readline()
                if not line:
                    raise MentorRequestError(f"mentor at {self.url} ended the completion stream early", True)
                for event in self._stream_events([line]):
                    if event is None:  # [DONE]
                        finished = True
                        break
                    yield event
            try:
                response.read()  # the end of the chunked body, so the connection can carry the next request
            except (OSError, http.client.HTTPException):
                self.close()
        finally:
            if not finished:
                self.close()  # a stream left half-read cannot carry the next request

    def _stream_events(self, lines: list[bytes]) -> Iterator[StreamEvent | None]:
        """Each server-sent event's text ("" for none) and finish_reason; None at [DONE]."""
        try:
            for raw_line in lines:
                line = raw_line.decode("utf-8").strip()
                if not line.startswith("data:"):
                    continue  # blank separators, comments and pings
                payload = line[5:].strip()
                if payload == "[DONE]":
                    yield None
                    return
                event = json.loads(payload)
                if "error" in event:
                    raise MentorRequestError(f"mentor at {self.url} failed mid-reply: {event['error']}", True)
                choice = event["choices"][0]
                if not isinstance(choice["text"], str):
                    raise TypeError
                yield StreamEvent(choice["text"], choice.get("finish_reason"))
        except (UnicodeDecodeError, json.JSONDecodeError, KeyError, IndexError, TypeError):
            raise MentorRequestError(f"mentor at {self.url} sent a malformed completion stream", True) from None

    def _completion(self, raw: bytes, content_type: str) -> Completion:
        if content_type.startswith("text/event-stream"):
            return self._streamed_completion(raw)
        data = self._json_object(raw)  # a server that ignores "stream" answers in one piece
        try:
            choice = data["choices"][0]
            text = choice["text"]
            if not isinstance(text, str):
                raise TypeError
        except (KeyError, IndexError, TypeError):
            raise MentorRequestError(f"mentor at {self.url} sent a malformed completion", True) from None
        return Completion(text, [], choice.get("finish_reason"))

    def _streamed_completion(self, raw: bytes) -> Completion:
        tokens: list[str] = []
        finish_reason = None
        for event in self._stream_events(raw.splitlines()):
            if event is None:
                return Completion("".join(tokens), tokens, finish_reason)
            finish_reason = event.finish_reason or finish_reason
            if event.text:
                tokens.append(event.text)
        raise MentorRequestError(f"mentor at {self.url} ended the completion stream early", True)
