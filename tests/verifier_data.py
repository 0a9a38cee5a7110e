"""Synthetic divergence records, as `verifier collect` writes them, for tests
that train a verifier without collecting one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from edge_collab.verifiers.features import FEATURE_NAMES
from edge_collab_lab.record_fields import HIDDEN_FIELD, encode_hidden_state


def synthetic_records(
    path: Path,
    count: int = 400,
    seed: int = 0,
    item_ids: list[str] | None = None,
    belief_only: bool = False,
    hidden_size: int = 0,
) -> Path:
    """Divergences where the mentor's branch wins exactly when it is more confident
    than the student; `belief_only`: labelled only by the gold-answer belief, as
    `collect --no-finish` writes them. With `hidden_size`, each carries a hidden
    state and the winner depends on that alone."""
    rng = np.random.default_rng(seed)
    item_ids = item_ids or [f"item-{n}" for n in range(count // 2)]
    lines = [
        json.dumps({"type": "collect_header", "feature_names": list(FEATURE_NAMES), "student": "s", "mentor": "m"})
    ]
    for i in range(count):
        features = {name: float(rng.normal()) for name in FEATURE_NAMES}
        mentor_better = features["mentor_own_mean_logprob"] > features["student_own_mean_logprob"]
        extra = {}
        if hidden_size:
            hidden = rng.normal(size=hidden_size)
            mentor_better = bool(hidden[0] + hidden[1] > 0)
            extra = {HIDDEN_FIELD: encode_hidden_state(hidden)}
        lines.append(
            json.dumps(
                {
                    **extra,
                    "type": "divergence",
                    "item": item_ids[i // 2],
                    "features": features,
                    "self_margin": float(rng.normal()),
                    "self_adopted": False,
                    "student_correct": None if belief_only else not mentor_better,
                    "mentor_correct": None if belief_only else mentor_better,
                    "gold_logprob_after_student": -2.0,
                    "gold_logprob_after_mentor": -1.0 if mentor_better else -3.0,
                }
            )
        )
    lines.append(
        json.dumps(
            {
                "type": "divergence",
                "item": "tie",
                "features": features,
                "self_margin": 0.0,
                "student_correct": False,
                "mentor_correct": False,
            }
        )
    )
    path.write_text("\n".join(lines) + "\n")
    return path
