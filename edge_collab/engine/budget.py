"""Keeping the mentor's share of the answer near a budget (the paper's 18% by default)."""

from __future__ import annotations

import math


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
