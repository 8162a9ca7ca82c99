"""The gateway's access control: who a request acts for, and what it may still spend.

``AccessGate`` (ASGI, before the body is read) calls :meth:`AccessControl.admit`; the
service caller calls :meth:`AccessControl.charge` once the body is parsed. The grant of
the request in progress lives in a context variable, as the request id does.
"""

from __future__ import annotations

import contextvars
import hmac
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge
from redis.exceptions import RedisError

from services.gateway.access.charges import chars_of
from services.gateway.access.limiter import Grant, Limiter, Refused
from services.gateway.access.settings import (
    AccessSettings,
    bootstrap_digest,
    is_loopback,
    keys_required,
)
from shared.access.records import BOOTSTRAP_NAME
from shared.access.tokens import digest
from shared.errors import BabelError, ErrorCode
from shared.messages.base import Message
from shared.telemetry import get_logger

log = get_logger(__name__)

_grant: contextvars.ContextVar[Grant | None] = contextvars.ContextVar("grant", default=None)
NO_KEY: Final = "-"
"""The ``key`` label of refusals that name no known key."""


def current_grant() -> Grant | None:
    return _grant.get()


class KeyMetrics:
    """Per-key usage by key name (never the key), in the gateway's registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "babel_api_key_requests",
            "Requests admitted, by API key name",
            ["key"],
            registry=registry,
        )
        self.chars = Counter(
            "babel_api_key_chars", "Characters charged, by API key name", ["key"], registry=registry
        )
        self.refusals = Counter(
            "babel_api_key_refusals",
            "Requests refused, by API key name and reason",
            ["key", "reason"],
            registry=registry,
        )
        self.streams = Gauge(
            "babel_api_key_streams",
            "Streams open in this gateway, by API key name",
            ["key"],
            registry=registry,
        )


class AccessControl:
    def __init__(
        self,
        settings: AccessSettings,
        *,
        required: bool,
        bootstrap_digest: str | None,
        limiter: Limiter,
        metrics: KeyMetrics,
    ) -> None:
        self.settings = settings
        self.required = required
        self._bootstrap = bootstrap_digest
        self._limiter = limiter
        self.metrics = metrics

    async def admit(self, key: str | None, scope: str) -> Grant:
        """The grant of ``key`` on a route needing ``scope``; ``Refused`` (401/403/429) if none."""
        if key is None:
            self.metrics.refusals.labels(NO_KEY, "missing").inc()
            error = BabelError(
                ErrorCode.UNAUTHENTICATED,
                "an API key is required: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
            )
            raise Refused(error, "missing")
        key_digest = digest(key)
        if self._bootstrap is not None and hmac.compare_digest(key_digest, self._bootstrap):
            self.metrics.requests.labels(BOOTSTRAP_NAME).inc()
            return Grant(name=BOOTSTRAP_NAME, key_digest=None)
        try:
            grant = await self._limiter.admit(key_digest, scope)
        except Refused as exc:
            self.metrics.refusals.labels(exc.grant.name if exc.grant else NO_KEY, exc.reason).inc()
            raise
        self.metrics.requests.labels(grant.name).inc()
        return grant

    def enter(self, grant: Grant) -> contextvars.Token[Grant | None]:
        return _grant.set(grant)

    def leave(self, token: contextvars.Token[Grant | None]) -> None:
        _grant.reset(token)

    async def charge(self, request: Message, *, stream_id: str | None = None) -> Grant | None:
        """Count the request's characters (and open a stream) against the current key;
        the grant charged (None without a key)."""
        grant = current_grant()
        if grant is None:
            return None
        chars = chars_of(request)
        if chars == 0 and stream_id is None:
            return grant
        try:
            await self._limiter.charge(
                grant, chars, stream_id=stream_id, lease_s=self.settings.stream_lease_s
            )
        except Refused as exc:
            self.metrics.refusals.labels(grant.name, exc.reason).inc()
            raise exc.error from None
        except RedisError as exc:
            raise BabelError(
                ErrorCode.UNAVAILABLE,
                "the API key's quota cannot be checked: Redis is unavailable",
                retryable=True,
                retry_after_s=2.0,
            ) from exc
        self.metrics.chars.labels(grant.name).inc(chars)
        if stream_id is not None:
            self.metrics.streams.labels(grant.name).inc()
        return grant

    async def release(self, grant: Grant, stream_id: str) -> None:
        """Close a stream opened by :meth:`charge`."""
        self.metrics.streams.labels(grant.name).dec()
        await self._limiter.release(grant, stream_id)


def build_access(
    settings: AccessSettings, host: str, limiter: Limiter, registry: CollectorRegistry
) -> AccessControl:
    """The gateway's access control from its settings; says at start what it will enforce."""
    required = keys_required(settings, host)
    bootstrap = bootstrap_digest(settings)
    if settings.auth == "off":
        log.warning(
            "BABEL_AUTH=off: every request is served without an API key",
            host=host,
            loopback=is_loopback(host),
        )
    elif required:
        log.info("API keys required", host=host, bootstrap_admin=bootstrap is not None)
    return AccessControl(
        settings,
        required=required,
        bootstrap_digest=bootstrap,
        limiter=limiter,
        metrics=KeyMetrics(registry),
    )
