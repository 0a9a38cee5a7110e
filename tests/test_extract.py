"""Answer extraction, on replies the default pair really wrote (tests/fixtures)
and on the formats small models are known to produce."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge_collab.evaluation.extract import (
    extract_choice,
    extract_code,
    extract_number,
    extract_text,
    numbers_equal,
    text_matches,
)

FIXTURES = Path(__file__).parent / "fixtures" / "real_replies.jsonl"
OPTIONS = ("229", "270", "877", "266", "281")


def real_replies() -> list[dict]:
    return [json.loads(line) for line in FIXTURES.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.mark.parametrize("case", real_replies(), ids=lambda case: case["id"])
def test_real_replies(case):
    assert extract_choice(case["text"], tuple(case["options"])) == case["expected"]


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("Let me think.\nAnswer: (B)", "270"),
        ("Answer: B", "270"),
        ("**Answer:** (C) 877", "877"),
        ("Final answer: 266", "266"),
        ("So the answer is (E).", "281"),
        ("(A) is wrong, (B) is wrong, so it must be (D)", "266"),
        ("Answer: (B)\n...on reflection...\nAnswer: (D)", "266"),  # the last answer line wins
        ("The book has 270 pages.", "270"),
        ("Answer: (letter)", None),  # the instruction copied literally is not an answer
        ("I am not sure.", None),
        ("Answer: (Z)", None),  # not one of the options
        ("x = 266\n\nTherefore, the correct option is \\(\\boxed{D}\\).", "266"),
        ("Answer: (A)\nChecking again: \\boxed{\\text{(B)}}", "270"),  # the later explicit answer wins
        ("The result is \\boxed{877}.", "877"),
    ],
)
def test_choice_formats(reply, expected):
    assert extract_choice(reply, OPTIONS) == expected


def test_option_text_matches_whole_numbers_only():
    assert extract_choice("Answer: 2700", ("270", "2700")) == "2700"
    assert extract_choice("Answer: 27", ("270", "2700")) is None


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("6 * 7 = 42\nAnswer: 42", 42.0),
        ("Answer: $1,250.50", 1250.5),
        ("so we get 12, then 15.", 15.0),
        ("The answer is -3.", -3.0),
        ("no digits", None),
        ("x = 2 + 3 = 5, so \\(\\boxed{5}\\) and we are done", 5.0),
    ],
)
def test_numbers(reply, expected):
    assert extract_number(reply) == expected


def test_number_comparison():
    assert numbers_equal(1001.0, "1,001")
    assert not numbers_equal(1000.0, "1,001")
    assert not numbers_equal(None, "3")


def test_text_answers():
    assert text_matches(extract_text("thinking...\nAnswer: Paris."), "Paris")
    assert not text_matches(extract_text("Answer: Lyon"), "Paris")
    assert extract_text("no answer line") is None


def test_code_blocks():
    assert extract_code("Here:\n```python\ndef f():\n    return 1\n```\nDone") == "def f():\n    return 1\n"
    assert extract_code("```python\ndef f():\n    return 2") == "def f():\n    return 2"
    assert extract_code("def g(): pass") == "def g(): pass"
