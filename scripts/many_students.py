"""Many students, one mentor server: every answer identical to its solo run, and
what each student answer costs the server, for N students at once.

Starts llama-cpp-python's server with the mentor on loopback (as `edge-collab
mentor serve` does), then for each N runs N student processes side by side,
each answering the same prompts in the same order, and prints per N: tokens/s
per student and for all together, and per student answer the server's cost
(round trips, tokens it decoded, network seconds; what it reads is the
text appended since a student's previous request, which its prefix cache
keeps); and whether
every answer equals the N = 1 answer to the same prompt.

    python scripts/many_students.py [--student S --mentor M] [--students 1,2,4]
        [--prompts 4] [--max-tokens 128] [--threads 1] [--out many_students.json]
        [--llama-server PATH]   # llama.cpp's llama-server, with as many slots as students

llama-cpp-python's server answers one request at a time (the others queue);
llama-server with `-np N` decodes N slots together, as vLLM and SGLang batch
on their own.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_remote_mentor import free_port, report, wait_for  # noqa: E402

from edge_collab import CollabPair, GenerationSettings, ModelSettings  # noqa: E402
from edge_collab.evaluation.bench import BENCH_PROMPTS  # noqa: E402
from edge_collab.pair import _resolve  # noqa: E402
from edge_collab.remote.llama_cpp_server import llama_cpp_server_command  # noqa: E402


def worker(args: argparse.Namespace) -> None:
    """One student: answer the prompts in order, one JSON line each on stdout."""
    settings = GenerationSettings(max_new_tokens=args.max_tokens)
    model = ModelSettings(n_ctx=args.n_ctx, threads=args.threads)
    with CollabPair.open(args.student, args.url, settings=settings, student_settings=model) as pair:
        for prompt in BENCH_PROMPTS[: args.prompts]:
            pair.student.truncate(0)
            result = pair.generate(prompt)
            s = result.stats
            line = {
                "prompt": prompt,
                "text": result.text,
                "tokens": s.tokens_total,
                "wall_s": s.wall_s,
                "round_trips": s.mentor_round_trips,
                "mentor_decode_tokens": s.mentor_decode_tokens,
                "network_s": s.mentor_network_s,
                "failures": s.mentor_failures,
            }
            print(json.dumps(line), flush=True)


def run_students(n: int, args: argparse.Namespace, url: str) -> tuple[list[list[dict]], float]:  # type: ignore[type-arg]
    """N student processes at once; each one's answers, and the wall time of all."""
    command = [sys.executable, __file__, "--worker", "--url", url, "--prompts", str(args.prompts)]
    command += ["--max-tokens", str(args.max_tokens), "--threads", str(args.threads), "--n-ctx", str(args.n_ctx)]
    if args.student:
        command += ["--student", args.student]
    started = time.perf_counter()
    processes = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True) for _ in range(n)]
    outputs = [process.communicate(timeout=3600)[0] for process in processes]
    elapsed = time.perf_counter() - started
    if any(process.returncode for process in processes):
        sys.exit(f"a student process failed: {[process.returncode for process in processes]}")
    return [[json.loads(line) for line in output.splitlines() if line.strip()] for output in outputs], elapsed


def summarise(n: int, answers: list[list[dict]], elapsed: float, solo: dict[str, str]) -> dict:  # type: ignore[type-arg]
    every = [answer for student in answers for answer in student]
    count = len(every)
    per_student = [sum(a["tokens"] for a in s) / sum(a["wall_s"] for a in s) for s in answers]
    return {
        "students": n,
        "answers": count,
        "identical_to_solo": sum(a["text"] == solo[a["prompt"]] for a in every),
        "tokens_per_s_per_student": sum(per_student) / n,
        "tokens_per_s_all": sum(a["tokens"] for a in every) / elapsed,
        "server_round_trips_per_answer": sum(a["round_trips"] for a in every) / count,
        "server_decoded_tokens_per_answer": sum(a["mentor_decode_tokens"] for a in every) / count,
        "network_s_per_answer": sum(a["network_s"] for a in every) / count,
        "answer_tokens_per_answer": sum(a["tokens"] for a in every) / count,
        "mentor_failures": sum(a["failures"] for a in every),
    }


def _warm_up(url: str) -> None:
    """One short request first, so the solo run does not pay the server's first-request cost."""
    body = json.dumps({"model": "mentor", "prompt": "Hello", "max_tokens": 1}).encode()
    request = urllib.request.Request(url + "/v1/completions", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=600) as reply:
        reply.read()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--student")
    parser.add_argument("--mentor")
    parser.add_argument("--students", default="1,2,4", help="comma-separated numbers of students at once")
    parser.add_argument("--prompts", type=int, default=len(BENCH_PROMPTS))
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads per student")
    parser.add_argument("--server-threads", type=int, default=None, help="the mentor server's threads")
    parser.add_argument("--n-ctx", type=int, default=4096)
    parser.add_argument("--llama-server", help="serve the mentor with this llama-server binary")
    parser.add_argument("--out", default="many_students.json")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    counts = [int(n) for n in args.students.split(",")]
    mentor_path = _resolve(args.mentor, "mentor", None)
    port, threads = free_port(), args.server_threads or os.cpu_count() or 1
    if args.llama_server:
        command = [args.llama_server, "-m", str(mentor_path), "--alias", "mentor", "--host", "127.0.0.1"]
        command += ["--port", str(port), "-c", str(args.n_ctx * max(counts)), "-np", str(max(counts))]
        command += ["-t", str(threads), "-tb", str(threads)]
    else:
        command = llama_cpp_server_command(
            mentor_path, alias="mentor", host="127.0.0.1", port=port, n_ctx=args.n_ctx, threads=threads
        )
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    rows = []
    try:
        wait_for(url, server)
        _warm_up(url)
        solo_answers, solo_s = run_students(1, args, url)
        solo = {a["prompt"]: a["text"] for a in solo_answers[0]}
        rows.append(summarise(1, solo_answers, solo_s, solo))
        for n in counts:
            if n != 1:
                answers, elapsed = run_students(n, args, url)
                rows.append(summarise(n, answers, elapsed, solo))
    finally:
        server.kill()
        server.wait(timeout=30)
    header = ["students", "identical to solo", "tokens/s per student", "tokens/s, all", "round trips / answer"]
    header += ["server decoded tokens / answer", "network s / answer"]
    table = [
        [
            str(r["students"]),
            f"{r['identical_to_solo']}/{r['answers']}",
            f"{r['tokens_per_s_per_student']:.1f}",
            f"{r['tokens_per_s_all']:.1f}",
            f"{r['server_round_trips_per_answer']:.1f}",
            f"{r['server_decoded_tokens_per_answer']:.0f}",
            f"{r['network_s_per_answer']:.2f}",
        ]
        for r in rows
    ]
    report(header, table, args.out, {"settings": vars(args), "rows": rows})


if __name__ == "__main__":
    main()
