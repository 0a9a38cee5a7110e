"""`edge-collab serve`: an OpenAI-compatible server for local apps."""

from __future__ import annotations

import logging
import signal
from typing import Any

import click

from edge_collab.cli.options import generation_options, generation_settings, model_options, open_pair
from edge_collab.server.guards import allowed_hosts, is_loopback


@click.command()
@model_options
@generation_options()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (loopback unless asked).")
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True)
@click.option("--api-key", envvar="EDGE_COLLAB_API_KEY", show_envvar=True, help="Required off loopback.")
@click.option(
    "--queue-size",
    type=click.IntRange(0, 1000),
    default=8,
    show_default=True,
    help="Requests that may wait while one generates; beyond it clients get 429.",
)
@click.option("--model-name", default="edge-collab", show_default=True, help="The model id clients use.")
@click.option(
    "--allowed-host",
    "allowed_host",
    multiple=True,
    metavar="NAME",
    help="Also answer requests whose Host header is NAME ('*': any). Default: the bound address, and the "
    "loopback names on loopback (a guard against DNS rebinding).",
)
@click.pass_context
def serve(
    ctx: click.Context,
    host: str,
    port: int,
    api_key: str | None,
    queue_size: int,
    model_name: str,
    allowed_host: tuple[str, ...],
    **options: Any,
) -> None:
    """Serve /v1/chat/completions, /v1/completions, /v1/models and /health."""
    import uvicorn

    from edge_collab.server.app import ServerSettings, create_app

    if not is_loopback(host) and not api_key:
        raise click.ClickException(f"binding to {host} exposes the server beyond this machine: pass --api-key")
    settings = generation_settings(options)
    server_log = logging.getLogger("edge_collab.server")
    if server_log.getEffectiveLevel() > logging.INFO:
        server_log.setLevel(logging.INFO)  # a server logs every request; -v adds the rest
    with open_pair(ctx, options, settings) as pair:
        if settings.method != "student":
            _ = pair.mentor  # load now, not on the first request
        hosts = allowed_hosts(host, allowed_host)
        config = ServerSettings(
            model_name=model_name,
            api_key=api_key,
            queue_size=queue_size,
            allowed_hosts=None if hosts is None else frozenset(hosts),
        )
        app = create_app(pair, config)
        shown = f"[{host}]" if ":" in host else host
        click.echo(f"serving {model_name} at http://{shown}:{port}/v1 (Ctrl-C or SIGTERM stops)", err=True)
        # uvicorn shuts down gracefully on SIGTERM and then re-raises it to the
        # previous handler; a quiet one lets the models close and the process exit 0.
        previous = signal.signal(signal.SIGTERM, lambda *_: None)
        try:
            uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=5)
        finally:
            signal.signal(signal.SIGTERM, previous)
