"""Many students at once against one mentor server (scripts/many_students.py,
small): every answer identical to the same student's answer alone."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "many_students.py"


def test_two_students_at_once_get_their_solo_answers(tiny_paths, tmp_path):
    out = tmp_path / "many.json"
    command = [sys.executable, str(SCRIPT), "--student", str(tiny_paths["student"]), "--mentor"]
    command += [str(tiny_paths["mentor"]), "--students", "1,2", "--prompts", "2", "--max-tokens", "24"]
    command += ["--n-ctx", "512", "--out", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = json.loads(out.read_text())["rows"]
    assert [row["students"] for row in rows] == [1, 2]
    for row in rows:
        assert row["identical_to_solo"] == row["answers"] == 2 * row["students"]
        assert row["server_round_trips_per_answer"] > 0 and row["mentor_failures"] == 0
