"""A Redis database of its own, on the session's server, for one test module or scenario."""

from __future__ import annotations

import redis

from services.launcher.redis_server import RedisServer


def fresh_db_url(server: RedisServer, db: int) -> str:
    """The URL of database ``db`` of ``server``, flushed first."""
    url = f"redis://127.0.0.1:{server.port}/{db}"
    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()
    return url
