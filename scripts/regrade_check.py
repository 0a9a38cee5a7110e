"""Grade every committed evaluation record again with the current grading and
print how many grades would change (writes nothing; `eval` regrades a run's
file itself when it resumes).

    .venv/bin/python scripts/regrade_check.py [FOLDER ...]   # default: research/
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

from edge_collab.errors import EdgeCollabError
from edge_collab.evaluation.grading import grade
from edge_collab.evaluation.prompts import build_question
from edge_collab.evaluation.tasks import Item, load_task


def main() -> None:
    folders = [Path(arg) for arg in sys.argv[1:]] or [Path("research")]
    tasks: dict[str, dict[str, Item] | None] = {}
    graded: Counter[str] = Counter()
    changed: Counter[str] = Counter()
    for path in sorted(p for folder in folders for p in folder.rglob("*.jsonl")):
        lines = path.read_text(encoding="utf-8").splitlines()
        header = json.loads(lines[0]) if lines else {}
        if "task" not in header or "method" not in header:
            continue  # not an evaluation run
        name = header["task"]
        if name not in tasks:
            try:
                tasks[name] = {item.id: item for item in load_task(name).items}
            except EdgeCollabError as error:
                print(f"skipped {path}: {error}", file=sys.stderr)
                tasks[name] = None
        items = tasks[name]
        if items is None:
            continue
        for line in lines[1:]:
            record = json.loads(line)
            item = items.get(record.get("id", ""))
            if item is None or item.kind == "code" or "text" not in record:
                continue
            graded[name] += 1
            if grade(item, build_question(item, header.get("seed", 0)), record["text"]).correct != record["correct"]:
                changed[f"{path}"] += 1
    print(f"records graded again: {sum(graded.values())} ({dict(graded)})")
    print(f"grades that would change: {sum(changed.values())}")
    for path, count in sorted(changed.items()):
        print(f"  {path}: {count}")


if __name__ == "__main__":
    main()
