"""Fixtures: tiny GGUF models generated once per session, run on the real llama.cpp."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from tiny_gguf import MENTOR, OTHER_TOKENIZER, STUDENT, write_tiny_model

from edge_collab.backends.llamacpp import LlamaCppBackend
from edge_collab.presets.registry import load_pairs, load_presets
from edge_collab.settings import ModelSettings

TINY_CONTEXT = 512
# The user's own data folder, read before any test isolates it (real-model tests use it).
REAL_HOME = os.environ.get("EDGE_COLLAB_HOME")
# Which model files are known to load (backends/preflight.py): one folder for the
# whole run, subprocesses included, and never the user's own cache.
os.environ["EDGE_COLLAB_CACHE_DIR"] = tempfile.mkdtemp(prefix="edge-collab-test-cache-")


@pytest.fixture(autouse=True)
def isolated_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own empty user data folder."""
    home = tmp_path / "edge-collab-home"
    monkeypatch.setenv("EDGE_COLLAB_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def tiny_paths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("tiny-models")
    return {
        role: write_tiny_model(folder / f"{spec.name}.gguf", spec)
        for role, spec in (("student", STUDENT), ("mentor", MENTOR), ("other", OTHER_TOKENIZER))
    }


# On a GPU build, EDGE_COLLAB_TEST_GPU_LAYERS=-1 runs every backend test with the
# tiny models offloaded (scripts/check_gpu_build.sh); CPU otherwise.
TEST_GPU_LAYERS = int(os.environ.get("EDGE_COLLAB_TEST_GPU_LAYERS", "0"))


def open_tiny(path: Path) -> LlamaCppBackend:
    return LlamaCppBackend(path, ModelSettings(n_ctx=TINY_CONTEXT, threads=2, gpu_layers=TEST_GPU_LAYERS))


@pytest.fixture
def student(tiny_paths: dict[str, Path]):
    with open_tiny(tiny_paths["student"]) as backend:
        yield backend


@pytest.fixture
def mentor(tiny_paths: dict[str, Path]):
    with open_tiny(tiny_paths["mentor"]) as backend:
        yield backend


@pytest.fixture
def other_tokenizer_mentor(tiny_paths: dict[str, Path]):
    with open_tiny(tiny_paths["other"]) as backend:
        yield backend


def default_pair_paths() -> tuple[Path, Path] | None:
    """Paths of the installed default pair, if installed. Called at collection
    time, before the isolating fixture, so it sees the user's real data folder."""
    pair = load_pairs()["default"]
    presets = load_presets()
    student, mentor = presets[pair.student], presets[pair.mentor]
    if student.is_installed() and mentor.is_installed():
        return student.path(), mentor.path()
    return None
