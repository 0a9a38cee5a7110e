"""Eval runs side by side on the items both answered (docs/verifier-study.md).

For each pair of results files A B (same task): accuracy, mentor share,
seconds and mentor seconds per item of each, how many answers are the same
text, the answers B turned right and wrong, and a paired sign test; then the
pairs pooled. Prints a Markdown table.

    .venv/bin/python scripts/compare_runs.py A.jsonl B.jsonl [A2.jsonl B2.jsonl ...]
"""

import sys
from pathlib import Path

from edge_collab.evaluation.report import load_runs, paired
from edge_collab.evaluation.significance import sign_test_p


def main(paths: list[str]) -> None:
    if not paths or len(paths) % 2:
        sys.exit("usage: compare_runs.py A.jsonl B.jsonl [A2.jsonl B2.jsonl ...]")
    runs = [load_runs([Path(p)])[0] for p in paths]
    print(
        "| task (common items) | A | B | A right / share / s / mentor s per item "
        "| B right / share / s / mentor s per item | same text | B fixed / broken (sign test) |"
    )
    print("|---|---|---|---|---|---|---|")
    pooled = [0, 0, 0, 0, 0]  # items, A right, B right, fixed, broken
    for a, b in zip(runs[::2], runs[1::2], strict=True):
        if a.task != b.task:
            sys.exit(f"{a.path.name} and {b.path.name} are runs of different tasks")
        pair = paired(a, b)
        common, right, fixed, broken = pair.common, (pair.right_a, pair.right_b), pair.fixed, pair.broken
        cells = []
        for run, count in zip((a, b), right, strict=True):
            tokens = sum(run.items[k]["tokens_total"] for k in common)
            share = sum(run.items[k]["tokens_mentor"] for k in common) / tokens if tokens else 0.0
            seconds = sum(run.items[k]["seconds"] for k in common) / len(common) if common else 0.0
            mentor = sum(run.items[k].get("mentor_s") or 0.0 for k in common) / len(common) if common else 0.0
            cells.append(f"{count / max(len(common), 1):.1%} / {share:.1%} / {seconds:.1f} / {mentor:.1f}")
        same = sum(a.items[k].get("text") == b.items[k].get("text") for k in common)
        print(
            f"| {a.task} ({len(common)}) | {a.label} | {b.label} | {cells[0]} | {cells[1]} | {same} "
            f"| {fixed} / {broken} (p = {sign_test_p(fixed, broken):.2f}) |"
        )
        for i, value in enumerate((len(common), *right, fixed, broken)):
            pooled[i] += value
    items, right_a, right_b, fixed, broken = pooled
    if len(runs) > 2 and items:
        print(
            f"| pooled ({items}) | | | {right_a / items:.1%} | {right_b / items:.1%} | "
            f"| {fixed} / {broken} (p = {sign_test_p(fixed, broken):.2f}) |"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
