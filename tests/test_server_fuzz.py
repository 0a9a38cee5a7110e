"""The server under a bounded fuzz on loopback (tests/http_fuzz.py): every reply
is a 2xx or an OpenAI-shaped 4xx within the timeout, and afterwards the server
answers a normal request exactly as it did before."""

from __future__ import annotations

import json

from http_fuzz import fuzz
from servers import edge_collab_server
from test_cli import tiny_pair
from test_server import KEY, raw

REQUESTS = 400
NORMAL = json.dumps({"messages": [{"role": "user", "content": "the cat sat"}], "max_tokens": 12}).encode()


def test_a_fuzzed_server_never_fails_and_still_answers_correctly(tiny_paths):
    with edge_collab_server(
        *tiny_pair(tiny_paths), "--api-key", KEY, "--max-tokens", "16", "--threads", "1", "--n-ctx", "256"
    ) as (_, port, process):
        code, _, before = raw(port, "POST", "/v1/chat/completions", NORMAL)
        assert code == 200
        _, _, schema = raw(port, "GET", "/openapi.json")
        counts = fuzz(port, KEY, json.loads(schema), REQUESTS, seed=22)
        print(counts.summary())
        assert not counts.server_errors, counts.server_errors[:5]
        assert not counts.hangs, counts.hangs[:5]
        assert not counts.bad_error_bodies, counts.bad_error_bodies[:5]
        assert counts.statuses[200] > REQUESTS // 10  # the fuzz reaches generation, not only the checks
        assert process.poll() is None
        code, _, after = raw(port, "POST", "/v1/chat/completions", NORMAL)
        assert code == 200
        answer = lambda body: json.loads(body)["choices"][0]["message"]["content"]  # noqa: E731
        assert answer(after) == answer(before)
        code, _, health = raw(port, "GET", "/health")
        assert code == 200 and json.loads(health)["status"] == "ok"
