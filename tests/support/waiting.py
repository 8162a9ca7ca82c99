"""Polling helpers: wait for live workers, or for any condition, with a hard timeout."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

import msgspec
import redis.asyncio as aioredis

from shared.messages.system import WorkerInfo
from shared.rpc.keys import Keys
from tests.support.processes import WorkerProcess

T = TypeVar("T")

_worker_info_decoder = msgspec.msgpack.Decoder(WorkerInfo)


async def heartbeats(
    redis: aioredis.Redis, service: str, keys: Keys | None = None
) -> list[WorkerInfo]:
    """Every heartbeat of ``service`` now in Redis (any state), decoded."""
    keys = keys or Keys()
    found: list[WorkerInfo] = []
    async for key in redis.scan_iter(match=keys.heartbeat_pattern(service), count=100):
        raw: Any = await redis.get(key)
        if raw is not None:  # expired between SCAN and GET
            found.append(_worker_info_decoder.decode(raw))
    return found


async def wait_until(
    probe: Callable[[], Awaitable[T]],
    *,
    timeout_s: float,
    interval_s: float = 0.05,
    what: str = "condition",
    watch: Iterable[WorkerProcess] = (),
) -> T:
    """Await ``probe()`` until it returns something truthy; return that value.

    Fails early (with the log tail) if a watched worker process exits meanwhile.
    """
    watched = list(watch)
    give_up = time.monotonic() + timeout_s
    last: T | None = None
    while True:
        for worker in watched:
            worker.assert_alive()
        last = await probe()
        if last:
            return last
        if time.monotonic() > give_up:
            logs = "".join(f"\n--- {w.name} log:\n{w.log_tail()}" for w in watched)
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}{logs}")
        await asyncio.sleep(interval_s)


async def wait_for_workers(
    redis: aioredis.Redis,
    service: str,
    count: int,
    *,
    timeout_s: float = 60.0,
    watch: Iterable[WorkerProcess] = (),
    keys: Keys | None = None,
) -> list[WorkerInfo]:
    """Wait until ``service`` has at least ``count`` heartbeats in state ``ready``.

    Pass the worker processes as ``watch`` to fail fast, with their logs, if one dies.
    """
    watched = list(watch)
    pids = {w.pid for w in watched}

    async def probe() -> list[WorkerInfo]:
        ready = [info for info in await heartbeats(redis, service, keys) if info.state == "ready"]
        if pids:  # count only the processes we are waiting for, not stale keys of dead ones
            ready = [info for info in ready if info.pid in pids]
        return ready if len(ready) >= count else []

    return await wait_until(
        probe,
        timeout_s=timeout_s,
        what=f"{count} ready worker(s) of service {service!r}",
        watch=watched,
    )


async def worker_info(
    redis: aioredis.Redis, worker: WorkerProcess, service: str, keys: Keys | None = None
) -> WorkerInfo | None:
    """The current heartbeat of one worker process (matched by pid), if any."""
    for info in await heartbeats(redis, service, keys):
        if info.pid == worker.pid:
            return info
    return None
