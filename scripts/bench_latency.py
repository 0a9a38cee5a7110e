"""Probing in turn against writing on while a probe is in flight, at injected
round-trip times, on the same prompts in one run.

Starts llama-cpp-python's server with the mentor on loopback (as `edge-collab
mentor serve` does) behind a proxy that delays every chunk by half the round
trip each way, and runs collab with the served mentor at each round trip,
probing in turn (`RemoteSettings(overlap_probes=False)`) and writing on, with
one request pattern for every round trip (`--probe-requests`); prints
tokens/s, each mode's speed relative to its own at 0 ms, the student tokens
written ahead and rolled back, and whether the answers are identical.

    python scripts/bench_latency.py [--student S --mentor M] [--rtt-ms 0,20,50,100,200]
        [--prompts 4] [--max-tokens 128] [--out bench_latency.json]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from bench_remote_mentor import free_port, report, wait_for  # noqa: E402
from servers import latency_proxy  # noqa: E402

from edge_collab import CollabPair, GenerationSettings, ModelSettings  # noqa: E402
from edge_collab.evaluation.bench import BENCH_PROMPTS  # noqa: E402
from edge_collab.pair import _resolve  # noqa: E402
from edge_collab.remote.client import RemoteSettings  # noqa: E402
from edge_collab.remote.llama_cpp_server import llama_cpp_server_command  # noqa: E402


def run_mode(args: argparse.Namespace, url: str, overlap: bool) -> dict:  # type: ignore[type-arg]
    settings = GenerationSettings(max_new_tokens=args.max_tokens)
    remote = RemoteSettings(overlap_probes=overlap, probe_requests=args.probe_requests)
    student = ModelSettings(threads=args.threads)
    with CollabPair.open(
        args.student, url, settings=settings, student_settings=student, remote_settings=remote
    ) as pair:
        pair.generate("Warm up.", max_new_tokens=4)
        totals = {"tokens": 0, "wall_s": 0.0, "ahead": 0, "discarded": 0, "round_trips": 0, "texts": []}
        for prompt in BENCH_PROMPTS[: args.prompts]:
            pair.student.truncate(0)
            pair.restart_budget()
            result = pair.generate(prompt)
            s = result.stats
            totals["tokens"] += s.tokens_total
            totals["wall_s"] += s.wall_s
            totals["ahead"] += s.tokens_written_ahead
            totals["discarded"] += s.tokens_ahead_rolled_back
            totals["round_trips"] += s.mentor_round_trips
            totals["texts"].append(result.text)
    totals["tokens_per_s"] = totals["tokens"] / totals["wall_s"]
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--student")
    parser.add_argument("--mentor")
    parser.add_argument("--rtt-ms", default="0,20,50,100,200")
    parser.add_argument("--prompts", type=int, default=len(BENCH_PROMPTS))
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=None, help="the student's CPU threads")
    parser.add_argument("--server-threads", type=int, default=None)
    parser.add_argument(
        "--probe-requests",
        choices=["one", "two", "auto"],
        default="two",
        help="one request per probe (word and segment), a second only at divergences (two), or chosen by the "
        "measured round trip (auto, which would switch between round trips and blur the comparison)",
    )
    parser.add_argument("--out", default="bench_latency.json")
    args = parser.parse_args()
    port = free_port()
    mentor = _resolve(args.mentor, "mentor", None)
    command = llama_cpp_server_command(mentor, alias="mentor", host="127.0.0.1", port=port, threads=args.server_threads)
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rows = []
    try:
        wait_for(f"http://127.0.0.1:{port}", server)
        for rtt in [int(v) for v in args.rtt_ms.split(",")]:
            with latency_proxy(port, rtt / 1000) as url:
                in_turn, writing_on = run_mode(args, url, False), run_mode(args, url, True)
            rows.append({"rtt_ms": rtt, "in_turn": in_turn, "writing_on": writing_on})
            print(
                f"{rtt} ms: in turn {in_turn['tokens_per_s']:.1f} tokens/s, writing on "
                f"{writing_on['tokens_per_s']:.1f}",
                file=sys.stderr,
            )
    finally:
        server.kill()
        server.wait(timeout=30)
    base = {mode: rows[0][mode]["tokens_per_s"] for mode in ("in_turn", "writing_on")}
    header = ["round trip", "in turn tokens/s", "vs its 0 ms", "writing on tokens/s", "vs its 0 ms"]
    header += ["written ahead / rolled back", "round trips", "identical answers"]
    table = []
    for row in rows:
        a, b = row["in_turn"], row["writing_on"]
        same = sum(x == y for x, y in zip(a["texts"], b["texts"], strict=True))
        table.append(
            [
                f"{row['rtt_ms']} ms",
                f"{a['tokens_per_s']:.1f}",
                f"{a['tokens_per_s'] / base['in_turn']:.2f}",
                f"{b['tokens_per_s']:.1f}",
                f"{b['tokens_per_s'] / base['writing_on']:.2f}",
                f"{b['ahead']} / {b['discarded']}",
                f"{a['round_trips']} / {b['round_trips']}",
                f"{same}/{len(a['texts'])}",
            ]
        )
    report(header, table, args.out, {"settings": vars(args), "rows": rows})


if __name__ == "__main__":
    main()
