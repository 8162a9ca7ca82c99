"""The one place where errors become HTTP problem-details responses (RFC 9457)."""

from __future__ import annotations

import math
import re
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, SerializationException, ValidationException
from litestar.types import ExceptionHandlersMap

from services.gateway.observability import current_request_id
from shared.errors import BabelError, ErrorCode, ErrorInfo
from shared.telemetry import get_logger

log = get_logger(__name__)

PROBLEM_TYPE_BASE = "https://babelstack.dev/problems/"
PROBLEM_MEDIA_TYPE = "application/problem+json"

STATUS_BY_CODE: dict[ErrorCode, int] = {
    ErrorCode.INVALID_JSON: 400,
    ErrorCode.INVALID_ARGUMENT: 422,
    ErrorCode.CONTEXT_LENGTH_EXCEEDED: 400,
    ErrorCode.INVALID_SCHEMA: 400,
    ErrorCode.UNSUPPORTED_LANGUAGE: 400,
    ErrorCode.NOT_ENOUGH_EXAMPLES: 400,
    ErrorCode.UNSUPPORTED_VERSION: 400,
    ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.PERMISSION_DENIED: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.METHOD_NOT_ALLOWED: 405,
    ErrorCode.CONFLICT: 409,
    ErrorCode.PAYLOAD_TOO_LARGE: 413,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.INTERNAL: 500,
    ErrorCode.UNKNOWN_METHOD: 501,
    ErrorCode.DEAD_LETTERED: 502,
    ErrorCode.OVERLOADED: 503,
    ErrorCode.UNAVAILABLE: 503,
    ErrorCode.DEADLINE_EXCEEDED: 504,
}

CODE_BY_STATUS: dict[int, ErrorCode] = {
    400: ErrorCode.INVALID_ARGUMENT,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    409: ErrorCode.CONFLICT,
    413: ErrorCode.PAYLOAD_TOO_LARGE,
    503: ErrorCode.UNAVAILABLE,
}


class FieldProblem(msgspec.Struct, frozen=True):
    field: str
    message: str


class Problem(msgspec.Struct, frozen=True, omit_defaults=True):
    type: str
    title: str
    status: int
    detail: str
    code: str
    retryable: bool = False
    field: str | None = None
    errors: list[FieldProblem] | None = None
    request_id: str | None = None


def problem_of(
    info: ErrorInfo, errors: list[FieldProblem] | None = None, request_id: str | None = None
) -> Problem:
    """The problem-details body of an error (also a batch's error line's response body)."""
    return Problem(
        type=PROBLEM_TYPE_BASE + info.code.value,
        title=info.code.value.replace("_", " ").capitalize(),
        status=STATUS_BY_CODE.get(info.code, 500),
        detail=info.message,
        code=info.code.value,
        retryable=info.retryable,
        field=info.field,
        errors=errors,
        request_id=request_id,
    )


def problem_response(
    info: ErrorInfo,
    errors: list[FieldProblem] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[Any]:
    headers = dict(headers or {})
    if info.retry_after_s is not None:
        headers["Retry-After"] = str(max(1, math.ceil(info.retry_after_s)))
    body = problem_of(info, errors, current_request_id())
    return Response(body, status_code=body.status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


_PATH = re.compile(r"at `\$\.data\.?(?P<path>[^`]*)`")
_NAMED = re.compile(r"(?:required|unknown) field `(?P<name>[^`]+)`")


def _field_of(message: str, cause: BaseException | None) -> str:
    """The offending field, from msgspec's message and path (``$.data.q[1]`` → ``q[1]``)."""
    path = ""
    if cause is not None and (found := _PATH.search(str(cause))):
        path = found.group("path")
    if named := _NAMED.search(message):
        return f"{path}.{named.group('name')}" if path else named.group("name")
    return path or "body"


_PARAMETER_SOURCES = {"query", "path", "header", "cookie"}
_MISSING_PARAMETER = re.compile(
    r"Missing required (?:query|path|header|cookie) parameter '([^']+)'"
)


def _parameter_of(item: dict[str, Any]) -> str | None:
    """A bad query/path/header/cookie parameter's name (Litestar's ``key``), else None."""
    source = item.get("source")
    source = getattr(source, "value", source)
    key = item.get("key")
    return str(key) if source in _PARAMETER_SOURCES and key else None


def _validation_problem(request: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    items = exc.extra if isinstance(exc.extra, list) else []
    errors = [
        FieldProblem(
            field=_parameter_of(item) or _field_of(str(item.get("message", "")), exc.__cause__),
            message=str(item.get("message", "")),
        )
        for item in items
        if isinstance(item, dict)
    ]
    if not errors:
        missing = _MISSING_PARAMETER.search(exc.detail)
        errors = [FieldProblem(field=missing.group(1) if missing else "body", message=exc.detail)]
    first = errors[0]
    info = ErrorInfo(
        code=ErrorCode.INVALID_ARGUMENT,
        message=f"{first.field}: {first.message}",
        field=first.field,
    )
    return problem_response(info, errors)


def _http_problem(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    if exc.status_code == 400 and (
        isinstance(exc.__cause__, SerializationException) or "malformed" in exc.detail.lower()
    ):  # any JSON syntax error ("malformed", "truncated", ...), not just one wording
        return problem_response(ErrorInfo(code=ErrorCode.INVALID_JSON, message=exc.detail))
    code = CODE_BY_STATUS.get(exc.status_code, ErrorCode.INTERNAL)
    if exc.status_code == 413:
        message = "request body is larger than the configured limit"
    elif exc.status_code == 404:
        message = f"no route for {request.method} {request.url.path}"
    else:
        message = exc.detail
    # Keep the headers the exception carries (a 405 must name the allowed methods in Allow).
    return problem_response(ErrorInfo(code=code, message=message), headers=exc.headers)


def _undecodable_problem(request: Request[Any, Any, Any], exc: UnicodeDecodeError) -> Response[Any]:
    # msgspec raises UnicodeDecodeError (not DecodeError) for invalid UTF-8 in a JSON body.
    return problem_response(
        ErrorInfo(code=ErrorCode.INVALID_JSON, message="request body is not valid UTF-8")
    )


def _too_deep_problem(request: Request[Any, Any, Any], exc: RecursionError) -> Response[Any]:
    # msgspec refuses JSON nested ~1000 levels deep with RecursionError (not DecodeError).
    return problem_response(
        ErrorInfo(code=ErrorCode.INVALID_JSON, message="the JSON is nested too deeply")
    )


def _babel_problem(request: Request[Any, Any, Any], exc: BabelError) -> Response[Any]:
    return problem_response(exc.info)


def _unexpected_problem(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("unhandled error", path=request.url.path)
    return problem_response(BabelError.from_exception(exc).info)


def exception_handlers() -> ExceptionHandlersMap:
    return {
        BabelError: _babel_problem,
        ValidationException: _validation_problem,
        HTTPException: _http_problem,
        UnicodeDecodeError: _undecodable_problem,
        RecursionError: _too_deep_problem,
        Exception: _unexpected_problem,
    }
