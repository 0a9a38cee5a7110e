"""Where a mentor segment is worth taking, read from outcome-labelled divergences.

At each divergence `verifier collect` finishes the answer from both branches
with the student alone and grades them. Taking the mentor's segment there
turns a wrong answer right where only the mentor's branch finishes right, and
a right one wrong where only the student's does; everywhere else it changes
nothing. So the net value of taking the mentor's segment is
(mentor-only-right − student-only-right) / divergences, in answers per
divergence. Split by a feature's quantiles, it says whether that feature
(the student's entropy, say, which uncertainty-gated probing relies on) marks
the places where the mentor is worth asking.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_collab.errors import VerifierError
from edge_collab.evaluation.significance import sign_test_p
from edge_collab.plotting import pyplot
from edge_collab.verifiers.features import FEATURE_NAMES
from edge_collab_lab.record_fields import MENTOR_JUDGE_FIELDS
from edge_collab_lab.training import auc, label_fields, read_divergences

# What a divergence can be split by besides its features: the self verifier's
# log-odds for the mentor's segment, and the mentor's own (collect --mentor-judge).
JUDGEMENTS = ("self_margin", *MENTOR_JUDGE_FIELDS)
SPLITTABLE = (*FEATURE_NAMES, *JUDGEMENTS)


@dataclass(frozen=True)
class ValueBin:
    low: float
    high: float
    divergences: int
    mentor_only_right: int
    student_only_right: int

    @property
    def net_per_divergence(self) -> float:
        return (self.mentor_only_right - self.student_only_right) / self.divergences

    @property
    def p(self) -> float:
        """Sign test: could the split between the two kinds of decisive divergence be chance?"""
        return sign_test_p(self.mentor_only_right, self.student_only_right)


def _value_of(record: dict, name: str) -> float | None:  # type: ignore[type-arg]
    value = record["features"].get(name) if name in FEATURE_NAMES else record.get(name)
    return None if value is None else float(value)


@dataclass(frozen=True)
class GradedDivergences:
    """One value per outcome-labelled divergence, and whether each branch finished right."""

    values: np.ndarray
    mentor_right: np.ndarray
    student_right: np.ndarray

    def ranking_auc(self) -> tuple[float, int]:
        """How well the value ranks the decisive divergences (AUC for "the
        mentor's branch finishes right"), and how many there are."""
        decisive = self.mentor_right != self.student_right
        return auc(self.values[decisive], self.mentor_right[decisive].astype(float)), int(decisive.sum())

    def value_bins(self, bins: int = 4) -> list[ValueBin]:
        """The value of taking the mentor's segment in `bins` quantile bins.

        Bins whose edges coincide (a feature that is mostly one value) are merged,
        so fewer bins may come back."""
        values, mentor, student = self.values, self.mentor_right, self.student_right
        edges = np.unique(np.quantile(values, np.linspace(0.0, 1.0, bins + 1)))
        # searchsorted on the inner edges (none for a single bin) puts each value in
        # exactly one bin, the top edge included
        index = np.searchsorted(edges[1:-1], values, side="right")
        result = []
        for number in range(max(1, len(edges) - 1)):
            chosen = index == number
            result.append(
                ValueBin(
                    low=float(values[chosen].min()),
                    high=float(values[chosen].max()),
                    divergences=int(chosen.sum()),
                    mentor_only_right=int((mentor & ~student & chosen).sum()),
                    student_only_right=int((student & ~mentor & chosen).sum()),
                )
            )
        return result


def read_graded(paths: Sequence[Path], feature: str) -> GradedDivergences:
    """`feature` of every outcome-labelled divergence of `paths` that has it (the
    files are read once, for both the bins and the ranking)."""
    records, _, _ = read_divergences(paths)
    graded = [r for r in records if None not in label_fields(r, "outcome")]
    if not graded:
        raise VerifierError("no outcome-labelled divergences: collect without --no-finish")
    graded = [r for r in graded if _value_of(r, feature) is not None]
    if not graded:
        raise VerifierError(f"no outcome-labelled divergence has {feature}: collect with --mentor-judge")
    return GradedDivergences(
        np.asarray([_value_of(r, feature) for r in graded]),
        np.asarray([bool(r["mentor_correct"]) for r in graded]),
        np.asarray([bool(r["student_correct"]) for r in graded]),
    )


def plot_value(value_bins: Sequence[ValueBin], feature: str, path: Path) -> None:
    plt = pyplot()

    positions = np.arange(len(value_bins))
    figure, axis = plt.subplots(figsize=(6.4, 4.0))
    axis.bar(positions - 0.2, [b.mentor_only_right for b in value_bins], 0.4, label="only the mentor's branch right")
    axis.bar(positions + 0.2, [b.student_only_right for b in value_bins], 0.4, label="only the student's branch right")
    labels = [f"{b.low:.2g}–{b.high:.2g}\n(n={b.divergences}, p={b.p:.2f})" for b in value_bins]
    axis.set_xticks(positions, labels, fontsize=8)
    axis.set_xlabel(f"{feature} (quantile bins)")
    axis.set_ylabel("decisive divergences")
    axis.set_title("Who finishes right, by where the divergence is")
    axis.grid(axis="y", alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
