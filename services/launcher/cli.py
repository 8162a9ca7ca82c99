"""``babelstack``: run the embedded stack (``up``) and ask how it is (``status``)."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Annotated

import typer

from services.launcher.access_hint import access_lines
from services.launcher.batch_cli import batch_app
from services.launcher.health_cli import health_app
from services.launcher.keys_cli import keys_app
from services.launcher.models_cli import models_app
from services.launcher.progress import TerminalProgress
from services.launcher.stack import (
    SERVICE_MODULES,
    StackConfig,
    default_state_dir,
    read_readiness,
    run_until_stopped,
    start_stack,
)
from services.launcher.train_cli import train_app
from services.launcher.work_cli import register as register_work_commands
from shared.errors import BabelError

app = typer.Typer(help="BabelStack: multilingual NLP behind one REST API.", no_args_is_help=True)
app.add_typer(models_app, name="models")
app.add_typer(train_app, name="train")
app.add_typer(keys_app, name="keys")
app.add_typer(health_app, name="health")
app.add_typer(batch_app, name="batch")
register_work_commands(app)  # ingest, search, ask, translate, sentiment


def _say(line: str) -> None:
    typer.echo(line)


@app.command()
def up(
    host: Annotated[str, typer.Option(help="Interface the gateway binds to.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Gateway port.")] = 8080,
    service: Annotated[
        list[str] | None,
        typer.Option(
            "--service", "-s", help=f"Service to run (repeatable): {sorted(SERVICE_MODULES)}"
        ),
    ] = None,
    state_dir: Annotated[
        Path | None, typer.Option(help="Logs and Redis scratch files (default .babelstack).")
    ] = None,
    ready_timeout: Annotated[float, typer.Option(help="Seconds to wait for /readyz.")] = 300.0,
    share_cores: Annotated[
        bool,
        typer.Option(
            help="Give vLLM cores of its own and cap the other services' torch threads, "
            "so their calls keep their latency while generation is busy."
        ),
    ] = True,
) -> None:
    """Start Redis (unless REDIS_URL is set), every service and the gateway; Ctrl-C stops all."""
    config = StackConfig(
        host=host,
        port=port,
        services=tuple(service or SERVICE_MODULES),
        state_dir=state_dir or default_state_dir(),
        ready_timeout_s=ready_timeout,
        share_cores=share_cores,
    )
    # A SIGTERM during start-up must still stop what was started: make it an exception.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        stack = start_stack(config, os.environ, _say, TerminalProgress())
    except BabelError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    except KeyboardInterrupt:
        raise typer.Exit(code=130) from None
    base = stack.base_url
    _say("")
    _say("BabelStack is up")
    _say(f'  API        {base}   (try: curl -s {base}/v1/detect -d \'{{"q": "Hallo Welt"}}\')')
    _say(f"  search UI  {base}/ui")
    _say(f"  OpenAPI    {base}/schema/swagger")
    _say(f"  readiness  {base}/readyz")
    _say(f"  metrics    {base}/metrics")
    for line in access_lines(host, os.environ):
        _say(line)
    _say("Press Ctrl-C to stop.")
    raise typer.Exit(code=run_until_stopped(stack, _say))


@app.command()
def status(
    url: Annotated[
        str, typer.Option(envvar="BABEL_URL", help="Gateway base URL (env BABEL_URL).")
    ] = "http://127.0.0.1:8080",
) -> None:
    """Print readiness of Redis and each service; exit 1 unless ready."""
    code, body = read_readiness(url.rstrip("/"))
    if code == 0:
        typer.echo(f"gateway at {url} does not answer: {body.get('error')}")
        raise typer.Exit(code=1)
    redis = body.get("redis", {})
    typer.echo(f"gateway    {url}  {body.get('status')}")
    if isinstance(redis, dict):
        typer.echo(f"redis      ok={redis.get('ok')} latency_ms={redis.get('latency_ms')}")
    services = body.get("services", {})
    if isinstance(services, dict):
        typer.echo(
            f"{'service':<12}{'ready':<7}{'workers':<9}{'queue':<7}{'pending':<9}{'lag':<6}dead"
        )
        for name, s in services.items():
            typer.echo(
                f"{name:<12}{s['ready']!s:<7}{s['live_workers']:<9}{s['queue_depth']:<7}"
                f"{s['pending']:<9}{s['lag']!s:<6}{s['dead_letters']}"
            )
    raise typer.Exit(code=0 if code == 200 else 1)


if __name__ == "__main__":
    app()
