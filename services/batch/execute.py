"""Runs one chunk's lines against their endpoint: concurrently, with retries, until done,
cancelled or expired. Every line ends as an output line, an error line, or (cancelled before
it ran) nothing."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import msgspec

from services.batch.caller import BatchCaller, line_request_id
from services.batch.endpoints import Endpoint, decode_body
from services.batch.records import LineError, LineResponse, OutputLine, PlannedLine
from services.batch.settings import BatchSettings
from services.gateway.problems import problem_of
from services.gateway.settings import GatewaySettings
from shared.errors import BabelError, ErrorCode
from shared.telemetry import get_logger

log = get_logger(__name__)

_CANCEL_POLL_S = 0.5
_RETRYABLE = frozenset({ErrorCode.UNAVAILABLE, ErrorCode.OVERLOADED})

EXPIRED = LineError(
    code="batch_expired",
    message="This request could not be executed before the completion window expired.",
)


def failed_line(line: PlannedLine, error: LineError) -> OutputLine:
    """An error line for a request that never reached its endpoint."""
    return OutputLine(
        id=f"batch_req_{uuid.uuid4().hex}", custom_id=line.custom_id, response=None, error=error
    )


def error_line(custom_id: str, exc: BabelError, request_id: str) -> OutputLine:
    problem = problem_of(exc.info, request_id=request_id)
    return OutputLine(
        id=f"batch_req_{uuid.uuid4().hex}",
        custom_id=custom_id,
        response=LineResponse(
            status_code=problem.status,
            request_id=request_id,
            body=msgspec.to_builtins(problem),
        ),
        error=None,
    )


@dataclass
class ChunkRun:
    endpoint: Endpoint
    params: dict[str, str]
    caller: BatchCaller
    settings: BatchSettings
    gateway: GatewaySettings
    expires_at: float
    cancelled: Callable[[], bool]

    def _concurrency(self) -> int:
        if self.endpoint.service == "generation":
            return self.settings.generation_line_concurrency
        return self.settings.line_concurrency

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self.settings.retry_max_s, self.settings.retry_base_s * 2 ** (attempt - 1))
        return ceiling * (0.5 + random.random() / 2)

    async def _once(self, line: PlannedLine, request_id: str) -> OutputLine:
        line_request_id.set(request_id)
        body = decode_body(self.endpoint, line.body)
        result = await self.endpoint.run(body, self.caller, self.gateway, self.params)
        return OutputLine(
            id=f"batch_req_{uuid.uuid4().hex}",
            custom_id=line.custom_id,
            response=LineResponse(
                status_code=200, request_id=request_id, body=msgspec.to_builtins(result)
            ),
            error=None,
        )

    async def line(self, line: PlannedLine) -> OutputLine | None:
        """The line's result; None when the batch was cancelled before it finished."""
        request_id = uuid.uuid4().hex
        attempt = 0
        while True:
            attempt += 1
            if self.cancelled():
                return None
            if time.time() >= self.expires_at:
                return failed_line(line, EXPIRED)
            try:
                return await self._once(line, request_id)
            except BabelError as exc:
                retry = exc.code in _RETRYABLE or exc.info.retryable
                if not retry or attempt >= self.settings.line_max_attempts:
                    return error_line(line.custom_id, exc, request_id)
                log.info("line retried", custom_id=line.custom_id, code=exc.code, attempt=attempt)
                await asyncio.sleep(self._backoff(attempt))
            except Exception as exc:  # a bug in one line must not lose the chunk
                log.exception("line failed unexpectedly", custom_id=line.custom_id)
                return error_line(line.custom_id, BabelError.from_exception(exc), request_id)

    async def run(self, lines: list[PlannedLine]) -> tuple[list[tuple[int, OutputLine]], bool]:
        """(line number, result) of every line that ended, and whether a cancel stopped it."""
        gate = asyncio.Semaphore(self._concurrency())

        async def bounded(line: PlannedLine) -> OutputLine | None:
            async with gate:
                return await self.line(line)

        tasks = {asyncio.create_task(bounded(line)): line for line in lines}
        pending = set(tasks)
        stopped = False
        while pending:
            _, pending = await asyncio.wait(pending, timeout=_CANCEL_POLL_S)
            if pending and not stopped and self.cancelled():
                stopped = True
                for task in pending:
                    task.cancel()
        results: list[tuple[int, OutputLine]] = []
        for task, line in tasks.items():
            if task.cancelled():
                continue
            outcome = task.result()
            if outcome is not None:
                results.append((line.line, outcome))
        return results, stopped or self.cancelled()
