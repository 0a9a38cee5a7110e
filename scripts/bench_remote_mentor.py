"""Local versus remote mentor on the same prompts, side by side in one run.

Starts llama-cpp-python's server on loopback with the mentor (as
`edge-collab mentor serve` does), then runs collab with the mentor loaded in
process and with the mentor behind the server, and prints tokens/s, round trips
and network seconds per 100 answer tokens, and whether the texts are identical.

    python scripts/bench_remote_mentor.py [--student S --mentor M] [--max-tokens 256]
        [--llama-server PATH]   # llama.cpp's llama-server instead of llama-cpp-python's
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

from edge_collab import CollabPair, GenerationSettings, ModelSettings
from edge_collab.evaluation.bench import BENCH_PROMPTS
from edge_collab.pair import _resolve
from edge_collab.remote.llama_cpp_server import llama_cpp_server_command


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(url: str, process: subprocess.Popen, timeout_s: float = 120.0) -> None:  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"the mentor server exited with status {process.returncode}")
        try:
            with urllib.request.urlopen(url + "/v1/models", timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    sys.exit("the mentor server did not come up")


def report(header: list[str], rows: list[list[str]], out: str, record: dict) -> None:  # type: ignore[type-arg]
    """A markdown table on standard output, and the figures as JSON in `out`."""
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    with open(out, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(record, indent=1) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--student")
    parser.add_argument("--mentor")
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--prompts", type=int, default=len(BENCH_PROMPTS))
    parser.add_argument("--out", default="bench_remote.json")
    parser.add_argument("--llama-server", help="serve the mentor with this llama-server binary")
    args = parser.parse_args()
    mentor_path = _resolve(args.mentor, "mentor", None)
    port = free_port()
    threads = str(os.cpu_count() or 1)
    if args.llama_server:
        command = [args.llama_server, "-m", str(mentor_path), "--alias", "mentor", "--host", "127.0.0.1"]
        command += ["--port", str(port), "-c", "4096", "-np", "1", "-t", threads, "-tb", threads]
    else:
        command = llama_cpp_server_command(mentor_path, alias="mentor", host="127.0.0.1", port=port)
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(url, server)
        settings = GenerationSettings(max_new_tokens=args.max_tokens)
        rows = {}
        texts: dict[str, list[str]] = {}
        for label, mentor in (("local", str(mentor_path)), ("remote", url)):
            totals = {"tokens": 0, "wall_s": 0.0, "round_trips": 0, "network_s": 0.0, "probes": 0, "adoptions": 0}
            texts[label] = []
            with CollabPair.open(args.student, mentor, settings=settings, student_settings=ModelSettings()) as pair:
                pair.generate("Warm up.", max_new_tokens=4)  # load and touch both models before timing
                for prompt in BENCH_PROMPTS[: args.prompts]:
                    pair.student.truncate(0)
                    result = pair.generate(prompt)
                    s = result.stats
                    texts[label].append(result.text)
                    totals["tokens"] += s.tokens_total
                    totals["wall_s"] += s.wall_s
                    totals["round_trips"] += s.mentor_round_trips
                    totals["network_s"] += s.mentor_network_s
                    totals["probes"] += s.probes
                    totals["adoptions"] += s.adoptions
            totals["tokens_per_s"] = totals["tokens"] / totals["wall_s"]
            totals["round_trips_per_100_tokens"] = 100 * totals["round_trips"] / totals["tokens"]
            totals["network_s_per_100_tokens"] = 100 * totals["network_s"] / totals["tokens"]
            rows[label] = totals
    finally:
        server.kill()
        server.wait(timeout=30)
    report = {
        "modes": rows,
        "remote_vs_local_speed": rows["remote"]["tokens_per_s"] / rows["local"]["tokens_per_s"],
        "identical_texts": texts["local"] == texts["remote"],
        "identical_per_prompt": [a == b for a, b in zip(texts["local"], texts["remote"], strict=True)],
    }
    with open(args.out, "w") as handle:
        json.dump(report, handle, indent=2)
    print("| mentor | tokens/s | round trips / 100 tokens | network s / 100 tokens | probes | adoptions |")
    print("|---|---|---|---|---|---|")
    for label, r in rows.items():
        print(
            f"| {label} | {r['tokens_per_s']:.1f} | {r['round_trips_per_100_tokens']:.1f} | "
            f"{r['network_s_per_100_tokens']:.2f} | {r['probes']} | {r['adoptions']} |"
        )
    print(
        f"\nremote / local collab tokens/s: {report['remote_vs_local_speed']:.2f}; "
        f"identical texts: {report['identical_texts']} {report['identical_per_prompt']}"
    )


if __name__ == "__main__":
    main()
