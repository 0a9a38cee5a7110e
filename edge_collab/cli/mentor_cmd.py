"""`edge-collab mentor serve MODEL`: a mentor server for students elsewhere.

It starts llama-cpp-python's own OpenAI-compatible server (not a server of
ours) on the given GGUF file or installed preset. The server keeps the KV
cache of the previous request and reuses its longest common prefix, which is
exactly the access pattern of probes (each prompt extends the last).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess

import click

from edge_collab.cli.options import model_setting_options
from edge_collab.presets.registry import resolve_model
from edge_collab.remote.llama_cpp_server import llama_cpp_server_command
from edge_collab.server.guards import is_loopback


@click.group()
def mentor() -> None:
    """Serve a mentor model over HTTP."""


@mentor.command()
@click.argument("model")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (loopback unless asked).")
@click.option("--port", type=click.IntRange(1, 65535), default=8081, show_default=True)
@model_setting_options(gpu_flags=("--gpu-layers",))
@click.option("--api-key", envvar="EDGE_COLLAB_MENTOR_API_KEY", show_envvar=True, help="Required off loopback.")
@click.option(
    "--model-alias", default=None, help="Name the server reports for the model (default: the preset or file name)."
)
@click.pass_context
def serve(
    ctx: click.Context,
    model: str,
    host: str,
    port: int,
    gpu_layers: int,
    n_ctx: int,
    threads: int | None,
    api_key: str | None,
    model_alias: str | None,
) -> None:
    """Serve MODEL (preset or .gguf) with llama-cpp-python's OpenAI-compatible server."""
    if not is_loopback(host) and not api_key:
        raise click.ClickException(f"binding to {host} exposes the mentor beyond this machine: pass --api-key")
    missing = [name for name in ("pydantic_settings", "starlette_context") if importlib.util.find_spec(name) is None]
    if missing:
        raise click.ClickException(
            "mentor serve runs llama-cpp-python's server, which needs its extras: "
            "pip install 'edge-collab[mentor-server]'"
        )
    path = resolve_model(model, ctx.obj["data_dir"])
    alias = model_alias or model if not model.endswith(".gguf") else path.stem
    command = llama_cpp_server_command(
        path, alias=alias, host=host, port=port, n_ctx=n_ctx, gpu_layers=gpu_layers, threads=threads
    )
    environment = dict(os.environ)
    if api_key:
        environment["API_KEY"] = api_key  # read by the server's settings; kept off the command line
    shown_host = f"[{host}]" if ":" in host else host
    click.echo(f"mentor {alias} at http://{shown_host}:{port}/v1  (pass it as --mentor; Ctrl-C stops)", err=True)
    try:
        completed = subprocess.run(command, env=environment)
    except KeyboardInterrupt:
        return
    if completed.returncode not in (0, -2, 130):
        raise click.ClickException(f"the mentor server exited with status {completed.returncode}")
