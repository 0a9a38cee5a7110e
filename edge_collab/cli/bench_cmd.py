"""`edge-collab bench`: student alone, mentor alone and collab, side by side."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from edge_collab.cli.options import generation_options, generation_settings, model_options, open_pair
from edge_collab.engine.result import GenerationResult
from edge_collab.evaluation.bench import BENCH_PROMPTS, bench_row_count, run_bench


def _table(report: dict[str, Any]) -> str:
    lines = [
        "| method | tokens/s | overhead | mentor share | student eval / ideal | re-evaluated "
        "| mentor decode | mentor prefill (read ahead) | mentor passes | mentor s | student tokens discarded "
        "| written ahead (rolled back) | stops |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for method, r in report["methods"].items():
        ratio = r["student_eval_vs_ideal"]
        stops = ", ".join(f"{k} {v}" for k, v in sorted(r["stop_reasons"].items()))
        lines.append(
            f"| {method} | {r['tokens_per_s']:.1f} | {r['overhead_fraction']:.1%} | {r['mentor_share']:.1%} | "
            f"{'-' if ratio is None else f'{ratio:.3f}'} | {r['reevaluated_tokens']} | {r['mentor_decode_tokens']} | "
            f"{r['mentor_prefill_tokens']} ({r['mentor_read_ahead_tokens']}) | {r['mentor_forward_passes']} | "
            f"{r['mentor_s']:.1f} | "
            f"{r['student_discarded_tokens']} | {r['student_written_ahead_tokens']} "
            f"({r['student_ahead_rolled_back_tokens']}) | {stops} |"
        )
    lines.append("")
    memory = report["peak_rss_mib"]
    lines.append(f"collab / student-alone tokens/s: {report['collab_vs_student_speed']:.2f}; peak RSS {memory:.0f} MiB")
    lines.append(f"collab / mentor-alone tokens/s: {report['collab_vs_mentor_speed']:.2f}")
    if report["collab_vs_paper_loop_speed"] is not None:
        lines.append(f"collab / the paper's loop (random probes) tokens/s: {report['collab_vs_paper_loop_speed']:.2f}")
    if report["collab_vs_in_turn_speed"] is not None:
        lines.append(
            f"collab / collab taking turns tokens/s: {report['collab_vs_in_turn_speed']:.2f} "
            "(the mentor in process probes and reads on a thread of its own)"
        )
    return "\n".join(lines)


@click.command()
@model_options
@generation_options(exclude=("method",), defaults={"max_new_tokens": 256})
@click.option(
    "--prompts",
    "prompt_count",
    type=click.IntRange(1, len(BENCH_PROMPTS)),
    default=len(BENCH_PROMPTS),
    show_default=True,
    help="How many of the fixed prompts to run.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON instead of a table.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, writable=True),
    default="bench.json",
    show_default=True,
    help="Where to write the JSON report.",
)
@click.pass_context
def bench(ctx: click.Context, prompt_count: int, as_json: bool, out: str, **options: Any) -> None:
    """Run student-alone, mentor-alone and collab on the same fixed prompts."""
    settings = generation_settings(options)
    prompts = BENCH_PROMPTS[:prompt_count]
    with open_pair(ctx, options, settings) as pair:
        rows = bench_row_count(pair)
        with click.progressbar(length=len(prompts) * rows, label="bench", show_eta=True, file=sys.stderr) as bar:

            def on_answer(method: str, index: int, result: GenerationResult) -> None:
                bar.update(1)

            report = run_bench(pair, prompts, on_answer=on_answer)
    Path(out).write_text(json.dumps(report, indent=2) + "\n")
    click.echo(json.dumps(report, indent=2) if as_json else _table(report))
    click.echo(f"report written to {out}", err=True)
