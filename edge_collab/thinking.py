"""Thinking sections: the `<think>…</think>` a reasoning model writes before
its answer.

A thinking model's answer is its thinking and then its final answer; the
mentor probes all of it, evaluation grades what follows `</think>`, the server
returns the two apart (`reasoning_content` and `content`, as llama-server and
vLLM do) and the CLI shows the thinking dimmed. Some templates open the
section in the prompt (DeepSeek-R1's ends with `<think>\\n`), so an answer may
hold only the closing tag.
"""

from __future__ import annotations

OPEN, CLOSE = "<think>", "</think>"


def split_thinking(text: str, opened: bool = False) -> tuple[str, str]:
    """(thinking, answer). Without a closing tag, text that opens a section, or
    that follows a prompt that `opened` one, is all thinking (the answer was cut
    short inside it); any other text is all answer."""
    if opened and CLOSE not in text:
        return text.strip(), ""
    head = text.lstrip()
    if head.startswith(OPEN):
        inner = head[len(OPEN) :]
        thinking, closed, answer = inner.partition(CLOSE)
        return (thinking.strip(), answer.lstrip()) if closed else (inner.strip(), "")
    if CLOSE in text and OPEN not in text.split(CLOSE, 1)[0]:
        thinking, _, answer = text.partition(CLOSE)  # the prompt opened the section
        return thinking.strip(), answer.lstrip()
    return "", text


def final_answer(text: str) -> str:
    """What follows the thinking: the part of an answer that is graded."""
    return split_thinking(text)[1]


def prompt_opens_thinking(prompt_text: str) -> bool:
    """Whether a rendered prompt ends inside an open thinking section."""
    opened = prompt_text.rfind(OPEN)
    return opened >= 0 and CLOSE not in prompt_text[opened:]


class ThinkingStream:
    """Split streamed text into thinking and answer as it arrives; a tag split
    across two chunks is held back until it is whole."""

    def __init__(self, starts_inside: bool = False):
        self.inside = starts_inside
        self._seen_text = starts_inside
        self._held = ""

    def feed(self, chunk: str) -> list[tuple[str, str]]:
        """("thinking" | "answer", text) runs for this chunk."""
        text, self._held = self._held + chunk, ""
        runs: list[tuple[str, str]] = []
        while text:
            if not self._seen_text:
                stripped = text.lstrip()
                if not stripped:
                    runs.append(("answer", text))
                    break
                if OPEN.startswith(stripped[: len(OPEN)]) and len(stripped) < len(OPEN):
                    self._held = text  # maybe the start of "<think>"
                    break
                self._seen_text = True
                if stripped.startswith(OPEN):
                    self.inside, text = True, stripped[len(OPEN) :]
                    continue
            tag = CLOSE if self.inside else OPEN
            at = text.find(tag)
            if at >= 0 and self.inside:
                runs.append(("thinking", text[:at]))
                self.inside, text = False, text[at + len(tag) :]
                continue
            keep = _partial_tag_suffix(text, CLOSE) if self.inside else 0
            runs.append(("thinking" if self.inside else "answer", text[: len(text) - keep]))
            self._held = text[len(text) - keep :]
            break
        return [(kind, part) for kind, part in runs if part]

    def finish(self) -> list[tuple[str, str]]:
        held, self._held = self._held, ""
        return [("thinking" if self.inside else "answer", held)] if held else []


def _partial_tag_suffix(text: str, tag: str) -> int:
    """Length of the longest end of `text` that begins `tag`."""
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if tag.startswith(text[-size:]):
            return size
    return 0
