"""Watches every service's workers and queue; admits or refuses calls from that view."""

from __future__ import annotations

import asyncio
import time

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from services.gateway.observability import GatewayMetrics
from services.gateway.settings import GatewaySettings
from shared.errors import BabelError, ErrorCode
from shared.rpc.keys import Keys
from shared.rpc.stats import ServiceHealth, discover_services, read_service
from shared.telemetry import get_logger

log = get_logger(__name__)


class ServiceMonitor:
    """A snapshot of service health, refreshed in the background every ``monitor_interval_s``."""

    def __init__(
        self,
        redis: aioredis.Redis,
        keys: Keys,
        settings: GatewaySettings,
        metrics: GatewayMetrics,
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._settings = settings
        self._metrics = metrics
        self.snapshot: dict[str, ServiceHealth] = {}
        self.redis_ok = False
        self.redis_error: str | None = None
        self.redis_latency_ms: float | None = None

    async def refresh(self) -> None:
        try:
            started = time.perf_counter()
            await self._redis.ping()
            self.redis_latency_ms = (time.perf_counter() - started) * 1000
            names = set(self._settings.services) | await discover_services(self._redis, self._keys)
            snapshot = {name: await read_service(self._redis, self._keys, name) for name in names}
        except (RedisError, OSError) as exc:
            self.redis_ok, self.redis_error = False, str(exc) or type(exc).__name__
            return
        self.redis_ok, self.redis_error = True, None
        self.snapshot = snapshot
        for name, health in snapshot.items():
            self._metrics.queue_depth.labels(name).set(health.queue.depth)
            self._metrics.queue_lag.labels(name).set(health.queue.lag or 0)
            self._metrics.live_workers.labels(name).set(health.ready_workers)
            self._metrics.dead_letters.labels(name).set(health.queue.dead_letters)
            self._metrics.failover.by_service[name] = health.failover

    async def run(self) -> None:
        while True:
            await self.refresh()
            await asyncio.sleep(self._settings.monitor_interval_s)

    def known(self, service: str) -> bool:
        return service in self.snapshot or service in self._settings.services

    def ready(self, service: str) -> bool:
        health = self.snapshot.get(service)
        return health is not None and health.ready_workers > 0

    def admit(self, service: str) -> None:
        """Raise ``unavailable``/``overloaded`` (503 + Retry-After) instead of queueing in vain."""
        retry_after = float(self._settings.retry_after_s)
        if not self.redis_ok:
            raise BabelError(
                ErrorCode.UNAVAILABLE,
                "the message broker (Redis) is unreachable",
                retryable=True,
                retry_after_s=retry_after,
            )
        health = self.snapshot.get(service)
        if health is None or health.ready_workers == 0:
            raise BabelError(
                ErrorCode.UNAVAILABLE,
                f"service {service!r} has no live worker",
                retryable=True,
                retry_after_s=retry_after,
            )
        if health.queue.depth >= self._settings.max_queue_depth:
            raise BabelError(
                ErrorCode.OVERLOADED,
                f"service {service!r} has {health.queue.depth} queued requests "
                f"(limit {self._settings.max_queue_depth})",
                retryable=True,
                retry_after_s=retry_after,
            )
