"""A model writing into its own context: word steps and lookahead segments."""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from edge_collab.backends.base import ModelBackend
from edge_collab.engine.sampling import TokenChooser, TokenScore, log_softmax, score_token

RECENT_LOGITS = 64  # enough for a word step plus a lookahead segment


def ends_sentence(piece: bytes) -> bool:
    return any(mark in piece for mark in (b".", b"!", b"?", b"\n"))


@dataclass
class Written:
    tokens: list[int]
    ended: bool  # the model chose end-of-generation right after these tokens
    text: bytes | None = None  # set when only the text is known (a remote mentor)


class ModelWriter:
    """Decodes tokens from one backend, appending each to its context.

    The choice for the next position is computed once per context state and
    kept: a word step has to look at the token after the word to see that it
    starts a new word, and that same token then opens the next step.
    """

    def __init__(
        self,
        backend: ModelBackend,
        chooser: TokenChooser,
        record_scores: bool = False,
        keep_logits: int = RECENT_LOGITS,
    ):
        self.backend = backend
        self.chooser = chooser
        self.decoded_tokens = 0
        self._peeked: tuple[int, int] | None = None  # (context version, token)
        # Per context position: how sure the model was of the token it wrote there,
        # and (for the last few positions) its whole distribution. Only kept when
        # a verifier needs them (costs a softmax per token).
        self.scores: dict[int, TokenScore] | None = {} if record_scores else None
        self.recent_logits: OrderedDict[int, np.ndarray] = OrderedDict()
        self._keep_logits = keep_logits

    def checkpoint(self) -> tuple[Mapping[str, Any], int | None]:
        """Where the writer stands before it writes ahead: its random state and
        the token it already chose for the next position (chosen once, see above)."""
        peeked = self._peeked
        token = peeked[1] if peeked is not None and peeked[0] == self.backend.version else None
        return self.chooser.state, token

    def restore(self, checkpoint: tuple[Mapping[str, Any], int | None], position: int) -> None:
        """Back to `checkpoint` once the context is rolled back to `position`,
        the same context the checkpoint saw: the next token is the one chosen then,
        and later choices draw what they would have drawn."""
        state, token = checkpoint
        self.forget_from(position)
        self.chooser.state = state
        self._peeked = (self.backend.version, token) if token is not None else None

    def forget_from(self, position: int) -> None:
        """Drop what was recorded at context positions from `position` on (tokens
        written ahead and rolled back)."""
        if self.scores is not None:
            for key in [k for k in self.scores if k >= position]:
                del self.scores[key]
        for key in [k for k in self.recent_logits if k >= position]:
            del self.recent_logits[key]

    def logprob_at(self, position: int, token: int) -> float:
        """The log-probability the model gave `token` at context `position`, where
        its distribution there is still kept (the last few positions); else -inf."""
        logits = self.recent_logits.get(position)
        if logits is None or not 0 <= token < len(logits):
            return -math.inf
        return float(log_softmax(logits)[token])

    def peek(self) -> int:
        version = self.backend.version
        if self._peeked is None or self._peeked[0] != version:
            self._peeked = (version, self.chooser.choose(self.backend.next_logits()))
        return self._peeked[1]

    def take(self) -> int:
        token = self.peek()
        if self.scores is not None:
            logits = self.backend.next_logits()
            self.scores[len(self.backend)] = score_token(logits, token)
            self.recent_logits[len(self.backend)] = logits.copy()
            while len(self.recent_logits) > self._keep_logits:
                self.recent_logits.popitem(last=False)
        self.backend.append([token])
        self.decoded_tokens += 1
        return token

    def word(self, max_extra_tokens: int) -> Written:
        """One word step: the next token plus following tokens until one would
        start a new word (leading space or newline), at most `max_extra_tokens` more."""
        if self.backend.is_end(self.peek()):
            return Written([], ended=True)
        tokens = [self.take()]
        for _ in range(max_extra_tokens):
            following = self.peek()
            if self.backend.is_end(following) or self.backend.starts_word(following):
                break
            tokens.append(self.take())
        return Written(tokens, ended=False)

    def segment(self, count: int, until_sentence_end: bool = False) -> Written:
        """Up to `count` tokens, stopping early at end-of-generation (and, if
        asked, after a token that ends a sentence)."""
        tokens: list[int] = []
        while len(tokens) < count:
            if self.backend.is_end(self.peek()):
                return Written(tokens, ended=True)
            tokens.append(self.take())
            if until_sentence_end and ends_sentence(self.backend.token_bytes(tokens[-1])):
                break
        return Written(tokens, ended=False)
