"""Training the learned verifier: a small MLP in numpy, exported to ONNX.

Input: divergence records from `edge-collab verifier collect` (features, the
self verifier's choice, and two labels). Label "outcome": finishing the answer
from each branch with the student alone; only decisive divergences train, where
one branch led to a correct answer and the other did not (1 when the mentor's
did); ties (both right or both wrong) carry no signal about which branch is
better and are counted, not used. Label "belief": whether the mentor's branch
raised the student's log-probability of the gold answer, asked for right after
the branch, by more than BELIEF_TIE_NATS over the student's branch (smaller
differences count as ties). It exists for every divergence and is cheap, but
it is a proxy: what counts is the outcome, so a belief-trained verifier is
judged on outcome-labelled divergences of other items. Held-out divergences
are those of held-out *items*, so no item contributes to both sides.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from edge_collab.errors import VerifierError
from edge_collab.evaluation.significance import sign_test_p
from edge_collab.journal import read_records
from edge_collab.verifiers.features import FEATURE_NAMES, FEATURE_SET_VERSION
from edge_collab.verifiers.onnx_verifier import INPUT_NAME, OUTPUT_NAME
from edge_collab_lab.record_fields import HIDDEN_FIELD, decode_hidden_state

Label = Literal["outcome", "belief"]
BELIEF_TIE_NATS = 0.1


@dataclass
class Dataset:
    features: np.ndarray  # (n, len(FEATURE_NAMES))
    labels: np.ndarray  # 1: the mentor's branch was better
    self_margin: np.ndarray  # the self verifier's logit(B) - logit(A)
    items: list[str]
    tie_items: list[str]  # the item of each divergence the label calls a tie
    sources: list[str]
    outcomes: np.ndarray  # the outcome label where one is decisive, else nan (for comparing labels)
    differing_items: set[str] = field(default_factory=set)  # in several files, with other divergences in each

    @property
    def ties(self) -> int:
        return len(self.tie_items)

    def without_items(self, excluded: set[str]) -> tuple[Dataset, int]:
        """The divergences (decisive and ties) of other items, and how many decisive ones were dropped."""
        keep = np.asarray([item not in excluded for item in self.items], dtype=bool)
        subset = Dataset(
            self.features[keep],
            self.labels[keep],
            self.self_margin[keep],
            [item for item, kept in zip(self.items, keep, strict=True) if kept],
            [item for item in self.tie_items if item not in excluded],
            self.sources,
            self.outcomes[keep],
            self.differing_items,
        )
        return subset, int((~keep).sum())


_LABEL_FIELDS = {
    "outcome": ("student_correct", "mentor_correct"),
    "belief": ("gold_logprob_after_student", "gold_logprob_after_mentor"),
}


def label_fields(record: dict, label: Label) -> tuple[Any, Any]:  # type: ignore[type-arg]
    """The record's (student branch, mentor branch) values for `label`; None where not collected."""
    student, mentor = (record.get(key) for key in _LABEL_FIELDS[label])
    return student, mentor


def _outcome(record: dict) -> float | None:  # type: ignore[type-arg]
    student, mentor = label_fields(record, "outcome")
    if student is None or mentor is None or student == mentor:
        return None
    return 1.0 if mentor else 0.0


def _belief(record: dict) -> float | None:  # type: ignore[type-arg]
    student, mentor = label_fields(record, "belief")
    if student is None or mentor is None or abs(mentor - student) < BELIEF_TIE_NATS:
        return None
    return 1.0 if mentor > student else 0.0


def read_divergences(paths: Sequence[Path]) -> tuple[list[dict], list[str], set[str]]:  # type: ignore[type-arg]
    """Every divergence of `paths`, a provenance line per file, and the items
    left out because their files disagree.

    The same item collected in several files (an outcome-labelled file and the
    same items collected again with --only-items-of, which adds the
    gold-answer label and hidden states) gives one record per divergence,
    merged in order. Greedy decoding makes the divergences the same, unless
    the arithmetic differs (another llama.cpp version or batch layout can tip
    a near-tie between two tokens); an item whose divergences differ in count
    or text is left out. If every shared item differs, the files were
    collected with other settings: an error.
    """
    by_file: list[dict[str, list[dict]]] = []  # type: ignore[type-arg]
    sources: list[str] = []
    for path in paths:
        if not path.exists():
            raise VerifierError(f"{path}: file not found")
        items: dict[str, list[dict]] = {}  # type: ignore[type-arg]
        for number, record in read_records(path):
            if record.get("type") == "collect_header":
                sources.append(f"{path.name}: {record.get('command', '')}")
                if record.get("feature_names") != list(FEATURE_NAMES):
                    raise VerifierError(f"{path}: collected with other features; collect again")
            elif record.get("type") == "divergence":
                if any(name not in record.get("features", {}) for name in FEATURE_NAMES):
                    raise VerifierError(f"{path}:{number}: features missing")
                items.setdefault(str(record["item"]), []).append(record)
        by_file.append(items)
    merged: dict[str, list[dict]] = {}  # type: ignore[type-arg]
    shared: set[str] = set()
    differing: set[str] = set()
    for items in by_file:
        for item, records in items.items():
            earlier = merged.get(item)
            if earlier is None:
                merged[item] = records
                continue
            shared.add(item)
            if not _same_divergences(earlier, records):
                differing.add(item)
                continue
            for first, again in zip(earlier, records, strict=True):
                first.update({key: value for key, value in again.items() if first.get(key) is None})
    if differing and differing == shared:
        raise VerifierError(
            f"the {len(shared)} items found in several files have other divergences in each: "
            "collected with other settings?"
        )
    records = [record for item, records in merged.items() if item not in differing for record in records]
    return records, sources, differing


def _same_divergences(first: list[dict], again: list[dict]) -> bool:  # type: ignore[type-arg]
    texts = ("student_text", "mentor_text")
    return len(first) == len(again) and all(
        [a.get(key) for key in texts] == [b.get(key) for key in texts] for a, b in zip(first, again, strict=True)
    )


def load_records(paths: Sequence[Path], label: Label = "outcome", hidden_state: bool = False) -> Dataset:
    """The divergences decisive under `label`; the others are counted as ties
    (records collected without that label are skipped). With `hidden_state`
    each feature row ends with the student's hidden state (collect --hidden-state)."""
    features, labels, margins, items, outcomes = [], [], [], [], []
    tie_items: list[str] = []
    labelled = _outcome if label == "outcome" else _belief
    records, sources, differing = read_divergences(paths)
    for record in records:
        value = labelled(record)
        if value is None:
            if None not in label_fields(record, label):
                tie_items.append(str(record["item"]))
            continue
        row = np.asarray([float(record["features"][name]) for name in FEATURE_NAMES])
        if hidden_state:
            if record.get(HIDDEN_FIELD) is None:
                raise VerifierError(
                    f"a divergence of {record['item']} has no hidden state: collect with --hidden-state"
                )
            row = np.concatenate([row, decode_hidden_state(record[HIDDEN_FIELD])])
        features.append(row)
        labels.append(value)
        margins.append(float(record["self_margin"]))
        items.append(str(record["item"]))
        outcome = _outcome(record)
        outcomes.append(np.nan if outcome is None else outcome)
    if len({len(row) for row in features}) > 1:
        raise VerifierError("the hidden states differ in size: the files come from different students")
    width = len(features[0]) if features else len(FEATURE_NAMES)
    return Dataset(
        np.asarray(features, dtype=np.float64).reshape(-1, width),
        np.asarray(labels),
        np.asarray(margins),
        items,
        tie_items,
        sources,
        np.asarray(outcomes, dtype=np.float64),
        differing,
    )


def _item_buckets(items: Sequence[str], count: int) -> np.ndarray:
    """A bucket per divergence from a hash of its item's id: stable across runs and files.

    Salted, because the task's train/test split is itself a hash of the id:
    unsalted, every training item would fall in the same few buckets.
    """
    digests = (hashlib.sha256(f"verifier-split:{item}".encode()).hexdigest() for item in items)
    return np.asarray([int(digest[:8], 16) % count for digest in digests])


def held_out_mask(items: Sequence[str], fraction: float = 0.25) -> np.ndarray:
    """Hold out whole items, chosen by a hash of their id."""
    return _item_buckets(items, 100) < fraction * 100


def _sigmoid(logit: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-logit))


def _logit(p: np.ndarray) -> np.ndarray:
    clipped = np.clip(p, 1e-15, 1 - 1e-15)  # float64 sigmoids reach this only past logit ±34
    return np.log(clipped / (1 - clipped))


@dataclass
class Mlp:
    mean: np.ndarray
    std: np.ndarray
    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: np.ndarray

    def probability(self, x: np.ndarray) -> np.ndarray:
        hidden = np.tanh(((x - self.mean) / self.std) @ self.w1 + self.b1)
        return _sigmoid((hidden @ self.w2 + self.b2).reshape(-1))

    def calibrated(self, scale: float, shift: float) -> Mlp:
        """The same model with its logit mapped to scale × logit + shift (folded into the output layer)."""
        return Mlp(self.mean, self.std, self.w1, self.b1, self.w2 * scale, self.b2 * scale + shift)


def train_mlp(
    x: np.ndarray,
    y: np.ndarray,
    hidden: int = 16,
    epochs: int = 3000,
    learning_rate: float = 0.01,
    weight_decay: float = 1e-3,
    seed: int = 0,
) -> Mlp:
    """Full-batch Adam on class-balanced logistic loss, with L2 on the weights."""
    if len(np.unique(y)) < 2:
        raise VerifierError("training needs decisive divergences of both kinds (mentor better and student better)")
    rng = np.random.default_rng(seed)
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-6
    z = (x - mean) / std
    positive = y.mean()
    weights = np.where(y == 1, 0.5 / positive, 0.5 / (1 - positive)) / len(y)
    params = [
        rng.normal(0, 1 / np.sqrt(z.shape[1]), (z.shape[1], hidden)),
        np.zeros(hidden),
        rng.normal(0, 1 / np.sqrt(hidden), (hidden, 1)),
        np.zeros(1),
    ]
    moments = [np.zeros_like(p) for p in params]
    squares = [np.zeros_like(p) for p in params]
    for step in range(1, epochs + 1):
        w1, b1, w2, b2 = params
        h = np.tanh(z @ w1 + b1)
        p = _sigmoid((h @ w2 + b2).reshape(-1))
        d_logit = (weights * (p - y))[:, None]
        d_hidden = (d_logit @ w2.T) * (1 - h * h)
        grads = [z.T @ d_hidden + weight_decay * w1, d_hidden.sum(0), h.T @ d_logit + weight_decay * w2, d_logit.sum(0)]
        for i, grad in enumerate(grads):
            moments[i] = 0.9 * moments[i] + 0.1 * grad
            squares[i] = 0.999 * squares[i] + 0.001 * grad * grad
            corrected = moments[i] / (1 - 0.9**step)
            params[i] = params[i] - learning_rate * corrected / (np.sqrt(squares[i] / (1 - 0.999**step)) + 1e-8)
    return Mlp(mean, std, *params)


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (probability a positive outranks a negative)."""
    positives, negatives = scores[labels == 1], scores[labels == 0]
    if not len(positives) or not len(negatives):
        return float("nan")
    greater = (positives[:, None] > negatives[None, :]).sum()
    equal = (positives[:, None] == negatives[None, :]).sum()
    return float((greater + 0.5 * equal) / (len(positives) * len(negatives)))


def compare_on(dataset: Dataset, mask: np.ndarray, model: Mlp) -> dict[str, dict[str, float]]:
    """Accuracy (and AUC where a score exists) of each way to choose, on `mask`."""
    return _choices(dataset.labels[mask], model.probability(dataset.features[mask]), dataset.self_margin[mask])


def _choices(y: np.ndarray, learned: np.ndarray, margin: np.ndarray) -> dict[str, dict[str, float]]:
    learned_right = (learned > 0.5) == y
    rows = {
        "learned": {"accuracy": float(learned_right.mean()), "auc": auc(learned, y)},
        "self": {"accuracy": float(((margin > 0) == y).mean()), "auc": auc(margin, y)},
        "always_mentor": {"accuracy": float((y == 1).mean())},
        "always_student": {"accuracy": float((y == 0).mean())},
        "divergences": {"count": float(len(y))},
    }
    # On the same divergences: where exactly one of the two chose right, how
    # often it was the learned verifier, and whether that split could be chance.
    for name, right in (("self", (margin > 0) == y), ("always_mentor", y == 1)):
        wins, losses = int((learned_right & ~right).sum()), int((~learned_right & right).sum())
        rows[f"learned_vs_{name}"] = {"wins": float(wins), "losses": float(losses), "p": sign_test_p(wins, losses)}
    return rows


def cross_validate(dataset: Dataset, folds: int = 5, **training: Any) -> dict[str, dict[str, float]]:
    """Every decisive divergence scored once by a model that never saw its item.

    With a few hundred divergences one held-out quarter is a noisy verdict;
    pooling the out-of-fold predictions of `folds` models (items split by
    hash) judges the learned rule on all of them, beside the self verifier
    and the constant choices on the same divergences. `training` goes to
    train_mlp (hidden, epochs, learning_rate, weight_decay, seed).
    """
    return scored_choices(dataset, out_of_fold_scores(dataset, folds, **training))


def scored_choices(dataset: Dataset, scores: np.ndarray) -> dict[str, dict[str, float]]:
    """_choices on the divergences that have a score (out-of-fold scores leave NaN where a fold was not trained)."""
    scored = ~np.isnan(scores)
    return _choices(dataset.labels[scored], scores[scored], dataset.self_margin[scored])


class Labelled(Protocol):
    """Examples to cross-validate: features, 0/1 labels and each one's item."""

    features: np.ndarray
    labels: np.ndarray
    items: list[str]


def out_of_fold_scores(dataset: Labelled, folds: int = 5, **training: Any) -> np.ndarray:
    """p(label 1) for each example (for a divergence: the mentor's branch is
    better) from a model trained without its item's examples (NaN where a fold
    could not be trained)."""
    bucket = _item_buckets(dataset.items, folds)
    scores = np.full(len(dataset.labels), np.nan)
    for fold in range(folds):
        test = bucket == fold
        if test.any() and len(np.unique(dataset.labels[~test])) == 2:
            model = train_mlp(dataset.features[~test], dataset.labels[~test], **training)
            scores[test] = model.probability(dataset.features[test])
    return scores


def calibrate_scores(scores: np.ndarray, scale: float, shift: float) -> np.ndarray:
    """What Mlp.calibrated(scale, shift) would have given for these scores."""
    return _sigmoid(scale * _logit(scores) + shift)


def fit_calibration(scores: np.ndarray, labels: np.ndarray, steps: int = 50) -> tuple[float, float]:
    """Platt scaling: (scale, shift) so that sigmoid(scale × logit(score) + shift)
    best predicts `labels` (maximum likelihood, Newton's method).

    Fitted on out-of-fold scores, it says how far the model's confidence holds
    on items it never saw. The budget controller adds its pressure to these
    log-odds, so they must be real log-odds: an overfitted MLP's ±8 would
    outweigh any pressure. The scale is kept ≥ 0 (a model that ranks worse
    than chance is flattened to the base rate, never inverted)."""
    logit = _logit(scores)
    x = np.stack([logit, np.ones_like(logit)], axis=1)
    params = np.zeros(2)
    with np.errstate(over="ignore"):  # scores that separate the labels push the scale up; exp saturates harmlessly
        for _ in range(steps):
            p = _sigmoid(x @ params)
            gradient = x.T @ (p - labels)
            hessian = (x * (p * (1 - p))[:, None]).T @ x + 1e-9 * np.eye(2)
            params = params - np.linalg.solve(hessian, gradient)
    if not params[0] > 0:  # no better than chance on unseen items: the base rate alone
        return 0.0, float(_logit(np.asarray(labels.mean())))
    return float(params[0]), float(params[1])


def export_onnx(model: Mlp, path: Path, metadata: dict[str, str]) -> None:
    """Write the MLP (normalisation included) as an ONNX graph with metadata."""
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        raise VerifierError("exporting needs the onnx package: pip install 'edge-collab[train]'") from None

    def constant(name: str, value: np.ndarray) -> onnx.TensorProto:
        return numpy_helper.from_array(np.asarray(value, dtype=np.float32), name)

    nodes = [
        helper.make_node("Sub", [INPUT_NAME, "mean"], ["centred"]),
        helper.make_node("Div", ["centred", "std"], ["scaled"]),
        helper.make_node("MatMul", ["scaled", "w1"], ["h_linear"]),
        helper.make_node("Add", ["h_linear", "b1"], ["h_biased"]),
        helper.make_node("Tanh", ["h_biased"], ["hidden"]),
        helper.make_node("MatMul", ["hidden", "w2"], ["o_linear"]),
        helper.make_node("Add", ["o_linear", "b2"], ["logit"]),
        helper.make_node("Sigmoid", ["logit"], [OUTPUT_NAME]),
    ]
    graph = helper.make_graph(
        nodes,
        "edge_collab_verifier",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["batch", len(model.mean)])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["batch", 1])],
        initializer=[
            constant("mean", model.mean),
            constant("std", model.std),
            constant("w1", model.w1),
            constant("b1", model.b1),
            constant("w2", model.w2),
            constant("b2", model.b2),
        ],
    )
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="edge-collab")
    onnx_model.ir_version = 8  # readable by onnxruntime releases back to 1.15
    full = {
        "feature_names": json.dumps(list(FEATURE_NAMES)),
        "feature_set_version": str(FEATURE_SET_VERSION),
        # > 0: the features are followed by the student's hidden state at the end
        # of the self verifier's question (HIDDEN_FIELD), this many numbers
        "hidden_state_size": str(len(model.mean) - len(FEATURE_NAMES)),
    }
    full.update(metadata)
    helper.set_model_props(onnx_model, full)
    onnx.checker.check_model(onnx_model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(onnx_model, str(path))
