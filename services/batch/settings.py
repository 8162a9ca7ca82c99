"""Settings of batch jobs (prefix ``BABEL_BATCH_``), shared by the gateway and the Celery worker."""

from __future__ import annotations

from typing import ClassVar

from shared.settings import BaseSettings


class BatchSettings(BaseSettings, frozen=True, kw_only=True):
    env_prefix: ClassVar[str] = "BABEL_BATCH_"
    dir: str = ".babelstack/batch"
    """The store: uploaded files, batch records, chunk results. One folder every gateway and
    Celery worker sees (a shared volume in compose/Kubernetes)."""
    max_file_bytes: int = 25 * 1_048_576
    """Largest uploaded batch file (413 above); the gateway's upload limit
    (``BABEL_GATEWAY_MAX_UPLOAD_BYTES``) applies too."""
    max_file_lines: int = 50_000
    """Most lines (requests) in one batch file (413 above)."""
    chunk_lines: int = 64
    """Lines in one Celery task (a chunk): its results are written together."""
    line_concurrency: int = 16
    """Lines of one chunk in flight at once (tasks, retrieval)."""
    generation_line_concurrency: int = 64
    """Lines of one chunk in flight at once for chat/completions (fills the engine's batch)."""
    service_queue_limit: int = 4
    """A batch sends a request to a service only while its request stream holds fewer
    entries (anyone's, waiting or in flight): interactive requests wait behind at most these."""
    generation_queue_limit: int = 64
    """The same for the generation service (its engine batches what is in flight)."""
    line_max_attempts: int = 8
    """Tries of one line on retryable service errors (unavailable, overloaded) before it is
    an error line."""
    retry_base_s: float = 0.5
    retry_max_s: float = 30.0
    """Backoff between tries: base·2^n, capped here, with jitter."""
    max_deliveries: int = 5
    """Deliveries of one chunk (worker lost, redelivered) before its lines become error lines."""
    visibility_timeout_s: int = 7_200
    """A chunk not acknowledged this long is delivered again: longer than the longest chunk."""
    result_expires_s: int = 86_400
    completion_window_max_s: int = 7 * 86_400
    queue: str = "babel-batch"
    key_prefix: str = "babel:celery:"
    """Every Celery key in Redis starts with this (broker and result backend)."""
    pool: str = "threads"
    """Celery pool of ``python -m services.batch``: ``threads`` or ``solo``."""
    concurrency: int = 2
    """Chunks one Celery worker runs at once (threads pool)."""
    soft_shutdown_s: float = 20.0
    """On SIGTERM, running chunks get this long to finish before they are left for redelivery."""
    metrics_interval_s: float = 2.0
    """How often the gateway reads batch counts for /metrics."""

    def queue_limit(self, service: str) -> int:
        if service == "generation":
            return self.generation_queue_limit
        return self.service_queue_limit
