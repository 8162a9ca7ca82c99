"""Request ids, access logs and Prometheus metrics around every HTTP request.

``RequestObserver`` wraps the whole ASGI app (outside Litestar's router), so that
unmatched routes (404) and errors are counted and carry a request id too.
"""

from __future__ import annotations

import contextvars
import re
import time
import uuid
from typing import Any

from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, Metric

from shared.rpc.stats import FailoverStats
from shared.telemetry import bound_context, get_logger

log = get_logger("babel.access")

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
_VALID_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
REQUEST_ID_HEADER = "x-request-id"


def current_request_id() -> str | None:
    return _request_id.get()


class FailoverCollector:
    """Exposes the failover counters workers keep in Redis (as the monitor last read them)."""

    def __init__(self) -> None:
        self.by_service: dict[str, FailoverStats] = {}

    def collect(self) -> list[Metric]:
        takeovers = CounterMetricFamily(
            "babel_worker_takeovers",
            "Dead workers (heartbeat expired) whose pending requests a live worker took over",
            labels=["service"],
        )
        entries = CounterMetricFamily(
            "babel_reclaimed_entries",
            "Pending requests moved to a live worker: via=takeover (dead worker) or "
            "idle (stuck past BABEL_WORKER_CLAIM_IDLE_MS)",
            labels=["service", "via"],
        )
        for service, stats in sorted(self.by_service.items()):
            takeovers.add_metric([service], stats.takeovers)
            entries.add_metric([service, "takeover"], stats.taken_over)
            entries.add_metric([service, "idle"], stats.reclaimed)
        return [takeovers, entries]


class GatewayMetrics:
    """Metrics of one gateway app, in a registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "babel_http_requests",
            "HTTP requests by route, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "babel_http_request_duration_seconds",
            "HTTP request latency by route and method",
            ["route", "method"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "babel_queue_depth",
            "Entries in a service's request stream",
            ["service"],
            registry=self.registry,
        )
        self.queue_lag = Gauge(
            "babel_queue_lag",
            "Entries not yet delivered to any worker",
            ["service"],
            registry=self.registry,
        )
        self.live_workers = Gauge(
            "babel_live_workers",
            "Workers with a live heartbeat",
            ["service"],
            registry=self.registry,
        )
        self.dead_letters = Gauge(
            "babel_dead_letters",
            "Entries in a service's dead-letter stream",
            ["service"],
            registry=self.registry,
        )
        self.failover = FailoverCollector()
        self.registry.register(self.failover)


class RequestObserver:
    """ASGI wrapper: request id in and out, access log line, metrics."""

    def __init__(self, app: ASGIApp, metrics: GatewayMetrics) -> None:
        self.app = app
        self.metrics = metrics

    def __getattr__(self, name: str) -> Any:  # expose the wrapped app's attributes (state …)
        return getattr(self.app, name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = next(
            (v.decode("latin-1") for k, v in scope["headers"] if k == REQUEST_ID_HEADER.encode()),
            "",
        )
        request_id = incoming if _VALID_ID.fullmatch(incoming) else uuid.uuid4().hex
        token = _request_id.set(request_id)
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER.encode(), request_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            with bound_context(request_id=request_id):
                await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("path_template") or "unmatched"
            method = scope.get("method", "")
            self.metrics.requests.labels(route, method, str(status)).inc()
            self.metrics.latency.labels(route, method).observe(elapsed)
            if status >= 400 or route not in ("/healthz", "/readyz", "/metrics"):
                log.debug(
                    "request",
                    method=method,
                    route=route,
                    status=status,
                    ms=round(elapsed * 1000, 3),
                    request_id=request_id,
                )
            _request_id.reset(token)
