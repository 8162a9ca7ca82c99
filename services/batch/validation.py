"""Reads a batch input file: every line checked, problems reported per line, the rest planned.

A line that is not JSON, has no ``custom_id``, repeats one, names another ``url`` or
carries a body the endpoint refuses is a validation error (``errors.data``: code, line,
message, param); one that has its own ``custom_id`` is also an error line of the batch.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import msgspec

from services.batch.endpoints import Endpoint, decode_body
from services.batch.records import BatchErrorData, InputLine, LineError, OutputLine, PlannedLine
from shared.errors import BabelError

_line_decoder = msgspec.json.Decoder(InputLine)


@dataclass
class Validated:
    planned: list[PlannedLine] = field(default_factory=list)
    errors: list[BatchErrorData] = field(default_factory=list)
    invalid: list[tuple[int, OutputLine]] = field(default_factory=list)
    total: int = 0


def _refused(custom_id: str, code: str, message: str) -> OutputLine:
    return OutputLine(
        id=f"batch_req_{uuid.uuid4().hex}",
        custom_id=custom_id,
        response=None,
        error=LineError(code=code, message=message),
    )


def validate_lines(content: bytes, endpoint: Endpoint, url: str) -> Validated:
    found = Validated()
    seen: set[str] = set()
    for number, raw in enumerate(content.splitlines(), start=1):
        if not raw.strip():
            continue
        found.total += 1
        custom_id: str | None = None
        try:
            item = _line_decoder.decode(raw)
            custom_id = item.custom_id
        except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError) as exc:
            found.errors.append(
                BatchErrorData(code="invalid_json_line", line=number, message=str(exc))
            )
            continue
        problem: tuple[str, str, str] | None = None
        if custom_id in seen:
            found.errors.append(
                BatchErrorData(
                    code="duplicate_custom_id",
                    line=number,
                    message=f"custom_id {custom_id!r} is used by an earlier line",
                    param="custom_id",
                )
            )
            continue
        seen.add(custom_id)
        if item.method.upper() != "POST":
            problem = (
                "invalid_method",
                f"method {item.method!r}; only POST is supported",
                "method",
            )
        elif item.url != url:
            problem = (
                "invalid_url",
                f"url {item.url!r} is not the batch's endpoint {url!r}",
                "url",
            )
        else:
            try:
                decode_body(endpoint, item.body)
            except BabelError as exc:
                problem = ("invalid_body", str(exc), exc.field or "body")
        if problem is not None:
            code, message, param = problem
            found.errors.append(
                BatchErrorData(code=code, line=number, message=message, param=param)
            )
            found.invalid.append((number, _refused(custom_id, code, message)))
            continue
        found.planned.append(PlannedLine(number, custom_id, item.body))
    return found
