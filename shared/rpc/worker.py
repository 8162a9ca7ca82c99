"""The worker loop: one service's request stream, read through its consumer group.

At-least-once delivery: an entry is acknowledged (and deleted) in the same MULTI as
its reply is written. Entries left pending by a dead worker are reclaimed with
XAUTOCLAIM; a live worker renews its in-flight entries so they are not stolen.
After ``max_attempts`` deliveries an entry goes to the dead-letter stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import msgspec
import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from shared.errors import BabelError, ErrorCode, ErrorInfo
from shared.messages.base import Message
from shared.messages.envelope import (
    ENTRY_FIELD,
    PROTOCOL_VERSION,
    Envelope,
    Reply,
    StreamChunk,
    encode,
    envelope_decoder,
)
from shared.messages.system import PingReply, PingRequest, WorkerInfo, ping_method
from shared.rpc.client import decode_payload
from shared.rpc.handlers import HandlerRegistry, RequestContext, Route
from shared.rpc.keys import Keys
from shared.settings import WorkerSettings
from shared.telemetry import bound_context, get_logger

log = get_logger(__name__)

_REDIS_DOWN = (RedisConnectionError, RedisTimeoutError, OSError)


@dataclass(frozen=True, slots=True)
class ServiceIdentity:
    service: str
    version: str
    models: tuple[str, ...] = ()


@dataclass(slots=True)
class WorkerCounters:
    processed: int = 0
    failed: int = 0
    expired: int = 0
    dead_lettered: int = 0


def new_worker_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


class Worker:
    """Serves one service's requests with many in flight at once."""

    def __init__(
        self,
        *,
        redis: aioredis.Redis,
        keys: Keys,
        settings: WorkerSettings,
        registry: HandlerRegistry,
        identity: ServiceIdentity,
        name: str | None = None,
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._settings = settings
        self._registry = registry
        self.identity = identity
        self.name = name or new_worker_name()
        self.state = "loading"
        self.counters = WorkerCounters()
        self._started_at = time.time()
        self._stream = keys.requests(identity.service)
        self._group = keys.group(identity.service)
        self._in_flight: dict[bytes, asyncio.Task[None]] = {}
        self._slot_free = asyncio.Event()
        registry.add_unary(ping_method(identity.service), self._ping)

    # ------------------------------------------------------------------ lifecycle
    async def run(
        self, stop: asyncio.Event, warm_up: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        """Serve until ``stop`` is set, then let in-flight work finish within the grace period."""
        await self._ensure_group()
        heartbeat = asyncio.create_task(self._heartbeat_loop(), name="heartbeat")
        try:
            if warm_up is not None:
                await warm_up()
            self.state = "ready"
            await self._publish_heartbeat()
            log.info("worker ready", worker=self.name, kinds=self._registry.kinds())
            loops = [
                asyncio.create_task(self._read_loop(stop), name="read"),
                asyncio.create_task(self._claim_loop(stop), name="claim"),
            ]
            stopper = asyncio.create_task(stop.wait(), name="stop")
            done, _ = await asyncio.wait([*loops, stopper], return_when=asyncio.FIRST_COMPLETED)
            stop.set()
            self.state = "stopping"
            await asyncio.gather(*loops, return_exceptions=True)
            for task in done:
                if task is not stopper and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
            await self._drain()
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError, *_REDIS_DOWN):
                await heartbeat
            with contextlib.suppress(*_REDIS_DOWN):
                await self._redis.delete(self._keys.heartbeat(self.identity.service, self.name))
            log.info("worker stopped", **msgspec.structs.asdict(self.info()))

    async def _drain(self) -> None:
        tasks = list(self._in_flight.values())
        if not tasks:
            return
        log.info("draining in-flight requests", count=len(tasks))
        _, unfinished = await asyncio.wait(tasks, timeout=self._settings.grace_period_s)
        for task in unfinished:
            task.cancel()
        if unfinished:
            log.warning("grace period over; left pending for another worker", count=len(unfinished))
            await asyncio.gather(*unfinished, return_exceptions=True)

    async def _ensure_group(self) -> None:
        try:
            await self._redis.xgroup_create(self._stream, self._group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    # ------------------------------------------------------------------ health
    def info(self) -> WorkerInfo:
        return WorkerInfo(
            service=self.identity.service,
            worker=self.name,
            version=self.identity.version,
            models=self.identity.models,
            state=self.state,
            pid=os.getpid(),
            host=socket.gethostname(),
            started_at=self._started_at,
            in_flight=len(self._in_flight),
            concurrency=self._settings.concurrency,
            processed=self.counters.processed,
        )

    async def _publish_heartbeat(self) -> None:
        await self._redis.set(
            self._keys.heartbeat(self.identity.service, self.name),
            encode(self.info()),
            px=self._settings.heartbeat_ttl_ms,
        )

    async def _heartbeat_loop(self) -> None:
        """Publish the heartbeat and renew the lease on in-flight entries."""
        interval_s = (
            min(self._settings.heartbeat_interval_ms, self._settings.claim_idle_ms // 3) / 1000
        )
        while True:
            try:
                await self._publish_heartbeat()
                ids: list[Any] = list(self._in_flight)
                if ids:
                    await self._redis.xclaim(
                        self._stream, self._group, self.name, 0, ids, justid=True
                    )
            except _REDIS_DOWN as exc:
                log.warning("heartbeat failed", error=str(exc))
            await asyncio.sleep(interval_s)

    # ------------------------------------------------------------------ intake
    async def _wait_for_capacity(self, stop: asyncio.Event) -> int:
        while not stop.is_set():
            free = self._settings.concurrency - len(self._in_flight)
            if free > 0:
                return free
            self._slot_free.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._slot_free.wait(), timeout=0.5)
        return 0

    async def _read_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            free = await self._wait_for_capacity(stop)
            if not free:
                continue
            try:
                result: Any = await self._redis.xreadgroup(
                    self._group,
                    self.name,
                    {self._stream: ">"},
                    count=free,
                    block=self._settings.block_ms,
                )
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                log.warning("consumer group missing; recreating it")
                await self._ensure_group()
                continue
            except _REDIS_DOWN as exc:
                log.warning("redis unreachable; retrying", error=str(exc))
                await asyncio.sleep(0.5)
                continue
            for _stream, entries in result or []:
                for entry_id, fields in entries:
                    self._spawn(entry_id, fields, deliveries=1)

    async def _claim_loop(self, stop: asyncio.Event) -> None:
        interval_s = max(self._settings.claim_idle_ms / 2000, 0.05)
        cursor: bytes | str = "0-0"
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval_s)
            free = self._settings.concurrency - len(self._in_flight)
            if stop.is_set() or free <= 0:
                continue
            try:
                cursor, entries, *_ = await self._redis.xautoclaim(
                    self._stream,
                    self._group,
                    self.name,
                    min_idle_time=self._settings.claim_idle_ms,
                    start_id=cursor,
                    count=free,
                )
                for entry_id, fields in entries:
                    if entry_id in self._in_flight:
                        continue
                    if not fields:  # deleted while pending
                        await self._redis.xack(self._stream, self._group, entry_id)
                        continue
                    deliveries = await self._delivery_count(entry_id)
                    log.info("reclaimed pending entry", entry=entry_id, deliveries=deliveries)
                    self._spawn(entry_id, fields, deliveries=deliveries)
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                await self._ensure_group()
            except _REDIS_DOWN as exc:
                log.warning("claim failed", error=str(exc))

    async def _delivery_count(self, entry_id: bytes) -> int:
        pending = await self._redis.xpending_range(
            self._stream, self._group, min=entry_id, max=entry_id, count=1
        )
        return int(pending[0]["times_delivered"]) if pending else 1

    def _spawn(self, entry_id: bytes, fields: dict[bytes, bytes], deliveries: int) -> None:
        task = asyncio.create_task(self._process(entry_id, fields, deliveries))
        self._in_flight[entry_id] = task

        def _done(_: asyncio.Task[None]) -> None:
            self._in_flight.pop(entry_id, None)
            self._slot_free.set()

        task.add_done_callback(_done)

    # ------------------------------------------------------------------ processing
    async def _process(self, entry_id: bytes, fields: dict[bytes, bytes], deliveries: int) -> None:
        raw = fields.get(ENTRY_FIELD, b"")
        try:
            envelope = envelope_decoder.decode(raw)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            if deliveries >= self._settings.max_attempts:
                await self._dead_letter(entry_id, fields, f"malformed envelope: {exc}", deliveries)
            else:
                log.warning("malformed entry left pending", entry=entry_id, deliveries=deliveries)
            return
        with bound_context(request_id=envelope.trace.request_id, kind=envelope.kind):
            try:
                await self._serve(entry_id, fields, envelope, deliveries)
            except _REDIS_DOWN as exc:
                log.warning("could not write reply; entry stays pending", error=str(exc))

    async def _serve(
        self, entry_id: bytes, fields: dict[bytes, bytes], envelope: Envelope, deliveries: int
    ) -> None:
        if envelope.v != PROTOCOL_VERSION:
            error = BabelError(
                ErrorCode.UNSUPPORTED_VERSION,
                f"envelope version {envelope.v} is not supported (expected {PROTOCOL_VERSION})",
            )
            await self._finish(entry_id, envelope, error=error.info)
            return
        if deliveries > self._settings.max_attempts:
            await self._dead_letter(
                entry_id, fields, f"gave up after {deliveries - 1} deliveries", deliveries, envelope
            )
            return
        if time.time() > envelope.deadline:
            self.counters.expired += 1
            log.info("dropped request past its deadline", late_s=time.time() - envelope.deadline)
            error = BabelError(
                ErrorCode.DEADLINE_EXCEEDED, "request reached the worker after its deadline"
            )
            await self._finish(entry_id, envelope, error=error.info)
            return
        route = self._registry.lookup(envelope.kind)
        if route is None:
            error = BabelError(ErrorCode.UNKNOWN_METHOD, f"unknown method {envelope.kind!r}")
            await self._finish(entry_id, envelope, error=error.info)
            return
        try:
            request = decode_payload(envelope.payload, route.method.request)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            error = BabelError(ErrorCode.INVALID_ARGUMENT, f"invalid payload: {exc}")
            await self._finish(entry_id, envelope, error=error.info)
            return
        context = RequestContext(
            request_id=envelope.trace.request_id,
            deadline=envelope.deadline,
            worker=self.name,
            deliveries=deliveries,
        )
        if route.stream is not None:
            await self._serve_stream(entry_id, envelope, route, request, context)
        else:
            await self._serve_unary(entry_id, envelope, route, request, context)

    async def _serve_unary(
        self,
        entry_id: bytes,
        envelope: Envelope,
        route: Route,
        request: Message,
        context: RequestContext,
    ) -> None:
        assert route.unary is not None
        started = time.perf_counter()
        try:
            async with asyncio.timeout(max(context.remaining_s(), 0.001)):
                result = await route.unary(request, context)
        except TimeoutError:
            error = BabelError(ErrorCode.DEADLINE_EXCEEDED, "the request ran past its deadline")
            await self._finish(entry_id, envelope, error=error.info)
            return
        except Exception as exc:  # one place maps every failure to the wire error
            await self._finish(entry_id, envelope, error=self._failure(exc).info)
            return
        await self._finish(entry_id, envelope, payload=encode(result))
        log.debug("served", ms=round((time.perf_counter() - started) * 1000, 3))

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
        cancelled = False
        try:
            async with asyncio.timeout(max(context.remaining_s(), 0.001)):
                async for item in chunks:
                    chunk = StreamChunk(seq=seq, payload=encode(item))
                    seq += 1
                    async with self._redis.pipeline(transaction=False) as pipe:
                        pipe.xadd(envelope.reply_to, {ENTRY_FIELD: encode(chunk)})
                        pipe.expire(envelope.reply_to, self._settings.reply_ttl_s)
                        pipe.exists(self._keys.cancel(envelope.id))
                        *_, cancel_flag = await pipe.execute()
                    if cancel_flag:
                        cancelled = True
                        log.info("caller cancelled the stream", chunks=seq)
                        break
        except TimeoutError:
            error = BabelError(ErrorCode.DEADLINE_EXCEEDED, "the stream ran past its deadline")
            await self._finish(entry_id, envelope, error=error.info, seq=seq)
            return
        except Exception as exc:
            await self._finish(entry_id, envelope, error=self._failure(exc).info, seq=seq)
            return
        finally:
            await chunks.aclose()  # type: ignore[attr-defined]
        if cancelled:
            await self._ack(entry_id)
            return
        await self._finish(entry_id, envelope, seq=seq)

    def _failure(self, exc: Exception) -> BabelError:
        error = BabelError.from_exception(exc)
        if error.code == ErrorCode.INTERNAL:
            self.counters.failed += 1
            log.exception("handler failed")
        return error

    def _queue_dead_letter(self, pipe: Pipeline, record: dict[bytes, bytes] | None) -> None:
        if record is not None:
            pipe.xadd(
                self._keys.dead_letters(self.identity.service),
                record,  # type: ignore[arg-type]
                maxlen=self._settings.dead_letter_maxlen,
                approximate=True,
            )

    async def _ack(self, entry_id: bytes, dead_record: dict[bytes, bytes] | None = None) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            self._queue_dead_letter(pipe, dead_record)
            pipe.xack(self._stream, self._group, entry_id)
            pipe.xdel(self._stream, entry_id)
            await pipe.execute()

    async def _finish(
        self,
        entry_id: bytes,
        envelope: Envelope,
        *,
        payload: bytes | None = None,
        error: ErrorInfo | None = None,
        seq: int = 0,
        dead_record: dict[bytes, bytes] | None = None,
    ) -> None:
        """Write the reply (or the final chunk) and acknowledge the entry, atomically."""
        ttl = self._settings.reply_ttl_s
        async with self._redis.pipeline(transaction=True) as pipe:
            self._queue_dead_letter(pipe, dead_record)
            if envelope.stream:
                chunk = StreamChunk(seq=seq, error=error, done=True)
                pipe.xadd(envelope.reply_to, {ENTRY_FIELD: encode(chunk)})
            else:
                reply = Reply(
                    id=envelope.id,
                    payload=payload,
                    error=error,
                    worker=self.name,
                )
                pipe.rpush(envelope.reply_to, encode(reply))
            pipe.expire(envelope.reply_to, ttl)
            pipe.xack(self._stream, self._group, entry_id)
            pipe.xdel(self._stream, entry_id)
            await pipe.execute()
        self.counters.processed += 1

    async def _dead_letter(
        self,
        entry_id: bytes,
        fields: dict[bytes, bytes],
        reason: str,
        deliveries: int,
        envelope: Envelope | None = None,
    ) -> None:
        self.counters.dead_lettered += 1
        log.error("dead-lettered entry", entry=entry_id, reason=reason, deliveries=deliveries)
        record = {
            ENTRY_FIELD: fields.get(ENTRY_FIELD, b""),
            b"entry_id": entry_id,
            b"reason": reason.encode(),
            b"deliveries": str(deliveries).encode(),
            b"worker": self.name.encode(),
        }
        if envelope is not None:
            error = BabelError(ErrorCode.DEAD_LETTERED, f"request abandoned: {reason}")
            await self._finish(entry_id, envelope, error=error.info, dead_record=record)
        else:
            await self._ack(entry_id, dead_record=record)

    # ------------------------------------------------------------------ built-ins
    async def _ping(self, request: PingRequest, context: RequestContext) -> PingReply:
        return PingReply(echo=request.echo, worker=self.name, service=self.identity.service)
