"""Process entry point shared by every service: settings, logging, signals, worker."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from shared.messages.system import SelfCheck
from shared.rpc.connection import connect
from shared.rpc.handlers import HandlerRegistry
from shared.rpc.keys import Keys
from shared.rpc.worker import ServiceIdentity, Worker
from shared.settings import LogSettings, RedisSettings, WorkerSettings, load_settings
from shared.telemetry import configure_logging, get_logger


@dataclass(frozen=True)
class ServiceParts:
    """What a service builds from its settings: handlers, and how to start and stop them."""

    registry: HandlerRegistry
    warm_up: Callable[[], Awaitable[None]] | None = None
    """Loads models; the worker reports ``loading`` until it returns."""
    close: Callable[[], Awaitable[None]] | None = None
    """Runs after the last in-flight request (flush snapshots, free engines)."""
    checks: Callable[[], tuple[SelfCheck, ...]] | None = None
    """The self-checks the worker's heartbeat reports (see :class:`SelfCheck`)."""
    dead: Callable[[], str | None] | None = None
    """Why the service can no longer serve (e.g. its engine processes died), or None. Polled
    every heartbeat interval: the worker then stops taking work, reports ``stopping``, lets
    in-flight work end and exits with :data:`EXIT_DEAD`, so that its supervisor restarts it."""


EXIT_DEAD = 70
"""Exit status of a worker whose service died under it (``EX_SOFTWARE``)."""


async def _watch(
    dead: Callable[[], str | None], stop: asyncio.Event, interval_s: float, found: list[str]
) -> None:
    while not stop.is_set():
        reason = dead()
        if reason is not None:
            get_logger(__name__).error("service dead; the worker stops", reason=reason)
            found.append(reason)
            stop.set()
            return
        await asyncio.sleep(interval_s)


async def serve_worker(
    *, identity: ServiceIdentity, parts: ServiceParts, environ: Mapping[str, str]
) -> str | None:
    """Run one worker until SIGTERM/SIGINT (None) or its service dies (the reason); in-flight
    work gets the grace period."""
    redis_settings = RedisSettings.from_env(environ)
    worker_settings = load_settings(WorkerSettings, environ)
    redis = connect(redis_settings)
    worker = Worker(
        redis=redis,
        keys=Keys(redis_settings.key_prefix),
        settings=worker_settings,
        registry=parts.registry,
        identity=identity,
        checks=parts.checks,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    found: list[str] = []
    watcher = None
    if parts.dead is not None:
        interval_s = worker_settings.heartbeat_interval_ms / 1000
        watcher = asyncio.create_task(_watch(parts.dead, stop, interval_s, found), name="watch")
    try:
        await worker.run(stop, parts.warm_up)
    finally:
        if watcher is not None:
            watcher.cancel()
        if parts.close is not None:
            await parts.close()
        await redis.aclose()
    return found[0] if found else None


def run_service(
    identity: ServiceIdentity,
    build: Callable[[Mapping[str, str]], ServiceParts],
    environ: Mapping[str, str],
) -> None:
    """Configure logging, build the service's handlers from settings, serve until stopped."""
    configure_logging(load_settings(LogSettings, environ), service=identity.service)
    parts = build(environ)
    get_logger(__name__).info("starting worker", service=identity.service, version=identity.version)
    serving = serve_worker(identity=identity, parts=parts, environ=environ)
    try:
        import uvloop

        dead = uvloop.run(serving)
    except ImportError:  # pragma: no cover - uvloop is optional
        dead = asyncio.run(serving)
    if dead is not None:
        raise SystemExit(EXIT_DEAD)
