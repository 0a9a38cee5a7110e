"""The OpenAI-compatible server, started for real on loopback with tiny models,
driven by the official openai client and by raw HTTP."""

from __future__ import annotations

import http.client
import json
import signal
import time

import openai
import pytest
from servers import edge_collab_server
from test_cli import tiny_pair

KEY = "test-key-123"


@pytest.fixture(scope="module")
def server(tiny_paths):
    with edge_collab_server(
        *tiny_pair(tiny_paths),
        "--api-key",
        KEY,
        "--queue-size",
        "0",
        "--max-tokens",
        "48",
        "--threads",
        "1",
    ) as running:
        yield running


@pytest.fixture
def client(server):
    url, _, _ = server
    with openai.OpenAI(base_url=url + "/v1", api_key=KEY, max_retries=0, timeout=30) as c:
        yield c


def raw(port: int, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(
            method,
            path,
            body=body,
            headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json", **(headers or {})},
        )
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def test_models_and_health(client, server):
    assert [m.id for m in client.models.list().data] == ["edge-collab"]
    status, _, body = raw(server[1], "GET", "/health", headers={"Authorization": ""})
    assert status == 200 and json.loads(body) == {"status": "ok", "generating": False, "waiting": 0}


def test_chat_completion(client):
    reply = client.chat.completions.create(model="edge-collab", messages=[{"role": "user", "content": "the cat"}])
    assert reply.object == "chat.completion"
    assert reply.choices[0].message.role == "assistant" and reply.choices[0].message.content
    usage = reply.usage.model_dump()
    assert usage["completion_tokens"] == 48 and reply.choices[0].finish_reason == "length"
    assert {"mentor_tokens", "mentor_share", "probes", "adoptions"} <= set(usage)


def test_chat_completion_streams_with_sources(client):
    stream = client.chat.completions.create(
        model="edge-collab",
        messages=[{"role": "user", "content": "the cat"}],
        stream=True,
        stream_options={"include_usage": True},
        extra_body={"probe_rate": 1.0},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    sources = {c.choices[0].model_extra.get("source") for c in chunks if c.choices and c.choices[0].delta.content}
    assert text and sources <= {"student", "mentor"} and sources
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 48
    whole = client.chat.completions.create(
        model="edge-collab", messages=[{"role": "user", "content": "the cat"}], extra_body={"probe_rate": 1.0}
    )
    assert whole.choices[0].message.content == text  # same seed, same answer, streamed or not


def test_completion_endpoint(client):
    reply = client.completions.create(
        model="edge-collab", prompt="the cat sat", max_tokens=12, extra_body={"method": "student"}
    )
    assert reply.object == "text_completion" and reply.usage.completion_tokens == 12
    assert reply.usage.model_extra["mentor_tokens"] == 0
    streamed = "".join(
        c.choices[0].text
        for c in client.completions.create(
            model="edge-collab", prompt="the cat sat", max_tokens=12, stream=True, extra_body={"method": "student"}
        )
    )
    assert streamed == reply.choices[0].text


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b'{"messages": "hi"}', 400, "messages"),
        (b'{"messages": [{"role": "user", "content": "hi"}], "temperature": "hot"}', 400, "temperature"),
        (b'{"messages": [{"role": "user", "content": "hi"}], "max_tokens": -5}', 400, "max_tokens"),
        (b'{"messages": [{"role": "user", "content": "hi"}], "frobnicate": 1}', 400, "frobnicate"),
        (b'{"messages": [{"role": "wizard", "content": "hi"}]}', 400, "role"),
        (b'{"messages": [{"role": "user", "content": "hi"}], "model": "gpt-9"}', 404, "gpt-9"),
        (b'{"messages": []}', 400, "messages"),
    ],
)
def test_bad_requests_get_openai_style_4xx(server, body, status, fragment):
    code, _, payload = raw(server[1], "POST", "/v1/chat/completions", body)
    assert code == status
    error = json.loads(payload)["error"]
    assert fragment in error["message"] and error["type"]


def test_prompt_over_the_context_is_a_400(server):
    body = json.dumps({"messages": [{"role": "user", "content": "the cat sat on the mat " * 200}]}).encode()
    code, _, payload = raw(server[1], "POST", "/v1/chat/completions", body)
    assert code == 400 and "context" in json.loads(payload)["error"]["message"]


def test_a_trigger_this_install_lacks_is_a_400(server):
    """No learned trigger is shipped for the pair: asking for one is the
    request's to change, not the server's failure."""
    body = json.dumps(
        {"messages": [{"role": "user", "content": "the cat"}], "probe_policy": "audit", "trigger": "learned"}
    ).encode()
    code, _, payload = raw(server[1], "POST", "/v1/chat/completions", body)
    assert code == 400 and "no learned trigger is shipped" in json.loads(payload)["error"]["message"]


def test_huge_body_is_refused(server):
    body = json.dumps({"messages": [{"role": "user", "content": "x" * (2 << 20)}]}).encode()
    code, _, payload = raw(server[1], "POST", "/v1/chat/completions", body)
    assert code == 413 and "bytes" in json.loads(payload)["error"]["message"]


@pytest.mark.parametrize("header", [None, "Bearer wrong", "Bearer test-key-12"])
def test_missing_or_wrong_key(server, header):
    connection = http.client.HTTPConnection("127.0.0.1", server[1], timeout=10)
    headers = {"Content-Type": "application/json"} | ({"Authorization": header} if header else {})
    connection.request("GET", "/v1/models", headers=headers)
    response = connection.getresponse()
    assert response.status == 401 and json.loads(response.read())["error"]["type"] == "authentication_error"
    connection.close()


def test_requests_beyond_the_queue_get_429_and_a_dropped_stream_frees_the_server(server):
    port = server[1]
    long_body = json.dumps(
        {"messages": [{"role": "user", "content": "the cat"}], "stream": True, "max_tokens": 400, "probe_rate": 1.0}
    ).encode()
    first = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    first.request(
        "POST",
        "/v1/chat/completions",
        body=long_body,
        headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
    )
    response = first.getresponse()
    assert response.status == 200
    response.fp.readline()  # the first event: the generation is running
    code, headers, payload = raw(
        port, "POST", "/v1/chat/completions", json.dumps({"messages": [{"role": "user", "content": "hi"}]}).encode()
    )
    busy = code == 429
    if busy:
        assert headers.get("retry-after") == "2" and json.loads(payload)["error"]["type"] == "rate_limit_error"
    first.close()  # the client goes away mid-stream
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        code, _, _ = raw(
            port,
            "POST",
            "/v1/chat/completions",
            json.dumps({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}).encode(),
        )
        if code == 200:
            break
        time.sleep(0.2)
    assert code == 200
    assert busy, "the second request should have been refused while the first was generating"


def test_sigterm_shuts_down_cleanly(tiny_paths):
    with edge_collab_server("--student", str(tiny_paths["student"]), "--method", "student", "--n-ctx", "256") as (
        _,
        _,
        process,
    ):
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0


def test_binding_beyond_loopback_needs_a_key(tiny_paths):
    from click.testing import CliRunner

    from edge_collab.cli.main import cli

    result = CliRunner().invoke(cli, ["serve", "--student", str(tiny_paths["student"]), "--host", "0.0.0.0"])
    assert result.exit_code == 1 and "--api-key" in result.output


def test_each_request_is_logged_and_an_unexpected_failure_keeps_its_traceback_server_side(tiny_paths, caplog):
    import logging

    from fastapi.testclient import TestClient

    from edge_collab import CollabPair, GenerationSettings, ModelSettings
    from edge_collab.server.app import create_app

    settings = ModelSettings(n_ctx=256, threads=1)
    pair = CollabPair.open(
        str(tiny_paths["student"]),
        str(tiny_paths["mentor"]),
        settings=GenerationSettings(max_new_tokens=8),
        student_settings=settings,
        mentor_settings=settings,
    )
    with (
        pair,
        TestClient(create_app(pair), raise_server_exceptions=False, base_url="http://127.0.0.1") as http,
        caplog.at_level(logging.INFO, logger="edge_collab.server"),
    ):
        answered = http.post("/v1/completions", json={"prompt": "the cat", "method": "student"})
        assert answered.status_code == 200
        request_id = answered.headers["x-request-id"]
        assert any(f"request {request_id} POST /v1/completions 200" in line for line in caplog.messages), (
            caplog.messages
        )
        assert any(f"request {request_id}: student, 8 tokens" in line for line in caplog.messages)

        def broken(*args, **kwargs):
            raise RuntimeError("a bug deep inside")

        pair.complete = broken  # type: ignore[method-assign]
        failed = http.post("/v1/completions", json={"prompt": "the cat"})
        assert failed.status_code == 500
        assert failed.json()["error"]["type"] == "server_error" and "bug" not in failed.text
        assert any(record.exc_info and "a bug deep inside" in str(record.exc_info[1]) for record in caplog.records)
        del pair.complete
        again = http.post("/v1/completions", json={"prompt": "the cat", "method": "student"})
        assert again.status_code == 200  # the worker was freed
