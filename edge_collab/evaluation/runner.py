"""Running one method on a task's items, one JSONL line per finished item.

A results file starts with a header line holding everything that determines
the answers (task, models, method, settings); its name carries a hash of that
header. Rerunning with the same settings appends to the same file and skips
items already done, so Ctrl-C or a crash loses at most the item in progress.
Stored replies are graded again on resume, so an improved answer extraction
applies to every result, not only to the ones written after it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path

from edge_collab.engine.methods import method_named
from edge_collab.errors import EdgeCollabError
from edge_collab.evaluation.grading import grade
from edge_collab.evaluation.prompts import build_question
from edge_collab.evaluation.tasks import Item, Task
from edge_collab.journal import appending, read_records
from edge_collab.pair import CollabPair
from edge_collab.settings import GenerationSettings


def mentor_failed(record: dict) -> bool:  # type: ignore[type-arg]
    """Whether the mentor failed requests in this answer (records from before
    failures were recorded count as not)."""
    return bool(record.get("mentor_failures") or record.get("mentor_skipped_probes"))


@dataclass
class RunningTotals:
    done: int = 0
    correct: int = 0
    tokens: int = 0
    mentor_tokens: int = 0
    regraded: int = 0  # stored results whose grade the current extraction changed
    answers_with_mentor_failures: int = 0  # answers in which the mentor failed requests

    def add(self, record: dict) -> None:  # type: ignore[type-arg]
        self.done += 1
        self.correct += bool(record["correct"])
        self.tokens += int(record["tokens_total"])
        self.mentor_tokens += int(record["tokens_mentor"])
        self.answers_with_mentor_failures += mentor_failed(record)

    @property
    def accuracy(self) -> float:
        return self.correct / self.done if self.done else 0.0

    @property
    def mentor_share(self) -> float:
        return self.mentor_tokens / self.tokens if self.tokens else 0.0

    def to_dict(self) -> dict[str, object]:
        return {
            "items": self.done,
            "correct": self.correct,
            "accuracy": self.accuracy,
            "mentor_share": self.mentor_share,
            "tokens": self.tokens,
            "mentor_tokens": self.mentor_tokens,
            "regraded": self.regraded,
            "answers_with_mentor_failures": self.answers_with_mentor_failures,
        }


def run_header(task: Task, method: str, pair: CollabPair, settings: GenerationSettings, split: str) -> dict:  # type: ignore[type-arg]
    """What determines the answers; settings a method ignores are left out, so
    e.g. student-alone results are shared by every probe rate."""
    spec = method_named(method)
    header: dict[str, object] = {
        "type": "header",
        "task": task.name,
        "task_source": task.source,
        "split": split,
        "method": method,
        "max_new_tokens": settings.max_new_tokens,
        "seed": settings.seed,
        "temperature": settings.temperature,
    }
    if spec.uses_student:
        header["student"] = pair.student.name
    if spec.needs_mentor:
        header["mentor"] = pair.mentor_name
    header |= {name: getattr(settings, name) for name in spec.run_parameters}
    if spec.needs_verifier:
        header["verifier"] = pair.verifier_name
        if pair.verifier_file is not None and pair.verifier_file.is_file():
            # A learned verifier's name or path says nothing of its weights: a retrained file starts new results.
            header["verifier_sha256"] = hashlib.sha256(pair.verifier_file.read_bytes()).hexdigest()[:12]
    # Added after the first results were recorded: left out at their defaults
    # so those results keep their file names.
    if spec.probes and settings.probe_policy == "uncertainty":
        header |= {"probe_policy": settings.probe_policy, "uncertainty_threshold": settings.uncertainty_threshold}
    if spec.probes and settings.probe_policy == "audit":
        header |= {
            "probe_policy": "audit",
            "audit_tokens": settings.audit_tokens,
            "trigger": settings.trigger,
            "trigger_threshold": settings.trigger_threshold,
        }
        if settings.trigger == "cosd":
            header |= {"cosd_alpha": settings.cosd_alpha, "cosd_beta": settings.cosd_beta}
        if settings.audit_unsure_below > 0:
            header["audit_unsure_below"] = settings.audit_unsure_below
            if settings.audit_early_end != "word":
                header["audit_early_end"] = settings.audit_early_end
    if spec.probes and settings.mentor_budget is not None:
        header["mentor_budget"] = settings.mentor_budget
    return header


def results_file(out_dir: Path, header: dict) -> Path:  # type: ignore[type-arg]
    identity = {k: v for k, v in header.items() if k not in ("type", "task_source")}
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:10]
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", str(header["task"]))
    return out_dir / f"{slug}__{header['method']}__{digest}.jsonl"


def read_results(path: Path) -> tuple[dict | None, list[dict]]:  # type: ignore[type-arg]
    """Header and item records of a results file (a line cut short by a crash
    is skipped: that item will be run again)."""
    header, items = None, []
    for _, record in read_records(path):
        if record.get("type") == "header":
            header = record
        elif record.get("type") == "item":
            items.append(record)
    return header, items


def _item_record(item: Item, method: str, reply_text: str, stats, graded, question) -> dict:  # type: ignore[no-untyped-def,type-arg]
    record = {
        "type": "item",
        "id": item.id,
        "method": method,
        "prediction": graded.prediction,
        "gold": item.gold,
        "correct": graded.correct,
        "tokens_total": stats.tokens_total,
        "tokens_mentor": stats.tokens_mentor,
        "mentor_share": stats.mentor_share,
        "probes": stats.probes,
        "divergences": stats.divergences,
        "adoptions": stats.adoptions,
        "verifier_calls": stats.verifier_calls,
        "mentor_decode_tokens": stats.mentor_decode_tokens,
        "mentor_prefill_tokens": stats.mentor_prefill_tokens,
        "seconds": stats.wall_s,
        "student_s": stats.student_s,
        "mentor_s": stats.mentor_s,
        "stop_reason": stats.stop_reason,
        "probe_level": stats.probe_level,
        "audits": stats.audits,
        "mentor_forward_passes": stats.mentor_forward_passes,
        "student_discarded_tokens": stats.student_discarded_tokens,
        "mentor_failures": stats.mentor_failures,
        "mentor_skipped_probes": stats.mentor_skipped_probes,
        "hit_cap": stats.stop_reason == "length",
        "text": reply_text,
    }
    if question.options:
        record["gold_letter"] = question.letter_of(item.gold) if item.gold in question.options else None
        record["options"] = list(question.options)
    return record


def _regrade(path: Path, header: dict | None, records: list[dict], items: dict[str, Item], seed: int) -> int:  # type: ignore[type-arg]
    """Grade stored replies again with the current extraction; rewrites the
    file (atomically) only if a grade changed. Code is not re-run: its
    extraction is not what changes between versions."""
    changed = 0
    for record in records:
        item = items.get(record["id"])
        if item is None or item.kind == "code":
            continue
        graded = grade(item, build_question(item, seed), record["text"])
        if (graded.prediction, graded.correct) != (record["prediction"], record["correct"]):
            record["prediction"], record["correct"] = graded.prediction, graded.correct
            changed += 1
    if changed and header is not None:
        temporary = path.with_suffix(".regrade")
        lines = [json.dumps(header)] + [json.dumps(record, ensure_ascii=False) for record in records]
        temporary.write_text("\n".join(lines) + "\n", encoding="utf-8")
        os.replace(temporary, path)
    return changed


def run_method(
    pair: CollabPair,
    task: Task,
    items: list[Item],
    method: str,
    settings: GenerationSettings,
    out_dir: Path,
    split: str,
    on_item: Callable[[RunningTotals], None] = lambda _: None,
) -> tuple[Path, RunningTotals]:
    """Answer every item not yet in the results file; returns the file and totals."""
    header = run_header(task, method, pair, settings, split)
    path = results_file(out_dir, header)
    existing_header, done = read_results(path)
    if existing_header is not None and existing_header.get("task") != header["task"]:
        raise EdgeCollabError(f"{path} belongs to another run")
    totals = RunningTotals()
    wanted = {item.id: item for item in items}
    totals.regraded = _regrade(path, existing_header, done, wanted, settings.seed)
    finished = set()
    for record in done:
        if record["id"] in wanted and record["id"] not in finished:
            finished.add(record["id"])
            totals.add(record)
    # Every answer runs with these settings, not the pair's: a sweep opens one
    # pair and runs each grid point through it.
    run_settings = {f.name: getattr(settings, f.name) for f in fields(settings)} | {"method": method}
    pressures = [r["budget_pressure"] for r in done if "budget_pressure" in r]
    if "mentor_budget" in header:  # each results file is one run of the controller
        pair.restart_budget(pressures[-1] if pressures else 0.0, **run_settings)
    with appending(path) as journal:
        journal.start(header)
        on_item(totals)
        for item in items:
            if item.id in finished:
                continue
            question = build_question(item, settings.seed)
            result = pair.generate(question.message, **run_settings)
            graded = grade(item, question, result.text)
            record = _item_record(item, method, result.text, result.stats, graded, question)
            if "mentor_budget" in header:
                record["budget_pressure"] = result.stats.budget_pressure  # where a resumed run picks up
            journal.write(record)
            totals.add(record)
            on_item(totals)
    return path, totals
