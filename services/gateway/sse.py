"""Server-sent events as OpenAI's streaming clients read them: ``data: <json>`` lines."""

from __future__ import annotations

from typing import Any

import msgspec

from shared.errors import BabelError

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}

_encoder = msgspec.json.Encoder()


def sse_data(payload: Any) -> bytes:
    return b"data: " + _encoder.encode(payload) + b"\n\n"


def sse_error(error: BabelError) -> bytes:
    """An error after the stream has started (headers are sent; the status cannot change)."""
    info = error.info
    return sse_data(
        {"error": {"code": info.code.value, "message": str(error), "param": info.field}}
    )


def sse_done() -> bytes:
    return b"data: [DONE]\n\n"
