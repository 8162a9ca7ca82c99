"""``babelstack health``: the probes of containers and pods, as commands that exit 0 or 1.

``health worker SERVICE`` reads the heartbeats of ``SERVICE`` from Redis and looks for the
worker of *this* host (a container's or pod's hostname is its own, and the worker writes it
into its heartbeat): ready, or with ``--live`` merely alive (loading a model counts).
``health gateway`` asks the gateway on this host for ``/readyz`` (``--live``: ``/healthz``).
Each prints one line saying what it found.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Annotated

import typer
from redis.exceptions import RedisError

from services.gateway.settings import GatewaySettings
from shared.messages.system import WorkerInfo
from shared.rpc.connection import connect
from shared.rpc.keys import Keys
from shared.rpc.stats import read_workers
from shared.settings import RedisSettings, load_settings

health_app = typer.Typer(
    help="Health probes for containers and pods: exit 0 when healthy, 1 when not.",
    no_args_is_help=True,
)

LIVE_STATES = ("loading", "ready", "stopping")
"""A worker with a heartbeat in one of these states is alive (its process is not stuck)."""


def judge_workers(
    workers: Sequence[WorkerInfo], service: str, host: str, *, live: bool
) -> tuple[bool, str]:
    """Whether a worker of ``service`` on ``host`` is ready (or alive), and a line saying so."""
    mine = [w for w in workers if w.service == service and w.host == host]
    wanted = LIVE_STATES if live else ("ready",)
    good = [w for w in mine if w.state in wanted]
    if good:
        w = good[0]
        return True, (
            f"{service} worker {w.worker} on {host}: {w.state} "
            f"(in flight {w.in_flight}/{w.concurrency}, processed {w.processed})"
        )
    if mine:
        states = ", ".join(f"{w.worker} {w.state}" for w in mine)
        return False, f"{service} worker on {host} is not {'alive' if live else 'ready'}: {states}"
    others = len(workers)
    return False, (
        f"no heartbeat of a {service} worker on {host} "
        f"({others} heartbeat(s) of {service} on other hosts)"
    )


async def _read(redis_settings: RedisSettings, service: str) -> tuple[WorkerInfo, ...]:
    redis = connect(redis_settings)
    try:
        return await asyncio.wait_for(
            read_workers(redis, Keys(redis_settings.key_prefix), service), timeout=5.0
        )
    finally:
        await redis.aclose()


@health_app.command()
def worker(
    service: Annotated[str, typer.Argument(help="The service: tasks, retrieval, generation.")],
    live: Annotated[
        bool,
        typer.Option(
            "--live",
            help="Liveness: a heartbeat in any state (loading included) is enough, and an "
            "unreachable Redis is not the worker's fault (exit 0, with a warning).",
        ),
    ] = False,
    host: Annotated[
        str | None, typer.Option(help="Whose worker (default: this host's name).")
    ] = None,
) -> None:
    """Exit 0 when this host's worker of SERVICE is ready (--live: alive), per its heartbeat."""
    host = host or socket.gethostname()
    redis_settings = RedisSettings.from_env(os.environ)
    try:
        workers = asyncio.run(_read(redis_settings, service))
    except (RedisError, OSError, TimeoutError) as exc:
        typer.echo(f"redis unreachable: {exc or type(exc).__name__}", err=True)
        raise typer.Exit(code=0 if live else 1) from None
    ok, line = judge_workers(workers, service, host, live=live)
    typer.echo(line, err=not ok)
    raise typer.Exit(code=0 if ok else 1)


def gateway_probe_url(environ: Mapping[str, str], *, live: bool) -> str:
    """The gateway's own ``/readyz`` (or ``/healthz``) on loopback, at its configured port."""
    port = load_settings(GatewaySettings, environ).port
    return f"http://127.0.0.1:{port}/{'healthz' if live else 'readyz'}"


@health_app.command()
def gateway(
    live: Annotated[
        bool, typer.Option("--live", help="Liveness: /healthz (the process answers).")
    ] = False,
    url: Annotated[
        str | None,
        typer.Option(help="Probe this URL instead of /readyz on BABEL_GATEWAY_PORT locally."),
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the answer.")] = 3.0,
) -> None:
    """Exit 0 when the gateway on this host answers /readyz with 200 (--live: /healthz)."""
    target = url or gateway_probe_url(os.environ, live=live)
    try:
        with urllib.request.urlopen(target, timeout=timeout) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read()
    except (urllib.error.URLError, OSError) as exc:
        typer.echo(f"gateway at {target} does not answer: {exc}", err=True)
        raise typer.Exit(code=1) from None
    try:
        summary = json.loads(body).get("status", "")
    except (ValueError, AttributeError):
        summary = ""
    typer.echo(f"gateway {target}: {status} {summary}".rstrip(), err=status != 200)
    raise typer.Exit(code=0 if status == 200 else 1)
