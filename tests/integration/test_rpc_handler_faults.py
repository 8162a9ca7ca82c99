"""Handlers that fail, crash or run long, and a dead worker holding more than a live one can
run: real Redis, real worker subprocesses (the test-only ``echo`` service, whose requests say
which fault to show; see ``tests.support.echo_worker``).

What the contract promises here:

* A handler that raises an unexpected exception is answered ``internal`` (HTTP 500) at once:
  the error is the reply, the entry is acknowledged and never run again (a retry could repeat
  the handler's side effects).
* A request that crashes its worker process (a segfault, an OOM kill) stays pending; each
  takeover counts a delivery, and after ``BABEL_WORKER_MAX_ATTEMPTS`` deliveries it goes to
  the dead-letter stream, its caller gets ``dead_lettered`` (HTTP 502) and the worker that
  found it keeps serving.
* A handler still running at its deadline is cancelled there; the caller gets one
  ``deadline_exceeded`` (HTTP 504).
* A dead worker's pending entries are all run by the workers that take them over, however
  many it held, started or only delivered, none twice, and never more at once on a worker
  than its concurrency.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

import pytest
import redis.asyncio as aioredis

from shared.errors import BabelError, ErrorCode
from shared.messages.envelope import ENTRY_FIELD, envelope_decoder
from shared.rpc.client import RpcClient
from shared.rpc.stats import pending_on, read_failover
from tests.support.echo_calls import (
    DEAD,
    GROUP,
    KEYS,
    REQUESTS,
    assert_request_stream_clean,
    list_values,
    start_echo_worker,
    unique,
)
from tests.support.echo_worker import (
    COUNT,
    CRASH_EXIT,
    FINISHED_KEY,
    SERVICE,
    SLEEP,
    STARTED_KEY,
    CountRequest,
    SleepReply,
    SleepRequest,
)
from tests.support.processes import StartWorker, WorkerProcess
from tests.support.waiting import wait_until, worker_info

pytestmark = pytest.mark.timeout(90)

ECHO_ENV = {
    "BABEL_WORKER_HEARTBEAT_TTL_MS": "1000",
    "BABEL_WORKER_HEARTBEAT_INTERVAL_MS": "200",
    # Far out of reach: an entry that moves between workers here moved by a takeover.
    "BABEL_WORKER_CLAIM_IDLE_MS": "120000",
    "BABEL_WORKER_BLOCK_MS": "200",
    "BABEL_WORKER_GRACE_PERIOD_S": "5",
}


async def start_echo(
    start: StartWorker, redis: aioredis.Redis, name: str, env: Mapping[str, str] | None = None
) -> tuple[WorkerProcess, str]:
    return await start_echo_worker(start, redis, name, {**ECHO_ENV, **(env or {})})


async def replies_and_most_in_flight(
    redis: aioredis.Redis,
    taker: WorkerProcess,
    calls: list[asyncio.Task[SleepReply]],
    timeout_s: float,
) -> tuple[list[SleepReply], int]:
    """Wait for every call; return the replies and the most requests ``taker`` reported in
    flight at once while they ran (read from its heartbeat)."""
    most = 0

    async def all_replied() -> bool:
        nonlocal most
        info = await worker_info(redis, taker, SERVICE)
        most = max(most, info.in_flight if info is not None else 0)
        return all(call.done() for call in calls)

    await wait_until(all_replied, timeout_s=timeout_s, what="every reply", watch=[taker])
    return [call.result() for call in calls], most


async def queued(redis: aioredis.Redis, count: int) -> bool:
    return int(await redis.xlen(REQUESTS)) == count


# ---------------------------------------------------------------------- failing handlers
async def test_a_handler_exception_is_answered_internal_once_and_never_retried(
    start_service_worker: StartWorker, redis_client: aioredis.Redis
) -> None:
    rpc = RpcClient(redis_client, KEYS)
    worker, _ = await start_echo(
        start_service_worker, redis_client, "echo", {"BABEL_WORKER_CLAIM_IDLE_MS": "300"}
    )
    value = unique("raises")

    with pytest.raises(BabelError) as caught:
        await rpc.call(SLEEP, SleepRequest(value=value, fail="raise"), timeout_s=10)

    assert caught.value.code is ErrorCode.INTERNAL
    assert "EchoFailure" in str(caught.value)
    assert not caught.value.info.retryable
    # Acknowledged with its error reply: nothing pending that a reclaim (300 ms) could rerun.
    await assert_request_stream_clean(redis_client)
    await asyncio.sleep(1.0)
    assert await list_values(redis_client, STARTED_KEY) == [value]
    assert await redis_client.xlen(DEAD) == 0
    assert "handler failed" in worker.log_text()
    reply = await rpc.call(SLEEP, SleepRequest(value="next"), timeout_s=10)
    assert reply.value == "next"
    worker.assert_alive()


async def test_a_request_that_crashes_every_worker_is_dead_lettered_after_the_attempt_limit(
    start_service_worker: StartWorker, redis_client: aioredis.Redis
) -> None:
    """A poison request: each worker that runs it dies (exit 86). With MAX_ATTEMPTS=2 it is
    run twice (two workers die), and the third worker to hold it, finding it delivered a third
    time, moves it to the dead-letter stream and answers its caller ``dead_lettered``."""
    rpc = RpcClient(redis_client, KEYS)
    env = {"BABEL_WORKER_MAX_ATTEMPTS": "2"}
    workers = [
        (await start_echo(start_service_worker, redis_client, f"echo-{i}", env))[0]
        for i in range(3)
    ]
    value = unique("poison")

    with pytest.raises(BabelError) as caught:
        await rpc.call(SLEEP, SleepRequest(value=value, fail="crash"), timeout_s=60)

    assert caught.value.code is ErrorCode.DEAD_LETTERED
    assert "gave up after 2 deliveries" in str(caught.value)  # well before its deadline
    assert await list_values(redis_client, STARTED_KEY) == [value, value]  # MAX_ATTEMPTS runs
    crashed = [w for w in workers if not w.alive()]
    assert [w.process.returncode for w in crashed] == [CRASH_EXIT, CRASH_EXIT]
    [survivor] = [w for w in workers if w.alive()]

    dead: Any = await redis_client.xrange(DEAD)
    assert len(dead) == 1
    fields = dead[0][1]
    assert fields[b"reason"] == b"gave up after 2 deliveries"
    assert int(fields[b"deliveries"]) == 3
    envelope = envelope_decoder.decode(fields[ENTRY_FIELD])  # the request, kept for a look
    assert envelope.kind == SLEEP.kind
    await assert_request_stream_clean(redis_client)

    reply = await rpc.call(SLEEP, SleepRequest(value="after-poison"), timeout_s=10)
    info = await worker_info(redis_client, survivor, SERVICE)
    assert info is not None
    assert reply.worker == info.worker
    assert await redis_client.xlen(DEAD) == 1


# ---------------------------------------------------------------------- deadlines
async def test_a_handler_running_past_its_deadline_is_cancelled_and_answered_once(
    start_service_worker: StartWorker, redis_client: aioredis.Redis
) -> None:
    """The handler starts in time and would sleep 30 s; at the 2 s deadline the worker cancels
    it and answers ``deadline_exceeded`` once, and the handler never reaches its end."""
    rpc = RpcClient(redis_client, KEYS)
    worker, _ = await start_echo(start_service_worker, redis_client, "echo")
    value = unique("long")
    started = time.monotonic()

    with pytest.raises(BabelError) as caught:
        await rpc.call(SLEEP, SleepRequest(value=value, sleep_ms=30_000), timeout_s=2)

    assert caught.value.code is ErrorCode.DEADLINE_EXCEEDED
    assert time.monotonic() - started < 15  # at the deadline, not after the 30 s handler
    assert await list_values(redis_client, STARTED_KEY) == [value]  # it did start in time

    async def idle() -> bool:
        info = await worker_info(redis_client, worker, SERVICE)
        return info is not None and info.in_flight == 0

    await wait_until(idle, timeout_s=10, what="the handler to be cancelled", watch=[worker])
    await assert_request_stream_clean(redis_client)  # acknowledged once, with its one reply
    for key in [k async for k in redis_client.scan_iter(match=KEYS.reply("*"))]:
        assert await redis_client.llen(key) <= 1  # a reply the caller gave up on, never two
    assert await list_values(redis_client, FINISHED_KEY) == []  # cancelled, not run out
    reply = await rpc.call(SLEEP, SleepRequest(value="next"), timeout_s=10)
    assert reply.value == "next"
    worker.assert_alive()


# ---------------------------------------------------------------------- streams
async def test_a_stream_that_fails_midway_gives_its_chunks_then_the_error(
    start_service_worker: StartWorker, redis_client: aioredis.Redis
) -> None:
    rpc = RpcClient(redis_client, KEYS)
    worker, _ = await start_echo(start_service_worker, redis_client, "echo")
    got: list[int] = []

    async def consume() -> None:
        async for chunk in rpc.stream(COUNT, CountRequest(n=10, fail_after=3), timeout_s=10):
            got.append(chunk.i)

    with pytest.raises(BabelError) as caught:
        await consume()

    assert got == [0, 1, 2]
    assert caught.value.code is ErrorCode.INTERNAL
    assert "EchoFailure" in str(caught.value)
    await assert_request_stream_clean(redis_client)
    assert [k async for k in redis_client.scan_iter(match=KEYS.reply_stream("*"))] == []
    assert [c.i async for c in rpc.stream(COUNT, CountRequest(n=3), timeout_s=10)] == [0, 1, 2]
    worker.assert_alive()


# ---------------------------------------------------------------------- takeover in rounds
async def test_a_dead_worker_holding_more_than_the_takers_concurrency_loses_nothing(
    start_service_worker: StartWorker, redis_client: aioredis.Redis
) -> None:
    """A (concurrency 8) dies holding 8 requests it read in one batch; B (concurrency 3) takes
    them over as its slots free: 3, 3, then 2. Every request is run by B once, and B never
    runs more than 3 at a time."""
    rpc = RpcClient(redis_client, KEYS)
    victim, victim_name = await start_echo(
        start_service_worker, redis_client, "echo-a", {"BABEL_WORKER_CONCURRENCY": "8"}
    )
    values = [unique(f"h{i}") for i in range(8)]
    calls = [
        asyncio.create_task(
            rpc.call(
                SLEEP,
                SleepRequest(value=v, sleep_ms=120_000, redelivered_sleep_ms=1000),
                timeout_s=80,
            )
        )
        for v in values
    ]

    async def victim_holds_all() -> bool:
        return len(await pending_on(redis_client, KEYS, SERVICE, victim_name)) == 8

    await wait_until(victim_holds_all, timeout_s=20, what="A holding 8", watch=[victim])
    taker, taker_name = await start_echo(
        start_service_worker, redis_client, "echo-b", {"BABEL_WORKER_CONCURRENCY": "3"}
    )
    await asyncio.to_thread(victim.kill)

    replies, most = await replies_and_most_in_flight(redis_client, taker, calls, timeout_s=60)

    assert [r.value for r in replies] == values
    assert {r.worker for r in replies} == {taker_name}
    assert all(r.deliveries == 2 for r in replies)
    assert sorted(await list_values(redis_client, STARTED_KEY)) == sorted(values * 2)
    assert sorted(await list_values(redis_client, FINISHED_KEY)) == sorted(values)
    assert 0 < most <= 3, f"the taker ran {most} requests at once (concurrency 3)"
    failover = await read_failover(redis_client, KEYS, SERVICE)
    assert (failover.taken_over, failover.reclaimed) == (8, 0)
    assert failover.takeovers >= 3  # in rounds, as slots freed
    assert await redis_client.xlen(DEAD) == 0
    await assert_request_stream_clean(redis_client)


async def test_entries_delivered_to_a_worker_that_never_started_them_are_run_once(
    redis_client: aioredis.Redis, start_service_worker: StartWorker
) -> None:
    """A worker that died between reading a batch (XREADGROUP) and starting it leaves entries
    pending that no handler ever saw: here the batch is read by the test, as consumer
    ``ghost``, with no heartbeat. The takeover lists a dead consumer's entries by XPENDING,
    so they are taken over like started ones: each runs once, on a worker that never runs
    more than its concurrency (2) of them at a time, and the ghost leaves the group."""
    rpc = RpcClient(redis_client, KEYS)
    await redis_client.xgroup_create(REQUESTS, GROUP, id="0", mkstream=True)
    values = [unique(f"n{i}") for i in range(5)]
    calls = [
        asyncio.create_task(rpc.call(SLEEP, SleepRequest(value=v, sleep_ms=500), timeout_s=60))
        for v in values
    ]
    await wait_until(lambda: queued(redis_client, 5), timeout_s=10, what="5 requests queued")
    read: Any = await redis_client.xreadgroup(GROUP, "ghost", {REQUESTS: ">"}, count=5)
    assert len(read[0][1]) == 5
    taker, taker_name = await start_echo(
        start_service_worker, redis_client, "echo-b", {"BABEL_WORKER_CONCURRENCY": "2"}
    )

    replies, most = await replies_and_most_in_flight(redis_client, taker, calls, timeout_s=40)

    assert [r.value for r in replies] == values
    assert {r.worker for r in replies} == {taker_name}
    assert all(r.deliveries == 2 for r in replies)
    assert sorted(await list_values(redis_client, STARTED_KEY)) == sorted(values)  # once each
    assert 0 < most <= 2, f"the taker ran {most} requests at once (concurrency 2)"
    consumers: list[dict[str, Any]] = await redis_client.xinfo_consumers(REQUESTS, GROUP)
    assert [c["name"].decode() for c in consumers] == [taker_name]
    await assert_request_stream_clean(redis_client)
