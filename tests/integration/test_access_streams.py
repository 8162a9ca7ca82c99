"""A key's concurrent streams through the gateway's service caller: real Redis, the real RPC
client and a real worker process (the test-only ``echo`` service, whose ``count`` method
streams). A stream holds a slot of its key from its first chunk until it ends or is
abandoned; a stream over the key's limit is refused before the service is asked."""

from __future__ import annotations

import contextlib

import pytest
import redis.asyncio as aioredis

from services.gateway.access.control import AccessControl, KeyMetrics
from services.gateway.access.limiter import Limiter
from services.gateway.access.settings import AccessSettings
from services.gateway.caller import ServiceCaller
from services.gateway.monitor import ServiceMonitor
from services.gateway.observability import GatewayMetrics
from services.gateway.settings import GatewaySettings
from shared.access.records import KeyLimits
from shared.access.store import AccessKeys, KeyStore
from shared.errors import BabelError, ErrorCode
from shared.rpc.client import RpcClient
from shared.rpc.keys import Keys
from tests.support.echo_worker import COUNT, PRODUCED_KEY, CountRequest
from tests.support.processes import StartWorker, WorkerProcess
from tests.support.waiting import wait_for_workers


@pytest.fixture
def echo(start_service_worker: StartWorker) -> WorkerProcess:
    return start_service_worker("tests.support.echo_worker", name="echo")


@pytest.fixture
async def caller(
    redis_client: aioredis.Redis, echo: WorkerProcess
) -> tuple[ServiceCaller, AccessControl, KeyStore]:
    await wait_for_workers(redis_client, "echo", 1, watch=[echo])
    settings = GatewaySettings(services=("echo",))
    metrics = GatewayMetrics()
    monitor = ServiceMonitor(redis_client, Keys(), settings, metrics)
    await monitor.refresh()
    access_keys = AccessKeys()
    access = AccessControl(
        AccessSettings(auth="on"),
        required=True,
        bootstrap_digest=None,
        limiter=Limiter(redis_client, access_keys),
        metrics=KeyMetrics(metrics.registry),
    )
    return (
        ServiceCaller(RpcClient(redis_client, Keys()), monitor, settings, access),
        access,
        KeyStore(redis_client, access_keys),
    )


async def test_streams_over_the_limit_are_refused_until_one_ends(
    caller: tuple[ServiceCaller, AccessControl, KeyStore], redis_client: aioredis.Redis
) -> None:
    service, access, store = caller
    token, _ = await store.create("streamer", "all", KeyLimits(streams=2))
    grant = await access.admit(token, "generate")
    entered = access.enter(grant)
    try:
        first = service.stream(COUNT, CountRequest(n=3, delay_ms=10))
        second = service.stream(COUNT, CountRequest(n=3, delay_ms=10))
        assert (await anext(first)).i == 0
        assert (await anext(second)).i == 0
        assert (await store.get("streamer")).usage.active_streams == 2
        third = service.stream(COUNT, CountRequest(n=3))
        with pytest.raises(BabelError) as refused:
            await anext(third)
        assert refused.value.code == ErrorCode.RATE_LIMITED
        assert refused.value.info.retry_after_s is not None
        produced_before = int(await redis_client.get(PRODUCED_KEY) or 0)
        assert produced_before <= 6  # the refused stream never reached the worker
        assert [c.i async for c in first] == [1, 2]  # runs to its end: its slot is freed
        assert (await store.get("streamer")).usage.active_streams == 1
        fourth = service.stream(COUNT, CountRequest(n=2))
        assert [c.i async for c in fourth] == [0, 1]
        await second.aclose()  # a client that went away frees its slot too
        assert (await store.get("streamer")).usage.active_streams == 0
    finally:
        access.leave(entered)
        with contextlib.suppress(Exception):
            await third.aclose()
