"""Appending text to a tokenized context without a bad seam.

Tokenizing "abc" and "def" separately can differ from tokenizing "abcdef"
(Qwen merges ".\n", for example). Text is therefore appended by re-tokenizing
the context's last word together with the new text and keeping the tokens that
still agree, so at most a few tokens are replaced.
"""

from __future__ import annotations

from collections.abc import Sequence

from edge_collab.backends.base import ModelBackend

_MAX_TOKENS_BACK = 8


def seam_tokens(model: ModelBackend, context: Sequence[int], text: bytes, floor: int) -> tuple[int, list[int]]:
    """(keep, tokens) such that context[:keep] + tokens tokenizes the context's
    text followed by `text`. Never reaches back before position `floor`."""
    start = len(context)
    while start > floor and len(context) - start < _MAX_TOKENS_BACK:
        start -= 1
        if model.starts_word(context[start]):
            break
    tail = list(context[start:])
    retokenized = model.tokenize(model.detokenize(tail) + text)
    common = 0
    for ours, theirs in zip(tail, retokenized, strict=False):
        if ours != theirs:
            break
        common += 1
    return start + common, retokenized[common:]
