"""Every option is declared once (edge_collab/settings.py): the command line,
the server's requests and the Python API accept exactly the same values."""

from __future__ import annotations

import click
import click.testing
import pytest
from pydantic import ValidationError

from edge_collab.cli.main import cli
from edge_collab.engine.methods import METHOD_NAMES
from edge_collab.errors import SettingsError
from edge_collab.server.schema import NOT_PER_REQUEST, OPENAI_FIELDS, REQUEST_SETTINGS, ChatRequest
from edge_collab.settings import GENERATION_KINDS, GENERATION_OPTIONS, MODEL_OPTIONS, GenerationSettings, ModelSettings

MESSAGE = [{"role": "user", "content": "hi"}]


def probes(name: str) -> list[object]:
    """Values at, just inside and just outside the option's limits."""
    option, kind = GENERATION_OPTIONS.get(name) or MODEL_OPTIONS[name], GENERATION_KINDS.get(name, "int")
    if name == "method":
        return [*METHOD_NAMES, "both"]
    if option.choices is not None:
        return [*option.choices, "other"]
    if kind == "strings":
        return [("a",), ("a", "b", "c", "d"), ("a", "b", "c", "d", "e"), ("",)]
    step = 1 if kind == "int" else 1e-6
    values: list[object] = [*option.also]
    for bound in (option.low, option.high):
        if bound is not None:
            values += [bound - step, bound, bound + step]
    return [int(v) if kind == "int" else float(v) for v in values]  # type: ignore[call-overload]


def api_accepts(name: str, value: object) -> bool:
    try:
        (GenerationSettings if name in GENERATION_OPTIONS else ModelSettings)(**{name: value})  # type: ignore[arg-type]
    except SettingsError:
        return False
    return True


def cli_accepts(command: click.Command, flag: str, value: object) -> bool:
    values = value if isinstance(value, tuple) else (value,)
    args = [part for single in values for part in (flag, str(single))]
    arguments = [param.name or "" for param in command.params if isinstance(param, click.Argument) and param.required]
    for param in command.params:
        if isinstance(param, click.Option) and param.required:
            arguments += [param.opts[0], "x"]
    try:
        command.make_context(command.name or "", [*arguments, *args])
    except click.BadParameter:
        return False
    return True


def commands_with(flag: str) -> list[click.Command]:
    found = []
    for command in [*cli.commands.values(), *cli.commands["verifier"].commands.values()]:  # type: ignore[attr-defined]
        if any(flag in getattr(param, "opts", ()) for param in command.params):
            found.append(command)
    return found


SWITCHES = [n for n, o in GENERATION_OPTIONS.items() if o.flag and GENERATION_KINDS[n] == "bool"]


@pytest.mark.parametrize(
    "name", [n for n, o in GENERATION_OPTIONS.items() if o.flag and n != "method" and n not in SWITCHES]
)
def test_every_command_accepts_what_the_api_accepts(name):
    flag = GENERATION_OPTIONS[name].flag
    assert flag is not None
    commands = commands_with(flag)
    assert {"run", "chat", "serve"} <= {c.name for c in commands}
    for value in probes(name):
        expected = api_accepts(name, value)
        for command in commands:
            assert cli_accepts(command, flag, value) == expected, (command.name, name, value)


@pytest.mark.parametrize("name", SWITCHES)
def test_a_switch_is_a_flag_pair_everywhere_and_unset_by_default(name):
    on, off = str(GENERATION_OPTIONS[name].flag).split("/")
    commands = commands_with(on)
    assert {"run", "chat", "serve"} <= {c.name for c in commands}
    for command in commands:
        arguments = [p.name or "" for p in command.params if isinstance(p, click.Argument) and p.required]
        for given, expected in (([on], True), ([off], False), ([], None)):
            assert command.make_context(command.name or "", [*arguments, *given]).params[name] is expected
    assert request_accepts(name, True) and request_accepts(name, False) and not request_accepts(name, "yes")
    assert api_accepts(name, None) and not api_accepts(name, "yes")


def test_the_method_is_one_of_the_registry_s_everywhere():
    run = cli.commands["run"]
    for value in probes("method"):
        expected = value in METHOD_NAMES
        assert cli_accepts(run, "--method", value) == expected
        assert cli_accepts(cli.commands["eval"], "--method", value) == expected
        assert request_accepts("method", value) == expected


@pytest.mark.parametrize("name", ["n_ctx", "threads", "gpu_layers"])
def test_model_options_on_the_command_line_are_the_api_s(name):
    flags = ["--student-gpu-layers", "--mentor-gpu-layers"] if name == "gpu_layers" else [MODEL_OPTIONS[name].flag]
    for value in probes(name):
        for flag in flags:
            assert flag is not None
            assert cli_accepts(cli.commands["run"], flag, value) == api_accepts(name, value), (flag, value)
    mentor_serve = cli.commands["mentor"].commands["serve"]  # type: ignore[attr-defined]
    flag = "--gpu-layers" if name == "gpu_layers" else MODEL_OPTIONS[name].flag
    for value in probes(name):
        assert cli_accepts(mentor_serve, flag, value) == api_accepts(name, value)


def request_accepts(name: str, value: object) -> bool:
    request = GENERATION_OPTIONS[name].request
    wire = list(value) if isinstance(value, tuple) else value
    try:
        overrides = ChatRequest(messages=MESSAGE, **{request: wire}).overrides()  # type: ignore[arg-type]
    except ValidationError:
        return False
    GenerationSettings().with_changes(**overrides)  # what a request accepts, the settings take
    return True


@pytest.mark.parametrize("name", [n for n, o in GENERATION_OPTIONS.items() if o.request and n != "method"])
def test_requests_accept_what_the_api_accepts(name):
    for value in probes(name):
        if name != "method":
            assert request_accepts(name, value) == api_accepts(name, value), (name, value)


def test_what_the_server_takes_and_refuses_is_listed_once():
    offered = set(REQUEST_SETTINGS) | set(OPENAI_FIELDS)
    fields = set(ChatRequest.model_fields) | {"prompt", "echo"}
    assert fields == offered
    not_offered = {name for name, option in GENERATION_OPTIONS.items() if option.request is None}
    listed = {part.strip() for key in NOT_PER_REQUEST for part in key.split(",")}
    assert not_offered <= listed and set(MODEL_OPTIONS) <= listed


def test_messages_name_the_range():
    with pytest.raises(SettingsError, match="probe rate must be a number from 0 to 1, not 2"):
        GenerationSettings(probe_rate=2)
    result = click.testing.CliRunner().invoke(cli, ["run", "x", "--probe-rate", "2"])
    assert "probe rate must be a number from 0 to 1, not 2.0" in result.output
