"""The caller's side of the RPC contract: ``call`` (one reply) and ``stream`` (chunks)."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import redis.asyncio as aioredis

from shared.errors import BabelError, ErrorCode
from shared.messages.base import Message, Method, Req, Resp
from shared.messages.envelope import (
    ENTRY_FIELD,
    PROTOCOL_VERSION,
    Envelope,
    TraceContext,
    chunk_decoder,
    encode,
    reply_decoder,
)
from shared.rpc.connection import REDIS_DOWN
from shared.rpc.handlers import serving_context
from shared.rpc.keys import Keys

_decoders: dict[type[Any], msgspec.msgpack.Decoder[Any]] = {}

REPLY_GRACE_S = 0.5
"""Extra wait past the deadline, so that a worker's ``deadline_exceeded`` reply arrives."""


def broker_unreachable(service: str, exc: BaseException) -> BabelError:
    """The error of a call that lost Redis (down, restarting): retryable, never ``internal``.
    A request sent before the connection broke may still run; a retry is an at-least-once
    delivery, as after a worker's death."""
    return BabelError(
        ErrorCode.UNAVAILABLE,
        f"the message broker (Redis) is unreachable; call to {service!r} not completed "
        f"({type(exc).__name__})",
        retryable=True,
    )


def decode_payload(raw: bytes, kind: type[Message]) -> Any:
    decoder = _decoders.get(kind)
    if decoder is None:
        decoder = _decoders[kind] = msgspec.msgpack.Decoder(kind)
    return decoder.decode(raw)


class RpcClient:
    """Sends typed requests to a service's stream and waits for the typed reply."""

    def __init__(
        self,
        redis: aioredis.Redis,
        keys: Keys,
        *,
        default_timeout_s: float = 30.0,
        reply_ttl_s: int = 120,
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._default_timeout_s = default_timeout_s
        self._reply_ttl_s = reply_ttl_s

    def _envelope(
        self,
        method: Method[Any, Any],
        request: Message,
        *,
        timeout_s: float | None,
        deadline: float | None,
        trace: TraceContext | None,
        attempt: int,
        streaming: bool,
    ) -> tuple[Envelope, float]:
        request_id = uuid.uuid4().hex
        now = time.time()
        if deadline is None:
            deadline = now + (timeout_s if timeout_s is not None else self._default_timeout_s)
        caller = serving_context()
        if caller is not None:  # a nested call: never outlive the caller, carry its trace
            deadline = min(deadline, caller.deadline)
            trace = trace or caller.trace
        wait_s = max(deadline - now, 0.0) + REPLY_GRACE_S
        reply_to = (
            self._keys.reply_stream(request_id) if streaming else self._keys.reply(request_id)
        )
        envelope = Envelope(
            v=PROTOCOL_VERSION,
            id=request_id,
            kind=method.kind,
            payload=encode(request),
            reply_to=reply_to,
            deadline=deadline,
            attempt=attempt,
            trace=trace or TraceContext(request_id=request_id),
            stream=streaming,
        )
        return envelope, wait_s

    async def call(
        self,
        method: Method[Req, Resp],
        request: Req,
        *,
        timeout_s: float | None = None,
        deadline: float | None = None,
        trace: TraceContext | None = None,
        attempt: int = 1,
    ) -> Resp:
        """Send ``request`` and return the reply; raise :class:`BabelError` on any failure."""
        envelope, wait_s = self._envelope(
            method,
            request,
            timeout_s=timeout_s,
            deadline=deadline,
            trace=trace,
            attempt=attempt,
            streaming=False,
        )
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.xadd(self._keys.requests(method.service), {ENTRY_FIELD: encode(envelope)})
                pipe.blpop([envelope.reply_to], timeout=wait_s)
                _, popped = await pipe.execute()
        except asyncio.CancelledError:
            # A caller that gives up (a cancelled batch, a client gone) stops the worker's
            # handler too: a generation request is aborted in the engine.
            await asyncio.shield(self._abandon(envelope.id, envelope.reply_to, cancel=True))
            raise
        except REDIS_DOWN as exc:
            raise broker_unreachable(method.service, exc) from exc
        if popped is None:
            raise BabelError(
                ErrorCode.DEADLINE_EXCEEDED,
                f"no reply from service {method.service!r} within {wait_s:.1f} s",
                retryable=True,
            )
        reply = reply_decoder.decode(popped[1])
        if reply.error is not None:
            raise BabelError.from_info(reply.error)
        if reply.payload is None:
            raise BabelError(ErrorCode.INTERNAL, "reply carried neither payload nor error")
        result: Resp = decode_payload(reply.payload, method.response)
        return result

    async def stream(
        self,
        method: Method[Req, Resp],
        request: Req,
        *,
        timeout_s: float | None = None,
        deadline: float | None = None,
        trace: TraceContext | None = None,
    ) -> AsyncIterator[Resp]:
        """Send ``request`` and yield reply chunks until the worker says ``done``.

        Closing the iterator early (a client that went away) asks the worker to stop.
        Chunks must come in sequence: one out of order (two workers wrote to this stream,
        which a takeover prevents) ends it with a retryable ``unavailable`` error, never a
        repeated or interleaved chunk.
        """
        envelope, wait_s = self._envelope(
            method,
            request,
            timeout_s=timeout_s,
            deadline=deadline,
            trace=trace,
            attempt=1,
            streaming=True,
        )
        stream_key = envelope.reply_to
        give_up_at = time.monotonic() + wait_s
        finished = False
        try:
            await self._redis.xadd(
                self._keys.requests(method.service), {ENTRY_FIELD: encode(envelope)}
            )
        except REDIS_DOWN as exc:
            raise broker_unreachable(method.service, exc) from exc
        last_id: bytes | str = "0-0"
        expected_seq = 0
        try:
            while True:
                remaining = give_up_at - time.monotonic()
                if remaining <= 0:
                    raise BabelError(
                        ErrorCode.DEADLINE_EXCEEDED,
                        f"stream from service {method.service!r} ended past its deadline",
                        retryable=True,
                    )
                result: Any = await self._redis.xread(
                    {stream_key: last_id}, count=64, block=max(1, int(min(remaining, 1.0) * 1000))
                )
                for _key, entries in result or []:
                    for entry_id, fields in entries:
                        last_id = entry_id
                        chunk = chunk_decoder.decode(fields[ENTRY_FIELD])
                        if chunk.error is not None:
                            finished = True
                            raise BabelError.from_info(chunk.error)
                        if chunk.seq != expected_seq:
                            raise BabelError(
                                ErrorCode.UNAVAILABLE,
                                f"stream from service {method.service!r} broke off: chunk "
                                f"{chunk.seq} came where {expected_seq} was due",
                                retryable=True,
                            )
                        if chunk.payload is not None:
                            expected_seq += 1
                            yield decode_payload(chunk.payload, method.response)
                        if chunk.done:
                            finished = True
                            return
        except REDIS_DOWN as exc:
            raise broker_unreachable(method.service, exc) from exc
        finally:
            # Shielded: a caller cancelled by its HTTP client (anyio re-cancels every await in
            # a cancelled scope) must still tell the worker to stop and drop the reply stream.
            await asyncio.shield(self._abandon(envelope.id, stream_key, cancel=not finished))

    async def _abandon(self, request_id: str, stream_key: str, *, cancel: bool) -> None:
        """Best effort: with Redis unreachable, the reply's TTL cleans up instead (and the
        worker, unable to write, stops on its own)."""
        with contextlib.suppress(*REDIS_DOWN):
            async with self._redis.pipeline(transaction=False) as pipe:
                if cancel:
                    pipe.set(self._keys.cancel(request_id), b"1", ex=self._reply_ttl_s)
                pipe.delete(stream_key)
                await pipe.execute()
