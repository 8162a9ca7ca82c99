"""``python -m tests.support.echo_worker``: a test-only service "echo" built on shared.rpc.

Its handlers leave traces in Redis, so a test can see what really ran:

* ``echo.sleep`` RPUSHes the request's value onto :data:`STARTED_KEY` before it sleeps.
* ``echo.count`` INCRs :data:`PRODUCED_KEY` for every chunk it yields.

Faults on request, for the fault tests: ``SleepRequest.fail`` makes ``echo.sleep`` raise
an unexpected exception (``"raise"``) or end its own process at once (``"crash"``, exit
status :data:`CRASH_EXIT`, like a segfault or an OOM kill) after it recorded its start;
``CountRequest.fail_after`` makes ``echo.count`` raise after that many chunks.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Mapping
from typing import Literal

import redis.asyncio as aioredis

from shared.messages.base import Message, Method
from shared.rpc.connection import connect
from shared.rpc.handlers import HandlerRegistry, RequestContext
from shared.rpc.runner import ServiceParts, run_service
from shared.rpc.worker import ServiceIdentity
from shared.settings import RedisSettings

SERVICE = "echo"
VERSION = "0.0.0-test"

STARTED_KEY = "test:echo:started"
"""List of the ``echo.sleep`` values whose handler started (one entry per delivery run)."""
PRODUCED_KEY = "test:echo:produced"
"""Counter of ``echo.count`` chunks the handler yielded."""
FINISHED_KEY = "test:echo:finished"
"""List of the ``echo.sleep`` values whose handler ran to its end (slept the whole time)."""
CRASH_EXIT = 86
"""Exit status of a worker that a ``fail="crash"`` request ended."""


class EchoFailure(RuntimeError):
    """What a ``fail="raise"`` request raises: an unexpected error, not a BabelError."""


class SleepRequest(Message, frozen=True, kw_only=True):
    value: str
    sleep_ms: int = 0
    redelivered_sleep_ms: int | None = None
    """How long to sleep instead on a later delivery (taken over from a dead worker)."""
    fail: Literal["", "raise", "crash"] = ""


class SleepReply(Message, frozen=True, kw_only=True):
    value: str
    worker: str
    deliveries: int


class CountRequest(Message, frozen=True, kw_only=True):
    n: int
    delay_ms: int = 0
    fail_after: int = -1
    """Raise :class:`EchoFailure` after this many chunks (-1: never)."""


class CountChunk(Message, frozen=True, kw_only=True):
    i: int


SLEEP: Method[SleepRequest, SleepReply] = Method(SERVICE, "sleep", SleepRequest, SleepReply)
COUNT: Method[CountRequest, CountChunk] = Method(
    SERVICE, "count", CountRequest, CountChunk, streaming=True
)


class EchoHandlers:
    def __init__(self, redis_settings: RedisSettings) -> None:
        self._redis_settings = redis_settings
        self._redis: aioredis.Redis | None = None

    async def warm_up(self) -> None:
        # Created inside the worker's event loop.
        self._redis = connect(self._redis_settings)
        await self._redis.ping()

    @property
    def redis(self) -> aioredis.Redis:
        assert self._redis is not None, "warm_up() not run"
        return self._redis

    async def sleep(self, request: SleepRequest, context: RequestContext) -> SleepReply:
        await self.redis.rpush(STARTED_KEY, request.value)
        if request.fail == "crash":
            os._exit(CRASH_EXIT)
        if request.fail == "raise":
            raise EchoFailure(f"echo.sleep told to fail ({request.value})")
        sleep_ms = request.sleep_ms
        if context.deliveries > 1 and request.redelivered_sleep_ms is not None:
            sleep_ms = request.redelivered_sleep_ms
        await asyncio.sleep(sleep_ms / 1000)
        await self.redis.rpush(FINISHED_KEY, request.value)
        return SleepReply(value=request.value, worker=context.worker, deliveries=context.deliveries)

    async def count(
        self, request: CountRequest, context: RequestContext
    ) -> AsyncIterator[CountChunk]:
        for i in range(request.n):
            if i == request.fail_after:
                raise EchoFailure(f"echo.count told to fail after {i} chunks")
            if request.delay_ms:
                await asyncio.sleep(request.delay_ms / 1000)
            await self.redis.incr(PRODUCED_KEY)
            yield CountChunk(i=i)


def build(environ: Mapping[str, str]) -> ServiceParts:
    handlers = EchoHandlers(RedisSettings.from_env(environ))
    registry = HandlerRegistry(SERVICE)
    registry.add_unary(SLEEP, handlers.sleep)
    registry.add_stream(COUNT, handlers.count)
    return ServiceParts(registry=registry, warm_up=handlers.warm_up)


def main() -> None:
    run_service(ServiceIdentity(service=SERVICE, version=VERSION), build, os.environ)


if __name__ == "__main__":
    main()
