"""Server-sent events as OpenAI's streaming clients read them: ``data: <json>`` lines."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import msgspec
from litestar.response import Stream

from shared.errors import BabelError

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}

_encoder = msgspec.json.Encoder()


def sse_data(payload: Any) -> bytes:
    return b"data: " + _encoder.encode(payload) + b"\n\n"


def sse_error(error: BabelError) -> bytes:
    """An error after the stream has started (headers are sent; the status cannot change).

    ``retryable`` says the same request may succeed if sent again (e.g. its worker died
    mid-stream and another took over)."""
    info = error.info
    return sse_data(
        {
            "error": {
                "code": info.code.value,
                "message": str(error),
                "param": info.field,
                "retryable": info.retryable,
            }
        }
    )


def sse_done() -> bytes:
    return b"data: [DONE]\n\n"


class EventStream(Stream):
    """A ``text/event-stream`` response; its media type wins over the route's (JSON), which
    Litestar would otherwise apply to a handler that returns a body or a stream."""

    def __init__(self, events: AsyncIterator[bytes]) -> None:
        super().__init__(events, media_type="text/event-stream", headers=SSE_HEADERS)

    def to_asgi_response(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["media_type"] = self.media_type
        return super().to_asgi_response(*args, **kwargs)
