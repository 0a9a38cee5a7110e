"""Checks on a model path before llama.cpp sees it, for clear error messages."""

from __future__ import annotations

from pathlib import Path

from edge_collab.errors import ModelFileError

GGUF_MAGIC = b"GGUF"


def check_gguf_path(path: str | Path) -> Path:
    """Return the path if it names a readable file that starts like GGUF."""
    path = Path(path).expanduser()
    if not path.exists():
        raise ModelFileError(f"model file not found: {path}")
    if not path.is_file():
        raise ModelFileError(f"model path is not a file: {path}")
    try:
        with path.open("rb") as handle:
            header = handle.read(8)
    except OSError as error:
        raise ModelFileError(f"cannot read model file {path}: {error.strerror}") from None
    if len(header) < 8 or header[:4] != GGUF_MAGIC:
        raise ModelFileError(f"not a GGUF model file: {path}")
    return path
