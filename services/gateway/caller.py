"""Calls a service on behalf of an HTTP request: admission, trace context, error mapping."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from services.gateway.monitor import ServiceMonitor
from services.gateway.observability import current_request_id
from services.gateway.settings import GatewaySettings
from shared.errors import BabelError, ErrorCode
from shared.messages.base import Method, Req, Resp
from shared.messages.envelope import TraceContext
from shared.rpc.client import RpcClient


class Caller(Protocol):
    """What an endpoint's work needs to call a service: the gateway's :class:`ServiceCaller`,
    or a batch job's caller (``services.batch.caller``)."""

    async def call(
        self, method: Method[Req, Resp], request: Req, *, timeout_s: float | None = None
    ) -> Resp: ...


class ServiceCaller:
    def __init__(self, rpc: RpcClient, monitor: ServiceMonitor, settings: GatewaySettings) -> None:
        self._rpc = rpc
        self._monitor = monitor
        self._settings = settings

    async def call(
        self, method: Method[Req, Resp], request: Req, *, timeout_s: float | None = None
    ) -> Resp:
        self._monitor.admit(method.service)
        trace = TraceContext(request_id=current_request_id() or "")
        try:
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
            raise

    async def stream(
        self, method: Method[Req, Resp], request: Req, *, timeout_s: float | None = None
    ) -> AsyncIterator[Resp]:
        """Chunks of a streaming method; closing or cancelling the iterator stops the worker."""
        self._monitor.admit(method.service)
        trace = TraceContext(request_id=current_request_id() or "")
        async for chunk in self._rpc.stream(
            method, request, timeout_s=timeout_s or self._settings.request_timeout_s, trace=trace
        ):
            yield chunk
