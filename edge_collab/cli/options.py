"""Command-line options, derived from the settings' own declarations.

Every generation and model option is declared once, in edge_collab/settings.py,
with its range, default and help; the flags here are built from those
declarations and check values with the same function, so `run`, `eval`, the
server and the Python API accept exactly the same values (tests/test_options.py).
Only the options that choose models (which files, which server, which
verifier) are the command line's own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any

import click

from edge_collab.engine.methods import METHOD_NAMES
from edge_collab.errors import SettingsError
from edge_collab.pair import CollabPair
from edge_collab.settings import (
    GENERATION_KINDS,
    GENERATION_OPTIONS,
    MODEL_KINDS,
    MODEL_OPTIONS,
    GenerationSettings,
    ModelSettings,
    Option,
    check_value,
)
from edge_collab.verifiers.named import VERIFIERS

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


class SettingType(click.ParamType):
    """A number as settings.py allows it: the same check and the same message."""

    def __init__(self, name: str, option: Option, kind: str):
        self.name, self._field, self._option, self._kind = kind, name, option, kind

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str):
            try:
                value = int(value) if self._kind == "int" else float(value)
            except ValueError:
                self.fail(f"{value!r} is not {'an integer' if self._kind == 'int' else 'a number'}", param, ctx)
        try:
            return check_value(self._field, self._option, value, self._kind)
        except SettingsError as error:
            self.fail(str(error), param, ctx)


def _param_type(name: str, option: Option, kind: str) -> click.ParamType | None:
    if name == "method":
        return click.Choice(METHOD_NAMES)
    if option.choices is not None:
        return click.Choice(option.choices)
    if kind in ("int", "float"):
        return SettingType(name, option, kind)
    return None


def _help(option: Option) -> str:
    described = option.describe()
    shown = described and option.choices is None and option.max_items is None
    return f"{option.help} [{described}]" if shown else option.help


def _setting_option(
    name: str,
    option: Option,
    kind: str,
    default: Any,
    flag: str | None = None,
    param: str | None = None,
    *,
    multiple: bool = False,
) -> Decorator:
    """One click option for the setting `name` (stored under `param`, default `name`)."""
    shown, param = flag or option.flag, param or name
    assert shown is not None
    if kind == "strings" or multiple:
        default = list(default) if isinstance(default, list | tuple) else [default]

        def check(ctx: click.Context, param_: click.Parameter, value: Any) -> Any:
            if kind != "strings":
                return value
            try:
                return check_value(name, option, value, kind)
            except SettingsError as error:
                raise click.BadParameter(str(error), ctx, param_) from None

        return click.option(
            shown,
            param,
            callback=check,
            multiple=True,
            default=default,
            type=_param_type(name, option, "str"),
            show_default=bool(default),
            help=_help(option) + " Repeatable.",
        )
    if default is None and name == "mentor_budget":
        default = 0.0
    return click.option(
        shown,
        param,
        type=_param_type(name, option, kind),
        default=default,
        show_default=default is not None,
        help=_help(option),
    )


def generation_options(
    *,
    only: Iterable[str] | None = None,
    exclude: Iterable[str] = (),
    defaults: Mapping[str, Any] | None = None,
    multiple_methods: bool = False,
) -> Decorator:
    """The generation options a command offers (all that settings.py puts on the
    command line, or `only` these), with the command's own `defaults`."""
    wanted = set(only) if only is not None else None
    skipped = set(exclude)
    changed = dict(defaults or {})
    decorators = []
    for name, option in GENERATION_OPTIONS.items():
        if option.flag is None or name in skipped or (wanted is not None and name not in wanted):
            continue
        default = changed.get(name, getattr(GenerationSettings(), name))
        many = multiple_methods and name == "method"
        decorators.append(_setting_option(name, option, GENERATION_KINDS[name], default, multiple=many))
    return _apply(decorators)


def generation_settings(options: Mapping[str, Any], **changes: Any) -> GenerationSettings:
    """GenerationSettings from a command's parsed options (those it offers; the rest keep their defaults)."""
    given = {name: options[name] for name in GENERATION_OPTIONS if name in options}
    if isinstance(given.get("method"), tuple):
        given.pop("method")  # eval's repeated --method: each run sets its own
    if "stop" in given:
        given["stop"] = tuple(given["stop"])
    return GenerationSettings(**(given | changes))


_PAIR_OPTIONS = [
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
        "--verifier",
        default="self",
        show_default=True,
        metavar="|".join(VERIFIERS) + "|FILE.onnx",
        help="Who decides between the two segments at a divergence: the student itself, the shipped learned "
        "verifier, a learned verifier file, or a fixed side.",
    ),
]


def model_setting_options(gpu_flags: tuple[str, ...] = ("--student-gpu-layers", "--mentor-gpu-layers")) -> Decorator:
    """--n-ctx, --threads and one GPU-layers flag per model, from ModelSettings."""
    defaults = ModelSettings()
    decorators = []
    for name, option in MODEL_OPTIONS.items():
        flags = gpu_flags if name == "gpu_layers" else (option.flag or "",)
        for flag in flags:
            param, shown = name, option
            if name == "gpu_layers" and flag != "--gpu-layers":
                param = flag.removeprefix("--").replace("-", "_")
                role = param.split("_")[0].capitalize()
                shown = replace(option, help=f"{role} {option.help[0].lower()}{option.help[1:]}")
            decorators.append(_setting_option(name, shown, MODEL_KINDS[name], getattr(defaults, name), flag, param))
    return _apply(decorators)


def model_options(command: Callable[..., Any]) -> Callable[..., Any]:
    return _apply([*_PAIR_OPTIONS, model_setting_options()])(command)


def model_settings(options: Mapping[str, Any], role: str) -> ModelSettings:
    return ModelSettings(n_ctx=options["n_ctx"], gpu_layers=options[f"{role}_gpu_layers"], threads=options["threads"])


def _apply(decorators: list[Decorator]) -> Decorator:
    def apply(command: Callable[..., Any]) -> Callable[..., Any]:
        for decorator in reversed(decorators):
            command = decorator(command)
        return command

    return apply


def open_pair(ctx: click.Context, options: Mapping[str, Any], settings: GenerationSettings | None = None) -> CollabPair:
    return CollabPair.open(
        options["student"],
        options["mentor"],
        settings=settings,
        student_settings=model_settings(options, "student"),
        mentor_settings=model_settings(options, "mentor"),
        verifier=options["verifier"],
        data_dir=ctx.obj["data_dir"],
        mentor_model=options["mentor_model"],
        mentor_api_key=options["mentor_api_key"],
    )
