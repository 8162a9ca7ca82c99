"""Handler registry: which coroutine serves which typed method."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from shared.messages.base import Message, Method, Req, Resp
from shared.messages.envelope import TraceContext


@dataclass(frozen=True, slots=True)
class RequestContext:
    """What a handler may know about the request it serves."""

    request_id: str
    """The client's id (``X-Request-ID``): for logs and traces only, never an identity,
    since two clients may send the same one."""
    deadline: float
    worker: str
    deliveries: int
    call_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    """This call's own unique id (the envelope's): the id to give engines and caches. The
    same on every delivery of the call, so also the key for work that must not run twice
    when a request is taken over from a dead worker."""

    trace: TraceContext | None = None
    """The caller's trace: calls this handler makes to other services carry it on."""

    def remaining_s(self) -> float:
        return self.deadline - time.time()


_serving: ContextVar[RequestContext | None] = ContextVar("babel_serving", default=None)


def serving_context() -> RequestContext | None:
    """The request the current task serves, if it runs inside a handler."""
    return _serving.get()


@contextmanager
def serving(context: RequestContext) -> Iterator[None]:
    """Mark the current task as serving ``context``: calls the handler makes to other
    services (:class:`~shared.rpc.client.RpcClient`) inherit its deadline and trace."""
    token = _serving.set(context)
    try:
        yield
    finally:
        _serving.reset(token)


UnaryHandler = Callable[[Any, RequestContext], Awaitable[Message]]
StreamHandler = Callable[[Any, RequestContext], AsyncIterator[Message]]


@dataclass(frozen=True, slots=True)
class Route:
    method: Method[Any, Any]
    unary: UnaryHandler | None = None
    stream: StreamHandler | None = None


class HandlerRegistry:
    """Maps ``service.method`` kinds to handlers of one service."""

    def __init__(self, service: str) -> None:
        self.service = service
        self._routes: dict[str, Route] = {}

    def _check(self, method: Method[Any, Any]) -> None:
        if method.service != self.service:
            raise ValueError(f"{method.kind} does not belong to service {self.service!r}")
        if method.kind in self._routes:
            raise ValueError(f"{method.kind} is registered twice")

    def add_unary(
        self, method: Method[Req, Resp], handler: Callable[[Req, RequestContext], Awaitable[Resp]]
    ) -> None:
        self._check(method)
        self._routes[method.kind] = Route(method=method, unary=handler)

    def add_stream(
        self,
        method: Method[Req, Resp],
        handler: Callable[[Req, RequestContext], AsyncIterator[Resp]],
    ) -> None:
        self._check(method)
        self._routes[method.kind] = Route(method=method, stream=handler)

    def lookup(self, kind: str) -> Route | None:
        return self._routes.get(kind)

    def kinds(self) -> list[str]:
        return sorted(self._routes)
