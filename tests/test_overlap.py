"""A mentor in process on a thread of its own: it probes or audits while the
student writes on, and the answers are those of taking turns, token for token."""

from __future__ import annotations

import pytest
from engine_helpers import generate

from edge_collab.backends.base import ModelBackend
from edge_collab.engine.local_mentor import LocalMentor, fits_side_by_side
from edge_collab.verifiers import AlwaysMentor, AlwaysStudent

AUDIT = {"probe_policy": "audit", "audit_tokens": 6}
# CoSD's rule with a low alpha: the tiny student is sure often enough for long
# stretches of final tokens that the mentor can read ahead.
SURE_OFTEN = {**AUDIT, "trigger": "cosd", "cosd_alpha": 0.3, "max_new_tokens": 120}


@pytest.mark.parametrize(
    ("verifier", "changes"),
    [
        (None, {}),
        (None, {"temperature": 0.9, "seed": 5}),
        (AlwaysMentor(), {"probe_rate": 1.0, "segment_tokens": 8}),
        (None, {"probe_policy": "uncertainty", "uncertainty_threshold": 0.5}),
        (AlwaysMentor(), {**AUDIT, "trigger": "mentor-prefers"}),
        (None, {**AUDIT, "trigger": "cosd"}),
        (AlwaysMentor(), {**AUDIT, "trigger": "cosd", "temperature": 0.8, "seed": 2}),
        (AlwaysMentor(), {**AUDIT, "trigger": "cosd", "mentor_budget": 0.3, "stop": ("mat",)}),
        (AlwaysStudent(), {**AUDIT, "audit_tokens": 3}),
        (AlwaysMentor(), {**AUDIT, "trigger": "average", "segment_tokens": 1, "audit_unsure_below": 0.5}),
        (
            AlwaysMentor(),
            {**AUDIT, "trigger": "average", "segment_tokens": 1, "audit_unsure_below": 0.5, "audit_early_end": "token"},
        ),
    ],
    ids=[
        "greedy",
        "sampled",
        "every-word",
        "uncertainty",
        "audit",
        "audit-self",
        "audit-sampled",
        "budget",
        "student",
        "audit-unsure",
        "audit-unsure-token",
    ],
)
def test_the_mentor_on_its_own_thread_gives_the_answers_of_taking_turns(student, mentor, verifier, changes):
    generate(student, mentor, verifier, overlap=False, **changes)  # both runs below find the prompt cached
    in_turn = generate(student, mentor, verifier, overlap=False, **changes)
    overlapped = generate(student, mentor, verifier, overlap=True, **changes)
    assert overlapped.text == in_turn.text
    assert [p.source for p in overlapped.pieces] == [p.source for p in in_turn.pieces]
    for counter in ("probes", "audits", "divergences", "adoptions", "mentor_decode_tokens"):
        assert getattr(overlapped.stats, counter) == getattr(in_turn.stats, counter), counter
    # The mentor may read final tokens ahead of need (CoSD's rule leaves some final
    # unread): the same reading otherwise, plus what the answer never needed read.
    extra = overlapped.stats.mentor_prefill_tokens - in_turn.stats.mentor_prefill_tokens
    assert 0 <= extra <= overlapped.stats.mentor_read_ahead_tokens
    assert in_turn.stats.mentor_read_ahead_tokens == 0
    assert overlapped.stats.student_discarded_tokens == in_turn.stats.student_discarded_tokens
    assert in_turn.stats.tokens_written_ahead == 0
    assert overlapped.stats.tokens_written_ahead > 0  # the overlap really happened
    if in_turn.stats.divergences:
        assert overlapped.stats.tokens_ahead_rolled_back > 0  # and was rolled back where the two parted


def test_a_pair_with_other_tokenizers_audited_on_the_mentors_thread_gives_the_same_answer(
    student, other_tokenizer_mentor
):
    answers = [
        generate(student, other_tokenizer_mentor, AlwaysMentor(), overlap=overlap, trigger="cosd", **AUDIT)
        for overlap in (False, True)
    ]
    assert answers[1].text == answers[0].text and answers[0].stats.divergences > 0
    assert answers[1].stats.tokens_written_ahead > 0
    # Positions matched through the text would move with where a read stops, so
    # a pair with other tokenizers reads only when an audit is due.
    assert answers[1].stats.mentor_read_ahead_tokens == 0


def test_the_mentor_reads_final_tokens_ahead_of_need_while_the_student_writes(student, mentor):
    """CoSD's rule leaves the tokens the student was sure of final unread; a
    mentor with a thread of its own reads them meanwhile, so a batch due later
    is short, and the answer is the one of reading only when due."""
    in_turn, overlapped = [
        generate(student, mentor, AlwaysMentor(), overlap=overlap, **SURE_OFTEN)
        for overlap in (False, False, True)  # the first finds the prompt cached for the others
    ][1:]
    assert overlapped.text == in_turn.text and in_turn.stats.divergences > 0
    assert overlapped.stats.mentor_read_ahead_tokens > 0
    assert overlapped.stats.mentor_prefill_tokens >= in_turn.stats.mentor_prefill_tokens


class _Threads:
    def __init__(self, cpu_threads: int | None):
        self.cpu_threads = cpu_threads


def test_the_mentor_gets_a_thread_of_its_own_only_where_both_fit_the_cores(monkeypatch):
    monkeypatch.setattr("edge_collab.engine.local_mentor.usable_cores", lambda: 4)
    fits = [(2, 2), (1, 3), (1, 1)]
    shares = [(4, 4), (3, 2), (None, 1)]
    assert all(fits_side_by_side(_Threads(a), _Threads(b)) for a, b in fits)  # type: ignore[arg-type]
    assert not any(fits_side_by_side(_Threads(a), _Threads(b)) for a, b in shares)  # type: ignore[arg-type]


def test_the_environment_overrides_the_rule_by_cores(monkeypatch, student: ModelBackend, mentor: ModelBackend):
    local = LocalMentor(mentor)
    monkeypatch.setenv("EDGE_COLLAB_OVERLAP", "on")
    assert local.overlaps_with(student)
    monkeypatch.setenv("EDGE_COLLAB_OVERLAP", "off")
    assert not local.overlaps_with(student)
    assert LocalMentor(mentor, overlap=True).overlaps_with(student)


@pytest.mark.parametrize("changes", [{}, {**AUDIT, "trigger": "cosd"}, {**AUDIT, "audit_tokens": 3}], ids=str)
def test_a_mentor_whose_context_fills_on_its_thread_leaves_the_same_answer(tiny_paths, student, changes, caplog):
    """The mentor's context (llama.cpp's smallest, 256 tokens) fills partway
    through the answer, on its own thread while the student writes on: the
    student writes the rest alone, as when the two take turns."""
    from conftest import TEST_GPU_LAYERS

    from edge_collab.backends.llamacpp import LlamaCppBackend
    from edge_collab.settings import ModelSettings

    with LlamaCppBackend(tiny_paths["mentor"], ModelSettings(n_ctx=64, threads=1, gpu_layers=TEST_GPU_LAYERS)) as small:
        length = small.n_ctx + 60  # past the mentor's context, within the student's
        answers = []
        for overlap in (False, True, False):
            caplog.clear()
            with caplog.at_level("INFO", logger="edge_collab.engine.consult"):
                answers.append(
                    generate(student, small, AlwaysMentor(), overlap, probe_rate=1.0, max_new_tokens=length, **changes)
                )
            assert "the mentor's context is full" in caplog.text
    in_turn, overlapped = answers[0], answers[1]
    assert answers[2].text == in_turn.text  # the cache left by one run changes nothing in the next
    assert overlapped.text == in_turn.text and overlapped.stats.tokens_total == length
    assert overlapped.stats.adoptions == in_turn.stats.adoptions
    assert overlapped.stats.tokens_mentor < overlapped.stats.tokens_total  # the student wrote the rest alone


def test_where_the_mentor_reads_ahead_does_not_depend_on_when_its_thread_is_free(student, mentor, monkeypatch):
    """A batch's size moves a real model's logits, so the reads must end at the
    same places however fast the mentor is: the answer must not depend on timing."""
    import time

    real_score = mentor.score

    def reads(delay_s: float) -> list[int]:
        sizes: list[int] = []

        def score(tokens, **kwargs):  # type: ignore[no-untyped-def]
            sizes.append(len(tokens))
            time.sleep(delay_s)
            return real_score(tokens, **kwargs)

        monkeypatch.setattr(mentor, "score", score)
        result = generate(student, mentor, AlwaysMentor(), overlap=True, **{**SURE_OFTEN, "cosd_alpha": 0.2})
        assert result.stats.mentor_read_ahead_tokens > 0
        return sizes

    reads(0.0)  # the prompt is cached for both runs below
    assert reads(0.0) == reads(0.05)
