"""Showing an answer on a terminal: mentor text in colour, plain when piped."""

from __future__ import annotations

from collections.abc import Iterable

import click

from edge_collab.engine.pieces import Piece, Source
from edge_collab.engine.stats import GenerationStats
from edge_collab.thinking import ThinkingStream

HIDE_THINKING = click.option(
    "--hide-thinking", is_flag=True, help="Leave a thinking model's <think> section out of the shown answer."
)

MENTOR_COLOUR = "cyan"


def stream_pieces(pieces: Iterable[Piece], hide_thinking: bool = False) -> None:
    """Echo pieces as they arrive; a thinking model's section dimmed (or left
    out). click drops the colour codes when stdout is not a terminal, so piped
    output is the bare answer."""
    thinking = ThinkingStream(starts_inside=getattr(pieces, "opens_thinking", False))
    for piece in pieces:
        for kind, text in thinking.feed(piece.text):
            _show(kind, text, piece.source, hide_thinking)
    for kind, text in thinking.finish():
        _show(kind, text, Source.STUDENT, hide_thinking)
    click.echo()


def _show(kind: str, text: str, source: Source, hide_thinking: bool) -> None:
    if kind == "thinking":
        if not hide_thinking:
            click.echo(click.style(text, dim=True), nl=False)
        return
    click.echo(click.style(text, fg=MENTOR_COLOUR) if source is Source.MENTOR else text, nl=False)


def summary_line(stats: GenerationStats) -> str:
    mentor = click.style("mentor text", fg=MENTOR_COLOUR)
    trouble = stats.mentor_trouble()
    failures = click.style(f"; {trouble}", fg="yellow") if trouble else ""
    # Under the audit policy the mentor reads batches and is never probed: say what it did.
    asked = f"{stats.audits} audits" if stats.audits else f"{stats.probes} probes"
    return (
        f"[{stats.method}] mentor share {stats.mentor_share:.1%} ({stats.tokens_mentor}/{stats.tokens_total} tokens, "
        f"{mentor}), {asked}, {stats.divergences} divergences, {stats.adoptions} adoptions, "
        f"{stats.tokens_per_s:.1f} tokens/s, {stats.wall_s:.1f} s, stop: {stats.stop_reason}{failures}"
    )
