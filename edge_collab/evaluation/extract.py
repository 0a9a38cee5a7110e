"""Reading the answer out of a model's reply.

Small models format answers loosely, so several readings are tried, the most
explicit first; within each, the *last* occurrence wins (models often restate
the question's options before concluding):

  1. an answer line ("Answer: (B)", "Final answer: 270", "**Answer:** B) 270")
     or a LaTeX box ("\\(\\boxed{B}\\)", which math-tuned models write instead),
     the later of the two winning;
  2. an "answer is ..." phrase anywhere;
  3. for choices, the last "(X)" naming a valid option, then the last option text.
"""

from __future__ import annotations

import re

from edge_collab.evaluation.prompts import LETTERS

_ANSWER_LINE = re.compile(r"(?im)^[\s*#>_-]*(?:the\s+)?(?:final\s+|correct\s+)?answer\s*(?:is)?\s*[:：]\s*(.+?)\s*$")
_ANSWER_PHRASE = re.compile(r"(?i)\banswer\s+(?:is|would be|should be)\s*:?\s*(.+?)(?:$|\n|(?<=[^\d])\.(?:\s|$))")
_LEADING_LETTER = re.compile(r"^[\s*_`]*(?:option\s+)?\(?([A-Z])\)?(?=$|[\s.:,;)*_`])")
_PARENTHESISED_LETTER = re.compile(r"\(([A-Z])\)")
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
_BOXED = re.compile(r"\\boxed\{((?:[^{}]|\{[^{}]*\})*)\}")
_LATEX_TEXT = re.compile(r"\\(?:text|textbf|mathrm|mathbf)\{([^{}]*)\}")


def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[*_`$\\]", "", text)).strip().lower()


def _answer_spans(text: str) -> list[str]:
    """Explicit answers in the order they appear."""
    lines = [(m.start(), m.group(1)) for m in _ANSWER_LINE.finditer(text)]
    boxes = [(m.start(), _LATEX_TEXT.sub(r"\1", m.group(1))) for m in _BOXED.finditer(text)]
    spans = [span for _, span in sorted(lines + boxes)]
    if not spans:
        spans = [m.group(1) for m in _ANSWER_PHRASE.finditer(text)]
    return spans


def _option_in(span: str, options: tuple[str, ...]) -> str | None:
    """The longest option whose text stands as a whole phrase in `span`."""
    span_norm = _normalise(span)
    hits = [
        option for option in options if re.search(rf"(?<![\w.]){re.escape(_normalise(option))}(?![\w]|\.\d)", span_norm)
    ]
    return max(hits, key=len) if hits else None


def extract_choice(text: str, options: tuple[str, ...]) -> str | None:
    """The option the reply picks, given the options in the order they were shown."""
    valid = {LETTERS[i]: option for i, option in enumerate(options)}
    for span in reversed(_answer_spans(text)):
        letter = _LEADING_LETTER.match(span)
        if letter and letter.group(1) in valid:
            return valid[letter.group(1)]
        option = _option_in(span, options)
        if option is not None:
            return option
    letters = [m.group(1) for m in _PARENTHESISED_LETTER.finditer(text) if m.group(1) in valid]
    if letters:
        return valid[letters[-1]]
    tail = text.strip().splitlines()[-1] if text.strip() else ""
    return _option_in(tail, options)


def _to_number(text: str) -> float | None:
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return None


def extract_number(text: str) -> float | None:
    for span in reversed(_answer_spans(text)):
        numbers = _NUMBER.findall(span)
        if numbers:
            return _to_number(numbers[0])
    numbers = _NUMBER.findall(text)
    return _to_number(numbers[-1]) if numbers else None


def numbers_equal(predicted: float | None, gold: str) -> bool:
    expected = _to_number(gold)
    if predicted is None or expected is None:
        return False
    return abs(predicted - expected) <= 1e-6 * max(1.0, abs(expected))


def extract_text(text: str) -> str | None:
    spans = _answer_spans(text)
    return spans[-1].strip() if spans else None


def text_matches(predicted: str | None, gold: str) -> bool:
    if predicted is None:
        return False
    return _normalise(predicted).rstrip(".") == _normalise(gold).rstrip(".")


_UNITS = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_NUMBER_WORDS = {word: value for value, word in enumerate(_UNITS)} | {
    word: 10 * (value + 2) for value, word in enumerate(_TENS)
}
_SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000}


def number_in_words(text: str | None) -> float | None:
    """The first number written in English words in `text` ("three", "twenty-one",
    "two hundred and five"), or None."""
    if not text:
        return None
    words = re.findall(r"[a-z]+", text.lower().replace("-", " "))
    total, current, seen = 0, 0, False
    for word in words:
        if word in _NUMBER_WORDS:
            current += _NUMBER_WORDS[word]
            seen = True
        elif word in _SCALES and seen:
            if _SCALES[word] == 100:
                current *= 100
            else:
                total += current * _SCALES[word]
                current = 0
        elif word == "and" and seen:
            continue
        elif seen:
            break
    return float(total + current) if seen else None


_CODE_BLOCK = re.compile(r"```(?:python|py)?[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)


def extract_code(text: str) -> str:
    """The reply's first Python code block (an unclosed one runs to the end)."""
    blocks = _CODE_BLOCK.findall(text)
    return blocks[0] if blocks else text
