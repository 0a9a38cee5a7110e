"""The learned trigger: training on audit positions, ONNX export, the
comparison with the rules, and its use in the audit loop."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import open_tiny
from engine_helpers import generate

from edge_collab.cli.main import cli
from edge_collab.engine.sampling import TokenScore
from edge_collab.engine.trigger import ENV_TRIGGER_FILE, LearnedTrigger, learned_trigger_file
from edge_collab.errors import SettingsError, VerifierError
from edge_collab.verifiers.features import POSITION_FEATURE_NAMES, Position
from edge_collab_lab.training import Mlp, export_onnx
from edge_collab_lab.trigger_training import cosd_scores, load_positions


def _position(rng: np.random.Generator, index: int) -> Position:
    student_logprob = float(np.log(rng.uniform(0.05, 0.95)))
    mentor_top = float(np.log(rng.uniform(0.3, 0.99)))
    return Position(
        index=index,
        student_token=1,
        student=TokenScore(student_logprob, float(rng.uniform(0, 3)), float(rng.uniform(0, 1))),
        mentor_token=2,
        mentor_top_logprob=mentor_top,
        mentor_student_logprob=mentor_top - float(rng.uniform(0, 5)),
        mentor_entropy=float(rng.uniform(0, 3)),
        mentor_margin=float(rng.uniform(0, 1)),
    )


def write_positions(path, count: int = 400, seed: int = 0):
    """Positions where the mentor's segment helps exactly where the mentor is
    sure (its margin above 0.5): a rule neither CoSD's nor the margin of
    preference knows."""
    rng = np.random.default_rng(seed)
    lines = [{"type": "collect_header", "student": "s", "mentor": "m", "command": "synthetic"}]
    for i in range(count):
        position = _position(rng, i % 50)
        helps = position.mentor_margin > 0.5
        features = dict(zip(POSITION_FEATURE_NAMES, map(float, position.vector()), strict=True))
        lines.append(
            {
                "type": "divergence",
                "item": f"item-{i // 8}",
                "position_features": features,
                "gold_logprob_after_student": -2.0,
                "gold_logprob_after_mentor": -1.0 if helps else -3.0,
            }
        )
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    return path


def test_a_trigger_learns_where_the_segment_helps_and_says_how_the_rules_rank(tmp_path):
    data = write_positions(tmp_path / "positions.jsonl")
    out = tmp_path / "trigger.onnx"
    result = CliRunner().invoke(
        cli, ["verifier", "train-trigger", str(data), "--out", str(out)], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert "positions: 400 from 50 items; decisive: 400" in result.output
    trigger = LearnedTrigger(out)
    metrics = json.loads(trigger.metadata["metrics"])["out_of_fold_auc"]
    assert metrics["learned"] > 0.9 > max(metrics["cosd"], metrics["mentor-prefers"])
    rng = np.random.default_rng(7)
    positions = [_position(rng, 3) for _ in range(50)]
    scores = np.array([trigger.score(p) for p in positions])
    sure = np.array([p.mentor_margin > 0.5 for p in positions])
    assert scores[sure].min() > 0 > scores[~sure].max() - 2.0  # fires where the mentor is sure
    assert (scores[sure] > 0).mean() > 0.9 and (scores[~sure] < 0).mean() > 0.9
    agreeing = _position(rng, 3)
    agreeing = Position(**{**agreeing.__dict__, "mentor_token": agreeing.student_token})
    assert trigger.score(agreeing) == -math.inf  # nothing to fetch where the mentor agrees


def test_cosd_scores_match_the_rule_in_the_loop(tmp_path):
    from edge_collab.engine.trigger import CosdRule

    rng = np.random.default_rng(3)
    positions = [_position(rng, i) for i in range(200)]
    features = np.array([p.vector() for p in positions], dtype=np.float64)
    rule = CosdRule(0.5, 0.5)
    expected = np.array([rule.score(p) for p in positions])
    got = cosd_scores(features)
    assert np.array_equal(np.isinf(got), np.isinf(expected))
    assert np.allclose(got[~np.isinf(got)], expected[~np.isinf(expected)], atol=1e-4)


def test_a_file_that_is_not_a_trigger_is_refused_in_one_line(tmp_path):
    verifier_shaped = tmp_path / "verifier.onnx"
    width = 16
    model = Mlp(np.zeros(width), np.ones(width), np.zeros((width, 2)), np.zeros(2), np.zeros((2, 1)), np.zeros(1))
    export_onnx(model, verifier_shaped, {})
    with pytest.raises(VerifierError, match="is not an edge-collab trigger"):
        LearnedTrigger(verifier_shaped)
    with pytest.raises(VerifierError, match="trigger file not found"):
        LearnedTrigger(tmp_path / "missing.onnx")


def test_no_shipped_trigger_says_how_to_get_one(monkeypatch, tmp_path):
    import edge_collab.engine.trigger as trigger_module

    monkeypatch.delenv(ENV_TRIGGER_FILE, raising=False)
    monkeypatch.setattr(trigger_module, "SHIPPED_TRIGGER", tmp_path / "none.onnx")
    with pytest.raises(SettingsError, match="no learned trigger is shipped"):
        learned_trigger_file()


def test_the_learned_trigger_runs_in_the_audit_loop(tmp_path, monkeypatch, tiny_paths):
    out = tmp_path / "trigger.onnx"
    CliRunner().invoke(
        cli, ["verifier", "train-trigger", str(write_positions(tmp_path / "p.jsonl")), "--out", str(out)]
    )
    monkeypatch.setenv(ENV_TRIGGER_FILE, str(out))
    student, mentor = open_tiny(tiny_paths["student"]), open_tiny(tiny_paths["mentor"])
    try:
        result = generate(student, mentor, None, probe_policy="audit", audit_tokens=6, trigger="learned")
    finally:
        student.close()
        mentor.close()
    stats = result.stats
    assert stats.audits > 0 and stats.divergences > 0 and stats.probes == 0
    assert stats.tokens_student + stats.tokens_mentor == stats.tokens_total


def test_positions_without_gold_labels_are_refused(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text(json.dumps({"type": "divergence", "item": "a", "features": {}}) + "\n")
    with pytest.raises(VerifierError, match="holds no positions collected under the audit policy"):
        load_positions([path])
