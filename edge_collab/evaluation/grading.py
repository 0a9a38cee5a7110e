"""Grading one reply against its item."""

from __future__ import annotations

from dataclasses import dataclass

from edge_collab.evaluation.extract import (
    extract_choice,
    extract_code,
    extract_number,
    extract_text,
    number_in_words,
    numbers_equal,
    text_matches,
)
from edge_collab.evaluation.humaneval_exec import build_program, passes
from edge_collab.evaluation.prompts import Question
from edge_collab.evaluation.tasks import Item
from edge_collab.thinking import final_answer


@dataclass(frozen=True)
class Grade:
    prediction: str | None
    correct: bool


def grade(item: Item, question: Question, reply: str) -> Grade:
    """The reply's final answer against the item: a thinking section is not graded."""
    reply = final_answer(reply)
    if item.kind == "choice":
        chosen = extract_choice(reply, question.options)
        return Grade(chosen, item.is_correct_option(chosen))
    if item.kind == "number":
        return _grade_number(item, reply)
    if item.kind == "text":
        answer = extract_text(reply)
        return Grade(answer, any(text_matches(answer, target) for target in item.targets))
    code = extract_code(reply)
    program = build_program(item.extra["prompt"], code, item.extra["test"], item.gold)
    passed = passes(program)
    return Grade("passed" if passed else "failed", passed)


def _grade_number(item: Item, reply: str) -> Grade:
    """Right if the answer's number equals a numeric target, or its text is one
    of the targets. Where the targets spell a number in words ("three" beside
    "3"), an answer in words is read as its number too."""
    value = extract_number(reply)
    if value is not None and any(numbers_equal(value, target) for target in item.targets):
        return Grade(f"{value:g}", True)
    answer = extract_text(reply)
    if any(text_matches(answer, target) for target in item.targets):
        return Grade(answer, True)
    if answer is not None and any(number_in_words(target) is not None for target in item.targets):
        spelled = number_in_words(answer)
        if spelled is not None and any(numbers_equal(spelled, target) for target in item.targets):
            return Grade(f"{spelled:g}", True)
    return Grade(None if value is None else f"{value:g}", False)
