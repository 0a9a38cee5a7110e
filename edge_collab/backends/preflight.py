"""Load a model file once in a child process before loading it here.

llama.cpp stops the whole process (abort, SIGABRT) on some malformed GGUF
files instead of returning an error: token arrays of different lengths, token
ids out of range, tensor shapes that contradict the header. No check we could
write in Python would be sure to match every assertion in its loader, so the
first load of each file happens in a child process, which loads it with the
same code, tokenizes, reads every token's text and evaluates a few tokens. If
the child dies by a signal, the file is refused with a one-line error; if it
loads, the file is remembered (by path, size, modification time and
llama-cpp-python's version) and later loads skip the check.

The check runs on the CPU; what a GPU backend asserts is not covered.
"""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import llama_cpp
import platformdirs

from edge_collab.errors import ModelFileError

logger = logging.getLogger(__name__)
ENV_CACHE = "EDGE_COLLAB_CACHE_DIR"
TIMEOUT_S = 900.0  # a large model read from a slow disk
_checked: set[str] = set()  # files this process already knows to load


def ensure_loads(path: Path) -> None:
    """Return if `path` loads in llama.cpp without killing the process; raise
    ModelFileError otherwise."""
    key = _identity(path)
    if key in _checked:
        return
    marker = _cache_dir() / key
    if marker.exists():
        _checked.add(key)
        return
    logger.info("checking that %s loads (first use of this file)", path)
    command = [sys.executable, "-m", "edge_collab.backends.preflight_child", str(path)]
    try:
        child = subprocess.run(command, capture_output=True, text=True, errors="replace", timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise ModelFileError(f"checking {path} took over {TIMEOUT_S:.0f} s; is the disk very slow?") from None
    if child.returncode == -signal.SIGKILL:
        raise ModelFileError(f"checking {path} was killed (out of memory?); the model was not loaded")
    if child.returncode < 0:
        raise ModelFileError(
            f"llama.cpp crashes on {path} ({_signal_name(-child.returncode)}"
            f"{_last_words(child.stderr)}): the file is malformed or this llama.cpp does not support it"
        )
    if child.returncode != 0:
        lines = [line for line in child.stderr.splitlines() if line.startswith("error: ")]
        reason = lines[-1].removeprefix("error: ") if lines else f"the check exited with status {child.returncode}"
        raise ModelFileError(reason)
    _checked.add(key)
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(f"{path}\n")
    except OSError as error:  # a cache that cannot be written only means checking again next time
        logger.debug("cannot remember that %s loads: %s", path, error)


def _identity(path: Path) -> str:
    stat = path.stat()
    fields = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, stat.st_ino, llama_cpp.__version__)
    return hashlib.sha256(repr(fields).encode()).hexdigest()[:32]


def _cache_dir() -> Path:
    base = os.environ.get(ENV_CACHE) or platformdirs.user_cache_dir("edge-collab", appauthor=False)
    return Path(base).expanduser() / "checked-models"


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _last_words(stderr: str) -> str:
    """llama.cpp's failed assertion, when it printed one."""
    for line in reversed(stderr.splitlines()):
        if "GGML_ASSERT" in line or "error" in line.lower():
            return ": " + line.strip().split("/")[-1][:200]
    return ""
