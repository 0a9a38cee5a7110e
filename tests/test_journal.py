"""Append-only JSONL files: what a crash mid-write leaves behind is skipped and
never swallows the records written after it."""

from __future__ import annotations

import json

from edge_collab.journal import appending, read_records


def test_a_torn_last_line_is_skipped_and_ended_before_the_next_record(tmp_path):
    path = tmp_path / "sub" / "records.jsonl"
    with appending(path) as journal:
        journal.write({"n": 1}, {"n": 2})
    with path.open("a", encoding="utf-8") as sink:
        sink.write('{"n": 3, "text": "cut sh')  # as a crash mid-write leaves it
    assert [record["n"] for _, record in read_records(path)] == [1, 2]
    with appending(path) as journal:
        journal.write({"n": 4})
    assert [(number, record["n"]) for number, record in read_records(path)] == [(1, 1), (2, 2), (4, 4)]
    assert path.read_text(encoding="utf-8").endswith('{"n": 4}\n')


def test_reading_skips_what_is_not_a_record_and_a_missing_file_is_empty(tmp_path):
    path = tmp_path / "records.jsonl"
    assert list(read_records(path)) == []
    path.write_text("\n".join(["[1, 2]", "", json.dumps({"ok": "é"}), "null"]) + "\n", encoding="utf-8")
    assert list(read_records(path)) == [(3, {"ok": "é"})]
