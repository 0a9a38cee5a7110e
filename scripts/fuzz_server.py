"""Fuzz `edge-collab serve` on loopback with the tiny test models, and say how it went.

    .venv/bin/python scripts/fuzz_server.py --requests 3000 [--seed 1]

Prints the counts (requests, 2xx, 4xx, 5xx, hangs, error bodies not in
OpenAI's shape) as JSON, and whether the server still answers a normal
request exactly as before. The suite runs a 400-request version
(tests/test_server_fuzz.py); the fuzzer itself is tests/http_fuzz.py.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from http_fuzz import fuzz  # noqa: E402
from servers import edge_collab_server  # noqa: E402
from test_server import KEY, raw  # noqa: E402
from tiny_gguf import MENTOR, STUDENT, write_tiny_model  # noqa: E402

NORMAL = json.dumps({"messages": [{"role": "user", "content": "the cat sat"}], "max_tokens": 12}).encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        student = write_tiny_model(Path(folder) / "student.gguf", STUDENT)
        mentor = write_tiny_model(Path(folder) / "mentor.gguf", MENTOR)
        served = edge_collab_server(
            "--student",
            str(student),
            "--mentor",
            str(mentor),
            "--api-key",
            KEY,
            "--max-tokens",
            "16",
            "--threads",
            "1",
            "--n-ctx",
            "256",
        )
        with served as (_, port, process):
            before = raw(port, "POST", "/v1/chat/completions", NORMAL)[2]
            schema = json.loads(raw(port, "GET", "/openapi.json")[2])
            counts = fuzz(port, KEY, schema, args.requests, seed=args.seed)
            after = raw(port, "POST", "/v1/chat/completions", NORMAL)
            answer = lambda body: json.loads(body)["choices"][0]["message"]["content"]  # noqa: E731
            summary = counts.summary() | {
                "5xx_requests": counts.server_errors[:5],
                "server_alive": process.poll() is None,
                "normal_request_answered_as_before": after[0] == 200 and answer(after[2]) == answer(before),
            }
    print(json.dumps(summary, indent=1))
    sys.exit(0 if not counts.server_errors and not counts.hangs and summary["normal_request_answered_as_before"] else 1)


if __name__ == "__main__":
    main()
