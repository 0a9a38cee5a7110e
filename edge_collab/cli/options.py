"""Options shared by the commands that run models, declared once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from edge_collab.pair import VERIFIERS, CollabPair
from edge_collab.settings import (
    DEFAULT_MENTOR_BUDGET,
    DEFAULT_PROBE_RATE,
    DEFAULT_SEGMENT_TOKENS,
    MODES,
    PROBE_POLICIES,
    GenerationSettings,
    ModelSettings,
)

_MODEL_OPTIONS = [
    click.option(
        "--student", metavar="MODEL", help="Student: an installed preset or a .gguf path (default pair if omitted)."
    ),
    click.option(
        "--mentor",
        metavar="MODEL|URL",
        help="Mentor: an installed preset, a .gguf path, or a completion server http://host:port[/v1] "
        "(default pair if omitted).",
    ),
    click.option("--mentor-model", metavar="NAME", help="Model name on the mentor server (if it serves several)."),
    click.option(
        "--mentor-api-key",
        metavar="KEY",
        envvar="EDGE_COLLAB_MENTOR_API_KEY",
        show_envvar=True,
        help="API key for the mentor server (never printed).",
    ),
    click.option(
        "--n-ctx",
        type=click.IntRange(64, 1_048_576),
        default=4096,
        show_default=True,
        help="Context size of each model, in tokens.",
    ),
    click.option(
        "--student-gpu-layers",
        type=click.IntRange(-1),
        default=0,
        show_default=True,
        help="Student layers on the GPU (-1: all; needs a CUDA or Metal build).",
    ),
    click.option(
        "--mentor-gpu-layers",
        type=click.IntRange(-1),
        default=0,
        show_default=True,
        help="Mentor layers on the GPU (-1: all).",
    ),
    click.option(
        "--threads", type=click.IntRange(1, 512), default=None, help="CPU threads per model (default: all cores)."
    ),
    click.option(
        "--verifier",
        default="self",
        show_default=True,
        metavar="|".join(VERIFIERS) + "|FILE.onnx",
        help="Who decides between the two segments at a divergence: the student itself, the shipped learned "
        "verifier, a learned verifier file, or a fixed side.",
    ),
]

_PROBING_OPTIONS = [
    click.option(
        "--probe-policy",
        type=click.Choice(PROBE_POLICIES),
        default="random",
        show_default=True,
        help="random: probe with --probe-rate; uncertainty: probe where the student's entropy reaches a threshold.",
    ),
    click.option(
        "--uncertainty-threshold",
        type=click.FloatRange(0.0, 20.0),
        default=1.0,
        show_default=True,
        help="Entropy (nats) at which the uncertainty policy probes.",
    ),
    click.option(
        "--mentor-budget",
        type=click.FloatRange(0.0, 1.0, max_open=True),
        default=DEFAULT_MENTOR_BUDGET,
        show_default=True,
        help=(
            "Target mentor share: a controller moves the verifier's adoption bar (the probe rate or "
            "threshold for always-mentor/always-student) over the run or session to reach it. "
            "0 turns it off (the paper's fixed loop)."
        ),
    ),
]

_GENERATION_OPTIONS = [
    click.option(
        "--mode",
        type=click.Choice(MODES),
        default="collab",
        show_default=True,
        help="collab, or one model alone for comparison.",
    ),
    click.option(
        "--probe-rate",
        type=click.FloatRange(0.0, 1.0),
        default=DEFAULT_PROBE_RATE,
        show_default=True,
        help="Probability that a word step probes the mentor.",
    ),
    click.option(
        "--segment-tokens",
        type=click.IntRange(1, 256),
        default=DEFAULT_SEGMENT_TOKENS,
        show_default=True,
        help="Lookahead tokens each model writes at a divergence.",
    ),
    click.option(
        "--max-tokens", type=click.IntRange(1, 1_000_000), default=512, show_default=True, help="Cap on answer tokens."
    ),
    click.option(
        "--seed",
        type=click.IntRange(0, 2**63 - 1),
        default=0,
        show_default=True,
        help="Seeds probes and sampling: same seed, same answer.",
    ),
    click.option(
        "--temperature",
        type=click.FloatRange(0.0, 5.0),
        default=0.0,
        show_default=True,
        help="0 is greedy (as in the paper).",
    ),
    click.option("--stop", multiple=True, help="Stop string (repeatable)."),
]


def _apply(options: list[Callable[[Any], Any]], command: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(options):
        command = option(command)
    return command


def model_options(command: Callable[..., Any]) -> Callable[..., Any]:
    return _apply(_MODEL_OPTIONS, command)


def generation_options(command: Callable[..., Any]) -> Callable[..., Any]:
    return _apply(_GENERATION_OPTIONS + _PROBING_OPTIONS, command)


def probing_options(command: Callable[..., Any]) -> Callable[..., Any]:
    return _apply(_PROBING_OPTIONS, command)


def probing_settings(options: dict[str, Any]) -> dict[str, Any]:
    return {
        "probe_policy": options["probe_policy"],
        "uncertainty_threshold": options["uncertainty_threshold"],
        "mentor_budget": options["mentor_budget"] or None,  # 0: no controller
    }


def generation_settings(options: dict[str, Any]) -> GenerationSettings:
    return GenerationSettings(
        mode=options["mode"],
        probe_rate=options["probe_rate"],
        segment_tokens=options["segment_tokens"],
        max_new_tokens=options["max_tokens"],
        seed=options["seed"],
        temperature=options["temperature"],
        stop=tuple(options["stop"]),
        **probing_settings(options),
    )


def open_pair(ctx: click.Context, options: dict[str, Any], settings: GenerationSettings | None = None) -> CollabPair:
    def model_settings(gpu_layers: int) -> ModelSettings:
        return ModelSettings(n_ctx=options["n_ctx"], gpu_layers=gpu_layers, threads=options["threads"])

    return CollabPair.open(
        options["student"],
        options["mentor"],
        settings=settings,
        student_settings=model_settings(options["student_gpu_layers"]),
        mentor_settings=model_settings(options["mentor_gpu_layers"]),
        verifier=options["verifier"],
        data_dir=ctx.obj["data_dir"],
        mentor_model=options["mentor_model"],
        mentor_api_key=options["mentor_api_key"],
    )
