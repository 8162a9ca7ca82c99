"""``python -m tests.support.echo_worker``: a test-only service "echo" built on shared.rpc.

Its handlers leave traces in Redis, so a test can see what really ran:

* ``echo.sleep`` RPUSHes the request's value onto :data:`STARTED_KEY` before it sleeps.
* ``echo.count`` INCRs :data:`PRODUCED_KEY` for every chunk it yields.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Mapping

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


class SleepRequest(Message, frozen=True, kw_only=True):
    value: str
    sleep_ms: int = 0


class SleepReply(Message, frozen=True, kw_only=True):
    value: str
    worker: str
    deliveries: int


class CountRequest(Message, frozen=True, kw_only=True):
    n: int
    delay_ms: int = 0


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
        await asyncio.sleep(request.sleep_ms / 1000)
        return SleepReply(value=request.value, worker=context.worker, deliveries=context.deliveries)

    async def count(
        self, request: CountRequest, context: RequestContext
    ) -> AsyncIterator[CountChunk]:
        for i in range(request.n):
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
