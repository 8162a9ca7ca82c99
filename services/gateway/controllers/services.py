"""What runs behind the gateway: ``GET /v1/services`` and a round trip per service."""

from __future__ import annotations

import time

from litestar import Controller, get

from services.gateway.caller import ServiceCaller
from services.gateway.monitor import ServiceMonitor
from services.gateway.schemas import PingResult, ServiceInfo, ServicesResult
from shared.errors import BabelError, ErrorCode
from shared.messages.system import PingRequest, ping_method


class ServicesController(Controller):
    path = "/v1/services"
    tags = ["services"]

    @get("/", summary="Each service: version, models, live workers, queue")
    async def list_services(self, monitor: ServiceMonitor) -> ServicesResult:
        await monitor.refresh()
        services = []
        for name, health in sorted(monitor.snapshot.items()):
            newest = max(health.workers, key=lambda w: w.started_at, default=None)
            models = sorted({m for w in health.workers for m in w.models})
            services.append(
                ServiceInfo(
                    name=name,
                    version=newest.version if newest else None,
                    models=models,
                    live_workers=health.ready_workers,
                    ready=health.ready_workers > 0,
                    queue=health.queue,
                    workers=list(health.workers),
                )
            )
        return ServicesResult(services=services)

    @get("/{name:str}/ping", summary="A trivial request through Redis to one worker and back")
    async def ping(self, name: str, monitor: ServiceMonitor, caller: ServiceCaller) -> PingResult:
        if not monitor.known(name):
            raise BabelError(ErrorCode.NOT_FOUND, f"unknown service {name!r}", field="name")
        started = time.perf_counter()
        reply = await caller.call(ping_method(name), PingRequest())
        return PingResult(
            service=reply.service,
            worker=reply.worker,
            round_trip_ms=(time.perf_counter() - started) * 1000,
        )
