"""`edge-collab chat`: a multi-turn conversation on the terminal."""

from __future__ import annotations

import sys
from typing import Any

import click

from edge_collab.cli.options import generation_options, generation_settings, model_options, open_pair
from edge_collab.cli.render import HIDE_THINKING, stream_pieces, summary_line
from edge_collab.engine.generation import Generation
from edge_collab.engine.result import GenerationResult
from edge_collab.errors import ContextOverflowError, EdgeCollabError
from edge_collab.pair import CollabPair

HELP = "Commands: /stats (last answer's statistics), /reset (forget the conversation), /quit. Ctrl-C stops an answer."


def _read_line() -> str | None:
    try:
        return input(click.style("you> ", bold=True) if sys.stdout.isatty() else "you> ")
    except EOFError:
        return None


@click.command()
@model_options
@generation_options()
@click.option("--system", default=None, help="A system message that opens the conversation.")
@HIDE_THINKING
@click.pass_context
def chat(ctx: click.Context, system: str | None, hide_thinking: bool, **options: Any) -> None:
    """Chat with the student, guided by the mentor.

    When the conversation outgrows the context, its oldest exchanges are
    dropped with a notice (the system message stays); /reset starts afresh."""
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
            generation = _start_fitting(pair, messages, len(opening))
            if generation is None:
                messages.pop()  # this message cannot be answered; the conversation before it stays
                continue
            try:
                stream_pieces(generation, hide_thinking)
            except KeyboardInterrupt:
                # Keep what was written: the partial answer stays in the conversation.
                partial = "".join(piece.text for piece in generation.pieces)
                click.echo("\n(stopped)", err=True)
                messages.append({"role": "assistant", "content": partial})
                continue
            except EdgeCollabError as error:
                click.echo(f"\nError: {error}", err=True)
                messages.append({"role": "assistant", "content": "".join(p.text for p in generation.pieces)})
                continue
            assert generation.result is not None
            last = generation.result
            messages.append({"role": "assistant", "content": last.text})
            click.echo(summary_line(last.stats), err=True)


def _start_fitting(pair: CollabPair, messages: list[dict[str, str]], kept: int) -> Generation | None:
    """Start an answer to `messages`; while the conversation is too long for the
    context, drop its oldest exchange (never the first `kept` messages, the
    system message) and say so. None, with the reason shown, when even the
    newest message alone does not fit, or the turn fails for another reason."""
    dropped = 0
    while True:
        try:
            generation = pair.chat(messages, stream=True)
        except ContextOverflowError as error:
            if len(messages) - kept <= 1:
                click.echo(f"Error: {error}. The conversation is kept; /reset clears it.", err=True)
                return None
            # The oldest user message, with the answer to it.
            del messages[kept : kept + (2 if len(messages) - kept > 2 else 1)]
            dropped += 1
            continue
        except EdgeCollabError as error:
            click.echo(f"Error: {error}", err=True)
            return None
        if dropped:
            click.echo(
                f"(the conversation outgrew the model's context: the oldest {dropped} "
                f"{'exchange was' if dropped == 1 else 'exchanges were'} dropped; /reset starts afresh)",
                err=True,
            )
        return generation
