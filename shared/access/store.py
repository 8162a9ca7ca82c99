"""API keys in Redis: create (the key is returned once), list, describe, revoke.

Layout (prefix ``babel``; ``<d>`` is the key's SHA-256, never the key):

* ``babel:apikeys`` — hash, name → digest (names are unique);
* ``babel:apikey:<d>`` — hash: name, scopes, rpm, cpm, streams, created, expires (ms since
  the epoch, 0 = never), hint, and the usage counters requests, chars, throttled, last_used;
* ``babel:ratelimit:<d>:requests`` / ``:chars`` — the token buckets' theoretical arrival
  times (ms); ``babel:ratelimit:<d>:streams`` — sorted set of open streams by lease end.

The gateway's limiter (``services.gateway.access.limiter``) reads and counts these fields
in one Lua script per check.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from shared.access.records import KeyLimits, KeyRecord, KeyUsage, check_name, parse_scopes
from shared.access.tokens import digest, hint, new_token
from shared.errors import BabelError, ErrorCode


@dataclass(frozen=True, slots=True)
class AccessKeys:
    """Every Redis key name of the API-key records, in one place."""

    prefix: str = "babel"

    @property
    def index(self) -> str:
        return f"{self.prefix}:apikeys"

    def record(self, key_digest: str) -> str:
        return f"{self.prefix}:apikey:{key_digest}"

    def bucket(self, key_digest: str, policy: str) -> str:
        return f"{self.prefix}:ratelimit:{key_digest}:{policy}"

    def streams(self, key_digest: str) -> str:
        return f"{self.prefix}:ratelimit:{key_digest}:streams"

    def owned(self, key_digest: str) -> list[str]:
        """Every Redis key that belongs to one API key (deleted with it)."""
        return [
            self.record(key_digest),
            self.bucket(key_digest, "requests"),
            self.bucket(key_digest, "chars"),
            self.streams(key_digest),
        ]


_CREATE = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[2], unpack(ARGV, 3))
return 1
"""

_REVOKE = """
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('DEL', unpack(KEYS, 2))
return 1
"""


def _ms(seconds: float | None) -> int:
    return 0 if seconds is None else int(seconds * 1000)


def _seconds(raw: Any) -> float | None:
    value = int(raw or 0)
    return value / 1000 if value else None


def _text(fields: dict[bytes, bytes], name: str, default: str = "") -> str:
    raw = fields.get(name.encode())
    return raw.decode() if raw is not None else default


def _record(fields: dict[bytes, bytes], active_streams: int) -> KeyRecord:
    def number(name: str) -> int:
        return int(fields.get(name.encode()) or 0)

    return KeyRecord(
        name=_text(fields, "name"),
        scopes=tuple(s for s in _text(fields, "scopes").split(",") if s),
        limits=KeyLimits(rpm=number("rpm"), chars_per_min=number("cpm"), streams=number("streams")),
        created_at=number("created") / 1000,
        expires_at=_seconds(fields.get(b"expires")),
        hint=_text(fields, "hint"),
        usage=KeyUsage(
            requests=number("requests"),
            chars=number("chars"),
            throttled=number("throttled"),
            last_used_at=_seconds(fields.get(b"last_used")),
            active_streams=active_streams,
        ),
    )


class KeyStore:
    def __init__(self, redis: aioredis.Redis, keys: AccessKeys) -> None:
        self._redis = redis
        self._keys = keys
        self._create = redis.register_script(_CREATE)
        self._revoke = redis.register_script(_REVOKE)

    async def create(
        self,
        name: str,
        scopes: str | list[str] | tuple[str, ...],
        limits: KeyLimits,
        *,
        expires_in_s: float | None = None,
    ) -> tuple[str, KeyRecord]:
        """A new key: (the key itself, shown once; its record). 409 if the name is taken."""
        check_name(name)
        granted = parse_scopes(scopes)
        for field, value in (
            ("rpm", limits.rpm),
            ("chars_per_min", limits.chars_per_min),
            ("streams", limits.streams),
        ):
            if value < 0:
                raise BabelError(
                    ErrorCode.INVALID_ARGUMENT, "must be 0 (no limit) or more", field=field
                )
        token = new_token()
        key_digest = digest(token)
        now = time.time()
        record = KeyRecord(
            name=name,
            scopes=granted,
            limits=limits,
            created_at=now,
            expires_at=now + expires_in_s if expires_in_s else None,
            hint=hint(token),
        )
        fields: dict[str, Any] = {
            "name": name,
            "scopes": ",".join(granted),
            "rpm": limits.rpm,
            "cpm": limits.chars_per_min,
            "streams": limits.streams,
            "created": _ms(record.created_at),
            "expires": _ms(record.expires_at),
            "hint": record.hint,
            "requests": 0,
            "chars": 0,
            "throttled": 0,
            "last_used": 0,
        }
        args: list[Any] = [name, key_digest]
        for field_name, field_value in fields.items():
            args += [field_name, field_value]
        created = await self._create(
            keys=[self._keys.index, self._keys.record(key_digest)], args=args
        )
        if not created:
            raise BabelError(ErrorCode.CONFLICT, f"a key named {name!r} exists", field="name")
        return token, record

    async def get(self, name: str) -> KeyRecord:
        key_digest = await self._digest_of(name)
        record = await self._read(key_digest)
        if record is None:
            raise BabelError(ErrorCode.NOT_FOUND, f"no key named {name!r}", field="name")
        return record

    async def list(self) -> list[KeyRecord]:
        index: Any = await self._redis.hgetall(self._keys.index)
        records = []
        for raw_digest in index.values():
            record = await self._read(raw_digest.decode())
            if record is not None:
                records.append(record)
        return sorted(records, key=lambda r: r.name)

    async def revoke(self, name: str) -> None:
        """Delete the key, its limits and usage; it is refused (401) from now on."""
        key_digest = await self._digest_of(name)
        done = await self._revoke(
            keys=[self._keys.index, *self._keys.owned(key_digest)], args=[name, key_digest]
        )
        if not done:
            raise BabelError(ErrorCode.NOT_FOUND, f"no key named {name!r}", field="name")

    async def _digest_of(self, name: str) -> str:
        raw: Any = await self._redis.hget(self._keys.index, name)
        if raw is None:
            raise BabelError(ErrorCode.NOT_FOUND, f"no key named {name!r}", field="name")
        return raw.decode()

    async def _read(self, key_digest: str) -> KeyRecord | None:
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(self._keys.record(key_digest))
            pipe.zcount(self._keys.streams(key_digest), int(time.time() * 1000), "+inf")
            fields, active = await pipe.execute()
        return _record(fields, int(active)) if fields else None
