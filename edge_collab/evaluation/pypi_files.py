"""Download one pinned file from the package index, without installing it.

pip cannot be used for BIG-bench's source archive: preparing its metadata runs
its setup script and then fails on a dependency that is not on the index. The
index's simple JSON API (PEP 691) lists each release file with its sha256, so
the file is fetched directly and checked against our pin.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from edge_collab.errors import InstallError
from edge_collab.hashing import sha256_file

_DEFAULT_INDEX = "https://pypi.org/simple"
_CHUNK = 1 << 20


def index_url() -> str:
    """The index pip would use: PIP_INDEX_URL, pip's configuration, or PyPI."""
    if os.environ.get("PIP_INDEX_URL"):
        return os.environ["PIP_INDEX_URL"].rstrip("/")
    try:
        configured = subprocess.run(
            [sys.executable, "-m", "pip", "config", "get", "global.index-url"],
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        configured = ""
    return (configured or _DEFAULT_INDEX).rstrip("/")


def _file_url(project: str, filename: str, sha256: str) -> str:
    request = urllib.request.Request(
        f"{index_url()}/{project}/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            listing = json.load(response)
    except (urllib.error.URLError, OSError, json.JSONDecodeError) as error:
        raise InstallError(f"cannot read the package index for {project}: {error}") from None
    for entry in listing.get("files", []):
        if entry.get("filename") == filename and entry.get("hashes", {}).get("sha256") == sha256:
            return str(entry["url"])
    raise InstallError(f"the package index has no {filename} with the pinned sha256")


def download_pinned(
    project: str,
    filename: str,
    sha256: str,
    target_dir: Path,
    progress: Callable[[int, int], None] = lambda done, total: None,
    find_links: str | None = None,
) -> Path:
    """Fetch `filename` (from `find_links` if given) into target_dir and check its sha256."""
    target = target_dir / filename
    if find_links:
        source = Path(find_links) / filename
        if not source.is_file():
            raise InstallError(f"{filename} is not in {find_links}")
        chunks = [source.read_bytes()]
        total = len(chunks[0])
        target.write_bytes(chunks[0])
        progress(total, total)
    else:
        url = _file_url(project, filename, sha256)
        try:
            with urllib.request.urlopen(url, timeout=120) as response, target.open("wb") as sink:
                total = int(response.headers.get("Content-Length") or 0)
                done = 0
                for block in iter(lambda: response.read(_CHUNK), b""):
                    sink.write(block)
                    done += len(block)
                    progress(done, total)
        except (urllib.error.URLError, OSError) as error:
            target.unlink(missing_ok=True)
            raise InstallError(f"downloading {filename} failed: {error}") from None
    if sha256_file(target) != sha256:
        target.unlink()
        raise InstallError(f"{filename} does not match its pinned sha256; removed")
    return target
