"""API keys, admin only: ``GET/POST /v1/keys``, ``GET/DELETE /v1/keys/{name}``.

A created key is in the answer once and nowhere else: Redis keeps its SHA-256.
"""

from __future__ import annotations

import time
from typing import Annotated

import msgspec
from litestar import Controller, delete, get, post

from shared.access.records import (
    DEFAULT_CHARS_PER_MIN,
    DEFAULT_RPM,
    DEFAULT_STREAMS,
    SCOPES,
    KeyLimits,
    KeyRecord,
    KeyUsage,
    parse_duration,
)
from shared.access.store import KeyStore

KEY_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$(?!\n)"
"""msgspec searches with Python's ``re``, where ``$`` also matches before a trailing
newline: ``(?!\n)`` refuses it (and means nothing in the ECMA dialect of OpenAPI)."""

Limit = Annotated[int, msgspec.Meta(ge=0, le=1_000_000_000)]


class CreateKeyBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(pattern=KEY_NAME)]
    scopes: Annotated[list[str], msgspec.Meta(min_length=1)]
    """Any of search, ingest, generate, translate, analyze, classifiers, batch, admin; or all."""
    rpm: Limit = DEFAULT_RPM
    """Requests a minute (0: no limit)."""
    chars_per_min: Limit = DEFAULT_CHARS_PER_MIN
    """Characters a minute: texts in; prompt + max_tokens for generation (0: no limit)."""
    streams: Limit = DEFAULT_STREAMS
    """Concurrent streamed answers (0: no limit)."""
    expires_in: str | None = None
    """e.g. 90d, 12h, 30m, or seconds; none: never."""


class KeyOut(msgspec.Struct, frozen=True):
    name: str
    scopes: list[str]
    limits: KeyLimits
    created_at: float
    expires_at: float | None
    expired: bool
    hint: str
    """The first characters of the key, to tell keys apart."""
    usage: KeyUsage


class CreatedKey(KeyOut, frozen=True):
    key: str = ""
    """The key itself: shown this once, stored only as its SHA-256."""


class KeyList(msgspec.Struct, frozen=True):
    keys: list[KeyOut]
    scopes: list[str]
    """Every scope there is."""


class KeyRevoked(msgspec.Struct, frozen=True):
    name: str
    revoked: bool


def key_out(record: KeyRecord, now: float) -> KeyOut:
    return KeyOut(
        name=record.name,
        scopes=list(record.scopes),
        limits=record.limits,
        created_at=record.created_at,
        expires_at=record.expires_at,
        expired=record.expired(now),
        hint=record.hint,
        usage=record.usage,
    )


class KeysController(Controller):
    path = "/v1/keys"
    tags = ["keys"]

    @get("/", summary="Every API key with its scopes, limits and usage (never the key)")
    async def list_keys(self, key_store: KeyStore) -> KeyList:
        now = time.time()
        return KeyList(keys=[key_out(r, now) for r in await key_store.list()], scopes=list(SCOPES))

    @post("/", status_code=201, summary="Create a key (shown once in the answer; 409 if taken)")
    async def create(self, data: CreateKeyBody, key_store: KeyStore) -> CreatedKey:
        expires_in = parse_duration(data.expires_in, "expires_in") if data.expires_in else None
        token, record = await key_store.create(
            data.name,
            data.scopes,
            KeyLimits(rpm=data.rpm, chars_per_min=data.chars_per_min, streams=data.streams),
            expires_in_s=expires_in,
        )
        out = key_out(record, record.created_at)
        return CreatedKey(**msgspec.structs.asdict(out), key=token)

    @get("/{name:str}", summary="One key: scopes, limits, last use and usage counted in Redis")
    async def describe(self, name: str, key_store: KeyStore) -> KeyOut:
        return key_out(await key_store.get(name), time.time())

    @delete("/{name:str}", status_code=200, summary="Revoke a key (refused with 401 from now on)")
    async def revoke(self, name: str, key_store: KeyStore) -> KeyRevoked:
        await key_store.revoke(name)
        return KeyRevoked(name=name, revoked=True)
