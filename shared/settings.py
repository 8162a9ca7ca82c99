"""Settings per concern, each read from environment variables with its own prefix.

Settings are plain frozen structs. They are built once, at process start, by
``load_settings(Cls, environ)`` and passed into constructors; nothing reads the
environment at import time.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar

import msgspec

from shared.errors import BabelError, ErrorCode

S = TypeVar("S", bound="BaseSettings")


class BaseSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Base of every settings struct; ``env_prefix`` names its environment variables."""

    env_prefix: ClassVar[str] = "BABEL_"


def _parse_value(raw: str, field_type: Any) -> Any:
    """Turn an environment string into something ``msgspec.convert`` accepts."""
    text = raw.strip()
    if text.startswith(("[", "{")):
        return msgspec.json.decode(text)
    origin = getattr(field_type, "__origin__", None)
    if origin in (tuple, list, frozenset, set):
        return [part.strip() for part in text.split(",") if part.strip()]
    return text


def load_settings(cls: type[S], environ: Mapping[str, str] | None = None, **overrides: Any) -> S:
    """Build ``cls`` from ``PREFIX_FIELD`` environment variables, then ``overrides``."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    hints = msgspec.structs.fields(cls)
    for field in hints:
        key = f"{cls.env_prefix}{field.name.upper()}"
        if key in env:
            values[field.name] = _parse_value(env[key], field.type)
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return msgspec.convert(values, cls, strict=False)
    except msgspec.ValidationError as exc:
        raise BabelError(
            ErrorCode.INVALID_ARGUMENT, f"bad setting for {cls.__name__} ({cls.env_prefix}*): {exc}"
        ) from exc


class RedisSettings(BaseSettings, frozen=True, kw_only=True):
    """Where Redis is. ``REDIS_URL`` (no prefix) is honoured as the conventional name.

    AUTH: a password in the URL (``redis://:pw@host``) or in ``BABEL_REDIS_PASSWORD``
    (kept out of URLs that get logged); TLS: a ``rediss://`` URL, with ``tls_ca_file`` for a
    private CA.
    """

    env_prefix: ClassVar[str] = "BABEL_REDIS_"
    url: str = "redis://127.0.0.1:6379/0"
    max_connections: int = 1024
    key_prefix: str = "babel"
    password: str = ""
    username: str = ""
    """An ACL user (Redis 6+), with ``password``."""
    tls_ca_file: str = ""
    """CA certificates that sign the server's certificate (``rediss://`` only)."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RedisSettings:
        env = os.environ if environ is None else environ
        return load_settings(cls, env, url=env.get("REDIS_URL") or env.get("BABEL_REDIS_URL"))


class WorkerSettings(BaseSettings, frozen=True, kw_only=True):
    """How a service worker reads its request stream."""

    env_prefix: ClassVar[str] = "BABEL_WORKER_"
    concurrency: int = 64
    """Requests in flight at once in one worker process."""
    block_ms: int = 500
    """How long one XREADGROUP waits for new entries (bounds the stop latency)."""
    claim_idle_ms: int = 30_000
    """An entry pending this long on a consumer that no longer renews it is reclaimed."""
    max_attempts: int = 3
    """Deliveries of one entry before it goes to the dead-letter stream."""
    heartbeat_ttl_ms: int = 5_000
    heartbeat_interval_ms: int = 1_000
    grace_period_s: float = 20.0
    """On SIGTERM, in-flight work gets this long to finish (< terminationGracePeriodSeconds)."""
    reply_ttl_s: int = 120
    dead_letter_maxlen: int = 10_000


class LogSettings(BaseSettings, frozen=True, kw_only=True):
    env_prefix: ClassVar[str] = "BABEL_LOG_"
    level: str = "INFO"
    json: bool = True
