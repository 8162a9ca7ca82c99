"""The versioned envelope every request travels in, and the replies that come back.

A request stream entry has one field, ``e``: the msgpack-encoded :class:`Envelope`.
Its ``payload`` is the msgpack-encoded request struct named by ``kind``.
"""

from __future__ import annotations

import msgspec

from shared.errors import ErrorInfo

PROTOCOL_VERSION = 1
ENTRY_FIELD = b"e"


class TraceContext(msgspec.Struct, frozen=True, kw_only=True):
    request_id: str
    traceparent: str | None = None


class Envelope(msgspec.Struct, frozen=True, kw_only=True):
    v: int
    id: str
    kind: str
    payload: bytes
    reply_to: str
    deadline: float
    """Unix time (seconds) after which the work is worthless; workers drop it."""
    attempt: int = 1
    """The caller's try number: a caller that retries sends attempt + 1."""
    trace: TraceContext
    stream: bool = False
    """True when the reply is a chunk stream at ``reply_to`` instead of one list entry."""


class Reply(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    payload: bytes | None = None
    error: ErrorInfo | None = None
    worker: str = ""


class StreamChunk(msgspec.Struct, frozen=True, kw_only=True):
    seq: int
    payload: bytes | None = None
    error: ErrorInfo | None = None
    done: bool = False


_encoder = msgspec.msgpack.Encoder()
envelope_decoder = msgspec.msgpack.Decoder(Envelope)
reply_decoder = msgspec.msgpack.Decoder(Reply)
chunk_decoder = msgspec.msgpack.Decoder(StreamChunk)


def encode(obj: object) -> bytes:
    return _encoder.encode(obj)
