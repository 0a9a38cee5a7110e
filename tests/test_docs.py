"""The README and docs/ stay true: every command they show parses, the
generated pages are current, the example app is the shipped script, and the
public names are the documented ones."""

from __future__ import annotations

import importlib.util
import re
import shlex
import sys
from pathlib import Path

import click
import pytest

import edge_collab
from edge_collab.cli.main import cli
from edge_collab.evaluation.report import comparison_table, load_runs, results_table

REPOSITORY = Path(__file__).resolve().parents[1]
README = REPOSITORY / "README.md"
PAGES = [README, *sorted((REPOSITORY / "docs").glob("*.md")), REPOSITORY / "lab" / "README.md"]
GENERATED = {REPOSITORY / "docs" / "cli.md", REPOSITORY / "docs" / "results" / "report.md"}


def _shell_blocks(text: str) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", text, flags=re.S)


def _commands_in_block(block: str) -> list[str]:
    """`edge-collab ...` command lines of a shell block, continuations joined
    and the block's own variables (R=..., EVAL="...") filled in."""
    joined = re.sub(r"\\\n\s*", " ", block)
    variables: dict[str, str] = {}
    commands = []
    for line in joined.splitlines():
        assignment = re.match(r"^([A-Z_]+)=(.*)$", line.strip())
        if assignment:
            variables[assignment.group(1)] = " ".join(shlex.split(assignment.group(2), comments=True))
            continue
        for name, value in variables.items():
            line = line.replace("${" + name + "}", value).replace("$" + name, value)
        for part in line.split("|"):
            part = part.strip()
            if part.startswith("edge-collab "):
                commands.append(part)
    return commands


# Placeholders that prose uses in commands, and a value each takes.
PLACEHOLDERS = {"TASK": "general_knowledge", "N": "10", "T": "1.5", "V": "self", "B": "0.18", "FILE": "x.jsonl"}


def _inline_commands(text: str) -> list[str]:
    """Inline `edge-collab ...` spans, with their placeholders (TASK, N, an
    optional [--flag X]) filled in; spans that list alternatives are left out."""
    commands = []
    for span in re.findall(r"`(edge-collab [^`]+)`", text.replace("\n", " ")):
        if re.search(r"[<>|…]|\.\.\.", span) or re.fullmatch(r"edge-collab( [a-z]+)+", span):
            continue  # alternatives, or a command named in prose ("`edge-collab sweep` runs ...")
        span = span.replace("[", "").replace("]", "")
        for name, value in PLACEHOLDERS.items():
            span = re.sub(rf"\b{name}\b", value, span)
        commands.append(span)
    return commands


def documented_commands() -> list[tuple[str, str]]:
    found = []
    for page in PAGES:
        if page in GENERATED:
            continue
        text = page.read_text(encoding="utf-8")
        for block in _shell_blocks(text):
            found += [(page.name, command) for command in _commands_in_block(block)]
        found += [(page.name, command) for command in _inline_commands(text)]
    return found


def _parse(words: list[str]) -> None:
    """Parse a command line the way the real command does, without running it
    (the documented commands put no group options before their subcommand)."""
    command: click.Command = cli
    parent = cli.make_context("edge-collab", [], resilient_parsing=True)
    while isinstance(command, click.Group):
        assert words, "a command group without a subcommand"
        name, *words = words
        sub = command.commands.get(name)
        assert sub is not None, f"no command {name!r}"
        command = sub
    command.make_context(command.name or "", list(words), parent=parent)


@pytest.mark.parametrize(("page", "command"), documented_commands(), ids=lambda value: str(value)[:60])
def test_every_documented_command_parses(page, command):
    words = shlex.split(command, comments=True)[1:]
    try:
        _parse(words)
    except click.exceptions.Exit:
        pass  # --help, --version
    except click.ClickException as error:
        if "does not exist" not in error.format_message():  # the user's own files and folders
            pytest.fail(f"{page}: `{command}`: {error.format_message()}")


def test_many_commands_are_checked():
    assert len(documented_commands()) >= 40


def test_the_generated_pages_are_current():
    spec = importlib.util.spec_from_file_location("reference_docs", REPOSITORY / "scripts" / "reference_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["reference_docs"] = module
    spec.loader.exec_module(module)
    for path, text in module.pages().items():
        assert path.read_text(encoding="utf-8") == text, f"{path} is out of date: python scripts/reference_docs.py"


# What docs/results/report.md is made of: every run of research/evaluations and
# the audit variant's three test runs (the command is in docs/results.md).
REPORT_SOURCES = (
    "research/evaluations",
    "research/unsure-batch/elementary_math_qa-question_only__collab__3635e4bb4f.jsonl",
    "research/unsure-batch/general_knowledge__collab__32ef782d3e.jsonl",
    "research/unsure-batch/strategyqa__collab__e90788e7df.jsonl",
)


def test_the_results_report_is_what_the_results_give():
    runs = load_runs([REPOSITORY / source for source in REPORT_SOURCES])
    markdown = "\n\n".join(
        ["## Results", results_table(runs), "## Pairwise comparison on common items", comparison_table(runs)]
    )
    written = (REPOSITORY / "docs" / "results" / "report.md").read_text(encoding="utf-8")
    command = " ".join((REPOSITORY / "docs" / "results.md").read_text(encoding="utf-8").replace("\\\n", " ").split())
    assert all(source in command for source in REPORT_SOURCES), "docs/results.md names the report's sources"
    assert written == markdown + "\n", "docs/results.md has the command that writes docs/results/report.md"


def test_local_links_point_at_files():
    for page in PAGES:
        for target in re.findall(r"\]\(([^)#]+)\)", page.read_text(encoding="utf-8")):
            if "://" not in target:
                assert (page.parent / target).exists(), f"{page.name} links to missing {target}"


def test_the_readme_is_short_and_its_example_app_is_the_shipped_script():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 300
    block = text.split("pair is installed):\n\n```python\n", 1)[1].split("```", 1)[0]
    script = REPOSITORY / "scripts" / "example_app.py"
    assert block == script.read_text(encoding="utf-8")
    assert len(block.splitlines()) <= 20


def test_the_public_names_are_the_documented_ones():
    text = (REPOSITORY / "docs" / "api.md").read_text(encoding="utf-8")
    paragraph = text.split("Public names (`edge_collab.__all__`):", 1)[1].split("\n\n", 1)[0]
    documented = set(re.findall(r"`(\w+)`", paragraph))
    assert documented == set(edge_collab.__all__)
    for name in edge_collab.__all__:
        assert hasattr(edge_collab, name)


def test_docstrings_cite_pages_that_exist():
    for path in (REPOSITORY / "edge_collab").rglob("*.py"):
        for page in re.findall(r"docs/([\w-]+\.md)", path.read_text(encoding="utf-8")):
            assert (REPOSITORY / "docs" / page).is_file(), f"{path} cites docs/{page}"
        assert "METHOD.md" not in path.read_text(encoding="utf-8"), path
