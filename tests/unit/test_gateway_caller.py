"""The gateway's cap on calls in flight per service (a fake RPC client and a fake monitor)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from services.gateway.caller import ServiceCaller, check_pool
from services.gateway.settings import GatewaySettings
from shared.errors import BabelError, ErrorCode
from shared.messages.base import Message, Method


class Ping(Message, frozen=True, kw_only=True):
    n: int = 0


SLOW: Method[Ping, Ping] = Method("tasks", "slow", Ping, Ping)
OTHER: Method[Ping, Ping] = Method("retrieval", "slow", Ping, Ping)


class BlockingFakeRpc:
    """A fake RPC client whose calls wait until ``release`` is set."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.started = 0

    async def call(self, method: Any, request: Ping, **_: Any) -> Ping:
        self.started += 1
        await self.release.wait()
        return request


class AdmitAllFakeMonitor:
    def admit(self, service: str) -> None:
        return None

    def ready(self, service: str) -> bool:
        return True


async def _started(rpc: BlockingFakeRpc, calls: int) -> None:
    for _ in range(1_000):
        if rpc.started >= calls:
            return
        await asyncio.sleep(0)
    raise AssertionError(f"{rpc.started} calls started, expected {calls}")


async def test_calls_past_the_cap_are_refused_at_once_per_service() -> None:
    rpc = BlockingFakeRpc()
    settings = GatewaySettings(max_in_flight_per_service=3, retry_after_s=4)
    caller = ServiceCaller(rpc, AdmitAllFakeMonitor(), settings)  # type: ignore[arg-type]
    waiting = [asyncio.create_task(caller.call(SLOW, Ping(n=i))) for i in range(3)]
    await _started(rpc, 3)
    with pytest.raises(BabelError) as refused:
        await caller.call(SLOW, Ping())
    assert refused.value.info.code == ErrorCode.OVERLOADED
    assert refused.value.info.retry_after_s == 4
    other = asyncio.create_task(caller.call(OTHER, Ping(n=9)))  # another service is not capped
    await _started(rpc, 4)
    rpc.release.set()
    assert [r.n for r in await asyncio.gather(*waiting, other)] == [0, 1, 2, 9]
    assert caller.in_flight["tasks"] == 0
    assert (await caller.call(SLOW, Ping(n=5))).n == 5  # slots are given back


def test_the_cap_must_leave_pool_connections_free() -> None:
    check_pool(GatewaySettings(), 1_024)
    with pytest.raises(BabelError) as refused:
        check_pool(GatewaySettings(max_in_flight_per_service=400), 1_024)
    assert refused.value.info.field == "max_in_flight_per_service"


def test_upload_bytes_in_flight_are_capped_but_one_file_always_passes() -> None:
    settings = GatewaySettings(max_upload_bytes_in_flight=100)
    caller = ServiceCaller(BlockingFakeRpc(), AdmitAllFakeMonitor(), settings)  # type: ignore[arg-type]
    with caller.upload_slot(150):  # alone: let through even past the cap
        with pytest.raises(BabelError) as refused, caller.upload_slot(1):
            pass
        assert refused.value.info.code == ErrorCode.OVERLOADED
    with caller.upload_slot(60), caller.upload_slot(40):
        assert caller.upload_bytes == 100
    assert caller.upload_bytes == 0
