"""Request-body size limits per route: JSON bodies get one limit, file uploads another.

The check runs in the ASGI ``receive`` path, so a body is refused (413) as soon as
its declared or received size passes the limit, before it is read into memory.
"""

from __future__ import annotations

from litestar.exceptions import HTTPException
from litestar.types import ASGIApp, Receive, ReceiveMessage, Scope, Send

UPLOAD_SUFFIX = "/files"


class BodyTooLarge(HTTPException):
    status_code = 413


class BodyLimit:
    def __init__(self, app: ASGIApp, json_bytes: int, upload_bytes: int) -> None:
        self.app = app
        self.json_bytes = json_bytes
        self.upload_bytes = upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.upload_bytes if scope["path"].endswith(UPLOAD_SUFFIX) else self.json_bytes
        declared = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        too_big = declared is not None and declared.isdigit() and int(declared) > limit
        received = 0

        async def limited() -> ReceiveMessage:
            nonlocal received
            if too_big:
                raise BodyTooLarge(detail=f"request body is larger than {limit} bytes")
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(detail=f"request body is larger than {limit} bytes")
            return message

        await self.app(scope, limited, send)
