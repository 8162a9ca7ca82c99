"""Who holds which entry: a worker's leases, and the takeover of a dead peer's entries.

A live worker renews the entries it runs (XCLAIM to itself, idle reset to 0) on every
heartbeat tick, but only those still pending on it: an entry that another worker took
over is reported as lost, and the worker stops running it.

A peer is dead when its heartbeat key (TTL ``heartbeat_ttl_ms``) is missing at two ticks
in a row: the second look leaves every live worker a whole tick to publish again after a
Redis hiccup. A live worker then XCLAIMs the dead consumer's pending entries at once.
XCLAIM's min-idle-time makes that race-safe: claiming resets an entry's idle time, so when
two workers (or this takeover and another worker's idle-time reclaim) claim the same entry,
only the first gets it. The guard sits halfway between the most a held entry idles (one
tick: its holder renews it) and the least a dead peer's entry has idled when the peer is
declared dead (the heartbeat TTL). XCLAIM counts a delivery, so ``max_attempts`` and the
dead-letter stream apply as before. Last, the dead consumer leaves the group, checked and
deleted in one script, so no entry pending on it is ever dropped with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from shared.rpc.keys import Keys

_RENEW = """
local held, lost = {}, {}
for i = 3, #ARGV do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if #p > 0 then
    if p[1][2] == ARGV[2] then held[#held + 1] = ARGV[i] else lost[#lost + 1] = ARGV[i] end
  end
end
if #held > 0 then
  local claim = {'XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0}
  for _, id in ipairs(held) do claim[#claim + 1] = id end
  claim[#claim + 1] = 'JUSTID'
  redis.call(unpack(claim))
end
return lost
"""
"""Renew ``ARGV[3..]`` where pending on ``ARGV[2]`` (JUSTID: no delivery is counted);
return those pending on another consumer."""

_FORGET = """
if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end
local p = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])
if #p > 0 then return -1 end
return redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
"""
"""Delete consumer ``ARGV[2]`` if it has no heartbeat (``KEYS[2]``) and nothing pending."""


@dataclass(frozen=True, slots=True)
class Claimed:
    """An entry taken over from a dead peer: run it like a fresh delivery."""

    entry_id: bytes
    fields: dict[bytes, bytes]
    deliveries: int


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class Leases:
    """One worker's view of its group: renew what it holds, take over what the dead held."""

    def __init__(
        self,
        redis: aioredis.Redis,
        keys: Keys,
        *,
        service: str,
        worker: str,
        tick_ms: int,
        heartbeat_ttl_ms: int,
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._service = service
        self._worker = worker
        self._stream = keys.requests(service)
        self._group = keys.group(service)
        self._min_idle_ms = max((tick_ms + heartbeat_ttl_ms) // 2, 1)
        self._suspects: set[str] = set()
        self._renew = redis.register_script(_RENEW)
        self._forget = redis.register_script(_FORGET)

    async def renew(self, entry_ids: list[bytes]) -> set[bytes]:
        """Renew the leases on ``entry_ids``; return the ids another consumer holds now."""
        if not entry_ids:
            return set()
        lost: Any = await self._renew(
            keys=[self._stream], args=[self._group, self._worker, *entry_ids]
        )
        return set(lost)

    async def dead_peers(self) -> list[str]:
        """Consumers of the group whose heartbeat was missing at this look and the last."""
        consumers: list[dict[str, Any]] = await self._redis.xinfo_consumers(
            self._stream, self._group
        )
        names = [_text(c["name"]) for c in consumers]
        names = [name for name in names if name != self._worker]
        async with self._redis.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.exists(self._keys.heartbeat(self._service, name))
            alive = await pipe.execute() if names else []
        missing = {name for name, found in zip(names, alive, strict=True) if not found}
        dead = sorted(missing & self._suspects)
        self._suspects = missing
        return dead

    async def take(self, peer: str, limit: int) -> list[Claimed]:
        """Claim up to ``limit`` of ``peer``'s pending entries; forget ``peer`` once none is left.

        Entries deleted while pending are dropped from the group (XCLAIM does that itself
        on Redis 7; acknowledged here for older servers)."""
        pending: list[dict[str, Any]] = await self._redis.xpending_range(
            self._stream, self._group, min="-", max="+", count=limit, consumername=peer
        )
        claimed: list[Claimed] = []
        if pending:
            delivered = {p["message_id"]: int(p["times_delivered"]) for p in pending}
            entries: list[Any] = await self._redis.xclaim(
                self._stream,
                self._group,
                self._worker,
                min_idle_time=self._min_idle_ms,
                message_ids=list(delivered),
            )
            for entry_id, fields in entries:
                if not fields:
                    await self._redis.xack(self._stream, self._group, entry_id)
                    continue
                claimed.append(Claimed(entry_id, fields, delivered.get(entry_id, 0) + 1))
        await self._forget(
            keys=[self._stream, self._keys.heartbeat(self._service, peer)],
            args=[self._group, peer],
        )
        if claimed:
            await self.count(takeovers=1, taken_over=len(claimed))
        return claimed

    async def count(self, *, takeovers: int = 0, taken_over: int = 0, reclaimed: int = 0) -> None:
        """Add to the service's failover counters (read by the gateway for ``/metrics``)."""
        key = self._keys.failover(self._service)
        async with self._redis.pipeline(transaction=False) as pipe:
            for name, value in (
                ("takeovers", takeovers),
                ("taken_over", taken_over),
                ("reclaimed", reclaimed),
            ):
                if value:
                    pipe.hincrby(key, name, value)
            await pipe.execute()
