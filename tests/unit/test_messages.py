"""Envelope and reply encoding, and the one error type, without Redis."""

from __future__ import annotations

import msgspec
import pytest

from shared.errors import BabelError, ErrorCode, ErrorInfo
from shared.messages.envelope import (
    PROTOCOL_VERSION,
    Envelope,
    Reply,
    StreamChunk,
    TraceContext,
    chunk_decoder,
    encode,
    envelope_decoder,
    reply_decoder,
)
from shared.messages.langid import DETECT, DetectRequest, DetectResponse
from shared.rpc.client import decode_payload


def make_envelope(**changes: object) -> Envelope:
    request = DetectRequest(texts=("hello", "hallo"), top_k=2)
    fields: dict[str, object] = {
        "v": PROTOCOL_VERSION,
        "id": "abc123",
        "kind": DETECT.kind,
        "payload": encode(request),
        "reply_to": "babel:reply:abc123",
        "deadline": 1_700_000_000.25,
        "attempt": 2,
        "trace": TraceContext(request_id="abc123", traceparent="00-aa-bb-01"),
        "stream": False,
    }
    fields.update(changes)
    return Envelope(**fields)  # type: ignore[arg-type]


def test_envelope_round_trip() -> None:
    envelope = make_envelope()
    decoded = envelope_decoder.decode(encode(envelope))
    assert decoded == envelope
    request = decode_payload(decoded.payload, DETECT.request)
    assert request == DetectRequest(texts=("hello", "hallo"), top_k=2)


def test_envelope_defaults_apply_when_fields_are_missing() -> None:
    minimal = {
        "v": 1,
        "id": "x",
        "kind": "tasks.detect",
        "payload": b"",
        "reply_to": "r",
        "deadline": 1.0,
        "trace": {"request_id": "x"},
    }
    decoded = envelope_decoder.decode(msgspec.msgpack.encode(minimal))
    assert decoded.attempt == 1
    assert decoded.stream is False
    assert decoded.trace.traceparent is None


@pytest.mark.parametrize("raw", [b"", b"not msgpack", msgspec.msgpack.encode({"v": 1})])
def test_malformed_envelope_raises_decode_or_validation_error(raw: bytes) -> None:
    with pytest.raises((msgspec.DecodeError, msgspec.ValidationError)):
        envelope_decoder.decode(raw)


def test_reply_round_trip_with_payload_and_with_error() -> None:
    response = DetectResponse(detections=(), model="m")
    ok = Reply(id="1", payload=encode(response), worker="w1")
    decoded = reply_decoder.decode(encode(ok))
    assert decoded == ok
    assert decoded.payload is not None
    assert decode_payload(decoded.payload, DETECT.response) == response

    info = ErrorInfo(code=ErrorCode.INVALID_ARGUMENT, message="bad", field="texts[0]")
    failed = reply_decoder.decode(encode(Reply(id="2", error=info)))
    assert failed.payload is None
    assert failed.error == info
    assert failed.error.code is ErrorCode.INVALID_ARGUMENT


def test_stream_chunk_round_trip() -> None:
    chunk = StreamChunk(seq=3, payload=b"\x01", done=True)
    assert chunk_decoder.decode(encode(chunk)) == chunk


def test_payload_with_unknown_field_is_rejected() -> None:
    raw = msgspec.msgpack.encode({"texts": ["a"], "top_k": 1, "surprise": True})
    with pytest.raises(msgspec.ValidationError):
        decode_payload(raw, DetectRequest)


def test_babel_error_from_exception_keeps_babel_errors() -> None:
    original = BabelError(ErrorCode.NOT_FOUND, "no such thing", field="id", retryable=True)
    assert BabelError.from_exception(original) is original


def test_babel_error_from_exception_hides_unexpected_errors() -> None:
    error = BabelError.from_exception(KeyError("secret-internal-detail"))
    assert error.code is ErrorCode.INTERNAL
    assert "KeyError" in str(error)
    assert "secret-internal-detail" not in str(error)
    assert error.info.retryable is False


def test_babel_error_info_round_trip() -> None:
    original = BabelError(
        ErrorCode.OVERLOADED, "busy", field="f", retryable=True, retry_after_s=1.5
    )
    wire = msgspec.msgpack.decode(encode(original.info), type=ErrorInfo)
    again = BabelError.from_info(wire)
    assert again.info == original.info
    assert again.code is ErrorCode.OVERLOADED
    assert again.field == "f"
    assert str(again) == "busy"
