"""A handler's calls to other services inherit its deadline and trace (real Redis).

The tasks → generation (LLM translation and sentiment) and generation → retrieval (RAG)
calls run inside handlers: whatever timeout their code asks for, the envelope they put on
the stream must not outlive the call they serve, and must carry its trace.
"""

from __future__ import annotations

import time

import pytest
import redis.asyncio as aioredis

from shared.errors import BabelError, ErrorCode
from shared.messages.envelope import ENTRY_FIELD, TraceContext, envelope_decoder
from shared.rpc.client import RpcClient
from shared.rpc.handlers import RequestContext, serving
from shared.rpc.keys import Keys
from tests.support.echo_worker import SLEEP, SleepRequest

KEYS = Keys("babel")


def _caller(deadline: float) -> RequestContext:
    return RequestContext(
        request_id="client-req-1",
        deadline=deadline,
        worker="tasks-w1",
        deliveries=1,
        call_id="envelope-1",
        trace=TraceContext(request_id="client-req-1", traceparent="00-abc-def-01"),
    )


async def _sent(redis_client: aioredis.Redis) -> list[object]:
    entries = await redis_client.xrange(KEYS.requests(SLEEP.service))
    return [envelope_decoder.decode(fields[ENTRY_FIELD]) for _, fields in entries]


async def test_a_nested_call_keeps_the_callers_deadline_and_trace(
    redis_client: aioredis.Redis,
) -> None:
    client = RpcClient(redis_client, KEYS)
    caller = _caller(time.time() + 0.3)
    began = time.monotonic()
    with serving(caller), pytest.raises(BabelError) as failed:
        await client.call(SLEEP, SleepRequest(value="x"), timeout_s=60)  # nobody serves echo
    assert failed.value.info.code == ErrorCode.DEADLINE_EXCEEDED
    assert time.monotonic() - began < 10  # the caller's 0.3 s (+ grace), not 60 s
    (envelope,) = await _sent(redis_client)
    assert envelope.deadline == caller.deadline  # type: ignore[attr-defined]
    assert envelope.trace == caller.trace  # type: ignore[attr-defined]


async def test_outside_a_handler_a_call_has_its_own_deadline(
    redis_client: aioredis.Redis,
) -> None:
    client = RpcClient(redis_client, KEYS)
    before = time.time()
    with pytest.raises(BabelError):
        await client.call(SLEEP, SleepRequest(value="y"), timeout_s=0.2)
    (envelope,) = await _sent(redis_client)
    assert before + 0.2 <= envelope.deadline <= time.time() + 0.2  # type: ignore[attr-defined]
    assert envelope.trace.traceparent is None  # type: ignore[attr-defined]
