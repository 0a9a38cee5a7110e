"""The collab loop on scripted backends (tests/fakes.py): where the two models
part is known in advance, so the split, the rollback and every counter can be
checked exactly."""

from __future__ import annotations

from fakes import VOCABULARY, ScriptedBackend

from edge_collab.engine.generation import start_generation
from edge_collab.engine.local_mentor import LocalMentor
from edge_collab.engine.pieces import Source
from edge_collab.engine.result import GenerationResult, Prompts
from edge_collab.settings import GenerationSettings
from edge_collab.verifiers import AlwaysMentor, AlwaysStudent
from edge_collab.verifiers.base import Divergence, Verdict

MESSAGES = [{"role": "user", "content": "the cat"}]
STUDENT_TEXT = " the cat sitting on the mat."
MENTOR_TEXT = " the cat sitted on a red mat."


class Spy:
    """A fixed verifier that records what it was shown."""

    def __init__(self, adopt: bool):
        self.adopt = adopt
        self.seen: list[Divergence] = []

    def choose(self, divergence: Divergence) -> Verdict:
        self.seen.append(divergence)
        return Verdict(adopt_mentor=self.adopt)


def run(student, mentor, verifier, **changes) -> GenerationResult:  # type: ignore[no-untyped-def]
    settings = GenerationSettings(probe_rate=1.0, segment_tokens=4, mentor_budget=None, max_new_tokens=40).with_changes(
        **changes
    )
    prompts = Prompts(student.chat_prompt(MESSAGES), mentor.chat_prompt(MESSAGES) if mentor is not None else None)
    link = LocalMentor(mentor) if mentor is not None else None
    return start_generation(student, link, verifier, settings, prompts).run()


def test_the_split_falls_on_the_third_token_of_the_word():
    student, mentor = ScriptedBackend("student", STUDENT_TEXT), ScriptedBackend("mentor", MENTOR_TEXT)
    spy = Spy(adopt=True)
    result = run(student, mentor, spy)
    first = spy.seen[0]
    prompt_length = len(student.chat_prompt(MESSAGES))
    # " sitting" is " sit" + "t" + "ing": the mentor agrees on two tokens and would write "ed".
    word_start = len(student.tokenize(b" the cat"))
    assert first.prefix_length == prompt_length + word_start + 2
    assert first.student_text == "ing on the mat"  # the rest of the word, then k = 4 tokens from the split
    assert first.mentor_text == "ed on a red"  # k = 4 tokens from the split
    assert result.text.startswith(" the cat sitted on a red")
    sources = [piece.source for piece in result.pieces]
    first_mentor = sources.index(Source.MENTOR)
    assert "".join(piece.text for piece in result.pieces[:first_mentor]) == " the cat sitt"
    assert result.pieces[first_mentor].text == "ed on a red"


def test_a_kept_student_segment_costs_the_mentor_its_segment_and_the_student_nothing():
    student, mentor = ScriptedBackend("student", STUDENT_TEXT), ScriptedBackend("mentor", MENTOR_TEXT)
    result = run(student, mentor, AlwaysStudent())
    alone = run(ScriptedBackend("student", STUDENT_TEXT), None, None, method="student")
    assert result.text == alone.text == STUDENT_TEXT
    stats = result.stats
    assert stats.divergences == 1 and stats.adoptions == 0 and stats.tokens_mentor == 0
    assert stats.mentor_decode_tokens == 4  # one segment, decoded on a branch and dropped
    assert stats.reevaluated_tokens == 0
    answer_tokens = len(student.tokenize(STUDENT_TEXT.encode()))
    prompt_tokens = len(student.chat_prompt(MESSAGES))
    assert stats.student_eval_tokens == prompt_tokens + answer_tokens  # every token once, nothing twice
    # The mentor read the prompt and every word it was asked about, once each, and nothing more.
    assert stats.mentor_prefill_tokens == len(mentor.chat_prompt(MESSAGES)) + answer_tokens


def test_after_an_adoption_both_caches_hold_exactly_the_kept_text():
    student, mentor = ScriptedBackend("student", STUDENT_TEXT), ScriptedBackend("mentor", MENTOR_TEXT)
    result = run(student, mentor, AlwaysMentor(), max_new_tokens=12)
    prompt = student.chat_prompt(MESSAGES)
    kept = student.tokenize(result.text.encode())
    assert student.tokens[: len(prompt) + len(kept)] == prompt + kept
    assert student._sequences[0] == student.tokens[: len(student._sequences[0])]  # the cache is what it thinks
    assert mentor._sequences[0] == mentor.tokens[: len(mentor._sequences[0])]
    assert result.stats.reevaluated_tokens == 0
    assert result.stats.adoptions == result.stats.divergences >= 1


def test_when_the_mentor_agrees_it_decodes_nothing():
    student, mentor = ScriptedBackend("student", STUDENT_TEXT), ScriptedBackend("mentor", STUDENT_TEXT)
    result = run(student, mentor, AlwaysMentor())
    words = len(STUDENT_TEXT.split())
    assert result.text == STUDENT_TEXT
    assert result.stats.probes == words and result.stats.divergences == 0
    assert result.stats.mentor_decode_tokens == 0
    # Each probe is one batched read of the words since the last one: no token-by-token decoding.
    mentor_batches = [count for sequence, count in mentor.forward_batches if sequence == 0]
    assert len(mentor_batches) == words


def test_with_other_tokenizers_the_branches_part_at_the_start_of_the_word():
    student = ScriptedBackend("student", STUDENT_TEXT)
    mentor = ScriptedBackend("mentor", MENTOR_TEXT, vocabulary=[*VOCABULARY, " sitt"])
    assert mentor.tokenize(b" sitting")[0] != student.tokenize(b" sitting")[0]
    spy = Spy(adopt=True)
    result = run(student, mentor, spy)
    first = spy.seen[0]
    assert first.student_text == " sitting on"  # the whole word, then up to k tokens from its start
    assert first.mentor_text == " sitted on a"
    assert result.text.startswith(" the cat sitted on a")


def audited(student, mentor, verifier=None, **changes):  # type: ignore[no-untyped-def]
    changes = {"probe_policy": "audit", "audit_tokens": 4, **changes}
    return run(student, mentor, verifier or AlwaysMentor(), **changes)


def test_an_audit_reads_a_batch_and_fetches_the_mentor_where_it_prefers_its_own_token():
    student, mentor = ScriptedBackend("student", STUDENT_TEXT), ScriptedBackend("mentor", MENTOR_TEXT)
    spy = Spy(adopt=True)
    result = audited(student, mentor, spy)
    # " the cat sitting": five tokens reach the batch of four; the mentor would write "ed" where "ing" is.
    first = spy.seen[0]
    prompt_length = len(student.chat_prompt(MESSAGES))
    assert first.prefix_length == prompt_length + 4
    assert first.student_text == "ing on the mat" and first.mentor_text == "ed on a red"
    assert result.text.startswith(" the cat sitted on a red")
    stats = result.stats
    assert stats.probes == 0 and stats.audits >= 1 and stats.adoptions >= 1
    # "ing on the mat" (the student's segment) was written, then dropped for the mentor's.
    assert stats.student_discarded_tokens >= 4
    assert stats.reevaluated_tokens == 0


def test_when_the_mentor_agrees_an_audit_costs_one_forward_pass_per_batch():
    student, mentor = ScriptedBackend("student", STUDENT_TEXT), ScriptedBackend("mentor", STUDENT_TEXT)
    result = audited(student, mentor)
    answer_tokens = len(student.tokenize(STUDENT_TEXT.encode()))
    assert result.text == STUDENT_TEXT
    assert result.stats.divergences == 0 and result.stats.mentor_decode_tokens == 0
    assert result.stats.mentor_prefill_tokens == len(mentor.chat_prompt(MESSAGES)) + answer_tokens
    batches = [count for sequence, count in mentor.forward_batches if sequence == 0]
    assert result.stats.mentor_forward_passes == len(batches) == result.stats.audits
    assert all(count >= 4 for count in batches[:-1])  # the last batch is what was left at the end


def test_an_answer_too_short_to_probe_is_audited_at_its_end():
    """The student answers at once where the mentor would reason first: the
    first words decide how an answer goes. Four tokens never fill a batch of
    16, so the mentor reads them when the student ends."""
    mentor = ScriptedBackend("mentor", " the cat sat on the mat and it is red.")
    audited_result = audited(ScriptedBackend("student", " it is red."), mentor, audit_tokens=16)
    assert audited_result.text.startswith(" the cat sat on")
    assert audited_result.stats.tokens_mentor > 0


def test_the_cosd_trigger_fires_only_where_the_student_is_unsure():
    student, mentor = ScriptedBackend("student", STUDENT_TEXT), ScriptedBackend("mentor", MENTOR_TEXT)
    # The scripted student is sure of every token (probability near 1): CoSD's
    # rule cannot fire anywhere, so the mentor is never asked to read at all.
    result = audited(student, mentor, trigger="cosd")
    assert result.text == STUDENT_TEXT and result.stats.divergences == 0
    assert result.stats.audits == 0 and result.stats.mentor_prefill_tokens == 0
    # The mentor-prefers trigger may fire anywhere: the mentor reads it all.
    student = ScriptedBackend("student", STUDENT_TEXT)
    everywhere = audited(student, ScriptedBackend("mentor", STUDENT_TEXT), trigger="mentor-prefers")
    assert everywhere.text == STUDENT_TEXT and everywhere.stats.audits >= 1


def test_a_pair_with_other_tokenizers_is_audited_through_the_text():
    """The mentor writes " sitting" as " sitt" + "ing", the student as " sit" +
    "t" + "ing". Positions are matched where tokens start at the same byte: at
    " sit" the mentor's own " sitt" agrees, "t" starts inside it and is not
    judged, and at "ing" the mentor would write "ed": the split, at the same
    text on both sides."""
    student = ScriptedBackend("student", STUDENT_TEXT)
    mentor = ScriptedBackend("mentor", MENTOR_TEXT, vocabulary=[*VOCABULARY, " sitt"])
    spy = Spy(adopt=True)
    result = audited(student, mentor, spy)
    first = spy.seen[0]
    assert first.student_text.startswith("ing on") and first.mentor_text.startswith("ed on a")
    assert result.text.startswith(" the cat sitted on a red")
    assert result.stats.audits >= 1 and result.stats.adoptions >= 1 and result.stats.probes == 0


def test_a_verifier_that_always_takes_the_mentor_s_segment_spares_the_student_writing_its_own():
    student, mentor = ScriptedBackend("student", STUDENT_TEXT), ScriptedBackend("mentor", MENTOR_TEXT)
    judged = audited(student, mentor, Spy(adopt=True), max_new_tokens=9)
    taken = audited(ScriptedBackend("student", STUDENT_TEXT), ScriptedBackend("mentor", MENTOR_TEXT), max_new_tokens=9)
    assert taken.text == judged.text
    # At the first fetch the judged run wrote "ing on the mat" to show the verifier; the taken run only "ing".
    assert judged.stats.student_discarded_tokens - taken.stats.student_discarded_tokens == 3
    assert taken.stats.verifier_calls == 0 and judged.stats.verifier_calls == judged.stats.divergences
