"""`edge-collab eval TASK`: accuracy, mentor share and speed on a benchmark."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from edge_collab.cli.options import generation_options, generation_settings, model_options, open_pair
from edge_collab.evaluation.runner import RunningTotals, run_method
from edge_collab.evaluation.tasks import Item, Task, load_task, select
from edge_collab.pair import CollabPair
from edge_collab.settings import GenerationSettings


def _show_on(bar: Any) -> Callable[[RunningTotals], None]:
    """Move the bar to the number of finished items, with running accuracy and mentor share."""

    def update(totals: RunningTotals) -> None:
        status = f"acc {totals.accuracy:.0%} mentor {totals.mentor_share:.0%}" if totals.done else ""
        bar.update(totals.done - bar.pos, status)

    return update


def run_with_progress(
    pair: CollabPair,
    task: Task,
    items: list[Item],
    method: str,
    settings: GenerationSettings,
    out: Path,
    split: str,
    label: str,
) -> tuple[Path, RunningTotals]:
    """run_method behind a progress bar (running accuracy, mentor share, ETA)."""
    with click.progressbar(
        length=len(items), label=label, show_eta=True, show_pos=True, file=sys.stderr, item_show_func=lambda t: t
    ) as bar:
        return run_method(pair, task, items, method, settings, out, split, on_item=_show_on(bar))


def _parse_shard(_ctx: click.Context, _param: click.Parameter, value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    part, _, parts = value.partition("/")
    if not (part.isdigit() and parts.isdigit() and 1 <= int(part) <= int(parts)):
        raise click.BadParameter(f"{value!r} is not K/N with 1 <= K <= N, e.g. 1/2", param_hint="--shard")
    return int(part), int(parts)


@click.command("eval")
@click.argument("task")
@model_options
@generation_options(multiple_methods=True)
@click.option(
    "--limit", type=click.IntRange(1), default=None, help="At most N items (a fixed sample shared by all methods)."
)
@click.option(
    "--shard",
    callback=_parse_shard,
    default=None,
    metavar="K/N",
    help="Only every Nth item of the sample, from the Kth: N processes side by side fill one run (same --out).",
)
@click.option(
    "--split",
    type=click.Choice(["test", "train", "all"]),
    default="test",
    show_default=True,
    help="Large tasks keep one item in ten for training the verifier; evaluate on the rest.",
)
@click.option(
    "--out", type=click.Path(file_okay=False), default="results", show_default=True, help="Folder for results."
)
@click.option("--json", "as_json", is_flag=True, help="Print each method's totals as one JSON line.")
@click.pass_context
def eval_command(
    ctx: click.Context,
    task: str,
    limit: int | None,
    shard: tuple[int, int] | None,
    split: str,
    out: str,
    as_json: bool,
    **options: Any,
) -> None:
    """Run the methods (--method, repeatable) on TASK's items; resumes where an identical run stopped."""
    loaded = load_task(task, ctx.obj["data_dir"])
    items = select(loaded, split, limit)  # type: ignore[arg-type]
    if shard is not None:
        part, parts = shard
        items = items[part - 1 :: parts]
    if not items:
        raise click.ClickException(f"{loaded.name} has no {split} items")
    settings = generation_settings(options)
    with open_pair(ctx, options, settings) as pair:
        for method in dict.fromkeys(options["method"]):
            label = f"{loaded.name} {method}"
            path, totals = run_with_progress(pair, loaded, items, method, settings, Path(out), split, label)
            if totals.regraded:
                click.echo(
                    f"{label}: {totals.regraded} stored replies graded again with the current answer extraction",
                    err=as_json,
                )
            if totals.answers_with_mentor_failures:
                click.echo(
                    click.style(
                        f"{label}: in {totals.answers_with_mentor_failures} of {totals.done} answers the mentor "
                        "failed requests (the student went on alone there)",
                        fg="yellow",
                    ),
                    err=True,
                )
            if as_json:
                click.echo(
                    json.dumps({"task": loaded.name, "method": method, "results": str(path), **totals.to_dict()})
                )
                continue
            click.echo(
                f"{label}: accuracy {totals.accuracy:.1%} ({totals.correct}/{totals.done}), "
                f"mentor share {totals.mentor_share:.1%} -> {path}"
            )
