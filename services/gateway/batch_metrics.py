"""Batch progress on ``/metrics``: lines done/failed per endpoint, batches by status and the
Celery queue's depth, read from Redis every ``BABEL_BATCH_METRICS_INTERVAL_S``."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry, Gauge
from redis.exceptions import RedisError

from services.batch.celery_app import queue_key
from services.batch.progress import BatchProgress
from services.batch.records import STATUSES
from services.batch.settings import BatchSettings


class BatchMetrics:
    def __init__(self, registry: CollectorRegistry, settings: BatchSettings) -> None:
        self._settings = settings
        self.lines = Gauge(
            "babel_batch_lines",
            "Batch lines finished, by endpoint and outcome (completed or failed)",
            ["endpoint", "outcome"],
            registry=registry,
        )
        self.batches = Gauge("babel_batches", "Batches by status", ["status"], registry=registry)
        self.queue_depth = Gauge(
            "babel_batch_queue_depth",
            "Celery tasks (batch chunks) waiting in the batch queue",
            registry=registry,
        )

    async def refresh(self, redis: aioredis.Redis, progress: BatchProgress) -> None:
        async with redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(progress.lines_key)
            for status in STATUSES:
                pipe.scard(progress.status_key(status))
            pipe.llen(queue_key(self._settings))
            lines, *counts, depth = await pipe.execute()
        found: dict[Any, Any] = lines or {}
        for field, value in found.items():
            text = field.decode() if isinstance(field, bytes) else str(field)
            endpoint, _, outcome = text.rpartition("|")
            self.lines.labels(endpoint, outcome).set(int(value))
        for status, count in zip(STATUSES, counts, strict=True):
            self.batches.labels(status).set(int(count))
        self.queue_depth.set(int(depth))

    async def run(self, redis: aioredis.Redis, progress: BatchProgress) -> None:
        while True:
            with contextlib.suppress(RedisError, OSError):  # /readyz reports Redis
                await self.refresh(redis, progress)
            await asyncio.sleep(self._settings.metrics_interval_s)
