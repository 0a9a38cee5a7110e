"""Choosing the next token from logits: greedy (the paper) or sampled."""

from __future__ import annotations

import numpy as np


class TokenChooser:
    """Greedy at temperature 0; otherwise samples with its own seeded generator."""

    def __init__(self, temperature: float, rng: np.random.Generator):
        self.temperature = temperature
        self._rng = rng

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
