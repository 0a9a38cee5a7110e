"""`edge-collab chat`: a multi-turn conversation on the terminal."""

from __future__ import annotations

from typing import Any

import click

from edge_collab.cli.options import generation_options, generation_settings, model_options, open_pair
from edge_collab.cli.render import stream_pieces, summary_line
from edge_collab.engine.result import GenerationResult

HELP = "Commands: /stats (last answer's statistics), /reset (forget the conversation), /quit. Ctrl-C stops an answer."


def _read_line() -> str | None:
    try:
        return input(click.style("you> ", bold=True))
    except EOFError:
        return None


@click.command()
@model_options
@generation_options()
@click.option("--system", default=None, help="A system message that opens the conversation.")
@click.pass_context
def chat(ctx: click.Context, system: str | None, **options: Any) -> None:
    """Chat with the student, guided by the mentor."""
    settings = generation_settings(options)
    opening = [{"role": "system", "content": system}] if system else []
    messages = list(opening)
    last: GenerationResult | None = None
    with open_pair(ctx, options, settings) as pair:
        click.echo(HELP, err=True)
        while True:
            try:
                line = _read_line()
            except KeyboardInterrupt:
                click.echo("\n(type /quit to leave)", err=True)
                continue
            if line is None or line.strip() == "/quit":
                break
            command = line.strip()
            if not command:
                continue
            if command == "/stats":
                click.echo(summary_line(last.stats) if last else "no answer yet", err=True)
                continue
            if command == "/reset":
                messages, last = list(opening), None
                click.echo("(conversation cleared)", err=True)
                continue
            if command.startswith("/"):
                click.echo(f"unknown command {command}. {HELP}", err=True)
                continue
            messages.append({"role": "user", "content": line})
            generation = pair.chat(messages, stream=True)
            try:
                stream_pieces(generation)
            except KeyboardInterrupt:
                # Keep what was written: the partial answer stays in the conversation.
                partial = "".join(piece.text for piece in generation.pieces)
                click.echo("\n(stopped)", err=True)
                messages.append({"role": "assistant", "content": partial})
                continue
            assert generation.result is not None
            last = generation.result
            messages.append({"role": "assistant", "content": last.text})
            click.echo(summary_line(last.stats), err=True)
