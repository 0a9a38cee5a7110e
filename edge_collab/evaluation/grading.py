"""Grading one reply against its item."""

from __future__ import annotations

from dataclasses import dataclass

from edge_collab.evaluation.extract import (
    extract_choice,
    extract_code,
    extract_number,
    extract_text,
    numbers_equal,
    text_matches,
)
from edge_collab.evaluation.humaneval_exec import build_program, passes
from edge_collab.evaluation.prompts import Question
from edge_collab.evaluation.tasks import Item


@dataclass(frozen=True)
class Grade:
    prediction: str | None
    correct: bool


def grade(item: Item, question: Question, reply: str) -> Grade:
    if item.kind == "choice":
        chosen = extract_choice(reply, question.options)
        return Grade(chosen, item.is_correct_option(chosen))
    if item.kind == "number":
        value = extract_number(reply)
        return Grade(None if value is None else f"{value:g}", numbers_equal(value, item.gold))
    if item.kind == "text":
        answer = extract_text(reply)
        return Grade(answer, text_matches(answer, item.gold))
    code = extract_code(reply)
    program = build_program(item.extra["prompt"], code, item.extra["test"], item.gold)
    passed = passes(program)
    return Grade("passed" if passed else "failed", passed)
