"""The per-key Lua checks against a real Redis server: scopes, expiry, revocation, the
token buckets' arithmetic (remaining, Retry-After, a request larger than the quota) and
concurrent-stream slots. No gateway: ``Limiter`` and ``KeyStore`` are called directly."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from services.gateway.access.limiter import Limiter, Refused
from shared.access.records import KeyLimits
from shared.access.store import AccessKeys, KeyStore
from shared.access.tokens import digest
from shared.errors import ErrorCode

KEYS = AccessKeys("babel")


@pytest.fixture
async def parts(redis_client: aioredis.Redis) -> tuple[KeyStore, Limiter]:
    return KeyStore(redis_client, KEYS), Limiter(redis_client, KEYS)


async def test_unknown_key_is_refused(parts: tuple[KeyStore, Limiter]) -> None:
    _, limiter = parts
    with pytest.raises(Refused) as refused:
        await limiter.admit(digest("bsk_nothing"), "search")
    assert refused.value.error.code == ErrorCode.UNAUTHENTICATED


async def test_scope_is_checked(parts: tuple[KeyStore, Limiter]) -> None:
    store, limiter = parts
    token, _ = await store.create("reader", "search", KeyLimits())
    grant = await limiter.admit(digest(token), "search")
    assert grant.name == "reader"
    with pytest.raises(Refused) as refused:
        await limiter.admit(digest(token), "generate")
    assert refused.value.error.code == ErrorCode.PERMISSION_DENIED
    assert "generate" in str(refused.value.error)


async def test_revoked_and_expired_keys_are_refused(parts: tuple[KeyStore, Limiter]) -> None:
    store, limiter = parts
    token, _ = await store.create("gone", "all", KeyLimits())
    await store.revoke("gone")
    with pytest.raises(Refused) as revoked:
        await limiter.admit(digest(token), "search")
    assert revoked.value.error.code == ErrorCode.UNAUTHENTICATED
    short, _ = await store.create("short", "all", KeyLimits(), expires_in_s=0.2)
    await asyncio.sleep(0.4)
    with pytest.raises(Refused) as expired:
        await limiter.admit(digest(short), "search")
    assert "expired" in str(expired.value.error)


async def test_request_bucket_counts_down_then_refuses_with_retry_after(
    parts: tuple[KeyStore, Limiter],
) -> None:
    store, limiter = parts
    token, _ = await store.create("burst", "all", KeyLimits(rpm=3, chars_per_min=0))
    remaining = []
    for _ in range(3):
        grant = await limiter.admit(digest(token), "analyze")
        remaining.append(grant.policies["requests"].remaining)
    assert remaining == [2, 1, 0]
    with pytest.raises(Refused) as refused:
        await limiter.admit(digest(token), "analyze")
    error = refused.value.error
    assert error.code == ErrorCode.RATE_LIMITED
    # One request a 20 s interval: the fourth may come 20 s after the first.
    assert error.info.retry_after_s is not None
    assert 18 <= error.info.retry_after_s <= 20
    record = await store.get("burst")
    assert record.usage.requests == 3
    assert record.usage.throttled == 1


async def test_chars_bucket_and_a_request_larger_than_the_quota(
    parts: tuple[KeyStore, Limiter],
) -> None:
    store, limiter = parts
    token, _ = await store.create("chars", "all", KeyLimits(rpm=0, chars_per_min=100))
    grant = await limiter.admit(digest(token), "analyze")
    await limiter.charge(grant, 90, stream_id=None, lease_s=60)
    assert grant.policies["chars"].remaining == 10
    with pytest.raises(Refused) as refused:
        await limiter.charge(grant, 20, stream_id=None, lease_s=60)
    assert refused.value.reason == "chars"
    # 10 more characters are owed 6 s (100 a minute) from now, not a whole minute.
    retry = refused.value.error.info.retry_after_s
    assert retry is not None
    assert 1 <= retry <= 7
    await limiter.charge(grant, 10, stream_id=None, lease_s=60)
    assert (await store.get("chars")).usage.chars == 100

    big, _ = await store.create("big", "all", KeyLimits(rpm=0, chars_per_min=100))
    big_grant = await limiter.admit(digest(big), "analyze")
    await limiter.charge(big_grant, 250, stream_id=None, lease_s=60)  # a full bucket lets it by
    with pytest.raises(Refused) as owing:
        await limiter.charge(big_grant, 1, stream_id=None, lease_s=60)
    retry = owing.value.error.info.retry_after_s
    # 250 characters at 100 a minute: 150 more than a full bucket, so the next character
    # comes 150 - 60 + 0.6 s from now.
    assert retry is not None
    assert 89 <= retry <= 91


async def test_stream_slots(parts: tuple[KeyStore, Limiter]) -> None:
    store, limiter = parts
    token, _ = await store.create("streamer", "all", KeyLimits(streams=2))
    grant = await limiter.admit(digest(token), "generate")
    await limiter.charge(grant, 10, stream_id="s1", lease_s=60)
    await limiter.charge(grant, 10, stream_id="s2", lease_s=60)
    with pytest.raises(Refused) as refused:
        await limiter.charge(grant, 10, stream_id="s3", lease_s=60)
    assert refused.value.reason == "streams"
    assert (await store.get("streamer")).usage.active_streams == 2
    await limiter.release(grant, "s1")
    await limiter.charge(grant, 10, stream_id="s3", lease_s=60)
    # A slot whose lease ran out (a gateway that died mid-stream) frees itself.
    await limiter.release(grant, "s2")
    await limiter.release(grant, "s3")
    await limiter.charge(grant, 0, stream_id="a", lease_s=0.2)
    await limiter.charge(grant, 0, stream_id="b", lease_s=0.2)
    await asyncio.sleep(0.4)
    await limiter.charge(grant, 0, stream_id="c", lease_s=60)


async def test_names_are_unique_and_records_hold_no_key(
    parts: tuple[KeyStore, Limiter], redis_client: aioredis.Redis
) -> None:
    store, _ = parts
    token, record = await store.create("team-a", "search,generate", KeyLimits())
    assert record.scopes == ("search", "generate")
    with pytest.raises(Exception, match="exists"):
        await store.create("team-a", "search", KeyLimits())
    stored = await redis_client.hgetall(KEYS.record(digest(token)))
    assert token.encode() not in b"".join(k + v for k, v in stored.items())
    assert [r.name for r in await store.list()] == ["team-a"]
