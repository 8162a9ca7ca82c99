"""JSON request bodies are decoded strictly: their types are the document's types.

Litestar converts a handler's ``data`` with ``strict=False``, so ``"sentences": 0`` became
``False`` and ``"n": "2"`` became ``2``: requests the OpenAPI document calls invalid were
accepted. Before each handler with a JSON struct body runs, this hook decodes the body
strictly (as batch lines already are) and refuses a type mismatch with 422 naming the field.
A number with no fraction (``2.0``) is an integer, as in JSON Schema. Syntax errors are
left to Litestar's own decoding (400 ``invalid_json``).
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
from litestar import Request

from shared.errors import BabelError, ErrorCode

_AT = re.compile(r" - at `\$\.?(?P<path>[^`]*)`$")
_NAMED = re.compile(r"(?:required|unknown) field `(?P<name>[^`]+)`")
_JSON_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def _struct_body(request: Request[Any, Any, Any]) -> type[msgspec.Struct] | None:
    """The struct a handler takes as a JSON ``data`` body, if it takes one."""
    field = request.route_handler.parsed_fn_signature.parameters.get("data")
    if field is None or field.kwarg_definition is not None:  # Body(media_type=...): a form
        return None
    annotation = field.annotation
    if isinstance(annotation, type) and issubclass(annotation, msgspec.Struct):
        return annotation
    return None


def _integral(value: Any) -> Any:
    """``value`` with every float that has no fraction as an int (JSON Schema's integers)."""
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    if isinstance(value, list):
        return [_integral(item) for item in value]
    if isinstance(value, dict):
        return {key: _integral(item) for key, item in value.items()}
    return value


def _problem(exc: msgspec.ValidationError) -> BabelError:
    text = str(exc)
    at = _AT.search(text)
    message = text[: at.start()] if at else text
    path = at.group("path") if at else ""
    if named := _NAMED.search(message):
        path = f"{path}.{named.group('name')}" if path else named.group("name")
    field = path or "body"
    return BabelError(ErrorCode.INVALID_ARGUMENT, f"{field}: {message}", field=field)


async def strict_json_body(request: Request[Any, Any, Any]) -> None:
    """Litestar ``before_request`` hook: refuse a JSON body whose types do not match."""
    if request.method not in _JSON_BODY_METHODS:
        return
    struct = _struct_body(request)
    if struct is None:
        return
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type and media_type != "application/json" and not media_type.endswith("+json"):
        return
    try:
        raw = msgspec.json.decode(await request.body())
        msgspec.convert(_integral(raw), struct, strict=True)
    except msgspec.ValidationError as exc:
        raise _problem(exc) from exc
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return
