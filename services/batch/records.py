"""The OpenAI Batch API's objects (file, batch, output/error line), as stored and as answered.

Field names, statuses and nesting follow OpenAI's definitions, so its clients parse them.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

BatchStatus = Literal[
    "validating",
    "failed",
    "in_progress",
    "finalizing",
    "completed",
    "expired",
    "cancelling",
    "cancelled",
]
STATUSES: tuple[BatchStatus, ...] = (
    "validating",
    "failed",
    "in_progress",
    "finalizing",
    "completed",
    "expired",
    "cancelling",
    "cancelled",
)
FINAL_STATUSES: frozenset[str] = frozenset({"failed", "completed", "expired", "cancelled"})


class FileObject(msgspec.Struct, kw_only=True):
    id: str
    bytes: int
    created_at: int
    filename: str
    purpose: str
    status: Literal["uploaded", "processed", "error"] = "processed"
    expires_at: int | None = None
    status_details: str | None = None
    object: Literal["file"] = "file"


class FileList(msgspec.Struct, kw_only=True):
    data: list[FileObject]
    has_more: bool = False
    first_id: str | None = None
    last_id: str | None = None
    object: Literal["list"] = "list"


class FileDeleted(msgspec.Struct, kw_only=True):
    id: str
    deleted: bool
    object: Literal["file"] = "file"


class RequestCounts(msgspec.Struct, kw_only=True):
    total: int = 0
    completed: int = 0
    failed: int = 0


class BatchErrorData(msgspec.Struct, kw_only=True):
    """One validation problem of the input file: which line, which field, why."""

    code: str
    message: str
    line: int | None = None
    param: str | None = None


class BatchErrors(msgspec.Struct, kw_only=True):
    data: list[BatchErrorData]
    object: Literal["list"] = "list"


class BatchObject(msgspec.Struct, kw_only=True):
    id: str
    endpoint: str
    input_file_id: str
    completion_window: str
    status: BatchStatus
    created_at: int
    expires_at: int
    errors: BatchErrors | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    in_progress_at: int | None = None
    finalizing_at: int | None = None
    completed_at: int | None = None
    failed_at: int | None = None
    expired_at: int | None = None
    cancelling_at: int | None = None
    cancelled_at: int | None = None
    request_counts: RequestCounts = msgspec.field(default_factory=RequestCounts)
    metadata: dict[str, str] | None = None
    object: Literal["batch"] = "batch"


class BatchList(msgspec.Struct, kw_only=True):
    data: list[BatchObject]
    has_more: bool
    first_id: str | None = None
    last_id: str | None = None
    object: Literal["list"] = "list"


# ---------------------------------------------------------------- lines
class InputLine(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """One line of a batch input file."""

    custom_id: str
    method: str
    url: str
    body: dict[str, Any]


class LineResponse(msgspec.Struct, kw_only=True):
    status_code: int
    request_id: str
    body: Any


class LineError(msgspec.Struct, kw_only=True):
    code: str
    message: str


class OutputLine(msgspec.Struct, kw_only=True):
    """One line of an output or error file: a response, or an error that kept it from one."""

    id: str
    custom_id: str
    response: LineResponse | None
    error: LineError | None

    @property
    def ok(self) -> bool:
        return self.error is None and self.response is not None and self.response.status_code < 400


# ---------------------------------------------------------------- the worker's own records
class PlannedLine(msgspec.Struct, array_like=True):
    """A validated line, as a chunk's input: its number in the file, custom_id and body."""

    line: int
    custom_id: str
    body: dict[str, Any]


class ChunkResult(msgspec.Struct, kw_only=True):
    """What one chunk produced; rewritten whole by a redelivered chunk, never appended to."""

    chunk: int
    lines: list[tuple[int, OutputLine]]
    """(line number, its output line): input order is restored from the line numbers."""
    completed: int
    failed: int
    cancelled: bool = False


class BatchPlan(msgspec.Struct, kw_only=True):
    chunks: int
    lines: int
    invalid: list[tuple[int, OutputLine]] = []
    """Lines refused at validation that carry a custom_id: error lines of the batch."""
