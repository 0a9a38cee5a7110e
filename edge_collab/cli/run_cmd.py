"""`edge-collab run PROMPT`: answer one prompt (`-`, or no PROMPT with a pipe: read it from stdin)."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from edge_collab.cli.options import generation_options, generation_settings, model_options, open_pair
from edge_collab.cli.render import HIDE_THINKING, stream_pieces, summary_line


class PromptError(click.ClickException):
    """A prompt that cannot be answered: one line, and the exit status of a usage error."""

    exit_code = 2


def read_prompt(prompt: str | None) -> str:
    """The prompt as given, or standard input's text for `-` or a missing prompt
    when something is piped in (as `llm` and `ollama run` do)."""
    if prompt is None or prompt == "-":
        if prompt is None and sys.stdin.isatty():
            raise click.UsageError("give a PROMPT, or pipe one in (PROMPT '-' reads standard input)")
        data = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read().encode()
        try:
            prompt = data.decode("utf-8")
        except UnicodeDecodeError as error:
            raise PromptError(f"standard input is not UTF-8 text (byte {error.start})") from None
    if not prompt.strip():
        raise PromptError("the prompt is empty")
    return prompt


@click.command()
@click.argument("prompt", required=False)
@model_options
@generation_options()
@click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON object (text, pieces, stats) instead of streaming."
)
@HIDE_THINKING
@click.pass_context
def run(ctx: click.Context, prompt: str | None, as_json: bool, hide_thinking: bool, **options: Any) -> None:
    """Answer PROMPT, streaming it with mentor-written text marked."""
    text = read_prompt(prompt)
    settings = generation_settings(options)
    with open_pair(ctx, options, settings) as pair:
        generation = pair.generate(text, stream=True)
        if as_json:
            click.echo(json.dumps(generation.run().to_dict(), ensure_ascii=False))
            return
        stream_pieces(generation, hide_thinking)
        assert generation.result is not None
        click.echo(summary_line(generation.result.stats), err=True)
