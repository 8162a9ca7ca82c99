"""Where a request carries its API key: ``Authorization: Bearer``, ``X-API-Key``, and on the
LibreTranslate routes the ``api_key`` field (query string, JSON, form or multipart body)."""

from __future__ import annotations

from urllib.parse import parse_qsl

import msgspec
from litestar.types import Receive, ReceiveMessage, Scope
from multipart import MultipartSegment, ParserError, PushMultipartParser, parse_options_header

API_KEY_FIELD = "api_key"


class BodyTooLarge(Exception):
    pass


def header_key(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            kind, _, token = value.decode("latin-1").partition(" ")
            if kind.lower() == "bearer" and token.strip():
                return token.strip()
        elif name == b"x-api-key" and value.strip():
            return value.decode("latin-1").strip()
    return None


def query_key(scope: Scope) -> str | None:
    query = scope.get("query_string", b"").decode("latin-1")
    return next((v for k, v in parse_qsl(query) if k == API_KEY_FIELD and v), None)


def _declared_length(scope: Scope) -> int | None:
    raw = next((v for k, v in scope["headers"] if k == b"content-length"), None)
    return int(raw) if raw is not None and raw.isdigit() else None


async def read_body(scope: Scope, receive: Receive, limit: int) -> tuple[bytes, Receive]:
    """The whole body (at most ``limit`` bytes) and a ``receive`` that hands it on again."""
    declared = _declared_length(scope)
    if declared is not None and declared > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    replayed = False

    async def replay() -> ReceiveMessage:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    return body, replay


def body_key(content_type: str, body: bytes) -> str | None:
    """``api_key`` from a JSON object, a form or a multipart body (None if absent or unreadable)."""
    media_type, options = parse_options_header(content_type)
    media_type = media_type.lower()
    if media_type == "application/json" or media_type.endswith("+json"):
        try:
            decoded = msgspec.json.decode(body)
        except (msgspec.DecodeError, UnicodeDecodeError):
            return None
        value = decoded.get(API_KEY_FIELD) if isinstance(decoded, dict) else None
        return value if isinstance(value, str) and value else None
    if media_type == "application/x-www-form-urlencoded":
        fields = parse_qsl(body.decode("utf-8", "replace"))
        return next((v for k, v in fields if k == API_KEY_FIELD and v), None)
    if media_type == "multipart/form-data" and options.get("boundary"):
        return _multipart_key(options["boundary"], body)
    return None


def _multipart_key(boundary: str, body: bytes) -> str | None:
    found: bytearray | None = None
    try:
        with PushMultipartParser(boundary, content_length=len(body)) as parser:
            current: bytearray | None = None
            for event in parser.parse(body):
                if isinstance(event, MultipartSegment):
                    wanted = event.name == API_KEY_FIELD and not event.filename
                    current = bytearray() if wanted else None
                elif event and current is not None:
                    current.extend(event)
                elif event is None and current is not None:
                    found, current = current, None
            for event in parser.parse(b""):
                if event is None and current is not None:
                    found = current
    except ParserError:
        return None
    return found.decode("utf-8", "replace").strip() or None if found is not None else None
