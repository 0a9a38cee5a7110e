"""The collab loop on the real llama.cpp with tiny generated models."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
from engine_helpers import MESSAGES, generate

from edge_collab import CollabPair
from edge_collab.backends.llamacpp import LlamaCppBackend
from edge_collab.engine.answer import repeats_at_end
from edge_collab.engine.pieces import Source
from edge_collab.errors import ContextOverflowError, SettingsError
from edge_collab.settings import GenerationSettings, ModelSettings
from edge_collab.verifiers import AlwaysMentor, AlwaysStudent, SelfVerifier
from edge_collab.verifiers.base import Divergence, Verdict


def test_probe_rate_zero_is_the_student_alone_token_for_token(student, mentor):
    alone = generate(student, None, method="student")
    student.truncate(0)
    collab = generate(student, mentor, probe_rate=0.0)
    assert collab.text == alone.text
    assert collab.stats.tokens_total == alone.stats.tokens_total
    assert collab.stats.probes == 0 and collab.stats.tokens_mentor == 0


def test_always_mentor_adopts_every_divergence(student, mentor):
    result = generate(student, mentor, AlwaysMentor())
    assert result.stats.divergences > 0
    assert result.stats.adoptions == result.stats.divergences
    assert result.stats.tokens_mentor > 0
    assert any(piece.source is Source.MENTOR for piece in result.pieces)


def test_always_student_never_adopts_and_matches_the_student_alone(student, mentor):
    alone = generate(student, None, method="student")
    guided = generate(student, mentor, AlwaysStudent())
    assert guided.stats.divergences > 0 and guided.stats.adoptions == 0
    assert guided.text == alone.text


def test_stats_add_up(student, mentor):
    stats = generate(student, mentor, AlwaysMentor()).stats
    assert stats.tokens_student + stats.tokens_mentor == stats.tokens_total
    assert stats.mentor_share == pytest.approx(stats.tokens_mentor / stats.tokens_total)
    assert stats.probes >= stats.divergences >= stats.adoptions
    assert stats.mentor_decode_tokens >= stats.tokens_mentor
    assert stats.wall_s >= stats.student_s + stats.mentor_s - 1e-6
    assert stats.tokens_total <= 80


def test_pieces_reassemble_the_text(student, mentor):
    result = generate(student, mentor, AlwaysMentor())
    assert "".join(p.text for p in result.pieces) == result.text
    mentor_text = "".join(p.text for p in result.pieces if p.source is Source.MENTOR)
    assert len(mentor_text) > 0


class _RecordingBackend(LlamaCppBackend):
    """Logs every evaluated position with the exact prefix it was evaluated on."""

    def __init__(self, *args: object, **kwargs: object):
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.evaluated_prefixes: list[tuple[int, ...]] = []

    def _forward(self, tokens: Sequence[int], start: int, sequence: int, output_rows: int) -> np.ndarray:
        if sequence == 0:
            context = tuple(self.tokens[:start])
            assert len(context) == start
            for i in range(len(tokens)):
                self.evaluated_prefixes.append(context + tuple(tokens[: i + 1]))
        return super()._forward(tokens, start, sequence, output_rows)


@pytest.mark.parametrize("verifier", [AlwaysMentor(), AlwaysStudent(), None], ids=["mentor", "student", "self"])
def test_kv_caches_never_evaluate_a_token_twice(tiny_paths, verifier):
    settings = ModelSettings(n_ctx=512)
    with (
        _RecordingBackend(tiny_paths["student"], settings) as student,
        _RecordingBackend(tiny_paths["mentor"], settings) as mentor,
    ):
        result = generate(student, mentor, verifier, max_new_tokens=120, probe_rate=0.6)
        assert result.stats.divergences > 0
        for backend in (student, mentor):
            assert len(backend.evaluated_prefixes) == len(set(backend.evaluated_prefixes))
            assert backend.counters.reevaluated_tokens == 0
        # The student evaluated its prompt and what it kept, and at most every token it wrote or adopted
        # (tokens still pending when a branch is dropped or the answer ends are never evaluated).
        stats = result.stats
        assert (
            stats.student_eval_tokens <= stats.prompt_tokens + stats.student_decode_tokens + stats.mentor_decode_tokens
        )
        assert stats.student_eval_tokens >= stats.prompt_tokens + stats.tokens_total - 16


def test_same_seed_same_output_also_when_sampling(student, mentor):
    first = generate(student, mentor, temperature=0.8, seed=11)
    second = generate(student, mentor, temperature=0.8, seed=11)
    other = generate(student, mentor, temperature=0.8, seed=12)
    assert first.text == second.text
    assert [p.to_dict() for p in first.pieces] == [p.to_dict() for p in second.pieces]
    assert other.text != first.text


def test_cross_tokenizer_pair_runs_to_completion(student, other_tokenizer_mentor):
    result = generate(student, other_tokenizer_mentor, AlwaysMentor(), max_new_tokens=100)
    assert result.stats.divergences > 0 and result.stats.adoptions > 0
    assert result.stats.tokens_mentor > 0
    assert result.stats.tokens_total <= 100
    assert "".join(p.text for p in result.pieces) == result.text


def test_cross_tokenizer_with_the_self_verifier(student, other_tokenizer_mentor):
    result = generate(student, other_tokenizer_mentor, max_new_tokens=100)
    assert result.stats.verifier_calls == result.stats.divergences > 0


def test_mentor_alone_writes_everything(student, mentor):
    result = generate(student, mentor, method="mentor")
    assert result.stats.mentor_share == 1.0
    assert result.stats.mentor_decode_tokens >= result.stats.tokens_total
    assert result.stats.student_eval_tokens == 0


class _JudgeButKeepStudent:
    """Runs the self verifier's prompt, then keeps the student's segment anyway."""

    def __init__(self, student):
        self.inner = SelfVerifier(student)
        self.calls = 0

    def choose(self, divergence: Divergence) -> Verdict:
        self.inner.choose(divergence)
        self.calls += 1
        return Verdict(adopt_mentor=False)


def test_verifier_prompts_do_not_change_what_the_student_writes(student, mentor):
    alone = generate(student, None, method="student")
    judge = _JudgeButKeepStudent(student)
    judged = generate(student, mentor, judge)
    assert judge.calls > 0
    assert judged.text == alone.text


def test_stop_string_ends_the_answer_before_it(student):
    full = generate(student, None, method="student").text
    stop = full[30:34]
    result = generate(student, None, method="student", stop=(stop,))
    assert result.stats.stop_reason == "stop"
    assert result.text == full[: full.index(stop)]
    assert "".join(p.text for p in result.pieces) == result.text


def test_max_new_tokens_is_exact(student, mentor):
    result = generate(student, mentor, AlwaysMentor(), max_new_tokens=13)
    assert result.stats.tokens_total == 13
    assert result.stats.stop_reason == "length"


def test_prompt_longer_than_the_context_is_refused(student):
    long_question = [{"role": "user", "content": "the cat sat on the mat " * 100}]  # about 600 tokens
    from edge_collab.engine.generation import start_generation
    from edge_collab.engine.result import Prompts

    prompts = Prompts(student=student.chat_prompt(long_question))
    with pytest.raises(ContextOverflowError, match="prompt is .* tokens"):
        start_generation(student, None, None, GenerationSettings(method="student"), prompts)
    # Over twice the context, it is refused while being counted, before it is tokenized whole.
    with pytest.raises(ContextOverflowError, match="prompt is over 1024 tokens"):
        student.chat_prompt([{"role": "user", "content": "the cat sat on the mat " * 200}])


def test_answer_that_fills_the_context_stops_cleanly(student):
    result = generate(student, None, method="student", max_new_tokens=10_000)
    assert result.stats.stop_reason in ("context", "repeat")
    assert result.stats.prompt_tokens + result.stats.tokens_total <= student.n_ctx


def test_collab_without_a_mentor_is_a_settings_error(student):
    with pytest.raises(SettingsError, match="needs a mentor"):
        generate(student, None, AlwaysMentor())


@pytest.mark.parametrize(
    ("units", "expected"),
    [
        ([b" a"] * 12, True),
        ([b" a"] * 11, False),
        ([b" x", b" y", b" z", b" w"] * 3, True),
        ([b" x", b" y", b" z", b" w"] * 2, False),
        ([b" one", b" two", b" three"], False),
        ([b" 1", b" 2"] * 5 + [b" 3"], False),
    ],
)
def test_repeat_guard(units, expected):
    assert repeats_at_end(units) is expected


@pytest.mark.parametrize(
    "bad",
    [
        {"probe_rate": 1.5},
        {"probe_rate": -0.1},
        {"probe_rate": float("nan")},
        {"segment_tokens": 0},
        {"max_new_tokens": 0},
        {"temperature": -1.0},
        {"stop": ("",)},
    ],
)
def test_out_of_range_settings_are_refused(bad):
    with pytest.raises(SettingsError):
        GenerationSettings(**bad)


def test_without_the_repeat_guard_the_answer_runs_to_the_context(student):
    result = generate(student, None, method="student", max_new_tokens=10_000, repeat_guard=False)
    assert result.stats.stop_reason == "context"
    assert result.stats.prompt_tokens + result.stats.tokens_total == student.n_ctx


def test_an_unknown_method_is_refused_where_a_generation_starts(student, mentor):
    with pytest.raises(SettingsError, match="method must be one of collab, student"):
        generate(student, mentor, method="both")
    with pytest.raises(SettingsError, match="method must be one of"):
        CollabPair(student, mentor, settings=GenerationSettings(method="both"))


@pytest.mark.parametrize("verifier", [AlwaysMentor(), AlwaysStudent(), None], ids=["mentor", "student", "self"])
@pytest.mark.parametrize("trigger", ["mentor-prefers", "cosd"])
def test_audit_probing_on_tiny_models_reads_each_token_once(student, mentor, verifier, trigger):
    result = generate(student, mentor, verifier, probe_policy="audit", audit_tokens=6, trigger=trigger)
    stats = result.stats
    assert stats.audits > 0 and stats.probes == 0
    assert stats.reevaluated_tokens == 0
    assert stats.tokens_student + stats.tokens_mentor == stats.tokens_total
    assert "".join(piece.text for piece in result.pieces) == result.text
    if isinstance(verifier, AlwaysStudent):
        assert stats.tokens_mentor == 0 and result.text == generate(student, None, method="student").text
    # Every token the mentor read, it read once: the prompt and the answer (what it wrote itself aside).
    prompt = len(mentor.chat_prompt(MESSAGES))
    assert stats.mentor_prefill_tokens <= prompt + stats.tokens_total + stats.student_discarded_tokens


@pytest.mark.parametrize("verifier", [AlwaysMentor(), AlwaysStudent(), None], ids=["mentor", "student", "self"])
@pytest.mark.parametrize("trigger", ["mentor-prefers", "cosd"])
def test_a_pair_with_other_tokenizers_is_audited_through_the_text(student, other_tokenizer_mentor, verifier, trigger):
    result = generate(student, other_tokenizer_mentor, verifier, probe_policy="audit", audit_tokens=6, trigger=trigger)
    stats = result.stats
    assert stats.audits > 0 and stats.probes == 0 and stats.divergences > 0
    assert stats.tokens_student + stats.tokens_mentor == stats.tokens_total
    assert "".join(piece.text for piece in result.pieces) == result.text
    if isinstance(verifier, AlwaysStudent):
        assert stats.tokens_mentor == 0 and result.text == generate(student, None, method="student").text
    if isinstance(verifier, AlwaysMentor):
        assert stats.tokens_mentor > 0


def test_the_mentor_reads_only_up_to_where_cosds_rule_could_fire(student, mentor, monkeypatch):
    """CoSD's rule fires only where the student was unsure, so the mentor reads
    nothing until such a token and then all of it, in fewer batches; the
    answer is the one of reading every batch."""
    from edge_collab.engine.consult import Consultation

    settings = {"probe_policy": "audit", "audit_tokens": 4, "trigger": "cosd", "max_new_tokens": 120}
    generate(student, mentor, AlwaysMentor(), **settings)  # both runs below find the prompt cached
    gated = generate(student, mentor, AlwaysMentor(), **settings)

    def every_unread(self, trigger, frontier):  # type: ignore[no-untyped-def]
        unread = self.link.unread(frontier)
        return frontier - unread if unread else None

    monkeypatch.setattr(Consultation, "first_candidate", every_unread)
    every_batch = generate(student, mentor, AlwaysMentor(), **settings)
    assert gated.text == every_batch.text and gated.stats.adoptions == every_batch.stats.adoptions > 0
    assert gated.stats.audits < every_batch.stats.audits
    assert gated.stats.mentor_prefill_tokens <= every_batch.stats.mentor_prefill_tokens


def test_final_tokens_neither_make_a_batch_due_nor_end_it():
    """With CoSD's rule tokens the mentor has not read can already be final
    (shown, never rolled back): an unsure one among them must not count."""
    import math
    from types import SimpleNamespace

    from edge_collab.engine.consult import Consultation
    from edge_collab.engine.sampling import TokenScore
    from edge_collab.engine.trigger import CosdRule

    probabilities = {0: 0.9, 1: 0.9, 2: 0.9, 3: 0.2, 4: 0.8, 5: 0.3}  # read: 0-1; final: 0-3
    scores = {10 + position: TokenScore(math.log(p), 0.0, 0.0) for position, p in probabilities.items()}
    consultation = Consultation(
        run=SimpleNamespace(verifier=AlwaysMentor()),  # type: ignore[arg-type]
        link=SimpleNamespace(unread=lambda frontier: frontier - 2),  # type: ignore[arg-type]
        answer=SimpleNamespace(prompt_length=10, final_tokens=4),  # type: ignore[arg-type]
        writer=SimpleNamespace(scores=scores),  # type: ignore[arg-type]
        stats=None,  # type: ignore[arg-type]
        adopts=lambda verdict: True,
    )
    assert consultation.least_unread_probability(6) == pytest.approx(0.3)
    assert consultation.first_unsure(6, below=0.6) == 5
    assert consultation.first_candidate(CosdRule(alpha=0.5, beta=0.5), 6) == 5


# Batches of 8 that end early where the student gave its token less than 0.9.
EARLY_AUDIT = {
    "probe_policy": "audit",
    "audit_tokens": 8,
    "trigger": "average",
    "segment_tokens": 1,
    "mentor_budget": None,
    "max_new_tokens": 120,
    "audit_unsure_below": 0.9,
}


def test_a_batch_that_ends_at_an_unsure_token_changes_the_cost_not_the_answer(student, mentor):
    """Ending the mentor's batch early where the student was unsure moves
    where the reads fall, not what the trigger decides: the same text, fewer
    student tokens written past a firing and rolled back, more passes."""
    settings = {key: value for key, value in EARLY_AUDIT.items() if key != "audit_unsure_below"}
    full = generate(student, mentor, AlwaysMentor(), **settings)
    early = generate(student, mentor, AlwaysMentor(), audit_unsure_below=0.9, **settings)
    assert early.text == full.text and early.stats.adoptions == full.stats.adoptions > 0
    assert early.stats.student_discarded_tokens < full.stats.student_discarded_tokens
    assert early.stats.audits > full.stats.audits


def test_a_batch_that_stops_at_the_unsure_token_reads_less_past_firings(student, mentor):
    """Stopping the early batch at the unsure token instead of its word's end:
    the same text, fewer tokens read (none past a firing in that word). The
    student may roll back more: the rest of the word is judged only after
    the next word is written."""
    settings = EARLY_AUDIT
    generate(student, mentor, AlwaysMentor(), **settings)  # both runs below find the prompt cached
    at_word = generate(student, mentor, AlwaysMentor(), **settings)
    at_token = generate(student, mentor, AlwaysMentor(), audit_early_end="token", **settings)
    assert at_token.text == at_word.text and at_token.stats.adoptions == at_word.stats.adoptions > 0
    assert at_token.stats.mentor_prefill_tokens < at_word.stats.mentor_prefill_tokens


def test_pairs_matched_through_the_text_end_early_batches_at_word_ends(student, other_tokenizer_mentor):
    """Positions matched through the text need a word end: "token" changes nothing there."""
    settings = {**EARLY_AUDIT, "max_new_tokens": 60}
    generate(student, other_tokenizer_mentor, AlwaysMentor(), **settings)  # both runs below find the prompt cached
    at_word = generate(student, other_tokenizer_mentor, AlwaysMentor(), **settings)
    at_token = generate(student, other_tokenizer_mentor, AlwaysMentor(), audit_early_end="token", **settings)
    assert at_token.text == at_word.text
    assert at_token.stats.mentor_prefill_tokens == at_word.stats.mentor_prefill_tokens
    assert at_token.stats.audits == at_word.stats.audits


def test_the_average_rule_as_a_trigger_writes_what_the_average_baseline_writes(student, mentor):
    """One-token segments at the positions where the 50/50 mixture prefers the
    mentor's first choice: the answer `average` writes one pass a token, read
    in batches instead (the mentor decodes nothing: each token taken from it
    is a first choice it read)."""
    generate(student, mentor, method="average")  # both runs below find the prompts cached
    baseline = generate(student, mentor, method="average")
    audited = generate(
        student,
        mentor,
        AlwaysMentor(),
        probe_policy="audit",
        audit_tokens=6,
        trigger="average",
        segment_tokens=1,
        mentor_budget=None,
    )
    assert audited.text == baseline.text and audited.stats.tokens_mentor == baseline.stats.tokens_mentor > 0
    # Every forward pass of the mentor is a read: the tokens it wrote are read with the next batch.
    assert audited.stats.mentor_forward_passes == audited.stats.audits
    assert audited.stats.mentor_forward_passes < baseline.stats.mentor_forward_passes


def test_the_mentor_s_segment_starts_with_the_token_the_trigger_names(student, mentor, monkeypatch):
    """Where the trigger names the token to write (the average rule: the
    mixture's choice, which may be neither model's first), the segment starts
    with it. Named as the student's own token, each firing keeps the student's
    text: the answer is the student's alone, its firings counted as the mentor's."""
    from edge_collab.engine.trigger import AverageRule

    settings = {"probe_policy": "audit", "audit_tokens": 6, "trigger": "average", "segment_tokens": 1}
    alone = generate(student, None, method="student", mentor_budget=None)
    monkeypatch.setattr(AverageRule, "choice", lambda self, position: position.student_token)
    named = generate(student, mentor, AlwaysMentor(), mentor_budget=None, **settings)
    assert named.stats.adoptions > 0 and named.text == alone.text
