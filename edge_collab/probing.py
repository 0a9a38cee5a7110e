"""When to probe the mentor, and how to keep its share of the answer near a budget.

Policies decide per word step. `RandomProbePolicy` is the paper's coin flip;
`UncertaintyProbePolicy` probes where the student itself is unsure (the entropy
of its next-token distribution at the word's first token, which it computes
anyway). `MentorBudget` is a feedback controller: it raises or lowers a
*pressure* that makes either policy probe more or less often until the adopted
mentor share of the answer matches a target.
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


class MentorBudget:
    """Integral controller on the adopted mentor share.

    Each step moves the pressure by `gain` times (target × step tokens − mentor
    tokens in the step): the pressure settles only where mentor tokens arrive at
    the target rate, so the long-run share has no bias (an error weighted by
    step length would have one, since adopted segments are long steps). The
    pressure is clamped to ±max_pressure against wind-up. The state carries
    across the answers of a run: a fresh run with the same seed and items
    behaves the same, and a resumed evaluation continues from the last
    recorded pressure (`CollabPair.restart_budget`).

    The engine applies the pressure where it is cheapest: added to a graded
    verifier's log-odds for the mentor's segment (the adoption bar moves, no
    extra mentor work), or else to the probe policy's rate or threshold.
    """

    def __init__(self, target: float, gain: float = 0.01, memory_tokens: float = 2000.0, max_pressure: float = 4.0):
        self.target = target
        self.gain = gain
        self.memory_tokens = memory_tokens
        self.max_pressure = max_pressure
        self.pressure = 0.0
        self._tokens = 0.0
        self._mentor_tokens = 0.0

    @property
    def recent_share(self) -> float:
        return self._mentor_tokens / self._tokens if self._tokens else 0.0

    def update(self, step_tokens: int, step_mentor_tokens: int) -> None:
        if step_tokens <= 0:
            return
        fade = math.exp(-step_tokens / self.memory_tokens)  # `recent_share` is for reports only
        self._tokens = self._tokens * fade + step_tokens
        self._mentor_tokens = self._mentor_tokens * fade + step_mentor_tokens
        error = self.target * step_tokens - step_mentor_tokens
        self.pressure = max(-self.max_pressure, min(self.max_pressure, self.pressure + self.gain * error))
