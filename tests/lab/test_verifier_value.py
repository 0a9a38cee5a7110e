"""`verifier value`: the worth of taking the mentor's segment, by feature bins."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_cli import assert_one_line_error

from edge_collab.cli.main import cli
from edge_collab.verifiers.features import FEATURE_NAMES
from edge_collab_lab.value import read_graded


def graded_divergences(path: Path, outcomes: list[tuple[float, bool | None, bool | None]]) -> Path:
    """One divergence per (student entropy, student branch right, mentor branch right)."""
    header = {"type": "collect_header", "feature_names": list(FEATURE_NAMES), "student": "s", "mentor": "m"}
    lines = [json.dumps(header)]
    for number, (entropy, student_right, mentor_right) in enumerate(outcomes):
        features = {name: 0.0 for name in FEATURE_NAMES} | {"student_entropy": entropy}
        record = {"type": "divergence", "item": f"item-{number}", "features": features, "self_margin": 0.0}
        lines.append(json.dumps(record | {"student_correct": student_right, "mentor_correct": mentor_right}))
    path.write_text("\n".join(lines) + "\n")
    return path


# Low entropy: the student's branch is the one that finishes right (or both do);
# high entropy: the mentor's (or neither). Unlabelled records are not counted.
OUTCOMES = [
    (0.1, True, False),
    (0.2, True, False),
    (0.3, True, True),
    (0.4, True, False),
    (2.1, False, True),
    (2.2, False, False),
    (2.3, False, True),
    (2.4, False, True),
    (9.0, None, None),
]


def test_bins_count_who_finishes_right(tmp_path):
    low, high = read_graded([graded_divergences(tmp_path / "d.jsonl", OUTCOMES)], "student_entropy").value_bins(2)
    assert (low.low, low.high, low.divergences) == (0.1, 0.4, 4)
    assert (low.mentor_only_right, low.student_only_right, low.net_per_divergence) == (0, 3, -0.75)
    assert (high.low, high.high, high.divergences) == (2.1, 2.4, 4)
    assert (high.mentor_only_right, high.student_only_right, high.net_per_divergence) == (3, 0, 0.75)
    assert high.p == pytest.approx(0.25)  # 3 against 0 is still chance


def test_a_feature_with_one_value_gives_one_bin(tmp_path):
    (only,) = read_graded([graded_divergences(tmp_path / "d.jsonl", OUTCOMES)], "answer_position").value_bins(4)
    assert (only.divergences, only.mentor_only_right, only.student_only_right) == (8, 3, 3)


def test_the_command_prints_the_bins_and_draws_them(tmp_path):
    data = graded_divergences(tmp_path / "d.jsonl", OUTCOMES)
    plot = tmp_path / "value.png"
    args = ["verifier", "value", str(data), "--bins", "2", "--plot", str(plot)]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    rows = [line.split() for line in result.output.splitlines()[1:3]]
    assert [row[3:6] for row in rows] == [["4", "0", "3"], ["4", "3", "0"]]
    assert [row[6] for row in rows] == ["-0.750", "+0.750"]
    assert plot.read_bytes().startswith(b"\x89PNG")


def test_a_file_without_outcomes_is_a_one_line_error(tmp_path):
    data = graded_divergences(tmp_path / "d.jsonl", [(1.0, None, None)])
    assert_one_line_error(CliRunner().invoke(cli, ["verifier", "value", str(data)]), "no outcome-labelled divergences")
    unknown = CliRunner().invoke(cli, ["verifier", "value", str(data), "--by", "colour"])
    assert unknown.exit_code == 2 and "colour" in unknown.output


def test_the_mentor_s_judgement_splits_and_ranks_where_it_was_collected(tmp_path):
    data = graded_divergences(tmp_path / "d.jsonl", OUTCOMES)
    lines = [json.loads(line) for line in data.read_text().splitlines()]
    # The mentor's log-odds for its own segment: judged (collect --mentor-judge)
    # on all but the first divergence, and in reverse order of the entropy, so
    # it ranks the decisive divergences the wrong way round (AUC 0).
    for line in lines[2:]:
        line["mentor_judge_lean"] = -line["features"]["student_entropy"]
    data.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    low, high = read_graded([data], "mentor_judge_lean").value_bins(2)
    assert (low.divergences, low.mentor_only_right, low.student_only_right) == (3, 2, 0)
    assert (high.divergences, high.mentor_only_right, high.student_only_right) == (4, 1, 2)
    result = CliRunner().invoke(cli, ["verifier", "value", str(data), "--by", "mentor_judge_lean", "--bins", "2"])
    assert result.exit_code == 0, result.output
    assert "on the 5 decisive: 0.000" in result.output
    by_entropy = CliRunner().invoke(cli, ["verifier", "value", str(data), "--bins", "2"])
    assert "on the 6 decisive: 1.000" in by_entropy.output
    swapped = CliRunner().invoke(cli, ["verifier", "value", str(data), "--by", "mentor_judge_lean_swapped"])
    assert_one_line_error(swapped, "no outcome-labelled divergence has mentor_judge_lean_swapped", "--mentor-judge")
