"""Showing an answer on a terminal: mentor text in colour, plain when piped."""

from __future__ import annotations

from collections.abc import Iterable

import click

from edge_collab.engine.pieces import Piece, Source
from edge_collab.engine.stats import GenerationStats

MENTOR_COLOUR = "cyan"


def stream_pieces(pieces: Iterable[Piece]) -> None:
    """Echo pieces as they arrive. click drops the colour codes when stdout is
    not a terminal, so piped output is the bare answer."""
    for piece in pieces:
        text = click.style(piece.text, fg=MENTOR_COLOUR) if piece.source is Source.MENTOR else piece.text
        click.echo(text, nl=False)
    click.echo()


def summary_line(stats: GenerationStats) -> str:
    mentor = click.style("mentor text", fg=MENTOR_COLOUR)
    trouble = stats.mentor_trouble()
    failures = click.style(f"; {trouble}", fg="yellow") if trouble else ""
    return (
        f"[{stats.method}] mentor share {stats.mentor_share:.1%} ({stats.tokens_mentor}/{stats.tokens_total} tokens, "
        f"{mentor}), {stats.probes} probes, {stats.divergences} divergences, {stats.adoptions} adoptions, "
        f"{stats.tokens_per_s:.1f} tokens/s, {stats.wall_s:.1f} s, stop: {stats.stop_reason}{failures}"
    )
