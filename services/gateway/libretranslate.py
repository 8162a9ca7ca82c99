"""LibreTranslate compatibility: its request bodies and its error status codes.

LibreTranslate reads each field from a JSON object, or else from the form body
(``application/x-www-form-urlencoded`` or ``multipart/form-data``) and the query
string; it answers bad input with 400 and ``{"error": "..."}``. Our answers stay
problem details (``application/problem+json``), but use 400 where we would say 422
and carry an ``error`` member with the message, so its clients read them unchanged.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response
from litestar.types import ExceptionHandlersMap

from services.gateway.problems import Problem, exception_handlers
from shared.errors import BabelError, ErrorCode

Fields = dict[str, Any]


class CompatProblem(Problem, frozen=True, omit_defaults=True):
    error: str = ""
    """The message again, where LibreTranslate's clients look for it."""


def _bad(message: str, field: str | None = None) -> BabelError:
    return BabelError(ErrorCode.INVALID_ARGUMENT, message, field=field)


async def read_fields(request: Request[Any, Any, Any]) -> Fields:
    """The request's fields, from a JSON object or from form fields and the query string."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type == "application/json" or media_type.endswith("+json"):
        try:
            body = msgspec.json.decode(await request.body())
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:
            raise BabelError(ErrorCode.INVALID_JSON, f"Invalid JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise BabelError(ErrorCode.INVALID_JSON, "Invalid JSON format: an object is needed")
        return body
    fields: Fields = {key: values[0] for key, values in _multi(request.query_params).items()}
    if media_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.form()
        for key, values in _multi(form).items():
            texts = [v for v in values if isinstance(v, str)]
            if not texts:
                continue
            # LibreTranslate normalises form line endings to "\n" (RFC 2046, 4.1.1).
            texts = ["\n".join(t.splitlines()) if key == "q" else t for t in texts]
            fields[key] = texts if key == "q" and len(texts) > 1 else texts[0]
    return fields


def _multi(values: Any) -> dict[str, list[Any]]:
    grouped: dict[str, list[Any]] = {}
    for key, value in values.multi_items():
        grouped.setdefault(key, []).append(value)
    return grouped


def required_text(fields: Fields, name: str) -> str:
    value = fields.get(name)
    if value is None or value == "" or value == []:
        raise _bad(f"Invalid request: missing {name} parameter", name)
    if not isinstance(value, str):
        raise _bad(f"Invalid request: {name} must be a string", name)
    return value


def texts_field(fields: Fields) -> str | list[str]:
    """``q``: one string or a list of strings."""
    value = fields.get("q")
    if value is None or value == "" or value == []:
        raise _bad("Invalid request: missing q parameter", "q")
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise _bad("Invalid request: q must be a string or a list of strings", "q")


def count_field(fields: Fields, name: str, limit: int) -> int:
    raw = fields.get(name, 0)
    try:
        value = max(0, int(raw)) if not isinstance(raw, bool) else -1
    except (TypeError, ValueError):
        value = -1
    if value < 0:
        raise _bad(f"Invalid request: {name} parameter is not a number", name)
    if value > limit:
        raise _bad(f"Invalid request: {name} parameter must be <= {limit}", name)
    return value


def _compat(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    handlers = exception_handlers()
    handler = next(
        (handlers[kind] for kind in type(exc).__mro__ if kind in handlers), handlers[Exception]
    )
    response = handler(request, exc)
    problem = response.content
    if not isinstance(problem, Problem):
        return response
    status = 400 if problem.status == 422 else problem.status
    body = CompatProblem(
        **msgspec.structs.asdict(problem) | {"status": status}, error=problem.detail
    )
    headers = {k: v for k, v in response.headers.items() if k.lower() != "content-type"}
    return Response(body, status_code=status, media_type=response.media_type, headers=headers)


def compat_exception_handlers() -> ExceptionHandlersMap:
    """The app's problem mapping, with LibreTranslate's status codes and ``error`` member."""
    return dict.fromkeys(exception_handlers(), _compat)
