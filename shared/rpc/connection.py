"""Redis connections built from settings."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ConstantBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from shared.settings import RedisSettings

REDIS_DOWN = (RedisConnectionError, RedisTimeoutError, OSError)
"""What a command raises when Redis cannot be reached (down, restarting, a lost connection)."""


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
RECONNECT_AFTER_S = 0.05
"""A command whose connection turns out broken is sent once more, on a new connection, this
long after. After a Redis restart every pooled connection is dead but looks open: without the
retry, each one failed one command (a reply not written, a call answered 503)."""


def connect(settings: RedisSettings) -> aioredis.Redis:
    """A client whose pool allows as many concurrent blocking calls as configured.

    Reads have no socket timeout: blocking commands (BLPOP for a reply, XREADGROUP BLOCK)
    carry their own, often longer than redis-py's default of 5 s, which would abort them.

    A connection error is retried once (not a timeout: a slow Redis is not made slower). A
    command lost with its connection while Redis stayed up may so run twice (an XADD: the
    request runs again, as after a worker's death; the contract is at-least-once).
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
        retry=Retry(
            ConstantBackoff(RECONNECT_AFTER_S), 1, supported_errors=(RedisConnectionError,)
        ),
    )
    return aioredis.Redis(connection_pool=pool)
