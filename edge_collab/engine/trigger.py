"""Where to fetch a mentor segment, position by position (the audit policy).

With `--probe-policy audit` the mentor reads the student's answer in batches
and keeps its distribution at every position it read. A trigger looks at each
position, in order: what the student wrote there and how sure it was, what
the mentor would have written and how sure it is, and gives a *score* in
nats. The first position whose score exceeds the bar is where both models
roll back to and the mentor's segment is fetched (docs/method.md, "Audit
probing"). The budget controller, when the verifier cannot move (a fixed
verifier), lowers or raises the bar by its pressure.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Protocol

import numpy as np

from edge_collab.engine.sampling import TokenScore, log_softmax
from edge_collab.errors import SettingsError, VerifierError
from edge_collab.settings import GenerationSettings
from edge_collab.verifiers.features import POSITION_FEATURE_NAMES, POSITION_FEATURE_SET_VERSION, Position
from edge_collab.verifiers.onnx_verifier import INPUT_NAME, OUTPUT_NAME, onnx_session


class Trigger(Protocol):
    def score(self, position: Position) -> float:
        """How strongly to fetch the mentor's segment here, in nats; fires above the bar."""
        ...

    def may_fire(self, student: TokenScore) -> bool:
        """Whether it could fire where the student wrote a token with this
        score, whatever the mentor reads there and whatever the bar. Where it
        cannot, the mentor need not read yet and nothing there can be rolled
        back (engine/word_loop.py)."""
        ...

    def choice(self, position: Position) -> int | None:
        """The token the mentor's segment starts with where the trigger fires
        here, where the rule names one; None: the mentor's own first choice."""
        ...


class MentorPrefers:
    """Fires where the mentor prefers its own token to the student's by more
    than `threshold` nats: log p_mentor(its token) - log p_mentor(student's token)."""

    def __init__(self, threshold: float):
        self.threshold = threshold

    def score(self, position: Position) -> float:
        if position.agree:
            return -math.inf
        return position.mentor_top_logprob - position.mentor_student_logprob - self.threshold

    def may_fire(self, student: TokenScore) -> bool:
        return True  # any token the mentor would not have written

    def choice(self, position: Position) -> int | None:
        return None


class CosdRule:
    """CoSD's rule as a trigger: where the student's top probability is below
    alpha and the mentor's top token, another one, is more than beta times as
    likely as the student's is to the student. Its score is the log of that
    ratio, so a budget's pressure can lower or raise the bar."""

    def __init__(self, alpha: float, beta: float):
        self.alpha, self.beta = alpha, beta

    def score(self, position: Position) -> float:
        if position.agree or not self.may_fire(position.student):
            return -math.inf
        if self.beta == 0.0:
            return math.inf
        return position.mentor_top_logprob - math.log(self.beta * math.exp(position.student.logprob))

    def may_fire(self, student: TokenScore) -> bool:
        """Only where the student was unsure: its token's probability below alpha."""
        return math.exp(student.logprob) < self.alpha

    def choice(self, position: Position) -> int | None:
        return None


class AverageRule:
    """The `average` baseline's rule as a trigger: fires where the two models'
    next-token distributions, mixed 50/50, prefer another token c to the
    student's token s, and the segment starts with c. Its score is
    log(p_s(c) + p_m(c)) - log(p_s(s) + p_m(s)), c the mixture's best token
    other than s, so the bar sits at 0 and a budget's pressure can move it.
    With one-token segments the audit then writes what `average` writes,
    reading in batches instead of one token a pass.

    Where both whole distributions are at hand (a mentor in process with the
    student's tokenizer) c is found over the whole vocabulary: it can be a
    third token that neither model put first. Elsewhere (a served mentor, or
    positions matched through the text) c is the mentor's first choice and
    p_s(c) counts as 0 where it is not known, which can only make it fire
    less. It cannot be gated on the student's score alone: a mentor sure
    enough outvotes a sure student."""

    def __init__(self) -> None:
        # The last position scored and the mixture's choice there: `choice`
        # asks about the position `score` just fired at, and the mixture
        # costs a pass over the whole vocabulary.
        self._scored: tuple[Position, int] | None = None

    def score(self, position: Position) -> float:
        if position.agree:
            return -math.inf  # the mentor's first choice is the student's token: nothing to fetch
        mixed = _mixture(position)
        if mixed is not None:
            best, value = _runner_up(mixed, position.student_token)
            self._scored = (position, best)
            return value - float(mixed[position.student_token])
        mentor_choice = np.logaddexp(position.student_mentor_logprob, position.mentor_top_logprob)
        student_choice = np.logaddexp(position.student.logprob, position.mentor_student_logprob)
        return float(mentor_choice - student_choice)

    def may_fire(self, student: TokenScore) -> bool:
        return True

    def choice(self, position: Position) -> int | None:
        if self._scored is not None and self._scored[0] is position:
            return self._scored[1]
        mixed = _mixture(position)
        return None if mixed is None else _runner_up(mixed, position.student_token)[0]


def _mixture(position: Position) -> np.ndarray | None:
    """log(p_s + p_m) over the whole vocabulary, where both rows are known."""
    if position.student_logits is None or position.mentor_logprobs is None:
        return None
    return np.logaddexp(log_softmax(position.student_logits), position.mentor_logprobs)


def _runner_up(mixed: np.ndarray, student_token: int) -> tuple[int, float]:
    """The mixture's best token other than the student's, and its value."""
    student_value = mixed[student_token]
    mixed[student_token] = -np.inf
    best = int(np.argmax(mixed))
    value = float(mixed[best])
    mixed[student_token] = student_value
    return best, value


class LearnedTrigger:
    """A small MLP in an ONNX file (trained by the lab's `verifier
    train-trigger`) that reads a position's features and gives p(taking the
    mentor's segment here helps); its score is the log-odds, so it fires where
    p > 0.5 and the budget's pressure moves that bar. Where the mentor's first
    choice is the student's token there is nothing to fetch."""

    def __init__(self, path: Path):
        import onnxruntime

        self.path = path
        self._session = onnx_session(path, onnxruntime, what="trigger")
        self.metadata = dict(self._session.get_modelmeta().custom_metadata_map)
        try:
            names = tuple(json.loads(self.metadata["feature_names"]))
            version = int(self.metadata["feature_set_version"])
            kind = self.metadata["kind"]
        except (KeyError, ValueError, TypeError):
            raise VerifierError(f"{path} is not an edge-collab trigger (no trigger metadata)") from None
        if kind != "trigger" or names != POSITION_FEATURE_NAMES or version != POSITION_FEATURE_SET_VERSION:
            raise VerifierError(
                f"{path} is not a trigger for position feature set {POSITION_FEATURE_SET_VERSION} "
                f"({len(POSITION_FEATURE_NAMES)} features): train one with `edge-collab verifier train-trigger`"
            )

    def may_fire(self, student: TokenScore) -> bool:
        return True  # the model reads both sides

    def choice(self, position: Position) -> int | None:
        return None

    def score(self, position: Position) -> float:
        if position.agree:
            return -math.inf
        batch = position.vector().reshape(1, -1)
        (output,) = self._session.run([OUTPUT_NAME], {INPUT_NAME: batch})
        p = min(max(float(np.asarray(output).reshape(-1)[0]), 1e-6), 1.0 - 1e-6)
        return math.log(p / (1.0 - p))


SHIPPED_TRIGGER = Path(__file__).parent.parent / "verifiers" / "data" / "default_pair_trigger.onnx"
ENV_TRIGGER_FILE = "EDGE_COLLAB_TRIGGER_FILE"


def learned_trigger_file() -> Path:
    """EDGE_COLLAB_TRIGGER_FILE, else the file shipped for the default pair."""
    named = os.environ.get(ENV_TRIGGER_FILE)
    if named:
        return Path(named)
    if not SHIPPED_TRIGGER.is_file():  # a setting asked for what this install lacks: the caller's to change
        raise SettingsError(
            "no learned trigger is shipped for the default pair yet; train one (edge-collab verifier collect "
            f"--probe-policy audit, then verifier train-trigger) and name it in {ENV_TRIGGER_FILE}"
        )
    return SHIPPED_TRIGGER


_LOADED: dict[Path, LearnedTrigger] = {}


def trigger_for(settings: GenerationSettings) -> Trigger:
    if settings.trigger == "cosd":
        return CosdRule(settings.cosd_alpha, settings.cosd_beta)
    if settings.trigger == "average":
        return AverageRule()
    if settings.trigger == "learned":
        path = learned_trigger_file()
        if path not in _LOADED:  # one session per file for the process: answers start often
            _LOADED[path] = LearnedTrigger(path)
        return _LOADED[path]
    return MentorPrefers(settings.trigger_threshold)
