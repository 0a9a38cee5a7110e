"""A circuit breaker: after repeated mentor failures, stop asking for a while."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)


class CircuitBreaker:
    """Closed: calls go through. After `threshold` failures in a row it opens for
    `cooldown_s`; then one trial call is let through (half-open): success closes
    it, failure opens it again for twice as long (up to `max_cooldown_s`)."""

    def __init__(
        self,
        threshold: int = 3,
        cooldown_s: float = 10.0,
        max_cooldown_s: float = 120.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.threshold = threshold
        self.base_cooldown_s = cooldown_s
        self.max_cooldown_s = max_cooldown_s
        self._clock = clock
        self._failures = 0
        self._open_until: float | None = None
        self._cooldown_s = cooldown_s

    @property
    def is_open(self) -> bool:
        return self._open_until is not None and self._clock() < self._open_until

    def allow(self) -> bool:
        return not self.is_open

    def record_success(self) -> None:
        self._failures = 0
        self._open_until = None
        self._cooldown_s = self.base_cooldown_s

    def record_failure(self) -> None:
        self._failures += 1
        half_open_trial = self._open_until is not None
        if half_open_trial or self._failures >= self.threshold:
            if half_open_trial:
                self._cooldown_s = min(self.max_cooldown_s, self._cooldown_s * 2)
            self._open_until = self._clock() + self._cooldown_s
            logger.warning(
                "the mentor failed %d times in a row: no probes for %.0f s", self._failures, self._cooldown_s
            )
