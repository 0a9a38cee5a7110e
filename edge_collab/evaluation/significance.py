"""Paired significance: is one way of answering (or choosing) really better?"""

from __future__ import annotations

import math


def sign_test_p(wins: int, losses: int) -> float:
    """Two-sided exact sign test on paired outcomes, ties left out: the
    probability of a split at least this uneven if both sides were equally good."""
    trials = wins + losses
    if trials == 0:
        return 1.0
    tail = sum(math.comb(trials, k) for k in range(min(wins, losses) + 1)) / 2**trials
    return min(1.0, 2 * tail)
