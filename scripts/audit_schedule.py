"""Replay the audit's reading schedule on recorded answers, to choose its batch
size B and early end P without running the engine (docs/budget-and-probing.md,
"Where the audit's batches end").

    # what one pass of the mentor costs, by batch size (one thread)
    .venv/bin/python scripts/audit_schedule.py costs COSTS.json
    # both models' first choices and probabilities at every position of each answer
    .venv/bin/python scripts/audit_schedule.py score RESULTS.jsonl POSITIONS.jsonl
    # mentor seconds, passes, tokens read and rolled back for a grid of (B, P)
    .venv/bin/python scripts/audit_schedule.py replay POSITIONS.jsonl COSTS.json

`score` wants the answers of the `average` baseline: a position is a firing
where the answer's token is not the student's first choice there. The replay
follows the answer as written: the student writes from where the mentor has
read; the batch ends after B tokens, or early at a token the student gave
less than P; the mentor reads it in one pass; at the first firing in it the
tokens after are rolled back, and the mentor's token is read with the next
batch. Words are not modelled (the engine ends batches at word ends, so it
rolls back a little more), nor what the student would have written after a
firing instead of what the answer holds.
"""

from __future__ import annotations

import json
import math
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

GRID = [(8, 0.0), (16, 0.0), (32, 0.0), (16, 0.5), (24, 0.5), (32, 0.5), (48, 0.5), (32, 0.4), (24, 0.6), (32, 0.6),
        (48, 0.6), (16, 0.7), (32, 0.7)]  # fmt: skip
COST_SIZES = (1, 2, 4, 8, 12, 16, 20, 24, 32, 48, 64)


def _models():  # type: ignore[no-untyped-def]
    """The default pair's student and mentor, one thread each."""
    from edge_collab.backends.llamacpp import LlamaCppBackend
    from edge_collab.presets.registry import DEFAULT_PAIR, load_pairs, resolve_model
    from edge_collab.settings import ModelSettings

    pair = load_pairs()[DEFAULT_PAIR]
    settings = ModelSettings(threads=1, n_ctx=2048)
    return tuple(
        LlamaCppBackend(resolve_model(name, pair_hint=DEFAULT_PAIR), settings) for name in (pair.student, pair.mentor)
    )


def costs(out: Path) -> None:
    """Median seconds of one mentor pass of n tokens after 401 tokens of context
    (exactly n evaluated: files written before this measured n + 1)."""
    _, mentor = _models()
    tokens = mentor.tokenize(b"The quick brown fox jumps over the lazy dog. " * 80)
    mentor.reset_to(tokens[:400])
    mentor.score(tokens[400:401])
    seconds = {}
    for n in COST_SIZES:
        runs = []
        for _ in range(3):
            mentor.truncate(401)
            mentor.next_logits()  # the row before the pass: a truncated context evaluates its last token again
            began = time.perf_counter()
            mentor.score(tokens[401 : 401 + n])
            runs.append(time.perf_counter() - began)
        seconds[n] = statistics.median(runs)
        print(f"{n:3d} tokens: {seconds[n] * 1000:7.1f} ms a pass", flush=True)
    out.write_text(json.dumps(seconds))


def score(results: Path, out: Path) -> None:
    from edge_collab.engine.sampling import log_softmax
    from edge_collab.evaluation.prompts import build_question
    from edge_collab.evaluation.tasks import load_task, select

    student, mentor = _models()
    records = [json.loads(line) for line in results.open()]
    header = records[0]
    items = {item.id: item for item in select(load_task(header["task"]), header["split"], None)}
    with out.open("w") as written:
        for record in records[1:]:
            question = build_question(items[record["id"]], header["seed"])
            messages = [{"role": "user", "content": question.message}]
            answer = student.tokenize(record["text"].encode())
            student.reset_to(student.chat_prompt(messages))
            mentor.reset_to(mentor.chat_prompt(messages))
            rows = []
            for token, s_row, m_row in zip(answer, student.score(answer), mentor.score(answer), strict=False):
                s_logprobs, m_logprobs = log_softmax(s_row), log_softmax(m_row)
                s, m = int(np.argmax(s_logprobs)), int(np.argmax(m_logprobs))
                rows.append([token, s, m, round(math.exp(s_logprobs[s]), 4), round(math.exp(m_logprobs[m]), 4)])
            written.write(json.dumps({"id": record["id"], "rows": rows}) + "\n")
            print(record["id"], len(rows), flush=True)


def _replay(
    rows: list[list[float]], pass_seconds: Callable[[int], float], batch: int, unsure_below: float
) -> tuple[float, int, int, int]:
    firings = {i for i, row in enumerate(rows) if row[0] != row[1]}
    taken: set[int] = set()  # positions holding the mentor's token: its score is not the student's
    start, seconds, passes, read, rolled_back = 0, 0.0, 0, 0, 0
    while start < len(rows):
        end = start
        while end < len(rows) - 1 and end - start + 1 < batch:
            if rows[end][3] < unsure_below and end not in taken:
                break  # the batch ends early at an unsure token
            end += 1
        seconds += pass_seconds(end - start + 1)
        passes += 1
        read += end - start + 1
        fired = next((i for i in range(start, end + 1) if i in firings), None)
        if fired is None:
            start = end + 1
            continue
        firings.discard(fired)
        taken.add(fired)
        rolled_back += end - fired
        start = fired
    return seconds, passes, read, rolled_back


def replay(positions: Path, cost_file: Path) -> None:
    measured = {int(n): s for n, s in json.loads(cost_file.read_text()).items()}
    sizes = sorted(measured)

    def pass_seconds(n: int) -> float:
        if n <= sizes[-1]:
            return float(np.interp(n, sizes, [measured[s] for s in sizes]))
        return measured[sizes[-1]] / sizes[-1] * n

    answers = [json.loads(line)["rows"] for line in positions.open()]
    firings = [row[3] for rows in answers for row in rows if row[0] != row[1]]
    print(f"{len(answers)} answers, {sum(map(len, answers))} positions, {len(firings)} firings")
    for below in (0.3, 0.5, 0.7, 0.8):
        share = sum(p < below for p in firings) / len(firings)
        print(f"  firings where the student gave less than {below}: {share:.0%}")
    baseline = None
    print("| B | P | mentor s / item | vs B=8 P=0 | passes | tokens read | rolled back |")
    print("|---|---|---|---|---|---|---|")
    for batch, below in GRID:
        totals = np.sum([_replay(rows, pass_seconds, batch, below) for rows in answers], axis=0) / len(answers)
        baseline = baseline if baseline is not None else totals[0]
        print(
            f"| {batch} | {below:g} | {totals[0]:.1f} | {totals[0] / baseline:.2f} | {totals[1]:.1f} "
            f"| {totals[2]:.0f} | {totals[3]:.0f} |"
        )


if __name__ == "__main__":
    commands: dict[str, tuple[Callable[..., None], int]] = {
        "costs": (costs, 1),
        "score": (score, 2),
        "replay": (replay, 2),
    }
    if len(sys.argv) < 2 or sys.argv[1] not in commands or len(sys.argv) != commands[sys.argv[1]][1] + 2:
        sys.exit(__doc__)
    function, _ = commands[sys.argv[1]]
    function(*map(Path, sys.argv[2:]))
