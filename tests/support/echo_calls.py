"""For tests that drive the echo worker (``tests/support/echo_worker.py``) over the real RPC
contract: its module and stream keys, starting one, and reading what it recorded."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import redis.asyncio as aioredis

from shared.rpc.keys import Keys
from tests.support.echo_worker import SERVICE
from tests.support.processes import StartWorker, WorkerProcess
from tests.support.waiting import wait_for_workers, worker_info

ECHO_MODULE = "tests.support.echo_worker"
KEYS = Keys()
REQUESTS = KEYS.requests(SERVICE)
GROUP = KEYS.group(SERVICE)
DEAD = KEYS.dead_letters(SERVICE)


async def start_echo_worker(
    start: StartWorker, redis: aioredis.Redis, name: str, env: Mapping[str, str]
) -> tuple[WorkerProcess, str]:
    """Start one echo worker with ``env`` and wait until it is ready; return it and its
    consumer name."""
    worker = start(ECHO_MODULE, name=name, env=dict(env))
    await wait_for_workers(redis, SERVICE, 1, watch=[worker], timeout_s=30)
    info = await worker_info(redis, worker, SERVICE)
    assert info is not None, worker.log_tail()
    return worker, info.worker


async def list_values(redis: aioredis.Redis, key: str) -> list[str]:
    """A list the echo worker appends to (``STARTED_KEY``...), in order."""
    raw: list[Any] = await redis.lrange(key, 0, -1)
    return [value.decode() for value in raw]


async def assert_request_stream_clean(redis: aioredis.Redis, service: str = SERVICE) -> None:
    """Every request entry of ``service`` was acknowledged and deleted."""
    summary = await redis.xpending(KEYS.requests(service), KEYS.group(service))
    assert int(summary["pending"]) == 0
    assert await redis.xlen(KEYS.requests(service)) == 0


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"
