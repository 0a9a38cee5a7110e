"""Running a HumanEval completion against its tests, in a separate process.

The program runs with `python -I` in an empty temporary folder, with a time
limit, capped memory and the socket module disabled; it is model-written code
and is treated as untrusted (this is a guard against accidents, not a sandbox).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

_PREAMBLE = """\
import resource, socket
resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
def _no_network(*args, **kwargs):
    raise OSError("network access is disabled in HumanEval runs")
socket.socket = _no_network
socket.create_connection = _no_network
"""


def build_program(prompt: str, code: str, test: str, entry_point: str) -> str:
    """The completion (whole function, or a body to append to the prompt) plus its tests."""
    if f"def {entry_point}" in code:
        header = "\n".join(line for line in prompt.splitlines() if line.startswith(("import ", "from ")))
        solution = f"{header}\n{code}"
    else:
        solution = prompt + code
    return f"{_PREAMBLE}\n{solution}\n\n{test}\n\ncheck({entry_point})\n"


def passes(program: str, timeout_s: float = 10.0) -> bool:
    with tempfile.TemporaryDirectory(prefix="humaneval-") as folder:
        script = Path(folder) / "solution.py"
        script.write_text(program, encoding="utf-8")
        try:
            completed = subprocess.run(
                [sys.executable, "-I", str(script)],
                cwd=folder,
                capture_output=True,
                timeout=timeout_s,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            return False
    return completed.returncode == 0
