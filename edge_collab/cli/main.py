"""The `edge-collab` command. Errors become one line and a non-zero exit here,
at the edge, and nowhere else."""

from __future__ import annotations

import logging
import os
import sys
from importlib.metadata import entry_points
from typing import Any

import click

from edge_collab.errors import EdgeCollabError


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except EdgeCollabError as error:
            raise click.ClickException(str(error)) from None
        except KeyboardInterrupt:
            click.echo("\ninterrupted", err=True)
            sys.exit(130)
        except BrokenPipeError:
            # The reader went away (`| head`): stop quietly, as other command-line tools do.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(1)
        except OSError as error:
            target = f": {error.filename}" if error.filename else ""
            raise click.ClickException(f"{error.strerror or error}{target}") from None


@click.group(name="edge-collab", cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False),
    envvar="EDGE_COLLAB_HOME",
    help="Where models and results live (default: the platform's user data folder; env EDGE_COLLAB_HOME).",
)
@click.option("-v", "--verbose", count=True, help="Log more (-vv includes llama.cpp's own log).")
@click.version_option(package_name="edge-collab")
@click.pass_context
def cli(ctx: click.Context, data_dir: str | None, verbose: int) -> None:
    """A small local model writes; a larger mentor model guides it now and then."""
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if verbose < 2:
        logging.getLogger("edge_collab.llama_cpp").setLevel(logging.CRITICAL)
    ctx.obj = {"data_dir": data_dir}


def _register() -> None:
    from edge_collab.cli import (
        bench_cmd,
        chat_cmd,
        data_cmd,
        eval_cmd,
        mentor_cmd,
        models_cmd,
        report_cmd,
        run_cmd,
        serve_cmd,
        sweep_cmd,
        verifier_cmd,
    )

    cli.add_command(run_cmd.run)
    cli.add_command(chat_cmd.chat)
    cli.add_command(models_cmd.models)
    cli.add_command(bench_cmd.bench)
    cli.add_command(data_cmd.data)
    cli.add_command(eval_cmd.eval_command)
    cli.add_command(report_cmd.report)
    cli.add_command(verifier_cmd.verifier)
    cli.add_command(mentor_cmd.mentor)
    cli.add_command(serve_cmd.serve)
    cli.add_command(sweep_cmd.sweep)


def _load_plugins() -> None:
    """Commands other packages add (the lab's `verifier collect|train|value`),
    through the `edge_collab.commands` entry point: a function given the group."""
    for entry in entry_points(group="edge_collab.commands"):
        try:
            entry.load()(cli)
        except Exception as error:  # a broken plugin must not take the runtime's commands with it
            logging.getLogger(__name__).warning("plugin %s not loaded: %s", entry.name, error)


_register()
_load_plugins()


def main() -> None:
    cli(prog_name="edge-collab")
