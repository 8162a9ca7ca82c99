"""Liveness, readiness and metrics."""

from __future__ import annotations

from litestar import Controller, Response, get
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services.gateway.monitor import ServiceMonitor
from services.gateway.observability import GatewayMetrics
from services.gateway.schemas import Readiness, RedisStatus, ServiceReadiness
from services.gateway.settings import GatewaySettings


class HealthController(Controller):
    tags = ["health"]

    @get("/healthz", summary="The gateway process is alive")
    async def healthz(self) -> dict[str, str]:
        return {"status": "ok"}

    @get("/readyz", summary="Redis reachable and every required service has a live worker")
    async def readyz(
        self, monitor: ServiceMonitor, settings: GatewaySettings
    ) -> Response[Readiness]:
        await monitor.refresh()
        services = {
            name: ServiceReadiness(
                ready=health.ready_workers > 0,
                required=name in settings.services,
                live_workers=health.ready_workers,
                queue_depth=health.queue.depth,
                pending=health.queue.pending,
                lag=health.queue.lag,
                dead_letters=health.queue.dead_letters,
            )
            for name, health in sorted(monitor.snapshot.items())
        }
        ready = monitor.redis_ok and all(monitor.ready(name) for name in settings.services)
        body = Readiness(
            status="ready" if ready else "not_ready",
            redis=RedisStatus(
                ok=monitor.redis_ok, latency_ms=monitor.redis_latency_ms, error=monitor.redis_error
            ),
            services=services if monitor.redis_ok else {},
        )
        return Response(body, status_code=200 if ready else 503)

    @get("/metrics", summary="Prometheus metrics", media_type=CONTENT_TYPE_LATEST)
    async def metrics(self, metrics: GatewayMetrics) -> Response[bytes]:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
