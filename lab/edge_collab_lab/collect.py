"""Collecting training data for the learned verifier.

Collab runs on *training* items with the self verifier choosing, as usual. At
each divergence the recorder also finishes the answer from each branch with
the student alone (on a scratch branch of its cache) and grades both against
the gold answer: the label says which branch led to a correct answer, i.e. it
measures outcome, not imitation of the mentor. Lines are written as items
finish; a rerun skips finished items.

Finishing costs two student decodes per divergence and most divergences end
in a tie (both right or both wrong), so decisive labels are scarce. A second,
cheap and dense label comes with every divergence: the student's
log-probability of the gold answer when asked for it right after each branch
(one short forward pass per branch). Collection can skip the finishes and
record only that (`finish=False`); which label trains is chosen at training.

With `mentor_judge`, the mentor also reads the self verifier's question at
each divergence, after the item is done (so judging cannot change the run):
its log-odds for its own segment, in both option orders, and its last hidden
state. The paper's learned verifier reads a reference model's hidden state;
the mentor knows more than the student, so it is the natural reference.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from edge_collab.backends.base import ModelBackend
from edge_collab.engine.generation import start_generation
from edge_collab.engine.result import Prompts
from edge_collab.engine.sampling import TokenChooser, token_logprobs
from edge_collab.engine.writer import ModelWriter
from edge_collab.errors import ContextOverflowError, IncompatiblePairError
from edge_collab.evaluation.grading import grade
from edge_collab.evaluation.prompts import Question, build_question
from edge_collab.evaluation.tasks import Item
from edge_collab.journal import appending, read_records
from edge_collab.pair import CollabPair
from edge_collab.settings import GenerationSettings
from edge_collab.verifiers.base import Divergence, Verdict
from edge_collab.verifiers.features import FEATURE_NAMES, POSITION_FEATURE_NAMES, feature_vector
from edge_collab.verifiers.self_verifier import SelfVerifier
from edge_collab_lab.record_fields import HIDDEN_FIELD, MENTOR_HIDDEN_FIELD, MENTOR_JUDGE_FIELDS, encode_hidden_state


@dataclass
class RecordingVerifier:
    """Chooses like the self verifier and records, for each divergence, the
    features and the outcome of finishing from each branch."""

    student: ModelBackend
    item: Item
    question: Question
    prompt_length: int
    max_new_tokens: int
    finish: bool = True  # also finish from both branches and grade (the outcome label)
    hidden_state: bool = False  # also record the student's hidden state at the end of the self verifier's question
    records: list[dict] = field(default_factory=list)  # type: ignore[type-arg]
    prefixes: list[list[int]] = field(default_factory=list)  # the shared prefix of each divergence (tokens)
    needs_scores = True
    graded = True

    def __post_init__(self) -> None:
        self._self_verifier = SelfVerifier(self.student)
        # The last student-alone finish (all its tokens) and its grade. While the
        # answer stays on that greedy path (no segment adopted since), finishing
        # again from a later point of it would write the same tokens: reused.
        self._student_finish: tuple[list[int], bool] | None = None
        self.finishes_reused = 0
        self._answer_cue, self._gold_tokens = _answer_cue_and_gold(self.student, self.item, self.question)

    def choose(self, divergence: Divergence) -> Verdict:
        assert divergence.scores is not None
        hidden = None
        if self.hidden_state:
            verdict, hidden = self._self_verifier.choose_and_read(divergence)
        else:
            verdict = self._self_verifier.choose(divergence)
        assert verdict.lean is not None
        mentor_tokens = self.student.tokenize(divergence.mentor_text.encode("utf-8"))
        here = len(self.student)  # the prefix and the student's segment
        student_belief = self._gold_logprob(here, [])
        mentor_belief = self._gold_logprob(divergence.prefix_length, mentor_tokens)
        student_correct = mentor_correct = None
        if self.finish:
            student_correct = self._student_outcome()
            mentor_correct = self._finish_and_grade(divergence.prefix_length, mentor_tokens)[1]
        features = feature_vector(divergence.scores)
        self.prefixes.append(self.student.tokens[: divergence.prefix_length])
        extra = {} if hidden is None else {HIDDEN_FIELD: encode_hidden_state(hidden)}
        if divergence.position is not None:  # collected with --probe-policy audit: what the trigger saw
            values = divergence.position.vector()
            extra["position_features"] = dict(zip(POSITION_FEATURE_NAMES, map(float, values), strict=True))
        self.records.append(
            {
                "type": "divergence",
                "item": self.item.id,
                "features": {name: float(value) for name, value in zip(FEATURE_NAMES, features, strict=True)},
                "self_margin": verdict.lean,
                "self_adopted": verdict.adopt_mentor,
                "student_correct": student_correct,
                "mentor_correct": mentor_correct,
                "gold_logprob_after_student": student_belief,
                "gold_logprob_after_mentor": mentor_belief,
                "student_text": divergence.student_text,
                "mentor_text": divergence.mentor_text,
                **extra,
            }
        )
        return verdict

    def _gold_logprob(self, branch_at: int, then: list[int]) -> float | None:
        """The student's log-probability of the gold answer, asked for right
        after context[:branch_at] + then (on a scratch branch)."""
        if not self._gold_tokens:
            return None
        student = self.student
        student.begin_branch(branch_at)
        try:
            student.append([*then, *self._answer_cue])
            rows = student.score(self._gold_tokens)
        finally:
            student.end_branch(keep=False)
        return float(token_logprobs(rows[:-1], self._gold_tokens).sum())

    def _student_outcome(self) -> bool:
        here = self.student.tokens
        if self._student_finish is not None:
            finish, correct = self._student_finish
            if len(finish) >= len(here) and finish[: len(here)] == here:
                self.finishes_reused += 1
                return correct
        self._student_finish = self._finish_and_grade(len(here), [])
        return self._student_finish[1]

    def _finish_and_grade(self, branch_at: int, then: list[int]) -> tuple[list[int], bool]:
        """Finish the answer greedily with the student from context[:branch_at] +
        then; the finished context's tokens and whether the answer is correct."""
        student = self.student
        student.begin_branch(branch_at)
        try:
            student.append(then)
            writer = ModelWriter(student, TokenChooser(0.0, np.random.default_rng(0)))
            budget = self.prompt_length + self.max_new_tokens - len(student)
            writer.segment(max(0, min(budget, student.n_ctx - len(student) - 1)))
            finished = student.tokens
            reply = student.detokenize(finished[self.prompt_length :]).decode("utf-8", errors="replace")
        finally:
            student.end_branch(keep=False)
        return finished, grade(self.item, self.question, reply).correct


def judge_with_mentor(
    mentor: ModelBackend,
    mentor_prompt: list[int],
    student_prompt_length: int,
    records: list[dict],  # type: ignore[type-arg]
    prefixes: list[list[int]],
) -> None:
    """Add the mentor's reading of the self verifier's question to each record:
    `mentor_judge_lean` (log-odds for the mentor's segment as option B),
    `mentor_judge_lean_swapped` (the same segment offered as option A; small
    models favour a position, and the two orders tell it apart) and its hidden
    state at the end of the question. The pair shares a tokenizer, so the
    student's prefix tokens are the mentor's."""
    judge = SelfVerifier(mentor)
    as_b, as_a = MENTOR_JUDGE_FIELDS
    for record, prefix in zip(records, prefixes, strict=True):
        try:
            mentor.reset_to([*mentor_prompt, *prefix[student_prompt_length:]])  # keeps the cached common prefix
            divergence = Divergence(len(mentor), len(mentor_prompt), record["student_text"], record["mentor_text"])
            verdict, hidden = judge.choose_and_read(divergence)
            swapped = judge.choose(
                replace(divergence, student_text=record["mentor_text"], mentor_text=record["student_text"])
            )
        except ContextOverflowError:
            continue  # no room for the question this late in the answer: left unjudged
        assert verdict.lean is not None and swapped.lean is not None
        record[as_b] = verdict.lean
        record[as_a] = -swapped.lean
        record[MENTOR_HIDDEN_FIELD] = encode_hidden_state(hidden)


def _answer_cue_and_gold(student: ModelBackend, item: Item, question: Question) -> tuple[list[int], list[int]]:
    """The tokens that ask for the answer in the prompts' own format
    ("Answer: (letter)" or "Answer: <answer>"), and the gold answer's."""
    if question.options and item.gold in question.options:
        cue, gold = "\nAnswer: (", question.letter_of(item.gold)
    else:
        cue, gold = "\nAnswer: ", item.gold
    return student.tokenize(cue.encode("utf-8")), student.tokenize(gold.encode("utf-8"))


def finished_items(path: Path) -> tuple[set[str], int]:
    """The items a collection file has finished, and their divergences in all."""
    done: set[str] = set()
    recorded = 0
    for _, record in read_records(path):
        if record.get("type") == "item_done":
            done.add(record["item"])
            recorded += int(record["divergences"])
    return done, recorded


def local_mentor(pair: CollabPair, mentor_judge: bool) -> ModelBackend:
    """The pair's mentor, if collection can use it."""
    mentor = pair.mentor.backend
    if mentor is None:
        raise IncompatiblePairError("collecting verifier data needs a local mentor")
    if mentor_judge and mentor.tokenizer_fingerprint() != pair.student.tokenizer_fingerprint():
        raise IncompatiblePairError("--mentor-judge needs a mentor that shares the student's tokenizer")
    return mentor


def collect_divergences(
    pair: CollabPair,
    items: list[Item],
    settings: GenerationSettings,
    out: Path,
    header: dict,  # type: ignore[type-arg]
    finish: bool = True,
    on_item: Callable[[int, int], None] = lambda done, records: None,
    hidden_state: bool = False,
    mentor_judge: bool = False,
) -> tuple[int, int]:
    """Run collab on each item not yet in `out`, appending its divergences.
    Returns (items of `items` done, divergences recorded in the whole file);
    `on_item` gets the same after each item."""
    mentor = local_mentor(pair, mentor_judge)
    done_items, recorded = finished_items(out)
    with appending(out) as journal:
        if not done_items and out.stat().st_size == 0:
            journal.write({"type": "collect_header", "feature_names": list(FEATURE_NAMES), **header})
        wanted = {item.id for item in items}
        on_item(len(done_items & wanted), recorded)
        for item in items:
            if item.id in done_items:
                continue
            question = build_question(item, settings.seed)
            messages = [{"role": "user", "content": question.message}]
            prompts = Prompts(pair.student.chat_prompt(messages), mentor.chat_prompt(messages, thinking=False))
            recorder = RecordingVerifier(
                pair.student, item, question, len(prompts.student), settings.max_new_tokens, finish, hidden_state
            )
            start_generation(pair.student, pair.mentor, recorder, settings.with_changes(method="collab"), prompts).run()
            if mentor_judge:
                assert isinstance(prompts.mentor, list)
                judge_with_mentor(mentor, prompts.mentor, len(prompts.student), recorder.records, recorder.prefixes)
            done = {
                "type": "item_done",
                "item": item.id,
                "divergences": len(recorder.records),
                "student_finishes_reused": recorder.finishes_reused,
            }
            journal.write(*recorder.records, done)  # an item counts as done with all its divergences
            done_items.add(item.id)
            recorded += len(recorder.records)
            on_item(len(done_items & wanted), recorded)
    return len(done_items & wanted), recorded
