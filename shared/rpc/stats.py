"""Read what workers and queues report: heartbeats, queue depth, lag, dead letters."""

from __future__ import annotations

import time
from typing import Any

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from shared.messages.envelope import ENTRY_FIELD, envelope_decoder
from shared.messages.system import WorkerInfo
from shared.rpc.keys import Keys

_worker_decoder = msgspec.msgpack.Decoder(WorkerInfo)


class QueueStats(msgspec.Struct, frozen=True, kw_only=True):
    depth: int
    """Entries in the request stream: waiting plus in flight (workers delete what they ack)."""
    pending: int
    """Delivered to a worker and not yet acknowledged."""
    lag: int | None
    """Entries not yet delivered to any worker (None where the server cannot tell)."""
    dead_letters: int


class FailoverStats(msgspec.Struct, frozen=True, kw_only=True):
    """Counters the workers of a service keep in Redis (totals since the key was created)."""

    takeovers: int = 0
    """Dead workers whose pending entries a live worker took over (heartbeat expired)."""
    taken_over: int = 0
    """Entries moved in those takeovers."""
    reclaimed: int = 0
    """Entries reclaimed after ``claim_idle_ms`` (a worker alive but stuck)."""


class ServiceHealth(msgspec.Struct, frozen=True, kw_only=True):
    service: str
    workers: tuple[WorkerInfo, ...]
    queue: QueueStats
    failover: FailoverStats = msgspec.field(default_factory=FailoverStats)

    @property
    def ready_workers(self) -> int:
        return sum(1 for w in self.workers if w.state == "ready")


ROSTER_SLACK_S = 60.0
"""Roster entries this long past their heartbeat's expiry are still read (clocks of hosts may
differ; the heartbeat key decides), and removed after it."""


async def read_workers(redis: aioredis.Redis, keys: Keys, service: str) -> tuple[WorkerInfo, ...]:
    """The live workers of ``service``: names from its roster (O(log n), no SCAN), then their
    heartbeat keys (which expire with their TTL: a worker without one is dead)."""
    roster = keys.roster(service)
    oldest = time.time() - ROSTER_SLACK_S
    async with redis.pipeline(transaction=False) as pipe:
        pipe.zremrangebyscore(roster, "-inf", oldest)
        pipe.zrangebyscore(roster, oldest, "+inf")
        _, members = await pipe.execute()
    names = [m.decode() if isinstance(m, bytes) else str(m) for m in members]
    if not names:
        return ()
    values: list[Any] = await redis.mget([keys.heartbeat(service, name) for name in names])
    workers = []
    for value in values:
        if value is None:  # its heartbeat expired: not live
            continue
        try:
            workers.append(_worker_decoder.decode(value))
        except (msgspec.DecodeError, msgspec.ValidationError):
            continue
    return tuple(sorted(workers, key=lambda w: w.worker))


async def read_queue(redis: aioredis.Redis, keys: Keys, service: str) -> QueueStats:
    stream = keys.requests(service)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.xlen(stream)
        pipe.xlen(keys.dead_letters(service))
        depth, dead = await pipe.execute()
    pending, lag = 0, None
    try:
        groups = await redis.xinfo_groups(stream)
    except ResponseError:  # the stream does not exist yet
        groups = []
    for group in groups:
        name = group.get("name")
        if name in (keys.group(service), keys.group(service).encode()):
            pending = int(group.get("pending", 0))
            raw_lag = group.get("lag")
            lag = int(raw_lag) if raw_lag is not None else None
    return QueueStats(depth=int(depth), pending=pending, lag=lag, dead_letters=int(dead))


async def read_failover(redis: aioredis.Redis, keys: Keys, service: str) -> FailoverStats:
    raw: dict[Any, Any] = await redis.hgetall(keys.failover(service))
    counts = {(k.decode() if isinstance(k, bytes) else str(k)): int(v) for k, v in raw.items()}
    fields = FailoverStats.__struct_fields__
    return FailoverStats(**{name: value for name, value in counts.items() if name in fields})


async def pending_on(
    redis: aioredis.Redis, keys: Keys, service: str, consumer: str, limit: int = 1_000
) -> list[str]:
    """The trace request ids of the entries pending on one consumer (what a worker holds)."""
    stream = keys.requests(service)
    pending: list[dict[str, Any]] = await redis.xpending_range(
        stream, keys.group(service), min="-", max="+", count=limit, consumername=consumer
    )
    found = []
    for item in pending:
        entries: Any = await redis.xrange(stream, item["message_id"], item["message_id"])
        for _, fields in entries:
            try:
                found.append(envelope_decoder.decode(fields[ENTRY_FIELD]).trace.request_id)
            except (KeyError, msgspec.DecodeError, msgspec.ValidationError):
                continue
    return found


async def read_service(redis: aioredis.Redis, keys: Keys, service: str) -> ServiceHealth:
    return ServiceHealth(
        service=service,
        workers=await read_workers(redis, keys, service),
        queue=await read_queue(redis, keys, service),
        failover=await read_failover(redis, keys, service),
    )


async def discover_services(redis: aioredis.Redis, keys: Keys) -> set[str]:
    """Services that have at least one live worker heartbeat (no SCAN of the keyspace)."""
    members = await redis.smembers(keys.services())
    candidates = {m.decode() if isinstance(m, bytes) else str(m) for m in members}
    return {service for service in candidates if await read_workers(redis, keys, service)}
