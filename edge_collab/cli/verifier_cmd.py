"""`edge-collab verifier info`: what a learned verifier file says about itself.

The commands that make verifiers (`collect`, `train`, `value`) come with the
lab package (`pip install -e ./lab`), which adds them to this group."""

from __future__ import annotations

import json
from pathlib import Path

import click

from edge_collab.verifiers.named import SHIPPED_VERIFIER
from edge_collab.verifiers.onnx_verifier import read_metadata


@click.group()
def verifier() -> None:
    """Inspect learned verifiers (collect, train and value come with the lab: pip install -e ./lab)."""


@verifier.command()
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the metadata as one JSON object.")
def info(file: Path | None, as_json: bool) -> None:
    """Show a verifier file's metadata (without FILE, or with 'onnx': the one
    shipped for the default pair, which --verifier onnx uses)."""
    path = SHIPPED_VERIFIER if file is None or str(file) == "onnx" else file
    metadata = read_metadata(path)
    if as_json:
        click.echo(json.dumps(metadata, sort_keys=True))
        return
    for key, value in sorted(metadata.items()):
        click.echo(f"{key}: {value}")
