"""Settings, declared once and passed through every layer.

`GenerationSettings` governs one answer (the loop of METHOD.md); `ModelSettings`
governs how one GGUF model is loaded. Both are frozen and validated on
construction, so an out-of-range value fails before any model is touched.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Literal

from edge_collab.errors import SettingsError

Mode = Literal["collab", "student", "mentor", "cosd", "nudging", "rstitch", "average", "takeover"]
# Baselines from the literature, run on the same engine (engine/baselines.py).
TOKEN_LEVEL_BASELINES = ("cosd", "nudging", "rstitch", "average")
MODES: tuple[Mode, ...] = ("collab", "student", "mentor", "cosd", "nudging", "rstitch", "average", "takeover")
ProbePolicyName = Literal["random", "uncertainty"]
PROBE_POLICIES: tuple[ProbePolicyName, ...] = ("random", "uncertainty")


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise SettingsError(message)


# The mentor share the product aims at (the paper's average share).
DEFAULT_MENTOR_BUDGET = 0.18
# Chosen on development items (README, "How the defaults were chosen"); every
# command that has these options takes its default from here.
DEFAULT_PROBE_RATE = 0.25
DEFAULT_SEGMENT_TOKENS = 16


@dataclass(frozen=True)
class GenerationSettings:
    """How one answer is generated.

    probe_rate: probability in [0, 1] that a word step probes the mentor.
    segment_tokens: lookahead length k each model writes at a divergence.
    max_new_tokens: cap on the answer, in student tokens.
    seed: seeds probe decisions and sampling; same seed, same output.
    temperature: 0 is greedy (as in the paper); above 0 samples.
    stop: strings that end the answer (not included in it).
    word_extra_tokens: cap on tokens after the first in one word step.
    repeat_guard: stop when the last units of the answer repeat.
    probe_policy: "random" (probability probe_rate) or "uncertainty" (probe when
        the student's next-token entropy reaches uncertainty_threshold nats).
    mentor_budget: target mentor share of the answers; a controller moves the
        adoption bar (or, with a fixed verifier, the probe rate or threshold)
        over the answers of a run or session. None: no controller, the paper's
        fixed loop. On by default since the development-item sweep (README,
        "How the defaults were chosen").
    cosd_alpha, cosd_beta, nudging_gamma, rstitch_tau: the baselines' parameters
        (see engine/baselines.py).
    """

    mode: Mode = "collab"
    probe_rate: float = DEFAULT_PROBE_RATE
    segment_tokens: int = DEFAULT_SEGMENT_TOKENS
    max_new_tokens: int = 512
    seed: int = 0
    temperature: float = 0.0
    stop: tuple[str, ...] = ()
    word_extra_tokens: int = 10
    repeat_guard: bool = True
    probe_policy: ProbePolicyName = "random"
    uncertainty_threshold: float = 1.0
    mentor_budget: float | None = DEFAULT_MENTOR_BUDGET
    cosd_alpha: float = 0.5
    cosd_beta: float = 0.5
    nudging_gamma: float = 0.4
    rstitch_tau: float = 0.15

    def __post_init__(self) -> None:
        _require(self.mode in MODES, f"mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        _require(
            isinstance(self.probe_rate, (int, float))
            and math.isfinite(self.probe_rate)
            and 0.0 <= self.probe_rate <= 1.0,
            f"probe rate must be a probability between 0 and 1, not {self.probe_rate}",
        )
        _require(1 <= self.segment_tokens <= 256, f"segment tokens must be 1..256, not {self.segment_tokens}")
        _require(self.max_new_tokens >= 1, f"max new tokens must be at least 1, not {self.max_new_tokens}")
        _require(
            math.isfinite(self.temperature) and 0.0 <= self.temperature <= 5.0,
            f"temperature must be between 0 and 5, not {self.temperature}",
        )
        _require(0 <= self.seed < 2**63, f"seed must be a non-negative integer below 2**63, not {self.seed}")
        _require(0 <= self.word_extra_tokens <= 64, f"word extra tokens must be 0..64, not {self.word_extra_tokens}")
        _require(all(isinstance(s, str) and s for s in self.stop), "stop strings must be non-empty")
        _require(
            self.probe_policy in PROBE_POLICIES,
            f"probe policy must be one of {', '.join(PROBE_POLICIES)}, not {self.probe_policy!r}",
        )
        _require(
            math.isfinite(self.uncertainty_threshold) and 0.0 <= self.uncertainty_threshold <= 20.0,
            f"uncertainty threshold must be 0..20 nats, not {self.uncertainty_threshold}",
        )
        for name in ("cosd_alpha", "cosd_beta", "nudging_gamma", "rstitch_tau"):
            value = getattr(self, name)
            _require(
                math.isfinite(value) and 0.0 <= value <= 1.0, f"{name.replace('_', ' ')} must be 0..1, not {value}"
            )
        _require(
            self.mentor_budget is None or (math.isfinite(self.mentor_budget) and 0.0 < self.mentor_budget < 1.0),
            f"mentor budget must be a share between 0 and 1, not {self.mentor_budget}",
        )
        object.__setattr__(self, "stop", tuple(self.stop))

    def with_changes(self, **changes: object) -> GenerationSettings:
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        _require(not unknown, f"unknown setting(s): {', '.join(unknown)}")
        return replace(self, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True)
class ModelSettings:
    """How one GGUF model is loaded into llama.cpp.

    n_ctx: context window in tokens (0 means the model's trained length, capped at 32768).
    gpu_layers: layers offloaded to the GPU (-1 all); ignored by CPU-only builds.
    threads: CPU threads (None: all cores).
    """

    n_ctx: int = 4096
    gpu_layers: int = 0
    threads: int | None = None

    def __post_init__(self) -> None:
        _require(
            self.n_ctx == 0 or 64 <= self.n_ctx <= 1_048_576, f"context size must be 64..1048576 or 0, not {self.n_ctx}"
        )
        _require(self.gpu_layers >= -1, f"GPU layers must be -1 (all) or more, not {self.gpu_layers}")
        _require(self.threads is None or 1 <= self.threads <= 512, f"threads must be 1..512, not {self.threads}")
