"""The gateway's side of batches: upload files, create, read, list and cancel batches.

Synchronous (file and Redis I/O): the gateway runs each call in a worker thread.
``Idempotency-Key``: the first call with a key claims it for the object it creates; a
later call with the same key answers that object and creates nothing.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import TypeVar

import msgspec

from services.batch.celery_app import BatchQueue
from services.batch.endpoints import endpoint_of
from services.batch.progress import BatchProgress
from services.batch.records import (
    FINAL_STATUSES,
    BatchList,
    BatchObject,
    FileObject,
    RequestCounts,
)
from services.batch.settings import BatchSettings
from services.batch.store import BatchStore, new_id
from shared.errors import BabelError, ErrorCode

T = TypeVar("T")
_WINDOW = re.compile(r"([0-9]+)([smhd])")
"""Matched in full: ASCII digits only, no trailing newline (``$`` would let one through)."""
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
_KEY_WAIT_S = 5.0
LIVE_STATUSES = frozenset({"in_progress", "cancelling", "finalizing"})


def window_seconds(window: str, limit_s: int) -> int:
    """``24h``, ``90m``, ``30s``, ``2d`` → seconds; 422 naming ``completion_window`` otherwise."""
    found = _WINDOW.fullmatch(window)
    seconds = int(found.group(1)) * _UNIT_S[found.group(2)] if found else 0
    if seconds <= 0 or seconds > limit_s:
        raise BabelError(
            ErrorCode.INVALID_ARGUMENT,
            f"completion_window {window!r}: a duration like '24h' (s, m, h or d), "
            f"at most {limit_s} s",
            field="completion_window",
        )
    return seconds


def count_lines(content: bytes) -> int:
    return sum(1 for line in content.splitlines() if line.strip())


class BatchService:
    def __init__(
        self,
        store: BatchStore,
        progress: BatchProgress,
        queue: BatchQueue,
        settings: BatchSettings,
    ) -> None:
        self._store = store
        self._progress = progress
        self._queue = queue
        self._settings = settings

    def _claimed(self, scope: str, key: str | None, new: str) -> str | None:
        """The id an earlier call with ``key`` created, or None if this call is the first."""
        if not key:
            return None
        owner = self._store.claim_key(scope, key, new)
        return None if owner == new else owner

    def _wait_for(self, read: Callable[[str], T], object_id: str) -> T:
        """The object an earlier call with the same key creates (it may still be writing)."""
        give_up = time.monotonic() + _KEY_WAIT_S
        while True:
            try:
                return read(object_id)
            except BabelError:
                if time.monotonic() > give_up:
                    raise
                time.sleep(0.05)

    # ------------------------------------------------------------------ files
    def create_file(
        self, filename: str, purpose: str, content: bytes, key: str | None = None
    ) -> FileObject:
        if purpose != "batch":
            raise BabelError(
                ErrorCode.INVALID_ARGUMENT,
                f"purpose {purpose!r}: only 'batch' files are accepted",
                field="purpose",
            )
        if len(content) > self._settings.max_file_bytes:
            raise BabelError(
                ErrorCode.PAYLOAD_TOO_LARGE,
                f"the file has {len(content)} bytes; at most {self._settings.max_file_bytes}",
                field="file",
            )
        lines = count_lines(content)
        if lines > self._settings.max_file_lines:
            raise BabelError(
                ErrorCode.PAYLOAD_TOO_LARGE,
                f"the file has {lines} lines; at most {self._settings.max_file_lines}",
                field="file",
            )
        file_id = new_id("file-")
        if (earlier := self._claimed("file", key, file_id)) is not None:
            return self._wait_for(self._store.get_file, earlier)
        file = FileObject(
            id=file_id,
            bytes=len(content),
            created_at=int(time.time()),
            filename=filename or "batch.jsonl",
            purpose=purpose,
        )
        return self._store.put_file(file, content)

    def get_file(self, file_id: str) -> FileObject:
        return self._store.get_file(file_id)

    def file_content(self, file_id: str) -> bytes:
        return self._store.file_content(file_id)

    def delete_file(self, file_id: str) -> bool:
        return self._store.delete_file(file_id)

    def list_files(self, purpose: str | None = None) -> list[FileObject]:
        files = self._store.list_files()
        return [f for f in files if purpose is None or f.purpose == purpose]

    # ------------------------------------------------------------------ batches
    def create_batch(
        self,
        input_file_id: str,
        endpoint: str,
        completion_window: str,
        metadata: dict[str, str] | None,
        key: str | None = None,
    ) -> BatchObject:
        endpoint_of(endpoint)
        window_s = window_seconds(completion_window, self._settings.completion_window_max_s)
        file = self._store.get_file(input_file_id)
        if file.purpose != "batch":
            raise BabelError(
                ErrorCode.INVALID_ARGUMENT,
                f"file {input_file_id!r} has purpose {file.purpose!r}, not 'batch'",
                field="input_file_id",
            )
        batch_id = new_id("batch_")
        if (earlier := self._claimed("batch", key, batch_id)) is not None:
            return self._wait_for(self._store.get_batch, earlier)
        now = int(time.time())
        batch = BatchObject(
            id=batch_id,
            endpoint=endpoint,
            input_file_id=input_file_id,
            completion_window=completion_window,
            status="validating",
            created_at=now,
            expires_at=now + window_s,
            metadata=metadata,
        )
        self._store.put_batch(batch)
        self._progress.set_status(batch_id, "validating")
        self._queue.validate(batch_id)
        return batch

    def get_batch(self, batch_id: str) -> BatchObject:
        batch = self._store.get_batch(batch_id)
        if batch.status not in LIVE_STATUSES:
            return batch
        chunks = self._store.chunk_counts(batch_id)
        counts = RequestCounts(
            total=batch.request_counts.total,
            completed=sum(c.completed for c in chunks),
            failed=batch.request_counts.failed + sum(c.failed for c in chunks),
        )
        return msgspec.structs.replace(batch, request_counts=counts)

    def list_batches(self, after: str | None, limit: int) -> BatchList:
        """Newest first; ``after`` is the last id of the previous page."""
        ids = self._store.batch_ids()[::-1]
        if after is not None:
            ids = [i for i in ids if i < after]
        page = ids[: limit + 1]
        batches = []
        for batch_id in page[:limit]:
            try:
                batches.append(self.get_batch(batch_id))
            except BabelError:
                continue
        return BatchList(
            data=batches,
            has_more=len(page) > limit,
            first_id=batches[0].id if batches else None,
            last_id=batches[-1].id if batches else None,
        )

    def cancel(self, batch_id: str) -> BatchObject:
        """Pending chunks stop at once, running ones at their next line; a finished batch is
        answered unchanged."""

        def change(batch: BatchObject) -> BatchObject | None:
            if batch.status in FINAL_STATUSES or batch.status in ("cancelling", "finalizing"):
                return None
            return msgspec.structs.replace(
                batch, status="cancelling", cancelling_at=int(time.time())
            )

        batch = self._store.get_batch(batch_id)
        if batch.status in FINAL_STATUSES or batch.status == "finalizing":
            return self.get_batch(batch_id)  # finished (or all but): unchanged
        self._store.mark_cancelled(batch_id)
        batch = self._store.update_batch(batch_id, change)
        self._progress.set_status(batch_id, batch.status)
        if batch.status == "cancelling":
            self._queue.finalize(batch_id)
            if self._store.get_plan(batch_id) is None:
                self._queue.validate(batch_id)
        return self.get_batch(batch_id)
