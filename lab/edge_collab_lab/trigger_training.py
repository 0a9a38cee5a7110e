"""Training a learned trigger for audit probing (engine/trigger.py).

Collection under the audit policy (`verifier collect --probe-policy audit`)
records, at each position where the trigger fired, what the trigger saw
(`position_features`) and the labels of taking the mentor's segment there.
Collected with the mentor-prefers trigger at 0 nats, that is the first
disagreement of every batch: every position any trigger could fire at. A
model trained on them ranks positions by how likely the mentor's segment is
to help; the rules it must beat are scored on the same positions.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge_collab.errors import VerifierError
from edge_collab.journal import read_records
from edge_collab.verifiers.features import POSITION_FEATURE_NAMES, POSITION_FEATURE_SET_VERSION
from edge_collab_lab.training import (
    BELIEF_TIE_NATS,
    Mlp,
    auc,
    export_onnx,
    fit_calibration,
    out_of_fold_scores,
    train_mlp,
)

COSD_ALPHA = COSD_BETA = 0.5  # CoSD's published rule, the baseline inside the same loop


@dataclass
class Positions:
    features: np.ndarray  # (n, len(POSITION_FEATURE_NAMES))
    gains: np.ndarray  # gold-answer log-probability after the mentor's segment minus after the student's
    items: list[str]
    sources: list[str]

    @property
    def decisive(self) -> np.ndarray:
        return np.abs(self.gains) >= BELIEF_TIE_NATS

    @property
    def labels(self) -> np.ndarray:
        return (self.gains > 0).astype(float)


def load_positions(paths: Sequence[Path]) -> Positions:
    """Every position with trigger features and both belief labels in `paths`."""
    rows, gains, items, sources = [], [], [], []
    for path in paths:
        count = 0
        for _, record in read_records(path):
            if record.get("type") == "collect_header":
                sources.append(f"{path}: {record.get('command', '')}")
            if record.get("type") != "divergence" or "position_features" not in record:
                continue
            student, mentor = record.get("gold_logprob_after_student"), record.get("gold_logprob_after_mentor")
            if student is None or mentor is None:
                continue
            named = record["position_features"]
            rows.append([float(named[name]) for name in POSITION_FEATURE_NAMES])
            gains.append(float(mentor) - float(student))
            items.append(str(record["item"]))
            count += 1
        if count == 0:
            raise VerifierError(f"{path} holds no positions collected under the audit policy with gold-answer labels")
    return Positions(np.asarray(rows, dtype=np.float64), np.asarray(gains), items, sources)


def cosd_scores(features: np.ndarray) -> np.ndarray:
    """CoSD's trigger score (engine/trigger.py CosdRule) from the features; -inf where it cannot fire."""
    column = {name: i for i, name in enumerate(POSITION_FEATURE_NAMES)}
    student_p = np.exp(features[:, column["student_logprob"]])
    score = features[:, column["mentor_top_logprob"]] - np.log(COSD_BETA * student_p)
    blocked = (features[:, column["agree"]] > 0.5) | (student_p >= COSD_ALPHA)
    return np.where(blocked, -math.inf, score)


def rule_scores(features: np.ndarray) -> dict[str, np.ndarray]:
    column = POSITION_FEATURE_NAMES.index("mentor_prefers")
    return {"cosd": cosd_scores(features), "mentor-prefers": features[:, column]}


@dataclass
class _Decisive:
    """The decisive positions, in the shape training.out_of_fold_scores reads."""

    features: np.ndarray
    labels: np.ndarray
    items: list[str]


def out_of_fold(positions: Positions, folds: int, **fit: Any) -> np.ndarray:
    """p(helps) for each decisive position from a model trained without its item's positions."""
    decisive = positions.decisive
    items = [item for item, keep in zip(positions.items, decisive, strict=True) if keep]
    chosen = _Decisive(positions.features[decisive], positions.labels[decisive], items)
    return out_of_fold_scores(chosen, folds, **fit)


def compare(positions: Positions, learned: np.ndarray) -> dict[str, float]:
    """AUC for "the mentor's segment helps" on the decisive positions, per scorer."""
    decisive = positions.decisive
    y = positions.labels[decisive]
    scored = ~np.isnan(learned)
    rules = {name: values[decisive] for name, values in rule_scores(positions.features).items()}
    result = {"learned": auc(learned[scored], y[scored])}
    result |= {name: auc(values[scored], y[scored]) for name, values in rules.items()}
    return result


def train_trigger(positions: Positions, folds: int = 5, **fit: Any) -> tuple[Mlp, dict[str, Any]]:
    decisive = positions.decisive
    if decisive.sum() < 20:
        raise VerifierError(f"{int(decisive.sum())} decisive positions are too few to train a trigger; collect more")
    scores = out_of_fold(positions, folds, **fit)
    model = train_mlp(positions.features[decisive], positions.labels[decisive], **fit)
    scored = ~np.isnan(scores)
    scale, shift = fit_calibration(scores[scored], positions.labels[decisive][scored])
    metrics = {
        "positions": len(positions.gains),
        "decisive": int(decisive.sum()),
        "helps": int(positions.labels[decisive].sum()),
        "items": len(set(positions.items)),
        "out_of_fold_auc": compare(positions, scores),
        "calibration": {"scale": scale, "shift": shift},
    }
    return model.calibrated(scale, shift), metrics


def export_trigger(model: Mlp, path: Path, metadata: dict[str, str]) -> None:
    export_onnx(
        model,
        path,
        {
            "kind": "trigger",
            "feature_names": json.dumps(list(POSITION_FEATURE_NAMES)),
            "feature_set_version": str(POSITION_FEATURE_SET_VERSION),
            "hidden_state_size": "0",
            **metadata,
        },
    )
