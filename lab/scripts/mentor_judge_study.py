"""Does the mentor's opinion tell which branch will finish right? (docs/verifier-study.md)

Reads the outcome-labelled divergences of research/verifier/ merged with their
re-collection under `verifier collect --no-finish --mentor-judge` (judge-*.jsonl)
and prints, on the decisive ones: (1) the mentor's log-odds for its own segment
used directly (both option orders, and each), against the self verifier and
always-mentor; (2) small MLPs on those log-odds, the 16 pair features and the
mentor's hidden state, 5-fold by item and trained on the later items / judged
on the earlier ones. Run: .venv/bin/python scripts/mentor_judge_study.py
"""

from math import erf, sqrt
from pathlib import Path

import numpy as np

from edge_collab.verifiers.features import FEATURE_NAMES
from edge_collab_lab.collect import finished_items
from edge_collab_lab.record_fields import MENTOR_HIDDEN_FIELD, MENTOR_JUDGE_FIELDS, decode_hidden_state
from edge_collab_lab.training import (
    Dataset,
    _choices,
    _outcome,
    auc,
    cross_validate,
    read_divergences,
    train_mlp,
)

R = Path(__file__).resolve().parents[2] / "research" / "verifier"
early = [R / "elementary_math_qa-question_only.jsonl", R / "strategyqa.jsonl"]
late = [R / "outcome-hidden-elementary_math_qa-question_only.jsonl", R / "outcome-hidden-strategyqa.jsonl"]
judged = [R / f"judge-{path.name}" for path in [*early, *late]]
AS_B, AS_A = MENTOR_JUDGE_FIELDS  # the mentor's log-odds for its segment offered as option B, then as A


def decisive_judged_rows() -> tuple[list[dict], set[str]]:  # type: ignore[type-arg]
    """Decisive divergences (exactly one branch finishes right) that the mentor judged."""
    records, _, differing = read_divergences([*early, *late, *judged])
    rows = [r for r in records if _outcome(r) is not None and r.get(AS_B) is not None]
    return rows, differing


def auc_with_p(scores: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """AUC and its two-sided p against 0.5 (Mann-Whitney, normal approximation)."""
    positives, negatives = int(y.sum()), int((1 - y).sum())
    area = auc(scores, y)
    z = (area - 0.5) / np.sqrt((positives + negatives + 1) / (12 * positives * negatives))
    return area, 2 * (1 - 0.5 * (1 + erf(abs(z) / sqrt(2))))


def judged_directly(name: str, rows: list[dict]) -> None:  # type: ignore[type-arg]
    y = np.array([1.0 if r["mentor_correct"] else 0.0 for r in rows])
    as_b = np.array([r[AS_B] for r in rows])
    as_a = np.array([r[AS_A] for r in rows])
    both = (as_b + as_a) / 2
    self_margin = np.array([r["self_margin"] for r in rows])
    print(f"\n== {name}: {len(rows)} decisive, the mentor's branch right in {int(y.sum())} ({y.mean():.1%})")
    for label, score in (
        ("mentor, both orders", both),
        ("mentor, its segment as B", as_b),
        ("mentor, its segment as A", as_a),
        ("self verifier", self_margin),
    ):
        area, p = auc_with_p(score, y)
        right = (score > 0) == (y == 1)
        print(f"{label:26s} accuracy {right.mean():.1%}  AUC {area:.3f} (p {p:.3f})  adopts {(score > 0).mean():.1%}")
    # Against the self verifier and always-mentor, as training compares a learned choice.
    show("mentor, both orders, as the choice", _choices(y, 1 / (1 + np.exp(-both)), self_margin))


def inputs_of(inputs: tuple[str, ...], rows: list[dict]) -> Dataset:  # type: ignore[type-arg]
    x = []
    for r in rows:
        parts: list[np.ndarray] = []
        if "features" in inputs:
            parts.append(np.asarray([r["features"][n] for n in FEATURE_NAMES]))
        if "judge" in inputs:
            parts.append(np.asarray([r[AS_B], r[AS_A]]))
        if "mentor_hidden" in inputs:
            parts.append(decode_hidden_state(r[MENTOR_HIDDEN_FIELD]))
        x.append(np.concatenate(parts).astype(np.float64))
    y = np.array([1.0 if r["mentor_correct"] else 0.0 for r in rows])
    margins = np.array([r["self_margin"] for r in rows])
    return Dataset(np.asarray(x), y, margins, [r["item"] for r in rows], [], [], y)


def show(name: str, result: dict) -> None:  # type: ignore[type-arg]
    learned, by_self, mentor = result["learned"], result["self"], result["always_mentor"]
    vs_self, vs_mentor = result["learned_vs_self"], result["learned_vs_always_mentor"]
    print(
        f"{name:42s} n={int(result['divergences']['count'])} choice {learned['accuracy']:.1%} "
        f"(AUC {learned['auc']:.3f}) self {by_self['accuracy']:.1%} always-mentor {mentor['accuracy']:.1%} | "
        f"vs self {int(vs_self['wins'])}/{int(vs_self['losses'])} p={vs_self['p']:.3f} "
        f"vs always-mentor {int(vs_mentor['wins'])}/{int(vs_mentor['losses'])} p={vs_mentor['p']:.3f}"
    )


def learned(rows: list[dict]) -> None:  # type: ignore[type-arg]
    early_items = set().union(*(finished_items(path)[0] for path in early))
    train = [r for r in rows if r["item"] not in early_items]
    test = [r for r in rows if r["item"] in early_items]
    print()
    for inputs, weight_decay in (
        (("judge",), 1e-3),
        (("features", "judge"), 1e-3),
        (("mentor_hidden",), 1e-1),
        (("features", "judge", "mentor_hidden"), 1e-1),
    ):
        name = "+".join(inputs)
        show(f"5-fold, {name}", cross_validate(inputs_of(inputs, rows), 5, weight_decay=weight_decay))
        fit, judge = inputs_of(inputs, train), inputs_of(inputs, test)
        model = train_mlp(fit.features, fit.labels, weight_decay=weight_decay)
        show(
            f"later -> earlier items, {name}",
            _choices(judge.labels, model.probability(judge.features), judge.self_margin),
        )


if __name__ == "__main__":
    rows, differing = decisive_judged_rows()
    print(f"items left out (their divergences differ between files): {sorted(differing)}")
    judged_directly("both tasks", rows)
    for task in ("elementary_math_qa", "strategyqa"):
        judged_directly(task, [r for r in rows if r["item"].startswith(task)])
    learned(rows)
