"""How a batch line calls a service: the shared RPC client, as the gateway calls it, but
waiting for a live worker is the line's business (it retries), not a queue entry's."""

from __future__ import annotations

import contextvars
import time

import redis.asyncio as aioredis

from shared.errors import BabelError, ErrorCode
from shared.messages.base import Method, Req, Resp
from shared.messages.envelope import TraceContext
from shared.rpc.client import RpcClient
from shared.rpc.keys import Keys
from shared.rpc.stats import read_workers

line_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("line_request_id", default="")
"""The request id of the batch line being run (its output line's ``response.request_id``)."""

_READY_TTL_S = 1.0


class BatchCaller:
    """Satisfies the gateway's ``Caller``: a line's body runs through the endpoint's own code."""

    def __init__(self, redis: aioredis.Redis, keys: Keys, default_timeout_s: float) -> None:
        self._redis = redis
        self._keys = keys
        self._default_timeout_s = default_timeout_s
        self._rpc = RpcClient(redis, keys)
        self._ready: dict[str, tuple[float, bool]] = {}

    async def _has_worker(self, service: str) -> bool:
        now = time.monotonic()
        cached = self._ready.get(service)
        if cached is not None and now - cached[0] < _READY_TTL_S:
            return cached[1]
        workers = await read_workers(self._redis, self._keys, service)
        ready = any(w.state == "ready" for w in workers)
        self._ready[service] = (now, ready)
        return ready

    async def call(
        self, method: Method[Req, Resp], request: Req, *, timeout_s: float | None = None
    ) -> Resp:
        if not await self._has_worker(method.service):
            raise BabelError(
                ErrorCode.UNAVAILABLE,
                f"service {method.service!r} has no live worker",
                retryable=True,
            )
        return await self._rpc.call(
            method,
            request,
            timeout_s=timeout_s or self._default_timeout_s,
            trace=TraceContext(request_id=line_request_id.get()),
        )
