"""``AccessGate``: the ASGI layer in front of the body limit that lets a request in only with
a key that may use its route, and refuses everything else before the body is read.

Refusals are problem details: 401 (no, unknown, revoked or expired key; with
``WWW-Authenticate``), 403 (the key lacks the route's scope), 429 (over the request rate;
``Retry-After`` and the RateLimit headers), 503 when Redis cannot be asked. On the
LibreTranslate routes they keep LibreTranslate's codes (400 no key, 403 bad key, 429) and its
``error`` member; only there, for a key in the body, is a (size-limited) body read first.
"""

from __future__ import annotations

import math
from typing import Any

import msgspec
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from redis.exceptions import RedisError

from services.gateway.access.control import AccessControl
from services.gateway.access.credentials import (
    BodyTooLarge,
    body_key,
    header_key,
    query_key,
    read_body,
)
from services.gateway.access.limiter import Grant, Refused
from services.gateway.access.scopes import required_scope, speaks_libretranslate
from services.gateway.libretranslate import CompatProblem
from services.gateway.observability import current_request_id
from services.gateway.problems import PROBLEM_MEDIA_TYPE, PROBLEM_TYPE_BASE, STATUS_BY_CODE, Problem
from shared.errors import BabelError, ErrorCode, ErrorInfo
from shared.telemetry import get_logger

log = get_logger(__name__)
_encoder = msgspec.json.Encoder()


def _status(info: ErrorInfo, *, compat: bool, missing: bool) -> int:
    status = STATUS_BY_CODE.get(info.code, 500)
    if compat and status == 401:  # LibreTranslate: 400 without a key, 403 with a bad one
        return 400 if missing else 403
    return status


async def send_problem(
    send: Send,
    info: ErrorInfo,
    *,
    compat: bool = False,
    missing: bool = False,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    status = _status(info, compat=compat, missing=missing)
    fields: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + info.code.value,
        "title": info.code.value.replace("_", " ").capitalize(),
        "status": status,
        "detail": info.message,
        "code": info.code.value,
        "retryable": info.retryable,
        "field": "api_key" if compat and missing else info.field,
        "request_id": current_request_id(),
    }
    problem = CompatProblem(**fields, error=info.message) if compat else Problem(**fields)
    body = _encoder.encode(problem)
    out = [
        (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
        (b"content-length", str(len(body)).encode()),
        *(headers or []),
    ]
    if status == 401:
        out.append((b"www-authenticate", b'Bearer realm="babelstack"'))
    if info.retry_after_s is not None:
        out.append((b"retry-after", str(max(1, math.ceil(info.retry_after_s))).encode()))
    start: Any = {"type": "http.response.start", "status": status, "headers": out}
    await send(start)
    await send({"type": "http.response.body", "body": body, "more_body": False})


class AccessGate:
    def __init__(self, app: ASGIApp, control: AccessControl, body_limit: int) -> None:
        self.app = app
        self.control = control
        self.body_limit = body_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.control.required:
            await self.app(scope, receive, send)
            return
        needed = required_scope(str(scope.get("method", "")), scope["path"])
        if needed is None:
            await self.app(scope, receive, send)
            return
        compat = speaks_libretranslate(scope["path"])
        key = header_key(scope)
        if key is None and compat:
            key = query_key(scope)
            if key is None:
                try:
                    body, receive = await read_body(scope, receive, self.body_limit)
                except BodyTooLarge:
                    body = b""  # not read: refused below as a request without a key
                content_type = next(
                    (v.decode("latin-1") for k, v in scope["headers"] if k == b"content-type"), ""
                )
                key = body_key(content_type, body)
        try:
            grant = await self.control.admit(key, needed)
        except Refused as exc:
            headers = exc.grant.rate_headers() if exc.grant else []
            await send_problem(
                send, exc.error.info, compat=compat, missing=key is None, headers=headers
            )
            return
        except RedisError as exc:
            log.warning("api key check failed: Redis unavailable", error=type(exc).__name__)
            error = BabelError(
                ErrorCode.UNAVAILABLE,
                "API keys cannot be checked: Redis is unavailable",
                retryable=True,
                retry_after_s=2.0,
            )
            await send_problem(send, error.info, compat=compat)
            return
        await self._serve(grant, scope, receive, send)

    async def _serve(self, grant: Grant, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_limits(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *grant.rate_headers()]
            await send(message)

        token = self.control.enter(grant)
        try:
            await self.app(scope, receive, send_with_limits)
        finally:
            self.control.leave(token)
