"""The worker loop: one service's request stream, read through its consumer group.

At-least-once delivery: an entry is acknowledged (and deleted) in the same MULTI as
its reply is written. A live worker renews its in-flight entries on every heartbeat tick
and, on the same tick, takes over the pending entries of a peer whose heartbeat has
expired (see :mod:`shared.rpc.leases`). Entries idle for ``claim_idle_ms`` (a peer that is
alive but stuck) are reclaimed with XAUTOCLAIM. After ``max_attempts`` deliveries an
entry goes to the dead-letter stream.
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
from redis.exceptions import ResponseError

from shared.messages.envelope import encode
from shared.messages.system import PingReply, PingRequest, SelfCheck, WorkerInfo, ping_method
from shared.rpc.connection import REDIS_DOWN
from shared.rpc.dispatch import Dispatcher, WorkerCounters
from shared.rpc.handlers import HandlerRegistry, RequestContext
from shared.rpc.keys import Keys
from shared.rpc.leases import Leases
from shared.rpc.replies import ReplyWriter
from shared.settings import WorkerSettings
from shared.telemetry import get_logger

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class ServiceIdentity:
    service: str
    version: str
    models: tuple[str, ...] = ()


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
        checks: Callable[[], tuple[SelfCheck, ...]] | None = None,
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._settings = settings
        self._registry = registry
        self.identity = identity
        self.name = name or new_worker_name()
        self._checks = checks
        self.state = "loading"
        self.counters = WorkerCounters()
        self._started_at = time.time()
        self._stream = keys.requests(identity.service)
        self._group = keys.group(identity.service)
        self._in_flight: dict[bytes, asyncio.Task[None]] = {}
        self._slot_free = asyncio.Event()
        registry.add_unary(ping_method(identity.service), self._ping)
        self._tick_s = min(settings.heartbeat_interval_ms, settings.claim_idle_ms // 3) / 1000
        self._leases = Leases(
            redis,
            keys,
            service=identity.service,
            worker=self.name,
            tick_ms=int(self._tick_s * 1000),
            heartbeat_ttl_ms=settings.heartbeat_ttl_ms,
        )
        writer = ReplyWriter(redis, keys, settings, identity.service, self.name)
        self._dispatcher = Dispatcher(registry, writer, settings, self.name, self.counters)

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
            with contextlib.suppress(asyncio.CancelledError, *REDIS_DOWN):
                await heartbeat
            with contextlib.suppress(*REDIS_DOWN):
                await self._redis.delete(self._keys.heartbeat(self.identity.service, self.name))
                await self._redis.zrem(self._keys.roster(self.identity.service), self.name)
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
            checks=self._checks() if self._checks is not None else (),
        )

    async def _publish_heartbeat(self) -> None:
        service = self.identity.service
        expires = time.time() + self._settings.heartbeat_ttl_ms / 1000
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(
                self._keys.heartbeat(service, self.name),
                encode(self.info()),
                px=self._settings.heartbeat_ttl_ms,
            )
            pipe.zadd(self._keys.roster(service), {self.name: expires})
            pipe.sadd(self._keys.services(), service)
            await pipe.execute()

    async def _heartbeat_loop(self) -> None:
        """Each tick: publish the heartbeat, renew in-flight leases, take over dead peers."""
        while True:
            try:
                await self._publish_heartbeat()
                await self._renew_leases()
                if self.state == "ready":
                    await self._take_over_dead_peers()
            except (ResponseError, *REDIS_DOWN) as exc:  # e.g. NOGROUP: the read loop recreates it
                log.warning("heartbeat failed", error=str(exc))
            await asyncio.sleep(self._tick_s)

    async def _renew_leases(self) -> None:
        """Keep in-flight entries from being reclaimed; stop those another worker took."""
        for entry_id in await self._leases.renew(list(self._in_flight)):
            task = self._in_flight.get(entry_id)
            if task is not None:
                log.warning("entry taken over by another worker; stopped here", entry=entry_id)
                task.cancel()

    async def _take_over_dead_peers(self) -> None:
        """Claim dead peers' entries, no more than this worker has free slots for: the rest
        stay pending on the dead peer (which stays in the group) for a later tick or another
        worker, so a takeover never runs more than ``concurrency`` requests at once here."""
        for peer in await self._leases.dead_peers():
            free = self._settings.concurrency - len(self._in_flight)
            if free <= 0:
                break
            claimed = await self._leases.take(peer, limit=free)
            if claimed:
                log.info("took over a dead worker's requests", peer=peer, entries=len(claimed))
            for entry in claimed:
                if entry.entry_id not in self._in_flight:
                    self._spawn(entry.entry_id, entry.fields, deliveries=entry.deliveries)

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
            except REDIS_DOWN as exc:
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
                    await self._leases.count(reclaimed=1)
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                await self._ensure_group()
            except REDIS_DOWN as exc:
                log.warning("claim failed", error=str(exc))

    async def _delivery_count(self, entry_id: bytes) -> int:
        pending = await self._redis.xpending_range(
            self._stream, self._group, min=entry_id, max=entry_id, count=1
        )
        return int(pending[0]["times_delivered"]) if pending else 1

    def _spawn(self, entry_id: bytes, fields: dict[bytes, bytes], deliveries: int) -> None:
        task = asyncio.create_task(self._dispatcher.process(entry_id, fields, deliveries))
        self._in_flight[entry_id] = task

        def _done(_: asyncio.Task[None]) -> None:
            self._in_flight.pop(entry_id, None)
            self._slot_free.set()

        task.add_done_callback(_done)

    # ------------------------------------------------------------------ built-ins
    async def _ping(self, request: PingRequest, context: RequestContext) -> PingReply:
        return PingReply(echo=request.echo, worker=self.name, service=self.identity.service)
