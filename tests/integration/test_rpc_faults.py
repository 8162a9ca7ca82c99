"""The RPC contract under faults: real Redis, real worker subprocesses.

Workers are ``python -m tests.support.echo_worker`` (service "echo") and, for language
id, ``python -m services.tasks``. Every worker is stopped by its own pid at teardown.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import time
from collections.abc import Mapping
from typing import Any

import pytest
import redis.asyncio as aioredis

from shared.errors import BabelError, ErrorCode
from shared.messages.base import Method
from shared.messages.langid import DETECT, DetectRequest
from shared.rpc.client import RpcClient
from shared.rpc.stats import discover_services, read_workers
from tests.support.echo_calls import (
    DEAD,
    ECHO_MODULE,
    KEYS,
    REQUESTS,
    assert_request_stream_clean,
    list_values,
    start_echo_worker,
    unique,
)
from tests.support.echo_worker import (
    COUNT,
    PRODUCED_KEY,
    SERVICE,
    SLEEP,
    STARTED_KEY,
    CountRequest,
    SleepReply,
    SleepRequest,
)
from tests.support.processes import StartWorker, WorkerProcess
from tests.support.waiting import wait_for_workers, wait_until, worker_info

pytestmark = pytest.mark.timeout(60)

FAST_WORKER_ENV = {
    "BABEL_WORKER_CLAIM_IDLE_MS": "600",
    "BABEL_WORKER_BLOCK_MS": "200",
    "BABEL_WORKER_GRACE_PERIOD_S": "10",
}


@pytest.fixture
def rpc(redis_client: aioredis.Redis) -> RpcClient:
    return RpcClient(redis_client, KEYS, default_timeout_s=30.0)


async def start_echo(
    start_service_worker: StartWorker,
    redis: aioredis.Redis,
    name: str,
    env: Mapping[str, str] | None = None,
) -> tuple[WorkerProcess, str]:
    return await start_echo_worker(
        start_service_worker, redis, name, {**FAST_WORKER_ENV, **(env or {})}
    )


async def pending_count(
    redis: aioredis.Redis, consumer: str | None = None, service: str = SERVICE
) -> int:
    summary = await redis.xpending(KEYS.requests(service), KEYS.group(service))
    if consumer is None:
        return int(summary["pending"])
    for entry in summary["consumers"]:
        name = entry["name"]
        if (name.decode() if isinstance(name, bytes) else name) == consumer:
            return int(entry["pending"])
    return 0


# ---------------------------------------------------------------------- concurrency
async def test_100_concurrent_calls_through_one_worker_never_cross(
    start_service_worker: StartWorker, redis_client: aioredis.Redis, rpc: RpcClient
) -> None:
    _, name = await start_echo(start_service_worker, redis_client, "echo")
    rng = random.Random(7)
    values = [unique(f"v{i}") for i in range(100)]

    replies = await asyncio.gather(
        *(
            rpc.call(SLEEP, SleepRequest(value=v, sleep_ms=rng.randint(0, 60)), timeout_s=20)
            for v in values
        )
    )

    assert [r.value for r in replies] == values
    assert {r.worker for r in replies} == {name}
    assert all(r.deliveries == 1 for r in replies)
    assert sorted(await list_values(redis_client, STARTED_KEY)) == sorted(values)
    await assert_request_stream_clean(redis_client)


SENTENCES = {
    "en": (
        "The weather is lovely today and we are going for a walk in the park.",
        "Please send me the report before the meeting tomorrow morning.",
        "I would like a cup of coffee with milk and no sugar, thank you.",
    ),
    "de": (
        "Das Wetter ist heute schön und wir gehen im Park spazieren.",
        "Bitte schicken Sie mir den Bericht vor der Besprechung morgen früh.",
        "Ich hätte gern eine Tasse Kaffee mit Milch und ohne Zucker, danke.",
    ),
    "ja": (
        "今日は天気が良いので公園を散歩します。",
        "明日の朝の会議の前に報告書を送ってください。",
        "砂糖なしでミルク入りのコーヒーを一杯お願いします。",
    ),
    "ar": (
        "الطقس جميل اليوم وسنذهب للتنزه في الحديقة.",
        "من فضلك أرسل لي التقرير قبل الاجتماع صباح الغد.",
        "أود فنجان قهوة بالحليب ومن دون سكر، شكرا لك.",
    ),
}


async def test_100_concurrent_detect_calls_through_one_tasks_worker(
    start_service_worker: StartWorker, redis_client: aioredis.Redis, rpc: RpcClient
) -> None:
    worker = start_service_worker("services.tasks", name="tasks", env=FAST_WORKER_ENV)
    await wait_for_workers(redis_client, DETECT.service, 1, watch=[worker], timeout_s=30)
    rng = random.Random(11)
    languages = list(SENTENCES)
    # Each call asks about 1..4 texts in mixed languages: a crossed reply cannot match.
    expected = [[rng.choice(languages) for _ in range(rng.randint(1, 4))] for _ in range(100)]
    requests = [
        DetectRequest(texts=tuple(rng.choice(SENTENCES[lang]) for lang in langs))
        for langs in expected
    ]

    responses = await asyncio.gather(
        *(rpc.call(DETECT, request, timeout_s=20) for request in requests)
    )

    for langs, response in zip(expected, responses, strict=True):
        assert [d.language for d in response.detections] == langs
    await assert_request_stream_clean(redis_client, DETECT.service)


# ---------------------------------------------------------------------- crash recovery
async def test_requests_of_a_killed_worker_are_served_by_another(
    start_service_worker: StartWorker, redis_client: aioredis.Redis, rpc: RpcClient
) -> None:
    worker_a, name_a = await start_echo(start_service_worker, redis_client, "echo-a")
    values = [unique(f"k{i}") for i in range(20)]
    calls = [
        asyncio.create_task(rpc.call(SLEEP, SleepRequest(value=v, sleep_ms=3000), timeout_s=30))
        for v in values
    ]

    async def a_holds_all() -> bool:
        info = await worker_info(redis_client, worker_a, SERVICE)
        return info is not None and info.in_flight == 20

    await wait_until(a_holds_all, timeout_s=10, what="worker A holding 20", watch=[worker_a])
    assert await pending_count(redis_client, name_a) == 20
    worker_a.kill()
    assert not any(call.done() for call in calls)

    worker_b = start_service_worker(ECHO_MODULE, name="echo-b", env=FAST_WORKER_ENV)
    replies = await asyncio.gather(*calls)

    info_b = await worker_info(redis_client, worker_b, SERVICE)
    assert info_b is not None
    assert len(replies) == len(values)
    assert [r.value for r in replies] == values
    assert {r.worker for r in replies} == {info_b.worker}
    assert all(r.deliveries == 2 for r in replies)
    await assert_request_stream_clean(redis_client)
    assert await redis_client.xlen(DEAD) == 0


async def test_malformed_entry_is_dead_lettered_and_the_worker_keeps_serving(
    start_service_worker: StartWorker, redis_client: aioredis.Redis, rpc: RpcClient
) -> None:
    worker, _ = await start_echo(
        start_service_worker,
        redis_client,
        "echo",
        env={"BABEL_WORKER_MAX_ATTEMPTS": "3", "BABEL_WORKER_CLAIM_IDLE_MS": "300"},
    )
    entry_id = await redis_client.xadd(REQUESTS, {b"e": b"not msgpack"})

    dead: Any = await wait_until(
        lambda: redis_client.xrange(DEAD), timeout_s=15, what="a dead letter", watch=[worker]
    )

    assert len(dead) == 1
    fields = dead[0][1]
    assert b"malformed" in fields[b"reason"]
    assert fields[b"entry_id"] == entry_id
    assert fields[b"e"] == b"not msgpack"
    assert int(fields[b"deliveries"]) == 3
    await assert_request_stream_clean(redis_client)

    reply = await rpc.call(SLEEP, SleepRequest(value="still-alive"), timeout_s=5)
    assert reply.value == "still-alive"
    await asyncio.sleep(1.0)  # a few more claim rounds: nothing else is dead-lettered
    assert await redis_client.xlen(DEAD) == 1


# ---------------------------------------------------------------------- deadlines
async def test_request_past_its_deadline_is_dropped_without_running_the_handler(
    start_service_worker: StartWorker, redis_client: aioredis.Redis, rpc: RpcClient
) -> None:
    worker, _ = await start_echo(start_service_worker, redis_client, "echo")
    late = unique("late")

    with pytest.raises(BabelError) as caught:
        await rpc.call(SLEEP, SleepRequest(value=late), deadline=time.time() - 1)
    assert caught.value.code is ErrorCode.DEADLINE_EXCEEDED

    await wait_until(
        lambda: asyncio.sleep(0, "dropped request past its deadline" in worker.log_text()),
        timeout_s=5,
        what="the worker's drop log line",
        watch=[worker],
    )
    reply = await rpc.call(SLEEP, SleepRequest(value="on-time"), timeout_s=5)
    assert reply.value == "on-time"
    assert await list_values(redis_client, STARTED_KEY) == ["on-time"]
    await assert_request_stream_clean(redis_client)


async def test_call_without_any_worker_times_out_instead_of_hanging(rpc: RpcClient) -> None:
    nobody: Method[SleepRequest, SleepReply] = Method("nobody", "sleep", SleepRequest, SleepReply)
    started = time.monotonic()
    with pytest.raises(BabelError) as caught:
        await rpc.call(nobody, SleepRequest(value="x"), timeout_s=1)
    elapsed = time.monotonic() - started
    assert caught.value.code is ErrorCode.DEADLINE_EXCEEDED
    assert caught.value.info.retryable
    assert 1.0 <= elapsed < 3.0


# ---------------------------------------------------------------------- graceful stop
async def test_sigterm_finishes_in_flight_work_then_exits_cleanly(
    start_service_worker: StartWorker, redis_client: aioredis.Redis, rpc: RpcClient
) -> None:
    worker, name = await start_echo(start_service_worker, redis_client, "echo")
    values = [unique(f"g{i}") for i in range(5)]
    calls = [
        asyncio.create_task(rpc.call(SLEEP, SleepRequest(value=v, sleep_ms=1500), timeout_s=15))
        for v in values
    ]

    async def holds_all() -> bool:
        info = await worker_info(redis_client, worker, SERVICE)
        return info is not None and info.in_flight == 5

    await wait_until(holds_all, timeout_s=10, what="5 requests in flight", watch=[worker])
    worker.signal(signal.SIGTERM)

    replies = await asyncio.gather(*calls)
    assert [r.value for r in replies] == values
    assert {r.worker for r in replies} == {name}
    assert await asyncio.to_thread(worker.wait, 15) == 0
    assert await redis_client.exists(KEYS.heartbeat(SERVICE, name)) == 0
    assert "draining in-flight requests" in worker.log_text()
    await assert_request_stream_clean(redis_client)


async def test_sigterm_grace_running_out_leaves_work_to_another_worker(
    start_service_worker: StartWorker, redis_client: aioredis.Redis, rpc: RpcClient
) -> None:
    """Work longer than the grace period is cancelled, not acknowledged: it stays pending and
    a live worker takes it over, so its callers get their replies (from the other worker)."""
    slow, slow_name = await start_echo(
        start_service_worker, redis_client, "echo-slow", env={"BABEL_WORKER_GRACE_PERIOD_S": "1"}
    )
    values = [unique(f"t{i}") for i in range(4)]
    calls = [
        asyncio.create_task(rpc.call(SLEEP, SleepRequest(value=v, sleep_ms=4000), timeout_s=40))
        for v in values
    ]

    async def holds_all() -> bool:
        info = await worker_info(redis_client, slow, SERVICE)
        return info is not None and info.in_flight == 4

    await wait_until(holds_all, timeout_s=10, what="4 requests in flight", watch=[slow])
    slow.signal(signal.SIGTERM)
    assert await asyncio.to_thread(slow.wait, 20) == 0
    assert not any(call.done() for call in calls)
    assert await pending_count(redis_client, slow_name) == 4
    other, other_name = await start_echo(start_service_worker, redis_client, "echo-other")
    replies = await asyncio.gather(*calls)
    assert [r.value for r in replies] == values
    assert {r.worker for r in replies} == {other_name}
    assert all(r.deliveries == 2 for r in replies)
    await assert_request_stream_clean(redis_client)
    other.assert_alive()


# ---------------------------------------------------------------------- streaming
async def test_stream_yields_every_chunk_in_order(
    start_service_worker: StartWorker, redis_client: aioredis.Redis, rpc: RpcClient
) -> None:
    await start_echo(start_service_worker, redis_client, "echo")

    got = [chunk.i async for chunk in rpc.stream(COUNT, CountRequest(n=200), timeout_s=10)]

    assert got == list(range(200))
    assert [k async for k in redis_client.scan_iter(match="babel:reply-stream:*")] == []
    assert [k async for k in redis_client.scan_iter(match="babel:cancel:*")] == []
    await assert_request_stream_clean(redis_client)


async def test_closing_a_stream_early_stops_the_worker(
    start_service_worker: StartWorker, redis_client: aioredis.Redis, rpc: RpcClient
) -> None:
    worker, _ = await start_echo(start_service_worker, redis_client, "echo")
    chunks = rpc.stream(COUNT, CountRequest(n=10_000, delay_ms=10), timeout_s=30)

    got: list[int] = []
    async with contextlib.aclosing(chunks):  # type: ignore[type-var]
        async for chunk in chunks:
            got.append(chunk.i)
            if len(got) == 5:
                break

    assert got == [0, 1, 2, 3, 4]
    cancel_keys = [k async for k in redis_client.scan_iter(match="babel:cancel:*")]
    assert len(cancel_keys) == 1
    await wait_until(
        lambda: asyncio.sleep(0, "caller cancelled the stream" in worker.log_text()),
        timeout_s=5,
        what="the worker's cancel log line",
        watch=[worker],
    )
    produced = int(await redis_client.get(PRODUCED_KEY) or 0)
    await asyncio.sleep(0.5)  # 50 more chunks' time: the count must not move
    assert int(await redis_client.get(PRODUCED_KEY) or 0) == produced
    assert produced < 50
    await assert_request_stream_clean(redis_client)
    # The client deleted its reply stream; the worker's one write before it saw the cancel
    # flag may re-create it, but with a TTL and no more than that one chunk.
    for key in [k async for k in redis_client.scan_iter(match="babel:reply-stream:*")]:
        assert await redis_client.xlen(key) <= 1
        assert await redis_client.ttl(key) > 0
    assert await redis_client.ttl(cancel_keys[0]) > 0
    worker.assert_alive()


async def test_a_caller_that_gives_up_a_call_stops_the_handler(
    start_service_worker: StartWorker, redis_client: aioredis.Redis, rpc: RpcClient
) -> None:
    """Cancelling ``call`` sets the request's cancel key; the worker stops the handler (a
    batch's cancel aborts a generation request in the engine this way) and acknowledges."""
    worker, _ = await start_echo(start_service_worker, redis_client, "echo")
    value = unique("given-up")
    call = asyncio.create_task(rpc.call(SLEEP, SleepRequest(value=value, sleep_ms=20_000)))
    await wait_until(
        lambda: list_values(redis_client, STARTED_KEY), timeout_s=10, what="the handler's start"
    )
    call.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await call
    await wait_until(
        lambda: asyncio.sleep(0, "caller cancelled the request" in worker.log_text()),
        timeout_s=10,
        what="the worker's cancel log line",
        watch=[worker],
    )
    await assert_request_stream_clean(redis_client)  # acknowledged long before 20 s
    assert [k async for k in redis_client.scan_iter(match="babel:reply:*")] == []
    worker.assert_alive()


async def _scans(redis: aioredis.Redis) -> int:
    stats: Any = await redis.info("commandstats")
    return int(stats.get("cmdstat_scan", {}).get("calls", 0))


async def test_discovery_reads_the_roster_not_the_keyspace(
    start_service_worker: StartWorker, redis_client: aioredis.Redis
) -> None:
    """Finding live workers (every /readyz refresh, every LLM translation) costs no SCAN; a
    worker stopped leaves the roster, a killed one stops counting when its heartbeat expires."""
    stopped, stopped_name = await start_echo(start_service_worker, redis_client, "roster-a")
    killed, killed_name = await start_echo(start_service_worker, redis_client, "roster-b")

    async def count() -> int:
        return len(await read_workers(redis_client, KEYS, SERVICE))

    async def both() -> bool:
        return await count() == 2

    async def none_left() -> bool:
        return await count() == 0

    await wait_until(both, timeout_s=20, what="two echo workers")
    before = await _scans(redis_client)
    assert SERVICE in await discover_services(redis_client, KEYS)
    assert {w.worker for w in await read_workers(redis_client, KEYS, SERVICE)} == {
        stopped_name,
        killed_name,
    }
    assert await _scans(redis_client) == before
    stopped.stop()
    assert stopped_name.encode() not in await redis_client.zrange(KEYS.roster(SERVICE), 0, -1)
    killed.kill()
    await wait_until(none_left, timeout_s=20, what="the killed worker's heartbeat to expire")
    assert SERVICE not in await discover_services(redis_client, KEYS)
