"""The learned verifier: collection, training, ONNX export and use in the engine."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import open_tiny
from engine_helpers import generate
from test_cli import assert_one_line_error, tiny_pair
from test_tasks import CHOICE, FREE, write_bigbench
from verifier_data import synthetic_records

from edge_collab import CollabPair, GenerationSettings, ModelSettings
from edge_collab.backends.llamacpp import LlamaCppBackend
from edge_collab.cli.main import cli
from edge_collab.errors import VerifierError
from edge_collab.evaluation.runner import read_results
from edge_collab.evaluation.tasks import _is_train, load_task, select
from edge_collab.presets.registry import DEFAULT_PAIR, load_pairs, load_presets
from edge_collab.verifiers.base import Divergence
from edge_collab.verifiers.features import FEATURE_NAMES, DivergenceScores, feature_vector
from edge_collab.verifiers.named import SHIPPED_VERIFIER
from edge_collab.verifiers.onnx_verifier import OnnxVerifier, read_metadata
from edge_collab_lab.collect import RecordingVerifier
from edge_collab_lab.record_fields import HIDDEN_FIELD, decode_hidden_state, encode_hidden_state
from edge_collab_lab.training import (
    Mlp,
    _item_buckets,
    calibrate_scores,
    cross_validate,
    export_onnx,
    fit_calibration,
    load_records,
    train_mlp,
)


def test_training_learns_a_rule_and_beats_the_baselines(tmp_path):
    records = synthetic_records(tmp_path / "div.jsonl")
    out = tmp_path / "verifier.onnx"
    result = CliRunner().invoke(cli, ["verifier", "train", str(records), "--out", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "ties excluded: 1" in result.output
    verifier = OnnxVerifier(out)
    metrics = json.loads(verifier.metadata["metrics"])["held_out"]
    assert metrics["learned"]["accuracy"] > 0.85
    assert metrics["learned"]["accuracy"] > metrics["self"]["accuracy"]
    assert metrics["learned"]["accuracy"] > max(
        metrics["always_mentor"]["accuracy"], metrics["always_student"]["accuracy"]
    )
    pooled = json.loads(verifier.metadata["metrics"])["cross_validated"]
    assert pooled["divergences"]["count"] == 400 and pooled["learned"]["accuracy"] > 0.85
    # The self verifier here is a coin (margin 0 keeps the student): the learned
    # rule wins most disagreements, far beyond chance.
    versus = pooled["learned_vs_self"]
    assert versus["wins"] > 3 * versus["losses"] and versus["p"] < 1e-6
    assert "learned right where self was wrong" in result.output
    assert "5-fold, learned" in result.output
    one_fold = CliRunner().invoke(cli, ["verifier", "train", str(records), "--out", str(out), "--folds", "1"])
    assert one_fold.exit_code == 2 and "at least 2 folds" in one_fold.output
    assert verifier.trained_for == ("s", "m")
    assert json.loads(verifier.metadata["feature_names"]) == list(FEATURE_NAMES)
    info = CliRunner().invoke(cli, ["verifier", "info", str(out)], catch_exceptions=False)
    assert "feature_set_version: 1" in info.output and "training_command: edge-collab verifier train" in info.output


def test_a_belief_trained_verifier_is_judged_on_outcomes_of_other_items(tmp_path):
    beliefs = synthetic_records(tmp_path / "cheap.jsonl", count=400, belief_only=True)
    outcomes = synthetic_records(
        tmp_path / "finished.jsonl", count=100, seed=1, item_ids=[f"item-{n}" for n in range(150, 200)]
    )
    out = tmp_path / "verifier.onnx"
    args = ["verifier", "train", str(beliefs), "--out", str(out), "--label", "belief", "--evaluate-on", str(outcomes)]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    # items 150-199 of the cheap file are the judged file's items: left out of training
    assert "decisive divergences (belief label): 300" in result.output
    assert "left out for --evaluate-on: 100" in result.output
    metrics = json.loads(OnnxVerifier(out).metadata["metrics"])
    assert metrics["label"] == "belief" and metrics["outcome_test"]["divergences"]["count"] == 100
    assert metrics["outcome_test"]["learned"]["accuracy"] > 0.85
    # the outcome label alone finds nothing decisive in the cheap file
    refused = CliRunner().invoke(cli, ["verifier", "train", str(beliefs), "--out", str(out)])
    assert refused.exit_code == 1 and "no divergences decisive under the outcome label" in refused.output
    both = CliRunner().invoke(cli, ["verifier", "train", str(outcomes), "--out", str(out), "--label", "belief"])
    assert "the belief label agrees with the outcome on 100.0% of 100 divergences" in both.output


def test_leaving_items_out_leaves_out_their_ties_too(tmp_path):
    data = load_records([synthetic_records(tmp_path / "div.jsonl")])
    assert data.ties == 1 and len(data.labels) == 400
    without_tie, dropped = data.without_items({"tie"})
    assert (without_tie.ties, dropped, len(without_tie.labels)) == (0, 0, 400)
    without_two, dropped = data.without_items({"item-0", "item-1"})
    assert (without_two.ties, dropped, len(without_two.labels)) == (1, 4, 396)
    assert "item-0" not in without_two.items and len(without_two.outcomes) == 396


def test_cross_validation_splits_a_task_s_training_items_into_every_fold(tmp_path):
    """Training items are picked by a hash of their id; folds must not reuse that hash unsalted."""
    training_ids = [f"task:{n}" for n in range(5000) if _is_train(f"task:{n}")][:150]
    data = load_records([synthetic_records(tmp_path / "div.jsonl", count=300, item_ids=training_ids)])
    assert np.bincount(_item_buckets(data.items, 5), minlength=5).min() > 20
    pooled = cross_validate(data, 5, epochs=300)
    assert pooled["divergences"]["count"] == 300 and pooled["learned"]["accuracy"] > 0.85


def test_onnx_matches_the_numpy_model(tmp_path):
    data = load_records([synthetic_records(tmp_path / "div.jsonl")])
    model = train_mlp(data.features, data.labels, epochs=200)
    path = tmp_path / "m.onnx"
    export_onnx(model, path, {"student": "any", "mentor": "any"})
    batch = data.features[:32]
    assert np.allclose(OnnxVerifier(path).probability(batch), model.probability(batch), atol=1e-5)


@pytest.mark.parametrize(
    ("true_scale", "base_shift", "expected"),
    [
        (0.5, 0.0, (0.5, 0.0)),  # overconfident scores are shrunk
        (2.0, 1.0, (2.0, 1.0)),  # underconfident ones stretched, and a skew put back
        (0.0, 0.85, (0.0, 0.85)),  # scores that know nothing leave the base rate alone
        (-1.0, 0.0, (0.0, 0.0)),  # and inverted ones are flattened, not turned round
    ],
)
def test_calibration_recovers_how_far_the_scores_hold(true_scale, base_shift, expected):
    rng = np.random.default_rng(0)
    logit = rng.normal(0, 2, 40_000)
    labels = (rng.random(logit.size) < 1 / (1 + np.exp(-(true_scale * logit + base_shift)))).astype(float)
    scale, shift = fit_calibration(1 / (1 + np.exp(-logit)), labels)
    assert scale == pytest.approx(expected[0], abs=0.05) and shift == pytest.approx(expected[1], abs=0.05)


def test_calibration_of_separating_or_constant_scores_is_finite(recwarn):
    scale, shift = fit_calibration(np.array([0.1, 0.2, 0.8, 0.9]), np.array([0.0, 0, 1, 1]))
    assert np.isfinite(scale) and scale > 1 and abs(shift) < 1e-3
    assert fit_calibration(np.full(4, 0.5), np.array([0.0, 1, 1, 1])) == (0.0, pytest.approx(np.log(3)))
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_a_calibrated_model_and_its_onnx_file_give_the_calibrated_scores(tmp_path):
    data = load_records([synthetic_records(tmp_path / "div.jsonl")])
    model = train_mlp(data.features, data.labels, epochs=200)
    calibrated = model.calibrated(0.3, -0.4)
    expected = calibrate_scores(model.probability(data.features), 0.3, -0.4)
    assert np.allclose(calibrated.probability(data.features), expected)
    export_onnx(calibrated, tmp_path / "c.onnx", {})
    assert np.allclose(OnnxVerifier(tmp_path / "c.onnx").probability(data.features), expected, atol=1e-5)


def test_training_on_labels_that_features_do_not_predict_ships_modest_log_odds(tmp_path):
    """An MLP fits noise with confident outputs; the budget controller adds at
    most a few nats to a verifier's log-odds, so train calibrates them on
    items the model never saw (unless --no-calibrate)."""
    records = synthetic_records(tmp_path / "div.jsonl")
    rng = np.random.default_rng(5)
    lines = []
    for line in records.read_text().splitlines():
        record = json.loads(line)
        if record["type"] == "divergence" and record["item"] != "tie":
            mentor_better = bool(rng.random() < 0.5)
            record |= {"mentor_correct": mentor_better, "student_correct": not mentor_better}
        lines.append(json.dumps(record))
    records.write_text("\n".join(lines) + "\n")
    data = load_records([records])
    spread, printed = {}, {}
    for flag in ("--calibrate", "--no-calibrate"):
        out = tmp_path / f"{flag}.onnx"
        result = CliRunner().invoke(cli, ["verifier", "train", str(records), "--out", str(out), flag])
        assert result.exit_code == 0, result.output
        p = OnnxVerifier(out).probability(data.features)
        spread[flag], printed[flag] = float(np.abs(np.log(p / (1 - p))).mean()), result.output
    assert spread["--calibrate"] < 0.5 < 2 < spread["--no-calibrate"]
    assert "calibrated on the 5-fold scores" in printed["--calibrate"]
    assert "calibrated" not in printed["--no-calibrate"]
    calibration = json.loads(read_metadata(tmp_path / "--calibrate.onnx")["metrics"])["calibration"]
    assert calibration["scale"] < 0.2


def test_a_verifier_with_other_features_is_refused(tmp_path):
    model = Mlp(
        np.zeros(len(FEATURE_NAMES)),
        np.ones(len(FEATURE_NAMES)),
        np.zeros((len(FEATURE_NAMES), 2)),
        np.zeros(2),
        np.zeros((2, 1)),
        np.zeros(1),
    )
    path = tmp_path / "old.onnx"
    export_onnx(model, path, {"feature_names": json.dumps(["a", "b"]), "feature_set_version": "0"})
    with pytest.raises(VerifierError, match="trained on feature set 0"):
        OnnxVerifier(path)


def test_a_file_that_is_not_a_verifier(tmp_path):
    path = tmp_path / "junk.onnx"
    path.write_bytes(b"not onnx")
    with pytest.raises(VerifierError, match="cannot load verifier"):
        OnnxVerifier(path)
    with pytest.raises(VerifierError, match="not found"):
        OnnxVerifier(tmp_path / "missing.onnx")


@pytest.fixture
def trained_verifier(tmp_path) -> Path:
    data = load_records([synthetic_records(tmp_path / "div.jsonl")])
    path = tmp_path / "v.onnx"
    export_onnx(train_mlp(data.features, data.labels, epochs=300), path, {})
    return path


@pytest.mark.parametrize("segment_tokens", [16, 1])
@pytest.mark.parametrize("mentor_fixture", ["mentor", "other_tokenizer_mentor"])
def test_the_engine_computes_scores_and_uses_the_learned_verifier(
    request, student, trained_verifier, mentor_fixture, segment_tokens
):
    mentor = request.getfixturevalue(mentor_fixture)
    seen: list[Divergence] = []

    class Spy(OnnxVerifier):
        def choose(self, divergence):
            seen.append(divergence)
            return super().choose(divergence)

    result = generate(student, mentor, Spy(trained_verifier), max_new_tokens=100, segment_tokens=segment_tokens)
    assert result.stats.divergences == len(seen) > 0
    for divergence in seen:
        scores = divergence.scores
        assert isinstance(scores, DivergenceScores)
        assert scores.student_own.size > 0 and scores.mentor_own.size > 0
        assert scores.student_cross.size > 0
        assert np.all(scores.student_own <= 0) and np.all(scores.mentor_cross <= 0)
        assert np.isfinite(feature_vector(scores)).all()
    assert result.stats.reevaluated_tokens == 0


def test_collect_records_outcomes_and_resumes(tiny_paths, tmp_path, isolated_data_dir):
    task = write_bigbench(
        tmp_path / "many", [dict(FREE, input=f"What is {i} plus {i}?", target=str(2 * i)) for i in range(300)]
    )
    out = tmp_path / "divergences.jsonl"
    args = [
        "verifier",
        "collect",
        str(task),
        *tiny_pair(tiny_paths),
        "--max-tokens",
        "40",
        "--out",
        str(out),
    ]
    first = CliRunner().invoke(cli, [*args, "--limit", "2"], catch_exceptions=False)
    assert first.exit_code == 0, first.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert lines[0]["type"] == "collect_header" and lines[0]["feature_names"] == list(FEATURE_NAMES)
    divergences = [line for line in lines if line["type"] == "divergence"]
    assert divergences and all(set(d["features"]) == set(FEATURE_NAMES) for d in divergences)
    assert all(isinstance(d["student_correct"], bool) and isinstance(d["mentor_correct"], bool) for d in divergences)
    beliefs = [d[key] for d in divergences for key in ("gold_logprob_after_student", "gold_logprob_after_mentor")]
    assert all(isinstance(b, float) and b <= 0 for b in beliefs)
    assert sum(1 for line in lines if line["type"] == "item_done") == 2
    again = CliRunner().invoke(cli, [*args, "--limit", "3"], catch_exceptions=False)
    assert again.exit_code == 0, again.output
    done = [json.loads(line)["item"] for line in out.read_text().splitlines() if '"item_done"' in line]
    assert len(done) == 3 and len(set(done)) == 3
    assert read_results(out)[0] is None  # not an eval results file: report ignores it
    other = tmp_path / "cheap.jsonl"
    cheap = [*args[:-1], str(other), "--limit", "2", "--no-finish", "--skip-items-of", str(out)]
    assert CliRunner().invoke(cli, cheap, catch_exceptions=False).exit_code == 0
    fresh = [json.loads(line)["item"] for line in other.read_text().splitlines() if '"item_done"' in line]
    assert len(fresh) == 2 and not set(fresh) & set(done)
    assert json.loads(other.read_text().splitlines()[0])["finish"] is False
    # The gold-answer label added afterwards to outcome-labelled items: the same
    # divergences, since finishing the branches leaves the answer as it was.
    relabelled = tmp_path / "relabelled.jsonl"
    again = [*args[:-1], str(relabelled), "--no-finish", "--only-items-of", str(out), "--hidden-state"]
    assert CliRunner().invoke(cli, again, catch_exceptions=False).exit_code == 0

    def divergence_view(path: Path) -> list[tuple]:
        records = [json.loads(line) for line in path.read_text().splitlines()]
        keys = ("item", "student_text", "mentor_text", "gold_logprob_after_student", "gold_logprob_after_mentor")
        return [tuple(r[key] for key in keys) for r in records if r["type"] == "divergence"]

    assert divergence_view(relabelled) == divergence_view(out)
    # --hidden-state adds the student's hidden state at the end of the self verifier's question
    hidden = [json.loads(line).get("verifier_question_hidden") for line in relabelled.read_text().splitlines()]
    vectors = [decode_hidden_state(text) for text in hidden if text is not None]
    with LlamaCppBackend(tiny_paths["student"]) as student:
        size = student.hidden_size
    assert len(vectors) == len(divergence_view(out)) and all(v.shape == (size,) for v in vectors)
    assert all(np.isfinite(v).all() for v in vectors) and len({v.tobytes() for v in vectors}) == len(vectors)
    assert not any('"verifier_question_hidden"' in line for line in out.read_text().splitlines())


def test_shards_split_the_training_items_whatever_was_collected_before(tiny_paths, tmp_path, isolated_data_dir):
    task = write_bigbench(
        tmp_path / "many", [dict(FREE, input=f"What is {i} plus {i}?", target=str(2 * i)) for i in range(300)]
    )
    train = [item.id for item in select(load_task(str(task)), "train")]
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    base = ["verifier", "collect", str(task), *tiny_pair(tiny_paths), "--max-tokens", "20", "--no-finish"]

    def items_of(path: Path) -> list[str]:
        return [json.loads(line)["item"] for line in path.read_text().splitlines() if '"item_done"' in line]

    # One collection already has the first two items; shard 2/3 (items 2, 5,
    # 8, ...) leaves out the one of them that is its own and takes the next two.
    assert CliRunner().invoke(cli, [*base, "--out", str(first), "--limit", "2"]).exit_code == 0
    sharded = [*base, "--out", str(second), "--limit", "2", "--shard", "2/3", "--skip-items-of", str(first)]
    result = CliRunner().invoke(cli, sharded)
    assert result.exit_code == 0, result.output
    assert items_of(second) == [train[4], train[7]]
    assert "--shard 2/3" in json.loads(second.read_text().splitlines()[0])["command"]
    for bad in ("0/2", "3/2", "1", "a/b"):
        refused = CliRunner().invoke(cli, [*base, "--out", str(second), "--shard", bad])
        assert refused.exit_code == 2 and "expected K/N" in refused.output


def test_reused_student_finishes_are_what_a_fresh_finish_writes(tiny_paths, tmp_path, isolated_data_dir, monkeypatch):
    """Collection reuses the student-alone finish while the answer stays on its
    greedy path; each reuse is checked here against finishing afresh."""
    checks: list[bool] = []
    reuse = RecordingVerifier._student_outcome

    def checked(self):  # type: ignore[no-untyped-def]
        reused = self.finishes_reused
        outcome = reuse(self)
        if self.finishes_reused > reused:
            fresh_tokens, fresh_correct = self._finish_and_grade(len(self.student.tokens), [])
            checks.append((fresh_tokens, fresh_correct) == self._student_finish)
        return outcome

    monkeypatch.setattr(RecordingVerifier, "_student_outcome", checked)
    task = write_bigbench(
        tmp_path / "many", [dict(FREE, input=f"What is {i} plus {i}?", target=str(2 * i)) for i in range(300)]
    )
    out = tmp_path / "divergences.jsonl"
    args = ["verifier", "collect", str(task), *tiny_pair(tiny_paths), "--max-tokens", "60", "--limit", "3"]
    result = CliRunner().invoke(cli, [*args, "--out", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert checks and all(checks)
    done = [json.loads(line) for line in out.read_text().splitlines() if '"item_done"' in line]
    assert sum(line["student_finishes_reused"] for line in done) == len(checks)


def test_the_gold_answer_label_is_what_a_fresh_context_gives(tiny_paths, tmp_path, isolated_data_dir, monkeypatch):
    """The cheap label is read on a scratch branch of the student's cache; each
    is checked here against scoring the same tokens from an empty cache."""
    from edge_collab.engine.sampling import token_logprobs

    checks: list[float] = []
    misaligned: list[float] = []  # the same, one prefix token short: what the check must tell apart
    cached = RecordingVerifier._gold_logprob

    def from_scratch(self, context):  # type: ignore[no-untyped-def]
        self.student.begin_branch(0)
        try:
            self.student.append([*context, *self._answer_cue])
            rows = self.student.score(self._gold_tokens)
        finally:
            self.student.end_branch(keep=False)
        return float(token_logprobs(rows[:-1], self._gold_tokens).sum())

    def checked(self, branch_at, then):  # type: ignore[no-untyped-def]
        value = cached(self, branch_at, then)
        prefix = self.student.tokens[:branch_at]
        checks.append(abs(value - from_scratch(self, [*prefix, *then])))
        misaligned.append(abs(value - from_scratch(self, [*prefix[:-1], *then])))
        return value

    monkeypatch.setattr(RecordingVerifier, "_gold_logprob", checked)
    task = write_bigbench(tmp_path / "many", [dict(CHOICE, input=f"How many legs, case {i}?") for i in range(300)])
    out = tmp_path / "divergences.jsonl"
    args = ["verifier", "collect", str(task), *tiny_pair(tiny_paths), "--max-tokens", "60", "--limit", "3"]
    result = CliRunner().invoke(cli, [*args, "--no-finish", "--out", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    # llama.cpp's numbers move a little with how the tokens are batched (a cached
    # prefix then a few tokens, or all in one pass): measured up to 0.04 nats,
    # where one prefix token too few moves them by 0.37 or more.
    assert checks and max(checks) < 0.1 < min(misaligned)
    divergences = [json.loads(line) for line in out.read_text().splitlines() if '"divergence"' in line]
    assert len(divergences) * 2 == len(checks)
    assert all(d["student_correct"] is None and d["mentor_correct"] is None for d in divergences)


def test_a_verifier_trained_on_hidden_states_reads_them_from_the_student(tiny_paths, tmp_path):
    """The paper's input: the student's hidden state at the end of the self
    verifier's question. Here the winner depends on that state alone."""
    with open_tiny(tiny_paths["student"]) as student:
        size = student.hidden_size
    records = synthetic_records(tmp_path / "hidden.jsonl", hidden_size=size)
    out = tmp_path / "hidden.onnx"

    def held_out_accuracy(*flags: str) -> float:
        result = CliRunner().invoke(cli, ["verifier", "train", str(records), "--out", str(out), *flags])
        assert result.exit_code == 0, result.output
        return json.loads(read_metadata(out)["metrics"])["held_out"]["learned"]["accuracy"]

    assert held_out_accuracy() < 0.7  # the 16 features know nothing of it
    assert held_out_accuracy("--hidden-state") > 0.85
    assert read_metadata(out)["hidden_state_size"] == str(size)
    with pytest.raises(VerifierError, match="needs a local student"):
        OnnxVerifier(out)
    with pytest.raises(VerifierError, match=f"hidden states of {size} numbers; other has {size // 2}"):
        OnnxVerifier(out, student=SimpleNamespace(name="other", hidden_size=size // 2))
    with pytest.raises(VerifierError, match="remote cannot return it"):
        OnnxVerifier(out, student=SimpleNamespace(name="remote", hidden_size=0))
    plain = synthetic_records(tmp_path / "plain.jsonl")
    refused = CliRunner().invoke(cli, ["verifier", "train", str(plain), "--out", str(out), "--hidden-state"])
    assert_one_line_error(refused, "no hidden state", "collect with --hidden-state")

    pair = CollabPair.open(
        str(tiny_paths["student"]),
        str(tiny_paths["mentor"]),
        verifier=str(out),
        settings=GenerationSettings(max_new_tokens=60, probe_rate=0.5, seed=3, mentor_budget=None),
        student_settings=ModelSettings(n_ctx=512),
        mentor_settings=ModelSettings(n_ctx=512),
    )
    with pair:
        reads: list[int] = []
        reader = pair.verifier._reader
        original = reader.choose_and_read
        reader.choose_and_read = lambda divergence: reads.append(1) or original(divergence)
        result = pair.generate("the cat sat on the mat. what is two plus two?")
    assert result.stats.verifier_calls > 0 and len(reads) == result.stats.verifier_calls


def test_the_shipped_verifier_is_the_default_pair_s_and_refuses_other_students(student):
    """`--verifier onnx`: trained on the default pair's outcome-labelled
    divergences (its provenance is in the README and in its metadata). It reads
    the 0.5B student's hidden state, so another student is refused in one line."""
    metadata = read_metadata(SHIPPED_VERIFIER)
    presets, pair = load_presets(), load_pairs()[DEFAULT_PAIR]
    assert metadata["student"] == Path(presets[pair.student].file).stem
    assert metadata["mentor"] == Path(presets[pair.mentor].file).stem
    assert metadata["hidden_state_size"] == "896"  # Qwen2.5-0.5B's embedding length
    assert json.loads(metadata["metrics"])["cross_validated"]["divergences"]["count"] >= 300
    # The file names its training data as they were named then, in results/verifier/ (now research/verifier/).
    repository = Path(__file__).resolve().parents[2]
    for source in json.loads(metadata["training_data"]):
        assert (repository / "research" / "verifier" / source.split(":")[0]).is_file()
    with pytest.raises(VerifierError, match=f"hidden states of 896 numbers; {student.name} has {student.hidden_size}"):
        _ = CollabPair(student, verifier="onnx").verifier
    for arguments in ([], ["onnx"]):
        shown = CliRunner().invoke(cli, ["verifier", "info", *arguments])
        assert shown.exit_code == 0 and f"student: {metadata['student']}" in shown.output.splitlines()


def test_a_divergence_collected_twice_is_merged_and_must_match(tmp_path):
    """An outcome-labelled file plus the same items collected again with
    --only-items-of --hidden-state: one record per divergence, with both."""
    finished = synthetic_records(tmp_path / "finished.jsonl", count=40)

    def collected_again(name: str, **changes: object) -> Path:
        lines = []
        for line in finished.read_text().splitlines():
            record = json.loads(line)
            if record["type"] == "divergence":
                record.update(student_correct=None, mentor_correct=None, **changes)  # as with --no-finish
                record[HIDDEN_FIELD] = encode_hidden_state(np.ones(4))
            lines.append(json.dumps(record))
        (tmp_path / name).write_text("\n".join(lines) + "\n")
        return tmp_path / name

    both = load_records([finished, collected_again("again.jsonl")], hidden_state=True)
    assert len(both.labels) == 40 and both.features.shape == (40, len(FEATURE_NAMES) + 4)
    assert both.ties == 1
    with pytest.raises(VerifierError, match="other divergences in each: collected with other settings"):
        load_records([finished, collected_again("changed.jsonl", mentor_text="other")])
    # one item whose divergences came out otherwise (a near-tie tipped by other arithmetic) is left out
    lines = collected_again("one.jsonl").read_text().splitlines()
    lines = [
        line.replace('"self_margin"', '"mentor_text": "other", "self_margin"') if '"item-3"' in line else line
        for line in lines
    ]
    (tmp_path / "one.jsonl").write_text("\n".join(lines) + "\n")
    most = load_records([finished, tmp_path / "one.jsonl"], hidden_state=True)
    assert most.differing_items == {"item-3"} and len(most.labels) == 38 and "item-3" not in most.items
    trained = CliRunner().invoke(
        cli, ["verifier", "train", str(finished), str(tmp_path / "one.jsonl"), "--out", str(tmp_path / "v.onnx")]
    )
    assert "1 training items left out: their divergences differ between files (item-3)" in trained.output


def test_collect_under_the_audit_policy_records_what_the_trigger_saw(tiny_paths, tmp_path, isolated_data_dir):
    """The data a learned trigger would be trained on: at each position where
    the mentor prefers its own token, the outcome of taking its segment there."""
    from edge_collab.verifiers.features import POSITION_FEATURE_NAMES

    task = write_bigbench(
        tmp_path / "many", [dict(FREE, input=f"What is {i} plus {i}?", target=str(2 * i)) for i in range(300)]
    )
    out = tmp_path / "audited.jsonl"
    args = ["verifier", "collect", str(task), *tiny_pair(tiny_paths), "--max-tokens", "40", "--limit", "2"]
    result = CliRunner().invoke(cli, [*args, "--probe-policy", "audit", "--out", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert lines[0]["probe_policy"] == "audit" and lines[0]["audit_tokens"] == 8
    divergences = [line for line in lines if line["type"] == "divergence"]
    assert divergences and all(set(d["position_features"]) == set(POSITION_FEATURE_NAMES) for d in divergences)
    assert all(
        d["position_features"]["agree"] == 0.0 and d["position_features"]["mentor_prefers"] > 0 for d in divergences
    )
    assert all(isinstance(d["mentor_correct"], bool) for d in divergences)
