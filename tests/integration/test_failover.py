"""Fail-over under SIGKILL: real Redis, real worker subprocesses, real models.

A worker that dies leaves its requests pending; a live worker takes them over once the
dead one's heartbeat key has expired (``BABEL_WORKER_HEARTBEAT_TTL_MS``), long before the
idle-time reclaim (``BABEL_WORKER_CLAIM_IDLE_MS``, set far out of reach here, so a
request that succeeds was served by the takeover).

First the contract with the test-only echo service (fast, exact), then each service kind
through the gateway under a bounded load (8 at a time), one of two workers SIGKILLed while
it holds requests: tasks (with classifier creation, which must not run twice), retrieval
(with ingest) and generation (SmolLM2, a module-scoped pair, streamed and not).
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
import redis.asyncio as aioredis

from shared.errors import BabelError, ErrorCode
from shared.rpc.client import RpcClient
from shared.rpc.keys import Keys
from shared.rpc.stats import pending_on, read_failover
from tests.support.echo_worker import (
    COUNT,
    SERVICE,
    SLEEP,
    STARTED_KEY,
    CountRequest,
    SleepRequest,
)
from tests.support.processes import StartWorker, WorkerProcess
from tests.support.waiting import wait_for_workers, wait_until, worker_info

pytestmark = pytest.mark.timeout(300)

KEYS = Keys()
ECHO_MODULE = "tests.support.echo_worker"
ECHO_ENV = {
    "BABEL_WORKER_HEARTBEAT_TTL_MS": "2000",
    "BABEL_WORKER_HEARTBEAT_INTERVAL_MS": "250",
    "BABEL_WORKER_CLAIM_IDLE_MS": "120000",
    "BABEL_WORKER_BLOCK_MS": "200",
}
SERVICE_ENV = {"BABEL_WORKER_CLAIM_IDLE_MS": "120000"}
"""Services keep the default heartbeat (TTL 5 s); only the idle-time reclaim is put away."""


async def start_echo(
    start: StartWorker, redis: aioredis.Redis, name: str
) -> tuple[WorkerProcess, str]:
    worker = start(ECHO_MODULE, name=name, env=ECHO_ENV)
    await wait_for_workers(redis, SERVICE, 1, watch=[worker], timeout_s=30)
    info = await worker_info(redis, worker, SERVICE)
    assert info is not None
    return worker, info.worker


async def consumers(redis: aioredis.Redis, service: str) -> list[str]:
    found: list[dict[str, Any]] = await redis.xinfo_consumers(
        KEYS.requests(service), KEYS.group(service)
    )
    return sorted(c["name"].decode() for c in found)


async def hold(redis: aioredis.Redis, service: str, consumer: str, count: int) -> None:
    async def holds() -> bool:
        return len(await pending_on(redis, KEYS, service, consumer)) >= count

    await wait_until(holds, timeout_s=60, what=f"{consumer} holding {count} request(s)")


# ---------------------------------------------------------------------- the contract (echo)
async def test_a_dead_workers_requests_are_taken_over_when_its_heartbeat_expires(
    start_service_worker: StartWorker, redis_client: aioredis.Redis
) -> None:
    rpc = RpcClient(redis_client, KEYS)
    victim, victim_name = await start_echo(start_service_worker, redis_client, "echo-a")
    values = [f"t{i}-{uuid.uuid4().hex[:6]}" for i in range(10)]
    calls = [
        asyncio.create_task(rpc.call(SLEEP, SleepRequest(value=v, sleep_ms=4000), timeout_s=60))
        for v in values
    ]
    await hold(redis_client, SERVICE, victim_name, 10)
    _, survivor_name = await start_echo(start_service_worker, redis_client, "echo-b")
    await asyncio.to_thread(victim.kill)

    replies = await asyncio.gather(*calls)

    assert [r.value for r in replies] == values
    assert {r.worker for r in replies} == {survivor_name}
    assert all(r.deliveries == 2 for r in replies)
    failover = await read_failover(redis_client, KEYS, SERVICE)
    assert (failover.takeovers, failover.taken_over, failover.reclaimed) == (1, 10, 0)
    assert await consumers(redis_client, SERVICE) == [survivor_name]  # the dead one is gone


async def test_two_live_workers_run_each_taken_over_request_once(
    start_service_worker: StartWorker, redis_client: aioredis.Redis
) -> None:
    rpc = RpcClient(redis_client, KEYS)
    victim, victim_name = await start_echo(start_service_worker, redis_client, "echo-a")
    values = [f"r{i}-{uuid.uuid4().hex[:6]}" for i in range(16)]
    calls = [
        asyncio.create_task(rpc.call(SLEEP, SleepRequest(value=v, sleep_ms=4000), timeout_s=60))
        for v in values
    ]
    await hold(redis_client, SERVICE, victim_name, 16)
    _, b = await start_echo(start_service_worker, redis_client, "echo-b")
    _, c = await start_echo(start_service_worker, redis_client, "echo-c")
    await asyncio.to_thread(victim.kill)

    replies = await asyncio.gather(*calls)

    assert [r.value for r in replies] == values
    assert {r.worker for r in replies} <= {b, c}
    assert all(r.deliveries == 2 for r in replies)
    started: list[Any] = await redis_client.lrange(STARTED_KEY, 0, -1)
    runs = [s.decode() for s in started]
    assert sorted(runs) == sorted(values * 2)  # once on the dead worker, once after: never 3
    failover = await read_failover(redis_client, KEYS, SERVICE)
    assert failover.taken_over == 16
    assert failover.reclaimed == 0


async def test_a_stream_with_no_chunk_sent_restarts_cleanly_on_the_new_worker(
    start_service_worker: StartWorker, redis_client: aioredis.Redis
) -> None:
    rpc = RpcClient(redis_client, KEYS)
    victim, victim_name = await start_echo(start_service_worker, redis_client, "echo-a")
    # The first chunk comes after 3 s: the victim dies holding the request, having sent nothing.
    chunks = rpc.stream(COUNT, CountRequest(n=5, delay_ms=3000), timeout_s=90)
    first = asyncio.create_task(anext(aiter(chunks)))
    await hold(redis_client, SERVICE, victim_name, 1)
    await start_echo(start_service_worker, redis_client, "echo-b")
    await asyncio.to_thread(victim.kill)

    got = [(await first).i] + [chunk.i async for chunk in chunks]

    assert got == [0, 1, 2, 3, 4]


async def test_a_stream_cut_after_some_chunks_ends_with_a_retryable_error(
    start_service_worker: StartWorker, redis_client: aioredis.Redis
) -> None:
    rpc = RpcClient(redis_client, KEYS)
    victim, _ = await start_echo(start_service_worker, redis_client, "echo-a")
    got: list[int] = []

    async def consume() -> None:
        async for chunk in rpc.stream(COUNT, CountRequest(n=2000, delay_ms=50), timeout_s=150):
            got.append(chunk.i)

    consumer = asyncio.create_task(consume())
    await wait_until(lambda: asyncio.sleep(0, len(got) >= 3), timeout_s=30, what="3 chunks")
    await start_echo(start_service_worker, redis_client, "echo-b")
    await asyncio.to_thread(victim.kill)

    with pytest.raises(BabelError) as caught:
        await consumer

    assert caught.value.code is ErrorCode.UNAVAILABLE
    assert caught.value.info.retryable
    assert got == list(range(len(got)))  # every chunk once, in order, then the error
    assert 3 <= len(got) < 2000
