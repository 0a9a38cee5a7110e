"""How well the cheap gold-answer label stands in for the outcome label.

    python scripts/compare_verifier_labels.py OUTCOME.jsonl RELABELLED.jsonl [...pairs]

OUTCOME.jsonl is a `verifier collect` file with finished outcomes; RELABELLED
is the same items collected again with `--no-finish --only-items-of
OUTCOME.jsonl` (same settings), which gives each divergence its gold-answer
label. Divergences are matched by item and order, and a pair whose segment
texts differ is reported and left out, so a changed engine cannot pass unseen.
Prints, on the divergences decisive under the outcome label: how often the
belief label agrees (and how many it calls ties), and the AUC of the raw
log-probability difference as a predictor of the outcome.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from edge_collab.verifiers.collect import finished_items
from edge_collab.verifiers.training import BELIEF_TIE_NATS, auc


def _divergences(path: Path) -> dict[str, list[dict]]:  # type: ignore[type-arg]
    by_item: dict[str, list[dict]] = defaultdict(list)  # type: ignore[type-arg]
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if record.get("type") == "divergence":
            by_item[record["item"]].append(record)
    return by_item


def main(paths: list[str]) -> int:
    if not paths or len(paths) % 2:
        print("usage: compare_verifier_labels.py OUTCOME.jsonl RELABELLED.jsonl [...]", file=sys.stderr)
        return 2
    deltas, outcomes = [], []
    mismatched = unmatched_items = 0
    for outcome_path, relabelled_path in zip(paths[::2], paths[1::2], strict=True):
        finished, relabelled = _divergences(Path(outcome_path)), _divergences(Path(relabelled_path))
        done, _ = finished_items(Path(relabelled_path))
        for item, again in relabelled.items():
            if item not in done:
                continue  # still being collected
            if item not in finished:
                unmatched_items += 1
                continue
            if len(again) != len(finished[item]):
                mismatched += len(again)
                continue
            for first, second in zip(finished[item], again, strict=True):
                if (first["student_text"], first["mentor_text"]) != (second["student_text"], second["mentor_text"]):
                    mismatched += 1
                    continue
                if first["student_correct"] == first["mentor_correct"]:
                    continue  # a tie under the outcome label
                deltas.append(second["gold_logprob_after_mentor"] - second["gold_logprob_after_student"])
                outcomes.append(1.0 if first["mentor_correct"] else 0.0)
    delta, outcome = np.asarray(deltas), np.asarray(outcomes)
    print(f"outcome-decisive divergences matched: {len(delta)}")
    print(f"  left out: {mismatched} whose texts differed, {unmatched_items} items not in the outcome file")
    if not len(delta):
        return 1
    decided = np.abs(delta) >= BELIEF_TIE_NATS
    agree = ((delta[decided] > 0) == (outcome[decided] == 1)).mean() if decided.any() else float("nan")
    print(f"belief label decisive on {decided.sum()} of them; agrees with the outcome on {agree:.1%}")
    print(f"AUC of the log-probability difference for the mentor's branch finishing right: {auc(delta, outcome):.3f}")
    print(f"the mentor's branch finished right on {outcome.mean():.1%} of them")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
