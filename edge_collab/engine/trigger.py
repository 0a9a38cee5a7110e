"""Where to fetch a mentor segment, position by position (the audit policy).

With `--probe-policy audit` the mentor reads the student's answer in batches
and keeps its distribution at every position it read. A trigger looks at each
position, in order: what the student wrote there and how sure it was, what
the mentor would have written and how sure it is, and gives a *score* in
nats. The first position whose score exceeds the bar is where both models
roll back to and the mentor's segment is fetched (docs/method.md, "Audit
probing"). The budget controller, when the verifier cannot move (a fixed
verifier), lowers or raises the bar by its pressure.
"""

from __future__ import annotations

import math
from typing import Protocol

from edge_collab.settings import GenerationSettings
from edge_collab.verifiers.features import Position


class Trigger(Protocol):
    def score(self, position: Position) -> float:
        """How strongly to fetch the mentor's segment here, in nats; fires above the bar."""
        ...


class MentorPrefers:
    """Fires where the mentor prefers its own token to the student's by more
    than `threshold` nats: log p_mentor(its token) - log p_mentor(student's token)."""

    def __init__(self, threshold: float):
        self.threshold = threshold

    def score(self, position: Position) -> float:
        if position.agree:
            return -math.inf
        return position.mentor_top_logprob - position.mentor_student_logprob - self.threshold


class CosdRule:
    """CoSD's rule as a trigger: where the student's top probability is below
    alpha and the mentor's top token, another one, is more than beta times as
    likely as the student's is to the student. Its score is the log of that
    ratio, so a budget's pressure can lower or raise the bar."""

    def __init__(self, alpha: float, beta: float):
        self.alpha, self.beta = alpha, beta

    def score(self, position: Position) -> float:
        student_p = math.exp(position.student.logprob)
        if position.agree or student_p >= self.alpha:
            return -math.inf
        if self.beta == 0.0:
            return math.inf
        return position.mentor_top_logprob - math.log(self.beta * student_p)


def trigger_for(settings: GenerationSettings) -> Trigger:
    if settings.trigger == "cosd":
        return CosdRule(settings.cosd_alpha, settings.cosd_beta)
    return MentorPrefers(settings.trigger_threshold)
