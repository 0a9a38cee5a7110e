"""Real servers on loopback for tests: llama-cpp-python's server, llama.cpp's
llama-server (when a binary is at hand), a delaying proxy and a misbehaving
HTTP server. Every wait is bounded."""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import shutil
import socket
import socketserver
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until_serving(
    url: str,
    process: subprocess.Popen | None = None,  # type: ignore[type-arg]
    timeout_s: float = 60.0,
    path: str = "/v1/models",
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited early with status {process.returncode}")
        try:
            with urllib.request.urlopen(url + path, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not come up within {timeout_s} s")


@contextmanager
def _server_process(command: list[str], port: int) -> Iterator[tuple[str, subprocess.Popen]]:  # type: ignore[type-arg]
    """Start `command` (serving on loopback `port`), wait until it answers, kill it after."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(url, process)
        yield url, process
    finally:
        process.kill()
        process.wait(timeout=10)


@contextmanager
def llama_server(model: Path, *extra: str, alias: str = "tiny-mentor") -> Iterator[tuple[str, subprocess.Popen]]:  # type: ignore[type-arg]
    port = free_port()
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--model_alias", alias]
    command += ["--host", "127.0.0.1", "--port", str(port), "--n_ctx", "512", "--n_threads", "1", *extra]
    with _server_process(command, port) as served:
        yield served


def llama_server_binary() -> str | None:
    """llama.cpp's own server, from EDGE_COLLAB_LLAMA_SERVER or the PATH (it is
    not a Python package, so CI machines usually lack it)."""
    return os.environ.get("EDGE_COLLAB_LLAMA_SERVER") or shutil.which("llama-server")


@contextmanager
def llama_cpp_server(model: Path, alias: str = "tiny-mentor") -> Iterator[str]:
    binary = llama_server_binary()
    assert binary is not None
    port = free_port()
    # One slot, so the whole context serves one conversation (the default splits
    # it between several parallel slots).
    command = [binary, "-m", str(model), "--alias", alias, "--host", "127.0.0.1", "--port", str(port)]
    command += ["-c", "512", "-np", "1", "-t", "1"]
    with _server_process(command, port) as (url, _):
        yield url


class _ThreadingServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True


@contextmanager
def _serving(handler: type[socketserver.BaseRequestHandler]) -> Iterator[str]:
    """Serve `handler` on a free loopback port in a thread; yields the base URL."""
    server = _ThreadingServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def delaying_proxy(target_port: int, delay_s: float) -> Iterator[str]:
    """Forwards TCP to target_port, holding each chunk of the reply back by delay_s."""

    class Relay(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            with socket.create_connection(("127.0.0.1", target_port), timeout=30) as upstream:

                def pump(source: socket.socket, sink: socket.socket, delay: float) -> None:
                    try:
                        while chunk := source.recv(65536):
                            time.sleep(delay)
                            sink.sendall(chunk)
                    except OSError:
                        pass

                back = threading.Thread(target=pump, args=(upstream, self.request, delay_s), daemon=True)
                back.start()
                pump(self.request, upstream, 0.0)
                back.join(timeout=30)

    with _serving(Relay) as url:
        yield url


@contextmanager
def latency_proxy(target_port: int, round_trip_s: float) -> Iterator[str]:
    """Forwards TCP to target_port as a network with this round trip would: every
    chunk, either way, arrives half the round trip after it was sent, in order,
    and chunks sent close together stay close together (unlike delaying_proxy,
    which holds each chunk of a reply back in turn)."""
    one_way = round_trip_s / 2

    class Relay(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            with socket.create_connection(("127.0.0.1", target_port), timeout=30) as upstream:

                def pump(source: socket.socket, sink: socket.socket) -> None:
                    queue: list[tuple[float, bytes]] = []
                    ready = threading.Condition()
                    done = threading.Event()

                    def send() -> None:
                        while True:
                            with ready:
                                while not queue and not done.is_set():
                                    ready.wait(0.5)
                                if not queue and done.is_set():
                                    return
                                due, chunk = queue.pop(0)
                            time.sleep(max(0.0, due - time.monotonic()))
                            try:
                                sink.sendall(chunk)
                            except OSError:
                                return

                    sender = threading.Thread(target=send, daemon=True)
                    sender.start()
                    try:
                        while chunk := source.recv(65536):
                            with ready:
                                queue.append((time.monotonic() + one_way, chunk))
                                ready.notify()
                    except OSError:
                        pass
                    done.set()
                    sender.join(timeout=30)
                    with contextlib.suppress(OSError):
                        sink.shutdown(socket.SHUT_WR)

                back = threading.Thread(target=pump, args=(upstream, self.request), daemon=True)
                back.start()
                pump(self.request, upstream)
                back.join(timeout=60)

    with _serving(Relay) as url:
        yield url


@contextmanager
def scripted_server(
    respond: Callable[[str, dict], tuple[int, bytes] | tuple[int, bytes, str]],  # type: ignore[type-arg]
    authorizations: list[str] | None = None,
) -> Iterator[str]:
    """An HTTP server whose every reply comes from `respond(path, body)` (status,
    payload and optionally a content type, JSON by default); the Authorization
    headers it receives are appended to `authorizations`."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def _reply(self, body: dict) -> None:  # type: ignore[type-arg]
            if authorizations is not None and self.headers.get("Authorization"):
                authorizations.append(self.headers["Authorization"])
            status, payload, *content_type = respond(self.path, body)
            self.send_response(status)
            self.send_header("Content-Type", content_type[0] if content_type else "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:  # noqa: N802
            self._reply({})

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length", 0))
            self._reply(json.loads(self.rfile.read(length) or b"{}"))

        def log_message(self, *args: object) -> None:
            pass

    with _serving(Handler) as url:
        yield url


MODELS_REPLY = json.dumps({"object": "list", "data": [{"id": "tiny-mentor", "object": "model"}]}).encode()


@contextmanager
def edge_collab_server(*args: str) -> Iterator[tuple[str, int, subprocess.Popen]]:  # type: ignore[type-arg]
    """`edge-collab serve ARGS` on a free loopback port, up and healthy."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "edge_collab.cli", "serve", *args, "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(url, process, path="/health")
        yield url, port, process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
