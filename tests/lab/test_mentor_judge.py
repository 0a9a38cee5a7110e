"""collect --mentor-judge: the mentor reads the self verifier's question at each divergence."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from click.testing import CliRunner
from conftest import open_tiny
from test_cli import assert_one_line_error, tiny_pair
from test_tasks import CHOICE, write_bigbench

from edge_collab.cli.main import cli
from edge_collab.verifiers.base import Divergence
from edge_collab.verifiers.self_verifier import SelfVerifier
from edge_collab_lab import collect as collect_module
from edge_collab_lab.record_fields import MENTOR_HIDDEN_FIELD, decode_hidden_state


def divergences_of(path: Path) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(line) for line in path.read_text().splitlines() if '"divergence"' in line]


def test_the_mentor_judges_after_each_item_without_changing_the_run(
    tiny_paths, tmp_path, isolated_data_dir, monkeypatch
):
    contexts: list[list[int]] = []
    judge = collect_module.judge_with_mentor

    def remembering(mentor, mentor_prompt, student_prompt_length, records, prefixes):  # type: ignore[no-untyped-def]
        judge(mentor, mentor_prompt, student_prompt_length, records, prefixes)
        contexts.extend([*mentor_prompt, *prefix[student_prompt_length:]] for prefix in prefixes)

    monkeypatch.setattr(collect_module, "judge_with_mentor", remembering)
    task = write_bigbench(tmp_path / "many", [dict(CHOICE, input=f"How many legs, case {i}?") for i in range(300)])
    base = ["verifier", "collect", str(task), *tiny_pair(tiny_paths), "--max-tokens", "60", "--limit", "3"]
    plain, judged = tmp_path / "plain.jsonl", tmp_path / "judged.jsonl"
    for out, extra in ((plain, []), (judged, ["--mentor-judge"])):
        result = CliRunner().invoke(cli, [*base, "--no-finish", "--out", str(out), *extra], catch_exceptions=False)
        assert result.exit_code == 0, result.output

    # Judging comes after the item, so the run and its labels are the same.
    keys = (
        "item",
        "student_text",
        "mentor_text",
        "self_margin",
        "gold_logprob_after_student",
        "gold_logprob_after_mentor",
    )
    records = divergences_of(judged)
    assert [[r[key] for key in keys] for r in records] == [[r[key] for key in keys] for r in divergences_of(plain)]
    assert len(contexts) == len(records) >= 3
    assert not any("mentor_judge_lean" in r for r in divergences_of(plain))
    assert json.loads(judged.read_text().splitlines()[0])["mentor_judge"] is True

    # Each reading is what the mentor gives from an empty cache (llama.cpp's
    # numbers move a little with batching: see the gold-answer label's test).
    with open_tiny(tiny_paths["mentor"]) as fresh:
        size = fresh.hidden_size
        verifier = SelfVerifier(fresh)
        for context, record in zip(contexts, records, strict=True):
            fresh.truncate(0)
            fresh.reset_to(context)
            divergence = Divergence(len(context), 0, record["student_text"], record["mentor_text"])
            verdict, hidden = verifier.choose_and_read(divergence)
            swapped = verifier.choose(Divergence(len(context), 0, record["mentor_text"], record["student_text"]))
            assert abs(record["mentor_judge_lean"] - verdict.lean) < 0.1
            assert abs(record["mentor_judge_lean_swapped"] + swapped.lean) < 0.1
            recorded = decode_hidden_state(record[MENTOR_HIDDEN_FIELD])
            assert recorded.shape == (size,) and np.allclose(recorded, hidden, atol=0.05 * np.abs(hidden).max())
    assert len({r["mentor_judge_lean"] for r in records}) > 1


def test_the_mentor_judge_needs_a_shared_tokenizer(tiny_paths, tmp_path, isolated_data_dir):
    task = write_bigbench(tmp_path / "many", [dict(CHOICE, input=f"How many legs, case {i}?") for i in range(300)])
    out = tmp_path / "judged.jsonl"
    args = ["verifier", "collect", str(task), *tiny_pair(tiny_paths, "other"), "--limit", "1", "--out", str(out)]
    result = CliRunner().invoke(cli, [*args, "--mentor-judge"])
    assert_one_line_error(result, "--mentor-judge needs a mentor that shares the student's tokenizer")
    assert not out.exists() or not out.read_text()


def test_a_divergence_with_no_room_left_for_the_question_is_left_unjudged(tiny_paths):
    with open_tiny(tiny_paths["mentor"]) as mentor:
        word = mentor.tokenize(b" legs")
        short, full = [dict(student_text=" four", mentor_text=" two") for _ in range(2)]
        prefixes = [word * 4, word * mentor.n_ctx]  # the second cannot fit the mentor's context
        collect_module.judge_with_mentor(mentor, word, len(word), [short, full], prefixes)
    assert isinstance(short["mentor_judge_lean"], float) and MENTOR_HIDDEN_FIELD in short
    assert not set(full) - {"student_text", "mentor_text"}
