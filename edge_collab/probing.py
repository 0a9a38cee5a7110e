"""When to probe the mentor."""

from __future__ import annotations

import numpy as np


class RandomProbePolicy:
    """The paper's policy: each word step is a probe with probability `rate`
    (a true probability; the research code's `randint(1,100) < rate` is not)."""

    def __init__(self, rate: float, rng: np.random.Generator):
        self.rate = rate
        self._rng = rng

    def should_probe(self) -> bool:
        return bool(self._rng.random() < self.rate)
