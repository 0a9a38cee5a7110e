"""The command line that starts llama-cpp-python's OpenAI-compatible server
for a mentor: shared by `edge-collab mentor serve` and the remote-mentor
benchmark, so that what is measured is what users run."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def llama_cpp_server_command(
    model: Path, *, alias: str, host: str, port: int, n_ctx: int = 4096, gpu_layers: int = 0, threads: int | None = None
) -> list[str]:
    # llama-cpp-python's server defaults to half the cores; a mentor box should use them all.
    threads_text = str(threads or os.cpu_count() or 1)
    return [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(model),
        "--model_alias",
        alias,
        "--host",
        host,
        "--port",
        str(port),
        "--n_gpu_layers",
        str(999 if gpu_layers == -1 else gpu_layers),
        "--n_ctx",
        str(n_ctx),
        "--n_threads",
        threads_text,
        "--n_threads_batch",
        threads_text,
        # llama.cpp enables flash attention by itself on CPU (as edge-collab's own
        # contexts do); llama-cpp-python turns it off unless asked.
        "--flash_attn",
        "true",
        # By default a new request cuts short the one being streamed (it is sent
        # [DONE] early): with many students, one student's probe would truncate
        # another's mentor segment. Queue requests instead.
        "--interrupt_requests",
        "false",
    ]
