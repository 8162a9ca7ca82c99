"""What happens to one request entry: decode, check, run its handler, reply.

Undecodable entries stay pending until their last attempt, then go to the
dead-letter stream; a decodable one always gets a reply: the handler's result, or
an error (deadline passed, unknown method, invalid payload, handler failure).

A streaming request delivered again (its worker died, or was stuck) restarts from the
first chunk only while its reply stream is still empty; once chunks went out, the stream
ends with a retryable ``unavailable`` error instead, so a caller never sees a chunk twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass

import msgspec

from shared.errors import BabelError, ErrorCode
from shared.messages.base import Message
from shared.messages.envelope import (
    ENTRY_FIELD,
    PROTOCOL_VERSION,
    Envelope,
    encode,
    envelope_decoder,
)
from shared.rpc.client import decode_payload
from shared.rpc.connection import REDIS_DOWN
from shared.rpc.handlers import HandlerRegistry, RequestContext, Route, serving
from shared.rpc.replies import ReplyWriter
from shared.settings import WorkerSettings
from shared.telemetry import bound_context, get_logger

log = get_logger(__name__)

CANCEL_POLL_S = 0.5
"""How often a running unary handler's cancel key is checked."""


@dataclass(slots=True)
class WorkerCounters:
    processed: int = 0
    failed: int = 0
    expired: int = 0
    dead_lettered: int = 0


class Dispatcher:
    def __init__(
        self,
        registry: HandlerRegistry,
        writer: ReplyWriter,
        settings: WorkerSettings,
        worker: str,
        counters: WorkerCounters,
    ) -> None:
        self._registry = registry
        self._writer = writer
        self._settings = settings
        self._worker = worker
        self.counters = counters

    async def process(self, entry_id: bytes, fields: dict[bytes, bytes], deliveries: int) -> None:
        try:
            envelope = envelope_decoder.decode(fields.get(ENTRY_FIELD, b""))
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            await self._malformed(entry_id, fields, deliveries, str(exc))
            return
        with bound_context(request_id=envelope.trace.request_id, kind=envelope.kind):
            try:
                await self._serve(entry_id, fields, envelope, deliveries)
            except REDIS_DOWN as exc:
                log.warning("could not write reply; entry stays pending", error=str(exc))

    async def _malformed(
        self, entry_id: bytes, fields: dict[bytes, bytes], deliveries: int, why: str
    ) -> None:
        if deliveries < self._settings.max_attempts:
            log.warning("malformed entry left pending", entry=entry_id, deliveries=deliveries)
            return
        self.counters.dead_lettered += 1
        reason = f"malformed envelope: {why}"
        log.error("dead-lettered entry", entry=entry_id, reason=reason, deliveries=deliveries)
        dead = self._writer.dead_record(entry_id, fields, reason, deliveries)
        try:
            await self._writer.ack(entry_id, dead=dead)
        except REDIS_DOWN as exc:
            log.warning("could not dead-letter; entry stays pending", error=str(exc))

    async def _reject(self, entry_id: bytes, envelope: Envelope, error: BabelError) -> None:
        await self._writer.finish(entry_id, envelope, error=error.info)
        self.counters.processed += 1

    async def _serve(
        self, entry_id: bytes, fields: dict[bytes, bytes], envelope: Envelope, deliveries: int
    ) -> None:
        if envelope.v != PROTOCOL_VERSION:
            await self._reject(
                entry_id,
                envelope,
                BabelError(
                    ErrorCode.UNSUPPORTED_VERSION,
                    f"envelope version {envelope.v} is not supported (expected {PROTOCOL_VERSION})",
                ),
            )
            return
        if deliveries > self._settings.max_attempts:
            reason = f"gave up after {deliveries - 1} deliveries"
            self.counters.dead_lettered += 1
            log.error("dead-lettered entry", entry=entry_id, reason=reason)
            error = BabelError(ErrorCode.DEAD_LETTERED, f"request abandoned: {reason}")
            dead = self._writer.dead_record(entry_id, fields, reason, deliveries)
            await self._writer.finish(entry_id, envelope, error=error.info, dead=dead)
            return
        if time.time() > envelope.deadline:
            self.counters.expired += 1
            log.info("dropped request past its deadline", late_s=time.time() - envelope.deadline)
            await self._reject(
                entry_id,
                envelope,
                BabelError(
                    ErrorCode.DEADLINE_EXCEEDED, "request reached the worker after its deadline"
                ),
            )
            return
        route = self._registry.lookup(envelope.kind)
        if route is None:
            await self._reject(
                entry_id,
                envelope,
                BabelError(ErrorCode.UNKNOWN_METHOD, f"unknown method {envelope.kind!r}"),
            )
            return
        try:
            request = decode_payload(envelope.payload, route.method.request)
        except (msgspec.DecodeError, msgspec.ValidationError, RecursionError) as exc:
            # RecursionError: a payload nested past the decoder's depth limit (~1000)
            await self._reject(
                entry_id,
                envelope,
                BabelError(ErrorCode.INVALID_ARGUMENT, f"invalid payload: {exc}"),
            )
            return
        context = RequestContext(
            request_id=envelope.trace.request_id,
            deadline=envelope.deadline,
            worker=self._worker,
            deliveries=deliveries,
            call_id=envelope.id,
            trace=envelope.trace,
        )
        with serving(context):
            if route.stream is not None:
                if deliveries > 1 and await self._ended_interrupted(entry_id, envelope):
                    return
                await self._serve_stream(entry_id, envelope, route, request, context)
            else:
                await self._serve_unary(entry_id, envelope, route, request, context)
        self.counters.processed += 1

    async def _ended_interrupted(self, entry_id: bytes, envelope: Envelope) -> bool:
        """End a redelivered stream whose first worker had sent chunks already (True)."""
        sent = await self._writer.chunks_sent(envelope)
        if not sent:
            return False
        log.warning("stream interrupted by a worker failure", chunks=sent)
        error = BabelError(
            ErrorCode.UNAVAILABLE,
            f"the worker producing this stream stopped after {sent} chunk(s); "
            "send the request again",
            retryable=True,
        )
        await self._writer.finish(entry_id, envelope, error=error.info, seq=sent)
        self.counters.processed += 1
        return True

    async def _serve_unary(
        self,
        entry_id: bytes,
        envelope: Envelope,
        route: Route,
        request: Message,
        context: RequestContext,
    ) -> None:
        try:
            async with asyncio.timeout(max(context.remaining_s(), 0.001)):
                result = await self._unary_unless_cancelled(envelope, route, request, context)
            if result is None:
                log.info("caller cancelled the request")
                await self._writer.ack(entry_id, discard=envelope.reply_to)
                return
        except TimeoutError:
            error = BabelError(ErrorCode.DEADLINE_EXCEEDED, "the request ran past its deadline")
            await self._writer.finish(entry_id, envelope, error=error.info)
            return
        except Exception as exc:  # one place maps every handler failure to the wire error
            await self._writer.finish(entry_id, envelope, error=self._failure(exc).info)
            return
        await self._writer.finish(entry_id, envelope, payload=encode(result))

    async def _unary_unless_cancelled(
        self, envelope: Envelope, route: Route, request: Message, context: RequestContext
    ) -> Message | None:
        """The handler's result, or None once the caller has set the request's cancel key
        (checked every ``CANCEL_POLL_S`` while the handler runs); the handler is cancelled
        then, so a generation request is aborted in its engine."""
        assert route.unary is not None
        task = asyncio.ensure_future(route.unary(request, context))
        try:
            while not task.done():
                await asyncio.wait({task}, timeout=CANCEL_POLL_S)
                if not task.done() and await self._cancel_requested(envelope):
                    return None
            return task.result()
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _cancel_requested(self, envelope: Envelope) -> bool:
        """Whether the caller set the cancel key; a Redis blip is not a cancel, so the handler
        runs on and its reply is written once Redis answers again."""
        try:
            return await self._writer.cancelled(envelope)
        except REDIS_DOWN:
            return False

    async def _serve_stream(
        self,
        entry_id: bytes,
        envelope: Envelope,
        route: Route,
        request: Message,
        context: RequestContext,
    ) -> None:
        assert route.stream is not None
        seq = 0
        chunks = route.stream(request, context)
        try:
            async with asyncio.timeout(max(context.remaining_s(), 0.001)):
                async for item in chunks:
                    cancelled = await self._writer.chunk(envelope, seq, item)
                    seq += 1
                    if cancelled:
                        log.info("caller cancelled the stream", chunks=seq)
                        await self._writer.ack(entry_id, discard=envelope.reply_to)
                        return
        except TimeoutError:
            error = BabelError(ErrorCode.DEADLINE_EXCEEDED, "the stream ran past its deadline")
            await self._writer.finish(entry_id, envelope, error=error.info, seq=seq)
            return
        except Exception as exc:
            await self._writer.finish(entry_id, envelope, error=self._failure(exc).info, seq=seq)
            return
        finally:
            await chunks.aclose()  # type: ignore[attr-defined]
        await self._writer.finish(entry_id, envelope, seq=seq)

    def _failure(self, exc: Exception) -> BabelError:
        error = BabelError.from_exception(exc)
        if error.code == ErrorCode.INTERNAL:
            self.counters.failed += 1
            log.exception("handler failed")
        return error
