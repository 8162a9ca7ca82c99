"""The Celery app, built from injected settings: broker and result backend on the project's
Redis under their own key prefix, configured for long, idempotent ML chunks.

- ``task_acks_late`` + ``task_reject_on_worker_lost``: a chunk is acknowledged after it ran,
  so a lost worker's chunk is delivered again (chunks are idempotent; ``max_deliveries`` caps
  it). ``worker_prefetch_multiplier=1``: a worker holds no chunk it is not running.
- ``visibility_timeout`` (broker, result backend and the app option) above the longest chunk:
  a longer unacknowledged chunk would be delivered twice.
- Soft shutdown: on SIGTERM running chunks get ``soft_shutdown_s`` to finish.
- Nothing big goes to the result backend (results live in the batch store); results expire.
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from kombu.exceptions import OperationalError

from services.batch.settings import BatchSettings
from shared.errors import BabelError, ErrorCode
from shared.settings import RedisSettings

VALIDATE = "babel.batch.validate"
RUN_CHUNK = "babel.batch.run_chunk"
FINALIZE = "babel.batch.finalize"

_RESTORE_INTERVAL_S = 1
"""How often a worker looks for chunks past their visibility timeout (kombu's default: 100 s)."""
_RESTORE_MUTEX_EXPIRE_S = 10
"""How long the lock around that look lasts. kombu's default is 300 s: a worker SIGKILLed while
holding it (with a 1 s interval, likely) would stop every redelivery for five minutes. The
look itself takes milliseconds; each restore is a Redis transaction, safe if two overlap."""


def create_celery(settings: BatchSettings, redis: RedisSettings) -> Celery:
    transport: dict[str, Any] = {
        "visibility_timeout": settings.visibility_timeout_s,
        "global_keyprefix": settings.key_prefix,
        "unacked_restore_interval": _RESTORE_INTERVAL_S,
        "unacked_restore_throttle": 1,
        "unacked_mutex_expire": _RESTORE_MUTEX_EXPIRE_S,
    }
    app = Celery("babelstack-batch", broker=redis.url, backend=redis.url, set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_transport_options=transport,
        result_backend_transport_options={
            "visibility_timeout": settings.visibility_timeout_s,
            "global_keyprefix": settings.key_prefix,
        },
        visibility_timeout=settings.visibility_timeout_s,
        result_expires=settings.result_expires_s,
        task_ignore_result=True,
        task_default_queue=settings.queue,
        task_serializer="json",
        accept_content=["json"],
        worker_soft_shutdown_timeout=settings.soft_shutdown_s,
        worker_enable_soft_shutdown_on_idle=True,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        broker_connection_retry_on_startup=True,
    )
    return app


def queue_key(settings: BatchSettings) -> str:
    """The Redis list that holds the chunks waiting for a worker."""
    return f"{settings.key_prefix}{settings.queue}"


class BatchQueue:
    """Sends batch work to the Celery queue (gateway and worker alike)."""

    def __init__(self, app: Celery, settings: BatchSettings) -> None:
        self._app = app
        self._queue = settings.queue

    def _send(self, name: str, *args: Any) -> None:
        try:
            self._app.send_task(name, args=list(args), queue=self._queue)
        except OperationalError as exc:
            raise BabelError(
                ErrorCode.UNAVAILABLE,
                f"the batch queue (Redis) is unreachable: {exc}",
                retryable=True,
                retry_after_s=2.0,
            ) from exc

    def validate(self, batch_id: str) -> None:
        self._send(VALIDATE, batch_id)

    def chunk(self, batch_id: str, index: int) -> None:
        self._send(RUN_CHUNK, batch_id, index)

    def finalize(self, batch_id: str) -> None:
        self._send(FINALIZE, batch_id)
