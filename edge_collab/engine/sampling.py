"""Choosing the next token from logits: greedy (the paper) or sampled."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np


class TokenChooser:
    """Greedy at temperature 0; otherwise samples with its own seeded generator."""

    def __init__(self, temperature: float, rng: np.random.Generator):
        self.temperature = temperature
        self._rng = rng

    @property
    def state(self) -> Mapping[str, Any]:
        """The random generator's state (for writing ahead and rolling back)."""
        return self._rng.bit_generator.state

    @state.setter
    def state(self, value: Mapping[str, Any]) -> None:
        self._rng.bit_generator.state = value

    def choose(self, logits: np.ndarray) -> int:
        if self.temperature <= 0.0:
            return int(np.argmax(logits))
        scaled = logits.astype(np.float64) / self.temperature
        scaled -= scaled.max()
        probabilities = np.exp(scaled)
        probabilities /= probabilities.sum()
        return int(self._rng.choice(len(probabilities), p=probabilities))


def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits.astype(np.float64) - float(np.max(logits))
    return shifted - np.log(np.exp(shifted).sum())


@dataclass(frozen=True)
class TokenScore:
    """A model's view of one position: the log-probability of the token there,
    and the entropy and top-1/top-2 margin of its distribution."""

    logprob: float
    entropy: float
    margin: float


def _shape(logprobs: np.ndarray) -> tuple[float, float]:
    probabilities = np.exp(logprobs)
    top_two = np.partition(probabilities, -2)[-2:]
    return float(-(probabilities * logprobs).sum()), float(top_two[1] - top_two[0])


def distribution_shape(logits: np.ndarray) -> tuple[float, float]:
    """Entropy (nats) and top-1 minus top-2 probability of the next-token distribution."""
    return _shape(log_softmax(logits))


def score_token(logits: np.ndarray, token: int) -> TokenScore:
    logprobs = log_softmax(logits)
    return TokenScore(float(logprobs[token]), *_shape(logprobs))


def token_logprobs(rows: np.ndarray, tokens: list[int]) -> np.ndarray:
    """Log-probability of tokens[i] under rows[i], for each i."""
    return np.array([log_softmax(rows[i])[token] for i, token in enumerate(tokens)], dtype=np.float64)
