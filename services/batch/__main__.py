"""``python -m services.batch``: a Celery worker that runs batch jobs (it loads no model)."""

from __future__ import annotations

import os

from services.batch.jobs import BatchJobs
from services.batch.settings import BatchSettings
from services.batch.tasks import register_tasks
from services.batch.wiring import build_batch
from services.gateway.settings import GatewaySettings
from shared.settings import LogSettings, RedisSettings, load_settings
from shared.telemetry import configure_logging


def main() -> None:
    settings = load_settings(BatchSettings, os.environ)
    log_settings = load_settings(LogSettings, os.environ)
    configure_logging(log_settings, service="batch")
    redis_settings = RedisSettings.from_env(os.environ)
    parts = build_batch(settings, redis_settings)
    jobs = BatchJobs(
        parts.store,
        parts.progress,
        parts.queue,
        settings,
        load_settings(GatewaySettings, os.environ),
        redis_settings,
    )
    register_tasks(parts.celery, jobs)
    parts.celery.worker_main(
        [
            "worker",
            f"--pool={settings.pool}",
            f"--concurrency={settings.concurrency}",
            f"--queues={settings.queue}",
            f"--loglevel={log_settings.level}",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
    )


if __name__ == "__main__":
    main()
