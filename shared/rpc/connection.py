"""Redis connections built from settings."""

from __future__ import annotations

import redis.asyncio as aioredis

from shared.settings import RedisSettings


def connect(settings: RedisSettings) -> aioredis.Redis:
    """A client whose pool allows as many concurrent blocking calls as configured."""
    pool = aioredis.BlockingConnectionPool.from_url(
        settings.url,
        max_connections=settings.max_connections,
        timeout=None,
        socket_keepalive=True,
        health_check_interval=30,
    )
    return aioredis.Redis(connection_pool=pool)
