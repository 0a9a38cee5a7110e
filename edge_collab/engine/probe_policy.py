"""When to probe the mentor: the "decide" step of docs/method.md.

Policies decide per word step. `RandomProbePolicy` is the paper's coin flip;
`UncertaintyProbePolicy` probes where the student itself is unsure (the entropy
of its next-token distribution at the word's first token, which it computes
anyway). The budget controller (engine/budget.py) may push either policy to
probe more or less often through its *pressure*.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from edge_collab.engine.sampling import distribution_shape


@dataclass(frozen=True)
class StepSignal:
    """The student's uncertainty where a word step begins."""

    entropy: float  # nats
    margin: float  # top-1 minus top-2 probability


def step_signal(logits: np.ndarray) -> StepSignal:
    entropy, margin = distribution_shape(logits)
    return StepSignal(entropy=entropy, margin=margin)


class ProbePolicy(Protocol):
    needs_signal: bool

    def should_probe(self, signal: StepSignal | None, pressure: float) -> bool: ...

    def level(self, pressure: float) -> float:
        """The effective probe rate or threshold under `pressure` (for reports)."""
        ...


class RandomProbePolicy:
    """The paper's policy: each word step is a probe with probability `rate`
    (a true probability; the research code's `randint(1,100) < rate` is not).
    Pressure p scales the rate by e^p."""

    needs_signal = False

    def __init__(self, rate: float, rng: np.random.Generator):
        self.rate = rate
        self._rng = rng

    def level(self, pressure: float) -> float:
        return min(1.0, self.rate * math.exp(pressure))

    def should_probe(self, signal: StepSignal | None, pressure: float) -> bool:
        return bool(self._rng.random() < self.level(pressure))


class UncertaintyProbePolicy:
    """Probe when the student's next-token entropy reaches `threshold` nats.
    Pressure p divides the threshold by e^p. No randomness: the student's own
    distribution decides."""

    needs_signal = True

    def __init__(self, threshold: float):
        self.threshold = threshold

    def level(self, pressure: float) -> float:
        return self.threshold * math.exp(-pressure)

    def should_probe(self, signal: StepSignal | None, pressure: float) -> bool:
        assert signal is not None
        return signal.entropy >= self.level(pressure)


class AuditPolicy:
    """The mentor reads the answer in batches of `tokens` and a trigger
    (engine/trigger.py) decides where to fetch its segment; no word is probed
    on its own. A batch ends early at a token the student gave less than
    `unsure_below` probability: a trigger fires there most often, and the
    tokens after a firing are read and rolled back for nothing. Pressure p
    lowers the trigger's bar by p nats."""

    needs_signal = False

    def __init__(self, tokens: int, threshold: float, unsure_below: float = 0.0):
        self.tokens = tokens
        self.threshold = threshold
        self.unsure_below = unsure_below

    def level(self, pressure: float) -> float:
        return self.threshold - pressure

    def should_probe(self, signal: StepSignal | None, pressure: float) -> bool:
        return False

    def due(self, unread: int, least_probability: float = 1.0) -> bool:
        """Whether the mentor should read now, with `unread` tokens waiting, the
        least likely of which the student gave `least_probability`."""
        return unread >= self.tokens or least_probability < self.unsure_below
