"""Calls a service on behalf of an HTTP request: admission, the API key's character and
stream quotas, trace context, error mapping."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Protocol

from services.gateway.access.control import AccessControl
from services.gateway.monitor import ServiceMonitor
from services.gateway.observability import current_request_id
from services.gateway.settings import GatewaySettings
from shared.errors import BabelError, ErrorCode
from shared.messages.base import Method, Req, Resp
from shared.messages.envelope import TraceContext
from shared.rpc.client import RpcClient

POOL_RESERVE = 32
"""Pooled Redis connections kept free of calls: the service monitor, health and metrics."""


def check_pool(settings: GatewaySettings, max_connections: int) -> None:
    """Refuse to start when the calls allowed in flight could take every pooled connection."""
    needed = len(settings.services) * settings.max_in_flight_per_service + POOL_RESERVE
    if needed > max_connections:
        raise BabelError(
            ErrorCode.INVALID_ARGUMENT,
            f"{len(settings.services)} services × BABEL_GATEWAY_MAX_IN_FLIGHT_PER_SERVICE="
            f"{settings.max_in_flight_per_service} + {POOL_RESERVE} reserved need {needed} Redis "
            f"connections; BABEL_REDIS_MAX_CONNECTIONS is {max_connections}",
            field="max_in_flight_per_service",
        )


class Caller(Protocol):
    """What an endpoint's work needs to call a service: the gateway's :class:`ServiceCaller`,
    or a batch job's caller (``services.batch.caller``)."""

    async def call(
        self, method: Method[Req, Resp], request: Req, *, timeout_s: float | None = None
    ) -> Resp: ...


class ServiceCaller:
    """Every call holds one pooled Redis connection while it waits for its reply, so calls in
    flight are capped per service (``max_in_flight_per_service``): past the cap a call is
    answered 503 ``overloaded`` at once, and the pool is never exhausted (``/readyz`` and the
    other services keep their connections)."""

    def __init__(
        self,
        rpc: RpcClient,
        monitor: ServiceMonitor,
        settings: GatewaySettings,
        access: AccessControl | None = None,
    ) -> None:
        self._rpc = rpc
        self._monitor = monitor
        self._settings = settings
        self._access = access
        self.in_flight: Counter[str] = Counter()
        self.upload_bytes = 0
        """Bytes of uploaded files this gateway has on request streams right now."""

    def _overloaded(self, message: str) -> BabelError:
        return BabelError(
            ErrorCode.OVERLOADED,
            message,
            retryable=True,
            retry_after_s=float(self._settings.retry_after_s),
        )

    @contextmanager
    def _slot(self, service: str) -> Iterator[None]:
        limit = self._settings.max_in_flight_per_service
        if self.in_flight[service] >= limit:
            raise self._overloaded(
                f"service {service!r} has {limit} calls in flight from this gateway"
            )
        self.in_flight[service] += 1
        try:
            yield
        finally:
            self.in_flight[service] -= 1

    @contextmanager
    def upload_slot(self, size: int) -> Iterator[None]:
        """Room for an uploaded file of ``size`` bytes on a request stream: a file travels whole
        in its stream entry, so the bytes in flight are capped (``max_upload_bytes_in_flight``)
        and Redis memory stays bounded whatever the queue depth; past the cap, 503."""
        limit = self._settings.max_upload_bytes_in_flight
        if self.upload_bytes and self.upload_bytes + size > limit:
            raise self._overloaded(
                f"this gateway has {self.upload_bytes} bytes of uploads in flight "
                f"(limit {limit}); retry shortly"
            )
        self.upload_bytes += size
        try:
            yield
        finally:
            self.upload_bytes -= size

    async def call(
        self, method: Method[Req, Resp], request: Req, *, timeout_s: float | None = None
    ) -> Resp:
        self._monitor.admit(method.service)
        if self._access is not None:
            await self._access.charge(request)
        trace = TraceContext(request_id=current_request_id() or "")
        try:
            with self._slot(method.service):
                return await self._rpc.call(
                    method,
                    request,
                    timeout_s=timeout_s or self._settings.request_timeout_s,
                    trace=trace,
                )
        except BabelError as exc:
            if exc.code == ErrorCode.DEADLINE_EXCEEDED and not self._monitor.ready(method.service):
                raise BabelError(
                    ErrorCode.UNAVAILABLE,
                    f"service {method.service!r} lost its workers while the request waited",
                    retryable=True,
                    retry_after_s=float(self._settings.retry_after_s),
                ) from exc
            retry_unsaid = exc.info.retryable and exc.info.retry_after_s is None
            if exc.code == ErrorCode.UNAVAILABLE and retry_unsaid:  # e.g. Redis lost mid-call
                raise BabelError(
                    ErrorCode.UNAVAILABLE,
                    exc.info.message,
                    field=exc.info.field,
                    retryable=True,
                    retry_after_s=float(self._settings.retry_after_s),
                ) from exc
            raise

    async def stream(
        self, method: Method[Req, Resp], request: Req, *, timeout_s: float | None = None
    ) -> AsyncIterator[Resp]:
        """Chunks of a streaming method; closing or cancelling the iterator stops the worker."""
        self._monitor.admit(method.service)
        slot = uuid.uuid4().hex
        grant = await self._access.charge(request, stream_id=slot) if self._access else None
        trace = TraceContext(request_id=current_request_id() or "")
        try:
            with self._slot(method.service):
                async for chunk in self._rpc.stream(
                    method,
                    request,
                    timeout_s=timeout_s or self._settings.request_timeout_s,
                    trace=trace,
                ):
                    yield chunk
        finally:
            if self._access is not None and grant is not None:
                await asyncio.shield(self._access.release(grant, slot))
