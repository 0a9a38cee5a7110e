"""Benchmark items from files on disk: BIG-bench JSON, GSM8K-style JSONL, HumanEval.

A task argument is a fetched task name (`elementary_math_qa`, or one subtask:
`elementary_math_qa/question_only`), `humaneval`, or a path to a task file.
Items are ordered by a hash of their id, so `--limit N` takes a fixed
pseudo-random sample that every method shares and that grows by extension.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from edge_collab.errors import EdgeCollabError
from edge_collab.evaluation.data_fetch import datasets_dir

Kind = Literal["choice", "number", "text", "code"]
Split = Literal["test", "train", "all"]
# Tasks this large keep one item in ten for training (the learned verifier);
# smaller ones are all test items.
_TRAIN_MIN_ITEMS = 200
_TRAIN_BUCKETS = 10


class TaskFileError(EdgeCollabError):
    """A task file is missing, malformed or of an unknown kind."""


@dataclass(frozen=True)
class Item:
    id: str
    kind: Kind
    question: str
    gold: str  # correct option text, number, answer text, or the HumanEval entry point
    options: tuple[str, ...] = ()  # choice items: all options, correct ones included
    extra: dict[str, str] = field(default_factory=dict)  # HumanEval: prompt, test
    # Choice items: every option that counts as correct. Free answers: every
    # target the task lists (BIG-bench's exact_str_match takes any of them).
    accepted: tuple[str, ...] = ()

    def is_correct_option(self, option: str | None) -> bool:
        return option is not None and option in (self.accepted or (self.gold,))

    @property
    def targets(self) -> tuple[str, ...]:
        """The answers that count as right for a free-answer item."""
        return self.accepted or (self.gold,)


@dataclass(frozen=True)
class Task:
    name: str
    items: tuple[Item, ...]
    source: str


def _order_key(item_id: str) -> str:
    return hashlib.sha256(item_id.encode("utf-8")).hexdigest()


def _is_train(item_id: str) -> bool:
    return int(_order_key(item_id)[:8], 16) % _TRAIN_BUCKETS == 0


def select(task: Task, split: Split = "test", limit: int | None = None) -> list[Item]:
    """Items of `split` in the task's fixed pseudo-random order, at most `limit`."""
    items = sorted(task.items, key=lambda it: _order_key(it.id))
    if split != "all" and len(items) >= _TRAIN_MIN_ITEMS:
        items = [it for it in items if _is_train(it.id) == (split == "train")]
    elif split == "train":
        items = []
    return items[:limit] if limit is not None else items


def _read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TaskFileError(f"{path}: file not found") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise TaskFileError(f"{path}: not valid JSON ({error})") from None


def _bigbench_items(path: Path, prefix: str) -> list[Item]:
    """Items of one BIG-bench task file, read as BIG-bench's own code reads it:

    * `target` is a string or a list of strings, any of which is right
      (exact_str_match); `target_scores` maps options to scores, and the options
      with the highest score are right (multiple_choice_grade);
    * an example with both is graded by the task's `preferred_score`
      (arithmetic prefers exact_str_match; strategyqa multiple_choice_grade);
    * the task's `task_prefix` (older files: `prefix`) opens every question:
      some tasks hold the question there and leave `input` empty.
    """
    data = _read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("examples"), list):
        raise TaskFileError(f"{path}: not a BIG-bench task (no 'examples' list)")
    task_prefix = data.get("task_prefix", data.get("prefix", ""))
    if not isinstance(task_prefix, str):
        raise TaskFileError(f"{path}: 'task_prefix' must be text")
    prefers_exact = data.get("preferred_score") == "exact_str_match"
    items = []
    for index, example in enumerate(data["examples"]):
        where = f"{path}: example {index}"
        if not isinstance(example, dict) or not isinstance(example.get("input"), str):
            raise TaskFileError(f"{where} has no 'input' text")
        item_id = f"{prefix}{index}"
        question = "\n\n".join(part.strip() for part in (task_prefix, example["input"]) if part.strip())
        targets = _targets(example.get("target"), where)
        scores = example.get("target_scores")
        if isinstance(scores, dict) and scores and not (prefers_exact and targets):
            items.append(_choice_item(item_id, question, scores, where))
            continue
        if not targets:
            raise TaskFileError(f"{where} has neither 'target_scores' nor a 'target'")
        numeric = [t for t in targets if _as_number(t) is not None]
        kind: Kind = "number" if numeric else "text"
        gold = numeric[0] if numeric else targets[0]
        items.append(Item(item_id, kind, question, gold, accepted=targets if len(targets) > 1 else ()))
    return items


def _targets(target: object, where: str) -> tuple[str, ...]:
    if target is None:
        return ()
    listed = [target] if isinstance(target, str) else target
    if not isinstance(listed, list) or not all(isinstance(t, str) for t in listed):
        raise TaskFileError(f"{where}: 'target' must be a string or a list of strings")
    return tuple(dict.fromkeys(t.strip() for t in listed if t.strip()))


def _choice_item(item_id: str, question: str, scores: dict, where: str) -> Item:  # type: ignore[type-arg]
    values = list(scores.values())
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values) or max(values) <= 0:
        raise TaskFileError(f"{where}: 'target_scores' needs numbers, with a positive one for a correct option")
    best = max(values)
    correct = tuple(option for option, score in scores.items() if score == best)
    return Item(item_id, "choice", question, correct[0], tuple(scores), accepted=correct)


def load_bigbench(folder: Path, name: str) -> Task:
    """A BIG-bench task folder: its own task.json examples plus every subtask's."""
    files = sorted(folder.glob("*/task.json"))
    own = folder / "task.json"
    items: list[Item] = []
    if own.is_file():
        data = _read_json(own)
        if isinstance(data, dict) and "examples" in data:
            items += _bigbench_items(own, f"{name}:")
    for sub in files:
        items += _bigbench_items(sub, f"{name}/{sub.parent.name}:")
    if not items:
        raise TaskFileError(f"{folder}: no examples in task.json or its subtask folders")
    return Task(name, tuple(items), str(folder))


_GSM8K_ANSWER = re.compile(r"####\s*(.+?)\s*$")


def _jsonl_records(path: Path) -> Iterator[tuple[int, dict]]:  # type: ignore[type-arg]
    """(line number, object) for each non-empty line; a clear error for anything else."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise TaskFileError(f"{path}: file not found") from None
    except UnicodeDecodeError:
        raise TaskFileError(f"{path}: not UTF-8 text") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise TaskFileError(f"{path}:{number}: not valid JSON ({error.msg})") from None
        if not isinstance(record, dict):
            raise TaskFileError(f"{path}:{number}: not a JSON object")
        yield number, record


def load_gsm8k(path: Path) -> Task:
    items = []
    for number, record in _jsonl_records(path):
        if not isinstance(record.get("question"), str):
            raise TaskFileError(f"{path}:{number}: needs 'question' and 'answer' strings")
        match = _GSM8K_ANSWER.search(str(record.get("answer", "")))
        if not match or _as_number(match.group(1)) is None:
            raise TaskFileError(f"{path}:{number}: 'answer' must end with '#### <number>'")
        items.append(Item(f"{path.stem}:{number}", "number", record["question"], match.group(1)))
    if not items:
        raise TaskFileError(f"{path}: no items")
    return Task(path.stem, tuple(items), str(path))


def load_humaneval(path: Path) -> Task:
    items = []
    for number, record in _jsonl_records(path):
        fields = [record.get(key) for key in ("task_id", "prompt", "entry_point", "test")]
        if not all(isinstance(value, str) for value in fields):
            raise TaskFileError(f"{path}:{number}: not a HumanEval record (needs task_id, prompt, entry_point, test)")
        task_id, prompt, entry_point, test = fields
        items.append(
            Item(str(task_id), "code", str(prompt), str(entry_point), extra={"prompt": str(prompt), "test": str(test)})
        )
    if not items:
        raise TaskFileError(f"{path}: no items")
    return Task("humaneval", tuple(items), str(path))


def _as_number(text: str) -> float | None:
    try:
        return float(text.replace(",", "").strip())
    except ValueError:
        return None


def load_task(spec: str, data: str | Path | None = None) -> Task:
    """Resolve a task argument: fetched name, name/subtask, 'humaneval' or a path."""
    path = Path(spec).expanduser()
    if path.exists():
        if path.is_dir():
            return load_bigbench(path, path.name)
        if path.suffix == ".jsonl":
            first = next((ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()), "")
            return load_humaneval(path) if '"entry_point"' in first else load_gsm8k(path)
        if path.suffix == ".json":
            return Task(path.parent.name, tuple(_bigbench_items(path, f"{path.parent.name}:")), str(path))
        raise TaskFileError(f"{path}: unknown task file type (expected .json, .jsonl or a BIG-bench folder)")
    root = datasets_dir(data)
    if spec == "humaneval":
        file = root / "humaneval" / "HumanEval.jsonl"
        if not file.is_file():
            raise TaskFileError("HumanEval is not fetched; run: edge-collab data fetch humaneval")
        return load_humaneval(file)
    name, _, subtask = spec.partition("/")
    folder = root / "bigbench" / name
    if not folder.is_dir():
        raise TaskFileError(
            f"unknown task {spec!r}: not a file, and not fetched (run: edge-collab data fetch bigbench {name})"
        )
    if subtask:
        file = folder / subtask / "task.json"
        if not file.is_file():
            subtasks = ", ".join(sorted(p.parent.name for p in folder.glob("*/task.json"))) or "none"
            raise TaskFileError(f"{name} has no subtask {subtask!r} (subtasks: {subtasks})")
        return Task(spec, tuple(_bigbench_items(file, f"{spec}:")), str(file))
    return load_bigbench(folder, name)
