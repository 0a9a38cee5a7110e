"""GPU offload on CUDA or Metal builds of llama.cpp. Skipped where the build
has no GPU support (CI, the default CPU build); scripts/check_gpu_build.sh runs
it on a GPU machine together with the rest of the suite offloaded."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pytest
from engine_helpers import generate

from edge_collab.backends.llamacpp import LlamaCppBackend, gpu_offload_supported
from edge_collab.settings import ModelSettings

pytestmark = pytest.mark.skipif(not gpu_offload_supported(), reason="this llama.cpp build has no GPU offload")

OFFLOADED = re.compile(r"offloaded (?P<done>\d+)/(?P<of>\d+) layers to GPU")
PROMPT = [{"role": "user", "content": "Count from one to ten, please."}]


def _logits_along(path: Path, gpu_layers: int, steps: int = 24) -> np.ndarray:
    """Greedy-decode `steps` tokens one at a time and stack the logits of each step:
    on the GPU the first prompt batch and the single-token steps take different kernels."""
    with LlamaCppBackend(path, ModelSettings(n_ctx=512, threads=2, gpu_layers=gpu_layers)) as model:
        model.append(model.chat_prompt(PROMPT))
        rows = []
        for _ in range(steps):
            logits = model.next_logits()
            rows.append(np.array(logits, dtype=np.float32))
            model.append([int(np.argmax(logits))])
        return np.stack(rows)


def test_offloaded_model_computes_the_cpu_logits(tiny_paths, caplog):
    with caplog.at_level(logging.DEBUG, logger="edge_collab.llama_cpp"):
        on_gpu = _logits_along(tiny_paths["student"], gpu_layers=-1)
    offloads = [m for r in caplog.records if (m := OFFLOADED.search(r.getMessage()))]
    assert offloads and all(int(m["done"]) == int(m["of"]) > 0 for m in offloads)
    on_cpu = _logits_along(tiny_paths["student"], gpu_layers=0)
    scale = float(np.abs(on_cpu).max())
    assert float(np.abs(on_gpu - on_cpu).max()) < 2e-2 * scale
    assert (on_gpu.argmax(axis=1) == on_cpu.argmax(axis=1)).all()


def test_collab_runs_with_both_models_offloaded(tiny_paths):
    settings = ModelSettings(n_ctx=512, threads=2, gpu_layers=-1)
    with (
        LlamaCppBackend(tiny_paths["student"], settings) as student,
        LlamaCppBackend(tiny_paths["mentor"], settings) as mentor,
    ):
        result = generate(student, mentor, probe_rate=1.0, segment_tokens=4, max_new_tokens=40)
    stats = result.stats
    assert stats.probes > 0 and stats.tokens_student + stats.tokens_mentor == stats.tokens_total
