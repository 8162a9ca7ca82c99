"""The Celery tasks: thin wrappers that hand each message to :class:`BatchJobs`.

A task that fails unexpectedly (Redis or the store unreachable) is retried with backoff
rather than acknowledged and lost: every job is idempotent."""

from __future__ import annotations

from typing import Any

from celery import Celery

from services.batch.celery_app import FINALIZE, RUN_CHUNK, VALIDATE
from services.batch.jobs import BatchJobs

RETRY: dict[str, Any] = {
    "autoretry_for": (Exception,),
    "retry_backoff": 2,
    "retry_backoff_max": 60,
    "retry_jitter": True,
    "max_retries": 10,
}


def register_tasks(app: Celery, jobs: BatchJobs) -> None:
    @app.task(name=VALIDATE, **RETRY)
    def validate(batch_id: str) -> None:
        jobs.validate(batch_id)

    @app.task(name=RUN_CHUNK, **RETRY)
    def run_chunk(batch_id: str, index: int) -> None:
        jobs.run_chunk(batch_id, index)

    @app.task(name=FINALIZE, **RETRY)
    def finalize(batch_id: str) -> None:
        jobs.finalize(batch_id)
