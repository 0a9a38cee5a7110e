"""`edge-collab report DIR...`: tables and plots from evaluation results."""

from __future__ import annotations

import json
from pathlib import Path

import click

from edge_collab.evaluation.report import load_runs, run_summary, write_report


@click.command()
@click.argument("folders", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where report.md and the PNG plots go (default: the first folder).",
)
@click.option("--json", "as_json", is_flag=True, help="Print each run's figures as one JSON line (writes nothing).")
def report(folders: tuple[Path, ...], out: Path | None, as_json: bool) -> None:
    """Summarise result files: accuracy with 95% intervals, mentor share, speed, pairwise comparisons."""
    if as_json:
        for run in load_runs(folders):
            click.echo(json.dumps(run_summary(run)))
        return
    target = out or (folders[0] if folders[0].is_dir() else folders[0].parent)
    markdown, plots = write_report(folders, target)
    click.echo(markdown)
    click.echo(f"\nwritten: {target / 'report.md'}, " + ", ".join(str(p) for p in plots), err=True)
