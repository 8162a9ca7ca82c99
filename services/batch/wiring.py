"""Builds the batch parts from settings: store, Redis progress, Celery queue, service, jobs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import redis
from celery import Celery

from services.batch.celery_app import BatchQueue, create_celery
from services.batch.progress import BatchProgress
from services.batch.service import BatchService
from services.batch.settings import BatchSettings
from services.batch.store import BatchStore, store_of
from shared.settings import RedisSettings


@dataclass
class BatchParts:
    settings: BatchSettings
    celery: Celery
    store: BatchStore
    progress: BatchProgress
    queue: BatchQueue
    service: BatchService


def build_batch(settings: BatchSettings, redis_settings: RedisSettings) -> BatchParts:
    celery = create_celery(settings, redis_settings)
    store = store_of(Path(settings.dir))
    client = redis.Redis.from_url(redis_settings.url)
    progress = BatchProgress(client, redis_settings.key_prefix + ":")
    queue = BatchQueue(celery, settings)
    return BatchParts(
        settings=settings,
        celery=celery,
        store=store,
        progress=progress,
        queue=queue,
        service=BatchService(store, progress, queue, settings),
    )
