"""Redis connections built from settings."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from shared.settings import RedisSettings


def connection_options(settings: RedisSettings) -> dict[str, Any]:
    """AUTH and TLS options beside the URL (a password in the URL wins over the setting)."""
    options: dict[str, Any] = {}
    if settings.password:
        options["password"] = settings.password
    if settings.username:
        options["username"] = settings.username
    if settings.tls_ca_file and settings.url.startswith("rediss://"):
        options["ssl_ca_certs"] = settings.tls_ca_file
    return options


CONNECT_TIMEOUT_S = 5.0


def connect(settings: RedisSettings) -> aioredis.Redis:
    """A client whose pool allows as many concurrent blocking calls as configured.

    Reads have no socket timeout: blocking commands (BLPOP for a reply, XREADGROUP BLOCK)
    carry their own, often longer than redis-py's default of 5 s, which would abort them.
    """
    pool = aioredis.BlockingConnectionPool.from_url(
        settings.url,
        **connection_options(settings),
        max_connections=settings.max_connections,
        timeout=None,
        socket_timeout=None,
        socket_connect_timeout=CONNECT_TIMEOUT_S,
        socket_keepalive=True,
        health_check_interval=30,
    )
    return aioredis.Redis(connection_pool=pool)
