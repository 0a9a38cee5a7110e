"""What an outside tester threw at the server: text the tokenizer cannot take,
bodies without a length, prompts far beyond the context, loose types, foreign
Host headers, a failing mentor. Each is a clean 4xx or 5xx in OpenAI's shape,
and the server answers a normal request afterwards."""

from __future__ import annotations

import http.client
import json
import signal
import time

import pytest
from http_fuzz import send_chunked
from servers import MODELS_REPLY, edge_collab_server, scripted_server
from test_cli import tiny_pair
from test_server import KEY, raw

CHAT = {"messages": [{"role": "user", "content": "the cat"}]}


@pytest.fixture(scope="module")
def server(tiny_paths):
    with edge_collab_server(
        *tiny_pair(tiny_paths), "--api-key", KEY, "--max-tokens", "8", "--threads", "1", "--n-ctx", "256"
    ) as running:
        yield running


def post(port: int, body: dict | bytes, path: str = "/v1/chat/completions", **headers: str):  # type: ignore[type-arg]
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    return raw(port, "POST", path, payload, headers)


def still_answers(port: int) -> None:
    code, _, payload = post(port, CHAT)
    assert code == 200, payload
    assert json.loads(payload)["choices"][0]["message"]["content"]


def test_text_the_tokenizer_cannot_encode_is_a_400_and_generation_goes_on(server):
    # JSON may carry a lone surrogate ("\ud800"), which no UTF-8 tokenizer can take.
    for body in (
        b'{"messages": [{"role": "user", "content": "a \\ud800 b"}]}',
        b'{"prompt": "x \\udc80"}',
        b'{"messages": [{"role": "user", "content": "hi"}], "stop": ["\\ud800"]}',
    ):
        path = "/v1/completions" if b"prompt" in body else "/v1/chat/completions"
        code, _, payload = post(server[1], body, path)
        assert code == 400, payload
        message = json.loads(payload)["error"]["message"]
        assert "surrogate" in message or "unicode" in message
    still_answers(server[1])
    code, _, payload = raw(server[1], "GET", "/health")
    assert code == 200 and json.loads(payload)["status"] == "ok"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"max_tokens": "10"}, "max_tokens"),
        ({"max_tokens": True}, "max_tokens"),
        ({"max_tokens": 10.0}, "max_tokens"),
        ({"stream": "yes"}, "stream"),
        ({"stream": 1}, "stream"),
        ({"temperature": "0"}, "temperature"),
        ({"seed": "7"}, "seed"),
        ({"probe_rate": "0.5"}, "probe_rate"),
    ],
)
def test_types_are_strict(server, change, field):
    code, _, payload = post(server[1], CHAT | change)
    assert code == 400, payload
    assert json.loads(payload)["error"]["param"] == field


def test_json_integers_still_count_as_numbers(server):
    code, _, payload = post(server[1], CHAT | {"temperature": 0, "probe_rate": 1, "max_tokens": 4})
    assert code == 200, payload


def test_echo_is_refused_not_ignored(server):
    code, _, payload = post(server[1], {"prompt": "the cat", "echo": True}, "/v1/completions")
    assert code == 400 and "echo" in json.loads(payload)["error"]["message"]
    code, _, _ = post(server[1], {"prompt": "the cat", "echo": False, "max_tokens": 2}, "/v1/completions")
    assert code == 200


def test_a_wrong_method_gets_405_with_allow(server):
    code, headers, payload = raw(server[1], "GET", "/v1/chat/completions")
    assert code == 405 and headers["allow"] == "POST"
    assert json.loads(payload)["error"]["type"] == "invalid_request_error"


def test_the_openapi_schema_documents_the_400_that_is_returned(server):
    code, _, payload = raw(server[1], "GET", "/openapi.json")
    schema = json.loads(payload)
    responses = schema["paths"]["/v1/chat/completions"]["post"]["responses"]
    assert code == 200 and "422" not in responses and "400" in responses
    assert "error" in json.dumps(schema["components"]["schemas"]["ErrorBody"])
    # and a body the schema calls invalid is indeed answered with that 400
    code, _, _ = post(server[1], {"messages": "hi"})
    assert code == 400


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8080", "127.0.0.2", ""])
def test_only_the_servers_own_host_names_are_answered(server, host):
    code, _, payload = raw(server[1], "GET", "/v1/models", headers={"Host": host})
    assert code == 400 and "Host" in json.loads(payload)["error"]["message"]


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1:{port}", "localhost:{port}", "[::1]:{port}"])
def test_loopback_names_are_answered(server, host):
    code, _, _ = raw(server[1], "GET", "/v1/models", headers={"Host": host.format(port=server[1])})
    assert code == 200


def _chunked_post(port: int, total_bytes: int) -> tuple[int, bytes]:
    headers = {"Host": f"127.0.0.1:{port}", "Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    return send_chunked(port, "/v1/completions", b'{"prompt": "' + b"a" * total_bytes + b'"}', headers)


def test_a_chunked_body_over_the_limit_is_refused(server):
    status, body = _chunked_post(server[1], 20 << 20)
    assert status == 413 and b"bytes" in body
    status, _ = _chunked_post(server[1], 100)  # a small chunked body is read as usual
    assert status == 200
    still_answers(server[1])


@pytest.mark.parametrize("text", ["the cat " * 60_000, "a" * 900_000])
def test_a_prompt_far_beyond_the_context_is_refused_before_it_is_tokenized_whole(server, text):
    # Tokenizing 900 kB of one letter whole takes minutes on llama.cpp; counted
    # in pieces it is refused at once (raw's 30 s timeout would fail a slow path).
    code, _, payload = post(server[1], {"prompt": text}, "/v1/completions")
    assert code == 400 and "context" in json.loads(payload)["error"]["message"]
    still_answers(server[1])


def test_sigterm_stops_a_server_that_is_refusing_a_long_prompt(tiny_paths):
    with edge_collab_server(*tiny_pair(tiny_paths), "--n-ctx", "256", "--threads", "1") as (_, port, process):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.request("POST", "/v1/completions", json.dumps({"prompt": "a" * 900_000}))
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
        connection.close()


def test_health_reports_a_worker_that_cannot_generate(tiny_paths):
    import asyncio

    from fastapi.testclient import TestClient

    from edge_collab import CollabPair, ModelSettings
    from edge_collab.server import worker
    from edge_collab.server.app import create_app

    settings = ModelSettings(n_ctx=256, threads=1)
    with CollabPair.open(str(tiny_paths["student"]), str(tiny_paths["mentor"]), student_settings=settings) as pair:
        app = create_app(pair)
        with TestClient(app, base_url="http://127.0.0.1") as http_client:
            assert http_client.get("/health").json()["status"] == "ok"
            completions = app.state.completions
            # A turn taken and never given back: what a path out of a generation
            # that skipped its release used to leave behind.
            asyncio.run(completions.gate.acquire())
            original = worker.Gate.STUCK_AFTER_S
            worker.Gate.STUCK_AFTER_S = 0.0
            try:
                time.sleep(0.05)
                stuck = http_client.get("/health")
                assert stuck.status_code == 503 and "stuck" in stuck.json()["message"]
            finally:
                worker.Gate.STUCK_AFTER_S = original
                completions.gate.release()
            assert http_client.get("/health").json() == {"status": "ok", "generating": False, "waiting": 0}


def test_a_failing_remote_mentor_alone_is_an_openai_error(tiny_paths):
    def respond(path, request):
        if path.endswith("/models"):
            return 200, MODELS_REPLY
        return 500, b'{"error": "the GPU caught fire"}'

    with (
        scripted_server(respond) as url,
        edge_collab_server(
            "--student", str(tiny_paths["student"]), "--mentor", url, "--method", "mentor", "--n-ctx", "256"
        ) as (_, port, _process),
    ):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.request("POST", "/v1/chat/completions", json.dumps(CHAT), {"Content-Type": "application/json"})
        response = connection.getresponse()
        payload = response.read()
        assert response.status == 503, payload
        assert response.getheader("content-type") == "application/json"
        assert json.loads(payload)["error"]["type"] == "server_error"
        connection.close()
