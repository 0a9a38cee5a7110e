"""What the server checks before a request reaches its routes: the body's size
however it arrives, and the Host header.

Both are plain ASGI middleware, so they see the bytes as they come and answer
before anything is parsed.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def error_body(message: str, kind: str = "invalid_request_error", param: str | None = None) -> dict[str, Any]:
    """{"error": {"message", "type", "param", "code"}}, as OpenAI's API answers
    (here, not in bodies.py, so that the CLI can import this module without FastAPI)."""
    return {"error": {"message": message, "type": kind, "param": param, "code": None}}


async def send_error(send: Send, status: int, message: str, kind: str = "invalid_request_error") -> None:
    """An OpenAI-style error body, sent from below the framework."""
    body = json.dumps(error_body(message, kind)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """Refuse a body over `max_bytes` with 413, whether it declares its length or
    comes chunked: the body is read here, up to the limit and no further, and
    handed on whole. Reading stops at the first byte over the limit, so a
    20 MB upload costs the server 1 MB of memory and no model time."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        too_big = f"request body over {self.max_bytes} bytes"
        declared = _header(scope, b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await send_error(send, 413, too_big)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client left before its body was sent: nothing to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await send_error(send, 413, too_big)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        delivered = False

        async def replay() -> Message:
            # The body once, then what the client does next (a disconnect, which
            # a stream watches for).
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class AllowedHosts:
    """Answer only requests whose Host header names this server: a page on some
    other site that a browser resolves to 127.0.0.1 (DNS rebinding) sends its
    own name, and is refused. `hosts` None allows every name (a wildcard bind,
    where the server cannot know its names)."""

    def __init__(self, app: ASGIApp, hosts: Iterable[str] | None):
        self.app = app
        self.hosts = None if hosts is None else {host.lower().strip("[]") for host in hosts}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.hosts is not None:
            name = _host_name(_header(scope, b"host") or "")
            if name not in self.hosts:
                await send_error(send, 400, f"the Host header {name or '(none)'!r} does not name this server")
                return
        await self.app(scope, receive, send)


def allowed_hosts(bound: str, extra: Iterable[str] = ()) -> set[str] | None:
    """The names a server bound to `bound` answers to: the address itself, the
    loopback names when it is loopback, and `extra` ("*" allows any name)."""
    extra = list(extra)
    if "*" in extra or _is_wildcard(bound):
        return None if "*" in extra or not extra else {*extra, bound}
    names = {bound, *extra}
    if is_loopback(bound):
        names.update(LOOPBACK_NAMES)
    return names


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


def _host_name(header: str) -> str:
    """The name in a Host header, without its port ("[::1]:8080" → "::1")."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def _is_wildcard(host: str) -> bool:
    return host in ("", "0.0.0.0", "::")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
