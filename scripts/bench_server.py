"""Server versus Python API on the same prompts, and the server's memory over
many requests. Side by side in one run on this machine.

Starts `edge-collab serve` on loopback with the default pair (or --student /
--mentor), then measures with the same settings:
  - time to first token and tokens/s through the server (streaming, the
    official openai client) versus the Python API in this process;
  - the server's resident memory after 10 and after N sequential requests.

    python scripts/bench_server.py [--requests 200] [--max-tokens 64]
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import openai

from edge_collab import CollabPair, GenerationSettings
from edge_collab.evaluation.bench import BENCH_PROMPTS


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--student")
    parser.add_argument("--mentor")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--memory-max-tokens", type=int, default=8)
    parser.add_argument("--out", default="bench_server.json")
    args = parser.parse_args()
    models = [
        *(["--student", args.student] if args.student else []),
        *(["--mentor", args.mentor] if args.mentor else []),
    ]
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "edge_collab.cli", "serve", *models, "--port", str(port), "--queue-size", "4"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                urllib.request.urlopen(url + "/health", timeout=2).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    sys.exit("the server did not start")
                time.sleep(0.5)
        client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=600)
        settings = GenerationSettings(max_new_tokens=args.max_tokens)
        via_server = {"tokens": 0, "seconds": 0.0, "ttft": []}
        via_api = {"tokens": 0, "seconds": 0.0, "ttft": []}
        with CollabPair.open(args.student, args.mentor, settings=settings) as pair:
            pair.generate("Warm up.", max_new_tokens=4)
            client.chat.completions.create(
                model="edge-collab", messages=[{"role": "user", "content": "Warm up."}], max_tokens=4
            )
            for prompt in BENCH_PROMPTS:
                for label, target in (("api", via_api), ("server", via_server)):
                    started = time.perf_counter()
                    first = None
                    if label == "api":
                        pair.student.truncate(0)
                        generation = pair.generate(prompt, stream=True)
                        for _ in generation:
                            first = first or time.perf_counter()
                        tokens = generation.result.stats.tokens_total  # type: ignore[union-attr]
                    else:
                        stream = client.chat.completions.create(
                            model="edge-collab",
                            messages=[{"role": "user", "content": prompt}],
                            max_tokens=args.max_tokens,
                            stream=True,
                            stream_options={"include_usage": True},
                        )
                        tokens = 0
                        for chunk in stream:
                            if chunk.choices and chunk.choices[0].delta.content:
                                first = first or time.perf_counter()
                            if chunk.usage:
                                tokens = chunk.usage.completion_tokens
                    target["seconds"] += time.perf_counter() - started
                    target["tokens"] += tokens
                    target["ttft"].append((first or time.perf_counter()) - started)
        memory = {}
        for index in range(args.requests):
            client.chat.completions.create(
                model="edge-collab",
                messages=[{"role": "user", "content": BENCH_PROMPTS[index % len(BENCH_PROMPTS)]}],
                max_tokens=args.memory_max_tokens,
            )
            if index + 1 in (10, args.requests):
                memory[index + 1] = rss_mib(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=60)
    report = {
        "api_tokens_per_s": via_api["tokens"] / via_api["seconds"],
        "server_tokens_per_s": via_server["tokens"] / via_server["seconds"],
        "api_mean_ttft_s": sum(via_api["ttft"]) / len(via_api["ttft"]),
        "server_mean_ttft_s": sum(via_server["ttft"]) / len(via_server["ttft"]),
        "rss_mib_after_requests": memory,
    }
    report["server_vs_api_throughput"] = report["server_tokens_per_s"] / report["api_tokens_per_s"]
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
