"""How an item is asked: the chat message, with options in a seeded order."""

from __future__ import annotations

import random
import string
from dataclasses import dataclass

from edge_collab.evaluation.tasks import Item

LETTERS = string.ascii_uppercase

_FINAL_LINE = {
    "choice": 'Think step by step, then end with a final line of the form "Answer: (letter)" '
    "naming the correct option.",
    "number": 'Think step by step, then end with a final line of the form "Answer: <number>".',
    "text": 'Think step by step, then end with a final line of the form "Answer: <your answer>".',
}


@dataclass(frozen=True)
class Question:
    message: str
    options: tuple[str, ...]  # in the order shown, so options[i] is letter LETTERS[i]

    def letter_of(self, option: str) -> str:
        return LETTERS[self.options.index(option)]


def shuffled_options(item: Item, seed: int) -> tuple[str, ...]:
    # Seeded by item and seed only, so every method sees the same order.
    options = list(item.options)
    random.Random(f"{seed}:{item.id}").shuffle(options)
    return tuple(options)


def build_question(item: Item, seed: int = 0) -> Question:
    if item.kind == "code":
        message = (
            "Complete the following Python function. Reply with the whole function, "
            "imports included, in one ```python code block.\n\n```python\n" + item.question + "```"
        )
        return Question(message, ())
    if item.kind == "choice":
        options = shuffled_options(item, seed)
        if len(options) > len(LETTERS):
            options = options[: len(LETTERS)]
        listed = "\n".join(f"({LETTERS[i]}) {option}" for i, option in enumerate(options))
        message = f"{item.question.strip()}\n\nOptions:\n{listed}\n\n{_FINAL_LINE['choice']}"
        return Question(message, options)
    return Question(f"{item.question.strip()}\n\n{_FINAL_LINE[item.kind]}", ())
