"""Starting a generation: the method's loop, checked and wrapped for streaming."""

from __future__ import annotations

from collections.abc import Iterator

from edge_collab.backends.base import ModelBackend
from edge_collab.engine.budget import MentorBudget
from edge_collab.engine.mentor import Mentor
from edge_collab.engine.methods import method_named
from edge_collab.engine.pieces import Piece
from edge_collab.engine.result import GenerationResult, Prompts, Steps
from edge_collab.engine.run import Run
from edge_collab.errors import IncompatiblePairError, SettingsError
from edge_collab.settings import GenerationSettings
from edge_collab.verifiers.base import Verifier, needs_scores


class Generation:
    """A generation in progress: iterate for streamed pieces; once iteration
    ends, `result` holds the text, all pieces and the statistics."""

    def __init__(self, loop: Steps):
        self._loop = loop
        self._steps = loop.steps()
        # Whether the prompt opened a thinking section (DeepSeek-R1's template
        # does): the answer then starts inside it (edge_collab/thinking.py).
        self.opens_thinking = False

    def __iter__(self) -> Iterator[Piece]:
        return self._steps

    @property
    def pieces(self) -> list[Piece]:
        """Pieces emitted so far."""
        return self._loop.pieces

    @property
    def result(self) -> GenerationResult | None:
        return self._loop.result

    def run(self) -> GenerationResult:
        """Consume the rest of the stream and return the result."""
        for _ in self._steps:
            pass
        assert self._loop.result is not None
        return self._loop.result

    def close(self) -> None:
        """Stop the generation where it is (the models stop working)."""
        close = getattr(self._steps, "close", None)  # every loop is a generator
        if close is not None:
            close()


def start_generation(
    student: ModelBackend,
    mentor: Mentor | None,
    verifier: Verifier | None,
    settings: GenerationSettings,
    prompts: Prompts,
    budget: MentorBudget | None = None,
) -> Generation:
    """Prepare a generation; nothing runs until it is iterated. A `budget`
    controller, if given, is updated as the answer grows and keeps its state."""
    method = method_named(settings.method)
    if method.needs_mentor and (mentor is None or prompts.mentor is None):
        raise SettingsError(f"method {method.name} needs a mentor")
    if method.needs_verifier and verifier is None:
        raise SettingsError(f"method {method.name} needs a verifier")
    if method.needs_verifier and needs_scores(verifier) and mentor is not None and not mentor.can_score:
        raise IncompatiblePairError(
            "the learned verifier needs a local mentor (it reads both segments with both models)"
        )
    return Generation(method.start(Run(student, mentor, verifier, settings, prompts, budget)))
