"""A learned verifier: a small MLP in an ONNX file, run with onnxruntime.

The file carries its own description in its metadata: the feature names and
their order, the feature-set version, the pair it was trained for, where its
training data came from and its held-out metrics. A file whose features differ
from what this engine computes is refused, never silently mis-read.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from edge_collab.backends.base import ModelBackend
from edge_collab.errors import VerifierError
from edge_collab.verifiers.base import Divergence, Verdict
from edge_collab.verifiers.features import FEATURE_NAMES, FEATURE_SET_VERSION, feature_vector
from edge_collab.verifiers.self_verifier import SelfVerifier

INPUT_NAME = "features"
OUTPUT_NAME = "p_mentor"


def read_metadata(path: str | Path) -> dict[str, str]:
    import onnxruntime

    session = onnx_session(path, onnxruntime)
    return dict(session.get_modelmeta().custom_metadata_map)


def onnx_session(path: str | Path, onnxruntime, what: str = "verifier"):  # type: ignore[no-untyped-def]
    path = Path(path)
    if not path.is_file():
        raise VerifierError(f"{what} file not found: {path}")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1  # a few hundred multiply-adds: threads cost more than they save
    options.log_severity_level = 3
    try:
        return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own untyped errors for unreadable files
        raise VerifierError(f"cannot load {what} {path}: {str(error).splitlines()[0]}") from None


class OnnxVerifier:
    """Adopts the mentor's segment when the model's p(mentor's branch is better)
    exceeds `threshold`.

    A verifier trained with hidden states (the paper's input) also reads the
    student's last hidden state at the end of the self verifier's question: it
    needs the student, and pays the self verifier's one prompt pass per call.
    """

    needs_scores = True

    def __init__(self, path: str | Path, threshold: float = 0.5, student: ModelBackend | None = None):
        import onnxruntime

        self.path = Path(path)
        self.threshold = threshold
        self._session = onnx_session(self.path, onnxruntime)
        self.metadata = dict(self._session.get_modelmeta().custom_metadata_map)
        self.hidden_state_size = self._check_features()
        self._reader: SelfVerifier | None = None
        if self.hidden_state_size:
            self._reader = self._hidden_state_reader(student)

    def _hidden_state_reader(self, student: ModelBackend | None) -> SelfVerifier:
        if student is None:
            raise VerifierError(f"{self.path} reads the student's hidden state; it needs a local student")
        size = student.hidden_size
        if size == 0:
            raise VerifierError(f"{self.path} reads the student's hidden state; {student.name} cannot return it")
        if size != self.hidden_state_size:
            raise VerifierError(
                f"{self.path} was trained on a student with hidden states of {self.hidden_state_size} numbers; "
                f"{student.name} has {size}: train one for this student"
            )
        return SelfVerifier(student)

    def _check_features(self) -> int:
        """Refuses a file whose inputs differ from what this engine computes;
        returns the size of the hidden state it reads (0: none)."""
        try:
            names = tuple(json.loads(self.metadata["feature_names"]))
            version = int(self.metadata["feature_set_version"])
            hidden = int(self.metadata.get("hidden_state_size", "0"))
        except (KeyError, ValueError, TypeError):
            raise VerifierError(f"{self.path} is not an edge-collab verifier (no feature metadata)") from None
        if version != FEATURE_SET_VERSION or names != FEATURE_NAMES:
            raise VerifierError(
                f"{self.path} was trained on feature set {version} ({len(names)} features); "
                f"this engine computes set {FEATURE_SET_VERSION} ({len(FEATURE_NAMES)} features): retrain it"
            )
        width = len(FEATURE_NAMES) + hidden
        inputs = self._session.get_inputs()
        if len(inputs) != 1 or inputs[0].name != INPUT_NAME or inputs[0].shape[-1] != width:
            raise VerifierError(f"{self.path}: its input is not '{INPUT_NAME}' with {width} numbers")
        return hidden

    @property
    def trained_for(self) -> tuple[str, str]:
        return self.metadata.get("student", "any"), self.metadata.get("mentor", "any")

    graded = True

    def probability(self, features: np.ndarray) -> np.ndarray:
        batch = np.atleast_2d(features).astype(np.float32)
        (output,) = self._session.run([OUTPUT_NAME], {INPUT_NAME: batch})
        return np.asarray(output).reshape(-1)

    def choose(self, divergence: Divergence) -> Verdict:
        if divergence.scores is None:
            raise VerifierError("the learned verifier needs divergence scores; the engine did not compute them")
        features = feature_vector(divergence.scores)
        if self._reader is not None:
            _, hidden = self._reader.choose_and_read(divergence)
            features = np.concatenate([features, hidden])
        p_mentor = float(self.probability(features)[0])
        return Verdict(adopt_mentor=p_mentor > self.threshold, lean=_log_odds(p_mentor) - _log_odds(self.threshold))


def _log_odds(p: float) -> float:
    p = min(max(p, 1e-6), 1.0 - 1e-6)
    return math.log(p / (1.0 - p))
