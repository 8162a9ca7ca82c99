"""Per-key checks in Redis, each one atomic Lua script, shared by every gateway process.

* ``admit`` (before the body is read): the key exists, has not expired, holds the route's
  scope, and has a request left this minute; counts the request and its last use.
* ``charge`` (once the body is parsed): characters against the per-minute quota and, for a
  stream, a slot among the key's concurrent streams; nothing is counted when refused.

Both limits are token buckets (GCRA, one timestamp per bucket; Redis' own clock, so all
gateways agree): a full minute's quota may be spent at once, then it refills steadily, and
``Retry-After`` is the exact wait for what was asked. A request larger than the whole
quota passes only when the bucket is full and leaves the key waiting it off.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Final

import redis.asyncio as aioredis

from shared.access.store import AccessKeys
from shared.errors import BabelError, ErrorCode

WINDOW_S: Final = 60

_BUCKET = """
local WINDOW = 60000
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- GCRA: returns allowed, remaining, reset_ms (until full), retry_ms
local function bucket(key, limit, cost, now)
  local interval = WINDOW / limit
  local tat = tonumber(redis.call('GET', key)) or now
  if tat < now then tat = now end
  local allow_at = tat + math.min(cost * interval, WINDOW) - WINDOW
  if now < allow_at then
    local left = math.floor((WINDOW - (tat - now)) / interval + 1e-9)
    return false, left, math.ceil(tat - now), math.ceil(allow_at - now)
  end
  local new_tat = tat + cost * interval
  redis.call('SET', key, string.format('%.3f', new_tat), 'PX', math.ceil(new_tat - now) + 1000)
  local left = math.max(0, math.floor((WINDOW - (new_tat - now)) / interval + 1e-9))
  return true, left, math.ceil(new_tat - now), 0
end
"""

_ADMIT = (
    _BUCKET
    + """
-- KEYS: record, requests bucket. ARGV: scope
local f = redis.call('HMGET', KEYS[1], 'name', 'scopes', 'rpm', 'expires')
if not f[1] then return {'unknown'} end
local now = now_ms()
local expires = tonumber(f[4]) or 0
if expires > 0 and now >= expires then return {'expired', f[1]} end
if not string.find(',' .. f[2] .. ',', ',' .. ARGV[1] .. ',', 1, true) then
  return {'forbidden', f[1], f[2]}
end
local limit = tonumber(f[3]) or 0
local verdict = {'ok', f[1], limit, 0, 0, 0}
if limit > 0 then
  local ok, left, reset, retry = bucket(KEYS[2], limit, 1, now)
  if not ok then
    redis.call('HINCRBY', KEYS[1], 'throttled', 1)
    return {'limited', f[1], limit, left, reset, retry}
  end
  verdict = {'ok', f[1], limit, left, reset, 0}
end
redis.call('HINCRBY', KEYS[1], 'requests', 1)
redis.call('HSET', KEYS[1], 'last_used', now)
return verdict
"""
)

_CHARGE = (
    _BUCKET
    + """
-- KEYS: record, chars bucket, streams. ARGV: chars, stream id ('' = none), lease ms
local f = redis.call('HMGET', KEYS[1], 'name', 'cpm', 'streams')
if not f[1] then return {'unknown'} end
local now = now_ms()
local chars = tonumber(ARGV[1])
local cpm = tonumber(f[2]) or 0
local streams = tonumber(f[3]) or 0
if ARGV[2] ~= '' then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
  if streams > 0 and redis.call('ZCARD', KEYS[3]) >= streams then
    redis.call('HINCRBY', KEYS[1], 'throttled', 1)
    return {'streams', streams, 0, 0, 0}
  end
end
local verdict = {'ok', cpm, 0, 0, 0}
if chars > 0 and cpm > 0 then
  local ok, left, reset, retry = bucket(KEYS[2], cpm, chars, now)
  if not ok then
    redis.call('HINCRBY', KEYS[1], 'throttled', 1)
    return {'chars', cpm, left, reset, retry}
  end
  verdict = {'ok', cpm, left, reset, 0}
end
if ARGV[2] ~= '' then
  redis.call('ZADD', KEYS[3], now + tonumber(ARGV[3]), ARGV[2])
  redis.call('PEXPIRE', KEYS[3], tonumber(ARGV[3]))
end
redis.call('HINCRBY', KEYS[1], 'chars', chars)
return verdict
"""
)


@dataclass
class PolicyState:
    """One quota as the RateLimit headers state it."""

    quota: int
    remaining: int
    reset_s: int
    unit: str | None = None


@dataclass
class Grant:
    """Who a request acts for. ``key_digest`` is None for the bootstrap admin (no limits)."""

    name: str
    key_digest: str | None
    policies: dict[str, PolicyState] = field(default_factory=dict)

    def rate_headers(self) -> list[tuple[bytes, bytes]]:
        """``RateLimit-Policy`` and ``RateLimit`` (draft-ietf-httpapi-ratelimit-headers)."""
        if not self.policies:
            return []
        policy = ", ".join(
            f'"{name}";q={p.quota};w={WINDOW_S}' + (f';qu="{p.unit}"' if p.unit else "")
            for name, p in self.policies.items()
        )
        state = ", ".join(
            f'"{name}";r={p.remaining};t={p.reset_s}' for name, p in self.policies.items()
        )
        return [(b"ratelimit-policy", policy.encode()), (b"ratelimit", state.encode())]


def _seconds(ms: Any) -> int:
    return max(0, math.ceil(int(ms) / 1000))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def rate_limited(message: str, retry_ms: Any | None) -> BabelError:
    return BabelError(
        ErrorCode.RATE_LIMITED,
        message,
        retryable=retry_ms is not None,
        retry_after_s=max(1, _seconds(retry_ms)) if retry_ms is not None else None,
    )


class Limiter:
    def __init__(self, redis: aioredis.Redis, keys: AccessKeys) -> None:
        self._redis = redis
        self._keys = keys
        self._admit = redis.register_script(_ADMIT)
        self._charge = redis.register_script(_CHARGE)

    async def admit(self, key_digest: str, scope: str) -> Grant:
        """A grant for this key on a route needing ``scope``; ``Refused`` (401/403/429) if not."""
        reply = await self._admit(
            keys=[self._keys.record(key_digest), self._keys.bucket(key_digest, "requests")],
            args=[scope],
        )
        verdict = _text(reply[0])
        if verdict == "unknown":
            raise Refused(
                BabelError(ErrorCode.UNAUTHENTICATED, "unknown or revoked API key"), "key"
            )
        name = _text(reply[1])
        if verdict == "expired":
            error = BabelError(ErrorCode.UNAUTHENTICATED, f"API key {name!r} has expired")
            raise Refused(error, "expired", Grant(name=name, key_digest=key_digest))
        if verdict == "forbidden":
            error = BabelError(
                ErrorCode.PERMISSION_DENIED,
                f"API key {name!r} lacks the scope {scope!r} (it has: {_text(reply[2]) or 'none'})",
            )
            raise Refused(error, "scope", Grant(name=name, key_digest=key_digest))
        grant = Grant(name=name, key_digest=key_digest)
        limit, left, reset_ms, retry_ms = (int(v) for v in reply[2:6])
        if limit > 0:
            grant.policies["requests"] = PolicyState(limit, left, _seconds(reset_ms))
        if verdict == "limited":
            error = rate_limited(
                f"API key {name!r} is over its {limit} requests a minute", retry_ms
            )
            raise Refused(error, "requests", grant)
        return grant

    async def charge(
        self, grant: Grant, chars: int, *, stream_id: str | None, lease_s: float
    ) -> None:
        """Count ``chars`` (and open a stream when ``stream_id``); 429 when over a limit."""
        if grant.key_digest is None:
            return
        key_digest = grant.key_digest
        reply = await self._charge(
            keys=[
                self._keys.record(key_digest),
                self._keys.bucket(key_digest, "chars"),
                self._keys.streams(key_digest),
            ],
            args=[chars, stream_id or "", int(lease_s * 1000)],
        )
        verdict = _text(reply[0])
        if verdict == "unknown":
            raise Refused(
                BabelError(ErrorCode.UNAUTHENTICATED, "unknown or revoked API key"), "key", grant
            )
        limit, left, reset_ms, retry_ms = (int(v) for v in reply[1:5])
        if verdict == "streams":
            grant.policies["streams"] = PolicyState(limit, 0, 0, "concurrent-requests")
            error = BabelError(
                ErrorCode.RATE_LIMITED,
                f"API key {grant.name!r} has {limit} streams open, its limit",
                retryable=True,
                retry_after_s=1.0,
            )
            raise Refused(error, "streams", grant)
        if limit > 0:
            grant.policies["chars"] = PolicyState(limit, left, _seconds(reset_ms), "chars")
        if verdict == "chars":
            error = rate_limited(
                f"this request has {chars} characters; API key {grant.name!r} has {left} "
                f"of its {limit} a minute left",
                retry_ms,
            )
            raise Refused(error, "chars", grant)

    async def release(self, grant: Grant, stream_id: str) -> None:
        if grant.key_digest is not None:
            await self._redis.zrem(self._keys.streams(grant.key_digest), stream_id)


class Refused(Exception):
    """A refusal: the error to answer, why (a metrics label), and the key's grant if known
    (its name, and the RateLimit headers that go with a 429)."""

    def __init__(self, error: BabelError, reason: str, grant: Grant | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.reason = reason
        self.grant = grant
