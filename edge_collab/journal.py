"""Append-only JSONL files that survive a crash (eval results, verifier data).

Each write is whole lines, flushed and synced, so Ctrl-C or a crash loses at
most the lines being written. A line cut short that way is skipped by
`read_records` and ended before the next append, so what comes after it is
never glued onto it (which would lose the next record too).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO


def read_records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, record) for each line holding a JSON object; nothing if
    the file does not exist."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return
    for number, line in enumerate(text.splitlines(), start=1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line torn by an interrupted run
        if isinstance(record, dict):
            yield number, record


@contextmanager
def _locked(sink: TextIO) -> Iterator[None]:
    """Hold the file's lock while appending: several processes may fill one
    run side by side (`eval --shard`), and a record longer than the write
    buffer leaves in more than one write call."""
    if sys.platform == "win32":  # no flock; shards there go to separate --out folders
        yield
        return
    import fcntl

    fcntl.flock(sink.fileno(), fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(sink.fileno(), fcntl.LOCK_UN)


class Journal:
    def __init__(self, sink: TextIO):
        self._sink = sink

    def write(self, *records: dict[str, Any]) -> None:
        """Append records, one line each, and make them durable before returning."""
        with _locked(self._sink):
            self._append(records)

    def start(self, header: dict[str, Any]) -> None:
        """Write `header` as the first line unless another writer already has."""
        with _locked(self._sink):
            if os.fstat(self._sink.fileno()).st_size == 0:
                self._append((header,))

    def _append(self, records: tuple[dict[str, Any], ...]) -> None:
        self._sink.write("".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records))
        self._sink.flush()
        os.fsync(self._sink.fileno())


def _ends_mid_line(path: Path) -> bool:
    if not path.exists() or path.stat().st_size == 0:
        return False
    with path.open("rb") as handle:
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) != b"\n"


@contextmanager
def appending(path: Path) -> Iterator[Journal]:
    """Open `path` (and its folder) for appending records."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torn = _ends_mid_line(path)
    with path.open("a", encoding="utf-8") as sink:
        if torn:
            sink.write("\n")
        yield Journal(sink)
