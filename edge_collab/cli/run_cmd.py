"""`edge-collab run PROMPT`: answer one prompt."""

from __future__ import annotations

import json
from typing import Any

import click

from edge_collab.cli.options import generation_options, generation_settings, model_options, open_pair
from edge_collab.cli.render import stream_pieces, summary_line


@click.command()
@click.argument("prompt")
@model_options
@generation_options
@click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON object (text, pieces, stats) instead of streaming."
)
@click.pass_context
def run(ctx: click.Context, prompt: str, as_json: bool, **options: Any) -> None:
    """Answer PROMPT, streaming it with mentor-written text marked."""
    if not prompt.strip():
        raise click.BadParameter("the prompt is empty", param_hint="PROMPT")
    settings = generation_settings(options)
    with open_pair(ctx, options, settings) as pair:
        generation = pair.generate(prompt, stream=True)
        if as_json:
            click.echo(json.dumps(generation.run().to_dict(), ensure_ascii=False))
            return
        stream_pieces(generation)
        assert generation.result is not None
        click.echo(summary_line(generation.result.stats), err=True)
