"""How a batch line calls a service: the shared RPC client, as the gateway calls it, but

- waiting for a live worker is the line's business (it retries), not a queue entry's;
- a batch yields to interactive traffic: it sends a request only while the service's
  request stream holds fewer than ``queue_limit`` entries (waiting or in flight, anyone's),
  so an interactive request arriving in the middle of a batch waits behind at most that
  many batch requests (the stream is first in, first out).
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Callable

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
_DEPTH_POLL_S = 0.05


class BatchCaller:
    """Satisfies the gateway's ``Caller``: a line's body runs through the endpoint's own code."""

    def __init__(
        self,
        redis: aioredis.Redis,
        keys: Keys,
        default_timeout_s: float,
        queue_limit: Callable[[str], int],
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._default_timeout_s = default_timeout_s
        self._queue_limit = queue_limit
        self._rpc = RpcClient(redis, keys)
        self._ready: dict[str, tuple[float, bool]] = {}
        self._gates: dict[str, asyncio.Semaphore] = {}

    async def _has_worker(self, service: str) -> bool:
        now = time.monotonic()
        cached = self._ready.get(service)
        if cached is not None and now - cached[0] < _READY_TTL_S:
            return cached[1]
        workers = await read_workers(self._redis, self._keys, service)
        ready = any(w.state == "ready" for w in workers)
        self._ready[service] = (now, ready)
        return ready

    async def _wait_for_room(self, service: str, limit: int) -> None:
        """Until the service's request stream has fewer than ``limit`` entries."""
        stream = self._keys.requests(service)
        while True:
            depth = int(await self._redis.xlen(stream))
            if depth < limit:
                return
            await asyncio.sleep(_DEPTH_POLL_S)  # polled: the room is made in another process

    async def call(
        self, method: Method[Req, Resp], request: Req, *, timeout_s: float | None = None
    ) -> Resp:
        if not await self._has_worker(method.service):
            raise BabelError(
                ErrorCode.UNAVAILABLE,
                f"service {method.service!r} has no live worker",
                retryable=True,
            )
        limit = self._queue_limit(method.service)
        gate = self._gates.setdefault(method.service, asyncio.Semaphore(limit))
        async with gate:  # this chunk's own requests never exceed the limit either
            await self._wait_for_room(method.service, limit)
            return await self._rpc.call(
                method,
                request,
                timeout_s=timeout_s or self._default_timeout_s,
                trace=TraceContext(request_id=line_request_id.get()),
            )
