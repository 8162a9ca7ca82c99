"""Calls a service on behalf of an HTTP request: admission, the API key's character and
stream quotas, trace context, error mapping."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

from services.gateway.access.control import AccessControl
from services.gateway.monitor import ServiceMonitor
from services.gateway.observability import current_request_id
from services.gateway.settings import GatewaySettings
from shared.errors import BabelError, ErrorCode
from shared.messages.base import Method, Req, Resp
from shared.messages.envelope import TraceContext
from shared.rpc.client import RpcClient


class ServiceCaller:
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

    async def call(
        self, method: Method[Req, Resp], request: Req, *, timeout_s: float | None = None
    ) -> Resp:
        self._monitor.admit(method.service)
        if self._access is not None:
            await self._access.charge(request)
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
        slot = uuid.uuid4().hex
        grant = await self._access.charge(request, stream_id=slot) if self._access else None
        trace = TraceContext(request_id=current_request_id() or "")
        try:
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
