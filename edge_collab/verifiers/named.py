"""The verifiers a user names (`--verifier`, `CollabPair.open(verifier=...)`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from edge_collab.backends.base import ModelBackend
from edge_collab.errors import SettingsError, VerifierError
from edge_collab.verifiers.base import Verifier
from edge_collab.verifiers.fixed import FIXED_VERIFIERS
from edge_collab.verifiers.onnx_verifier import OnnxVerifier
from edge_collab.verifiers.self_verifier import SelfVerifier

VERIFIERS = ("self", "onnx", *FIXED_VERIFIERS)
SHIPPED_VERIFIER = Path(__file__).parent / "data" / "default_pair.onnx"


def check_verifier_name(name: str) -> None:
    if name not in VERIFIERS and not name.endswith(".onnx"):
        raise SettingsError(f"verifier must be one of {', '.join(VERIFIERS)} or a .onnx file, not {name!r}")


def verifier_file(name: str) -> Path | None:
    """The learned verifier's file; None for the self and fixed verifiers."""
    if name == "onnx":
        return SHIPPED_VERIFIER
    return Path(name) if name.endswith(".onnx") else None


def open_verifier(name: str, student: ModelBackend) -> Verifier:
    """The verifier `name` for this student (a learned one reads the student
    only if it was trained on hidden states)."""
    check_verifier_name(name)
    choices: dict[str, Callable[[], Verifier]] = {"self": lambda: SelfVerifier(student), **FIXED_VERIFIERS}
    if name in choices:
        return choices[name]()
    path = verifier_file(name)
    assert path is not None
    if name == "onnx" and not path.is_file():
        raise VerifierError(
            "no learned verifier is shipped for the default pair yet; train one "
            "(edge-collab verifier collect / train) and pass its .onnx path"
        )
    return OnnxVerifier(path, student=student)
