"""Every generation method, in one registry.

A method is a name, what it needs (a mentor, a verifier, one tokenizer for
both models), whether it probes the mentor at word steps (then the probe
policy and the mentor budget apply), the settings that identify one of its
runs in evaluation results, and how to start it. The command line, the
server, the evaluation runner and the report all read this table: adding a
method is adding an entry here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from edge_collab.engine.result import Steps
from edge_collab.engine.run import Run
from edge_collab.engine.token_level import Average, Cosd, Nudging, RStitch, TokenLevelLoop
from edge_collab.engine.word_loop import WordLoop
from edge_collab.errors import SettingsError


@dataclass(frozen=True)
class Method:
    name: str
    summary: str
    start: Callable[[Run], Steps]
    uses_student: bool = True
    needs_mentor: bool = True
    needs_verifier: bool = False
    token_level: bool = False  # decides every token: one tokenizer, a mentor in process
    probes: bool = False  # probes at word steps: the probe policy and the mentor budget apply
    run_parameters: tuple[str, ...] = ()  # GenerationSettings fields that identify a run of it


def _mentor_alone(run: Run) -> Steps:
    assert run.mentor is not None and run.prompts.mentor is not None
    return run.mentor.alone(run.student, run.prompts.mentor, run.settings)


_ALL = (
    Method(
        "collab",
        "the student writes; the mentor is probed at word steps; a verifier keeps one segment at each divergence",
        lambda run: WordLoop(run, consults="verify"),
        needs_verifier=True,
        probes=True,
        run_parameters=("probe_rate", "segment_tokens"),
    ),
    Method("student", "the student alone", lambda run: WordLoop(run), needs_mentor=False),
    Method("mentor", "the mentor alone", _mentor_alone, uses_student=False),
    Method(
        "takeover",
        "probes like collab; after each divergence the mentor writes to the end of the sentence",
        lambda run: WordLoop(run, consults="takeover"),
        probes=True,
        run_parameters=("probe_rate",),
    ),
    Method(
        "cosd",
        "CoSD: the mentor's token where the student is unsure and the mentor is surer",
        lambda run: TokenLevelLoop(run, Cosd()),
        token_level=True,
        run_parameters=("cosd_alpha", "cosd_beta"),
    ),
    Method(
        "nudging",
        "Nudging: the mentor writes while the student's top probability is low",
        lambda run: TokenLevelLoop(run, Nudging()),
        token_level=True,
        run_parameters=("nudging_gamma",),
    ),
    Method(
        "rstitch",
        "R-Stitch: hand over on entropy, each way",
        lambda run: TokenLevelLoop(run, RStitch()),
        token_level=True,
        run_parameters=("rstitch_tau",),
    ),
    Method(
        "average",
        "both next-token distributions mixed 50/50",
        lambda run: TokenLevelLoop(run, Average()),
        token_level=True,
    ),
)
METHODS: dict[str, Method] = {method.name: method for method in _ALL}
METHOD_NAMES = tuple(METHODS)


def method_named(name: str) -> Method:
    method = METHODS.get(name)
    if method is None:
        raise SettingsError(f"method must be one of {', '.join(METHOD_NAMES)}, not {name!r}")
    return method
