"""The Celery tasks: thin wrappers that hand each message to :class:`BatchJobs`."""

from __future__ import annotations

from celery import Celery

from services.batch.celery_app import FINALIZE, RUN_CHUNK, VALIDATE
from services.batch.jobs import BatchJobs


def register_tasks(app: Celery, jobs: BatchJobs) -> None:
    @app.task(name=VALIDATE)
    def validate(batch_id: str) -> None:
        jobs.validate(batch_id)

    @app.task(name=RUN_CHUNK)
    def run_chunk(batch_id: str, index: int) -> None:
        jobs.run_chunk(batch_id, index)

    @app.task(name=FINALIZE)
    def finalize(batch_id: str) -> None:
        jobs.finalize(batch_id)
