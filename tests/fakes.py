"""A ModelBackend whose next token is scripted, for engine tests that must say
exactly where the two models part ("the mentor disagrees at the third token
of the word") without llama.cpp.

The vocabulary is a list of text pieces; text is tokenized by longest match.
A model "knows" one text, its script: at any context it predicts the token
that follows the longest end of the context found in the script (an n-gram
model of its own text), and end-of-sequence after the script's end. So a
student and a mentor with different scripts write their own texts, agree
where the scripts agree, and carry on sensibly after taking the other's text.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from edge_collab.backends.base import ModelBackend

EOS = 0
VOCABULARY = [
    "<eos>",
    " the",
    " cat",
    " sat",
    " sit",
    "t",
    "ing",
    "ed",
    " on",
    " mat",
    " a",
    " dog",
    ".",
    " and",
    " it",
    " is",
    " red",
    "Q:",
    " A:",
    "\n",
    " ",
]


class ScriptedBackend(ModelBackend):
    def __init__(self, name: str, script: str, n_ctx: int = 256, vocabulary: Sequence[str] = VOCABULARY):
        super().__init__()
        self.name, self.n_ctx = name, n_ctx
        self.pieces = list(vocabulary)
        self.n_vocab = len(self.pieces)
        self.script = self.tokenize(script.encode())
        self._sequences: dict[int, list[int]] = {0: [], 1: []}
        self.forward_batches: list[tuple[int, int]] = []  # (sequence, tokens) of every forward pass

    # ---- tokenizer -------------------------------------------------------
    def tokenize(self, text: bytes, *, special: bool = False, add_bos: bool = False) -> list[int]:
        decoded, tokens = text.decode(), []
        while decoded:
            match = max(
                (i for i, piece in enumerate(self.pieces) if i != EOS and decoded.startswith(piece)),
                key=lambda i: len(self.pieces[i]),
                default=None,
            )
            if match is None:
                raise ValueError(f"no piece for {decoded!r}")
            tokens.append(match)
            decoded = decoded[len(self.pieces[match]) :]
        return tokens

    def token_bytes(self, token: int) -> bytes:
        return b"" if token == EOS else self.pieces[token].encode()

    def is_end(self, token: int) -> bool:
        return token == EOS

    def tokenizer_fingerprint(self) -> str:
        return hashlib.sha256("\0".join(self.pieces).encode()).hexdigest()

    def chat_prompt(self, messages: Sequence[dict[str, str]], thinking: bool | None = None) -> list[int]:
        return self.tokenize(("Q: " + " ".join(m["content"] for m in messages) + " A:").encode())

    def chat_prompt_text(self, messages: Sequence[dict[str, str]], thinking: bool | None = None) -> str:
        return "Q: " + " ".join(m["content"] for m in messages) + " A:"

    # ---- the script --------------------------------------------------------
    def next_token_of(self, context: Sequence[int]) -> int:
        """The token after the longest end of `context` that the script holds."""
        script = self.script
        for length in range(min(len(context), len(script)), 0, -1):
            tail = list(context[-length:])
            for start in range(len(script) - length + 1):
                if script[start : start + length] == tail:
                    following = start + length
                    return script[following] if following < len(script) else EOS
        return script[0] if script else EOS

    def _logits(self, context: Sequence[int]) -> np.ndarray:
        row = np.zeros(self.n_vocab, dtype=np.float32)
        row[self.next_token_of(context)] = 10.0
        return row

    # ---- cache primitives ------------------------------------------------
    def _forward(self, tokens: Sequence[int], start: int, sequence: int, output_rows: int) -> np.ndarray:
        cells = self._sequences[sequence]
        del cells[start:]
        cells.extend(tokens)
        self.forward_batches.append((sequence, len(tokens)))
        end = len(cells)
        return np.stack([self._logits(cells[:position]) for position in range(end - output_rows + 1, end + 1)])

    def _forget(self, sequence: int, start: int) -> None:
        del self._sequences[sequence][start:]

    def _fork(self, source: int, target: int, start: int, end: int) -> None:
        cells = self._sequences[target]
        del cells[start:]
        cells.extend(self._sequences[source][start:end])

    def close(self) -> None:
        pass
