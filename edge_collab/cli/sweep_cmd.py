"""`edge-collab sweep TASK`: collab over a grid of probe rates and segment
lengths, with every baseline, on development items; draws the frontier."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from edge_collab.cli.eval_cmd import run_with_progress
from edge_collab.cli.options import generation_options, generation_settings, model_options, open_pair
from edge_collab.engine.methods import METHODS
from edge_collab.evaluation.report import load_runs, plot_frontier, results_table
from edge_collab.evaluation.tasks import load_task, select

BASELINES = tuple(name for name in METHODS if name != "collab")


def _floats(text: str) -> list[float]:
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated numbers, not {text!r}") from None


@click.command()
@click.argument("task")
@model_options
@generation_options(exclude=("method", "probe_rate", "segment_tokens"))
@click.option("--probe-rates", default="0.05,0.1,0.25,0.5", show_default=True)
@click.option("--segment-lengths", default="4,8,16", show_default=True)
@click.option("--baselines", default=",".join(BASELINES), show_default=True, help="Other methods on the same items.")
@click.option("--limit", type=click.IntRange(1), default=50, show_default=True)
@click.option(
    "--split",
    type=click.Choice(["train", "test", "all"]),
    default="train",
    show_default=True,
    help="Development items by default, so defaults are never chosen on reported items.",
)
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path), default=Path("results/sweep"), show_default=True
)
@click.pass_context
def sweep(
    ctx: click.Context,
    task: str,
    probe_rates: str,
    segment_lengths: str,
    baselines: str,
    limit: int,
    split: str,
    out: Path,
    **options: Any,
) -> None:
    """Run the grid (resumable like eval) and draw frontier.png."""
    rates = _floats(probe_rates)
    lengths = [int(v) for v in _floats(segment_lengths)]
    methods = [m.strip() for m in baselines.split(",") if m.strip()]
    unknown = sorted(set(methods) - set(BASELINES))
    if unknown or any(not 0 <= r <= 1 for r in rates) or any(not 1 <= k <= 256 for k in lengths):
        raise click.BadParameter(f"probe rates must be 0..1, lengths 1..256, baselines among {', '.join(BASELINES)}")
    loaded = load_task(task, ctx.obj["data_dir"])
    items = select(loaded, split, limit)  # type: ignore[arg-type]
    if not items:
        raise click.ClickException(f"{loaded.name} has no {split} items")
    base = generation_settings(options)
    plan = [(method, base) for method in methods] + [
        ("collab", base.with_changes(probe_rate=rate, segment_tokens=k)) for k in lengths for rate in rates
    ]
    with open_pair(ctx, options, base) as pair:
        for index, (method, settings) in enumerate(plan, start=1):
            label = f"[{index}/{len(plan)}] {method}" + (
                f" ρ={settings.probe_rate:g} k={settings.segment_tokens}" if method == "collab" else ""
            )
            run_with_progress(pair, loaded, items, method, settings, out, split, label)
    runs = [r for r in load_runs([out]) if r.task == loaded.name]
    plot_frontier(runs, out / "frontier.png", f"{loaded.name} ({split} items)")
    click.echo(results_table(runs))
    click.echo(f"\nfrontier: {out / 'frontier.png'}", err=True)
