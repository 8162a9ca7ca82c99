"""What the Celery tasks do: validate a batch, run a chunk, finalise the batch.

Each is idempotent, because a chunk may be delivered again (a lost worker, a visibility
timeout): a chunk's results replace its own, the plan is rewritten whole, and the
finaliser writes output and error files under ids derived from the batch's.
"""

from __future__ import annotations

import asyncio
import time

import msgspec
import redis.asyncio as aioredis

from services.batch.caller import BatchCaller
from services.batch.celery_app import BatchQueue
from services.batch.endpoints import Endpoint, endpoint_of
from services.batch.execute import EXPIRED, ChunkRun, failed_line
from services.batch.progress import BatchProgress
from services.batch.records import (
    FINAL_STATUSES,
    BatchErrorData,
    BatchErrors,
    BatchObject,
    BatchPlan,
    ChunkResult,
    FileObject,
    LineError,
    OutputLine,
    PlannedLine,
    RequestCounts,
)
from services.batch.settings import BatchSettings
from services.batch.store import BatchStore
from services.batch.validation import validate_lines
from services.gateway.settings import GatewaySettings
from shared.errors import BabelError
from shared.rpc.connection import connect
from shared.rpc.keys import Keys
from shared.settings import RedisSettings
from shared.telemetry import get_logger

log = get_logger(__name__)
_line_encoder = msgspec.json.Encoder()

WORKER_LOST = LineError(
    code="worker_lost",
    message="the chunk holding this request was delivered too often (its workers died)",
)


def output_file_id(batch_id: str, kind: str) -> str:
    return f"file-{batch_id}-{kind}"


class BatchJobs:
    def __init__(
        self,
        store: BatchStore,
        progress: BatchProgress,
        queue: BatchQueue,
        settings: BatchSettings,
        gateway: GatewaySettings,
        redis_settings: RedisSettings,
    ) -> None:
        self._store = store
        self._progress = progress
        self._queue = queue
        self._settings = settings
        self._gateway = gateway
        self._redis_settings = redis_settings

    def _set(self, batch_id: str, **changes: object) -> BatchObject:
        def change(batch: BatchObject) -> BatchObject | None:
            if batch.status in FINAL_STATUSES:
                return None
            return msgspec.structs.replace(batch, **changes)

        batch = self._store.update_batch(batch_id, change)
        self._progress.set_status(batch_id, batch.status)
        return batch

    # ------------------------------------------------------------------ validate
    def validate(self, batch_id: str) -> None:
        batch = self._store.get_batch(batch_id)
        if batch.status in FINAL_STATUSES:
            return
        now = int(time.time())
        if self._store.cancelled(batch_id) and self._store.get_plan(batch_id) is None:
            self._set(batch_id, status="cancelled", cancelled_at=now)
            return
        try:
            content: bytes | None = self._store.file_content(batch.input_file_id)
        except (BabelError, FileNotFoundError):  # deleted before the batch ran
            content = None
        endpoint, _ = endpoint_of(batch.endpoint)
        if content is None:
            self._fail(batch_id, "missing_file", f"input file {batch.input_file_id!r} is gone")
            return
        found = validate_lines(content, endpoint, batch.endpoint)
        errors = BatchErrors(data=found.errors) if found.errors else None
        if not found.planned:
            counts = RequestCounts(total=found.total, failed=found.total)
            message = "no line of the input file can run" if found.total else "the file is empty"
            self._set(
                batch_id,
                status="failed",
                failed_at=now,
                errors=errors or BatchErrors(data=[]),
                request_counts=counts,
            )
            log.info("batch failed validation", batch=batch_id, reason=message)
            return
        size = max(1, self._settings.chunk_lines)
        chunks = [found.planned[i : i + size] for i in range(0, len(found.planned), size)]
        plan = BatchPlan(chunks=len(chunks), lines=found.total, invalid=found.invalid)
        self._store.put_plan(batch_id, plan, chunks)
        self._set(
            batch_id,
            status="cancelling" if self._store.cancelled(batch_id) else "in_progress",
            in_progress_at=now,
            errors=errors,
            request_counts=RequestCounts(total=found.total, failed=len(found.invalid)),
        )
        for index in range(len(chunks)):
            self._queue.chunk(batch_id, index)
        log.info("batch planned", batch=batch_id, lines=found.total, chunks=len(chunks))

    def _fail(self, batch_id: str, code: str, message: str) -> None:
        errors = BatchErrors(data=[BatchErrorData(code=code, message=message)])
        self._set(batch_id, status="failed", failed_at=int(time.time()), errors=errors)

    # ------------------------------------------------------------------ chunks
    def run_chunk(self, batch_id: str, index: int) -> None:
        batch = self._store.get_batch(batch_id)
        if batch.status in FINAL_STATUSES:
            return
        if index in self._store.finished_chunks(batch_id):
            self._finalize_if_done(batch_id)
            return
        lines = self._store.chunk_input(batch_id, index)
        endpoint, params = endpoint_of(batch.endpoint)
        deliveries = self._progress.deliveries(batch_id, index)
        cancelled = False
        if deliveries > self._settings.max_deliveries:
            log.warning("chunk delivered too often", batch=batch_id, chunk=index, n=deliveries)
            outcomes = [(line.line, failed_line(line, WORKER_LOST)) for line in lines]
        elif self._store.cancelled(batch_id):
            outcomes, cancelled = [], True
        elif time.time() >= batch.expires_at:
            outcomes = [(line.line, failed_line(line, EXPIRED)) for line in lines]
        else:
            outcomes, cancelled = asyncio.run(self._run(batch, endpoint, params, lines))
        completed = sum(1 for _, out in outcomes if out.ok)
        result = ChunkResult(
            chunk=index,
            lines=outcomes,
            completed=completed,
            failed=len(outcomes) - completed,
            cancelled=cancelled,
        )
        self._store.put_chunk_result(batch_id, result)
        self._progress.count_chunk(
            batch_id, index, endpoint.pattern, result.completed, result.failed
        )
        log.info(
            "chunk done",
            batch=batch_id,
            chunk=index,
            completed=result.completed,
            failed=result.failed,
            cancelled=cancelled,
        )
        self._finalize_if_done(batch_id)

    async def _run(
        self,
        batch: BatchObject,
        endpoint: Endpoint,
        params: dict[str, str],
        lines: list[PlannedLine],
    ) -> tuple[list[tuple[int, OutputLine]], bool]:
        redis: aioredis.Redis = connect(self._redis_settings)
        try:
            run = ChunkRun(
                endpoint=endpoint,
                params=params,
                caller=BatchCaller(
                    redis,
                    Keys(self._redis_settings.key_prefix),
                    default_timeout_s=self._gateway.request_timeout_s,
                    queue_limit=self._settings.queue_limit,
                ),
                settings=self._settings,
                gateway=self._gateway,
                expires_at=batch.expires_at,
                cancelled=lambda: self._store.cancelled(batch.id),
            )
            return await run.run(lines)
        finally:
            await redis.aclose()

    def _finalize_if_done(self, batch_id: str) -> None:
        plan = self._store.get_plan(batch_id)
        if plan is not None and len(self._store.finished_chunks(batch_id)) >= plan.chunks:
            self._queue.finalize(batch_id)

    # ------------------------------------------------------------------ finalise
    def finalize(self, batch_id: str) -> None:
        batch = self._store.get_batch(batch_id)
        plan = self._store.get_plan(batch_id)
        if batch.status in FINAL_STATUSES or plan is None:
            return
        results = [self._store.chunk_result(batch_id, i) for i in range(plan.chunks)]
        if any(r is None for r in results):
            return  # a chunk is still to come; it calls again when done
        now = int(time.time())
        batch = self._set(batch_id, status="finalizing", finalizing_at=now)
        lines = list(plan.invalid)
        for result in results:
            assert result is not None
            lines.extend(result.lines)
        lines.sort(key=lambda item: item[0])
        good = [out for _, out in lines if out.ok]
        bad = [out for _, out in lines if not out.ok]
        output_id = self._write_output(batch_id, "output", good)
        error_id = self._write_output(batch_id, "error", bad)
        counts = RequestCounts(total=plan.lines, completed=len(good), failed=len(bad))
        done = int(time.time())
        if self._store.cancelled(batch_id):
            final: dict[str, object] = {"status": "cancelled", "cancelled_at": done}
        elif any(out.error is not None and out.error.code == "batch_expired" for out in bad):
            final = {"status": "expired", "expired_at": done}
        else:
            final = {"status": "completed", "completed_at": done}
        self._set(
            batch_id,
            output_file_id=output_id,
            error_file_id=error_id,
            request_counts=counts,
            **final,
        )
        self._store.drop_work(batch_id)
        log.info(
            "batch finished", batch=batch_id, status=final["status"], **msgspec.to_builtins(counts)
        )

    def _write_output(self, batch_id: str, kind: str, lines: list[OutputLine]) -> str | None:
        if not lines:
            return None
        content = b"".join(_line_encoder.encode(line) + b"\n" for line in lines)
        file = FileObject(
            id=output_file_id(batch_id, kind),
            bytes=len(content),
            created_at=int(time.time()),
            filename=f"{batch_id}_{kind}.jsonl",
            purpose="batch_output",
        )
        self._store.put_file(file, content)
        return file.id
