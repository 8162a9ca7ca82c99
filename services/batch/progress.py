"""Batch facts in Redis for ``/metrics``: batches by status and lines done/failed per endpoint.

One set of batch ids per status (a transition moves the id), one hash of line counters.
A chunk is counted once, however often it is delivered (a ``SET NX`` marker per chunk).
"""

from __future__ import annotations

import redis

from services.batch.records import STATUSES

_COUNTED_TTL_S = 7 * 86_400


class BatchProgress:
    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._redis = client
        self._prefix = prefix

    def status_key(self, status: str) -> str:
        return f"{self._prefix}batch:status:{status}"

    @property
    def lines_key(self) -> str:
        return f"{self._prefix}batch:lines"

    def set_status(self, batch_id: str, status: str) -> None:
        with self._redis.pipeline(transaction=True) as pipe:
            for other in STATUSES:
                if other != status:
                    pipe.srem(self.status_key(other), batch_id)
            pipe.sadd(self.status_key(status), batch_id)
            pipe.execute()

    def count_chunk(
        self, batch_id: str, chunk: int, endpoint: str, completed: int, failed: int
    ) -> None:
        marker = f"{self._prefix}batch:counted:{batch_id}:{chunk}"
        if not self._redis.set(marker, b"1", nx=True, ex=_COUNTED_TTL_S):
            return
        with self._redis.pipeline(transaction=True) as pipe:
            pipe.hincrby(self.lines_key, f"{endpoint}|completed", completed)
            pipe.hincrby(self.lines_key, f"{endpoint}|failed", failed)
            pipe.execute()

    def deliveries(self, batch_id: str, chunk: int) -> int:
        """Count one more delivery of a chunk; return how many there have been."""
        key = f"{self._prefix}batch:deliveries:{batch_id}:{chunk}"
        with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, _COUNTED_TTL_S)
            count, _ = pipe.execute()
        return int(count)
