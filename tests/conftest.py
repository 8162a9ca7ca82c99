"""Fixtures for every suite: a real Redis server, a client on it, worker subprocesses.

Markers follow the directory: tests under ``tests/unit`` are ``unit``, ``tests/integration``
``integration`` and ``tests/e2e`` ``e2e``; tests need not mark themselves.
"""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from services.launcher.redis_server import RedisServer, start_redis
from shared.rpc.connection import connect
from shared.settings import RedisSettings
from tests.support.processes import StartWorker, WorkerProcess, start_worker

_TESTS_DIR = Path(__file__).resolve().parent
_DIRECTORY_MARKERS = {"unit": "unit", "integration": "integration", "e2e": "e2e"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        try:
            relative = Path(item.path).resolve().relative_to(_TESTS_DIR)
        except ValueError:
            continue
        marker = _DIRECTORY_MARKERS.get(relative.parts[0]) if relative.parts else None
        if marker is not None and item.get_closest_marker(marker) is None:
            item.add_marker(getattr(pytest.mark, marker))


# ---------------------------------------------------------------------- redis
@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A real, throw-away Redis server for the whole run, stopped by its own pid."""
    server = start_redis(tmp_path_factory.mktemp("redis"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """A client on the test server; the database is flushed before each test."""
    client = connect(RedisSettings(url=redis_url))
    await client.flushdb()
    try:
        yield client
    finally:
        await client.aclose()


# ---------------------------------------------------------------------- workers
@pytest.fixture
def start_service_worker(redis_url: str, tmp_path: Path) -> Iterator[StartWorker]:
    """Factory: ``start(module, name=None, env={...}) -> WorkerProcess``.

    Runs ``python -m module`` with ``REDIS_URL`` set to the test server, ``BABEL_LOG_JSON=false``
    and the given ``BABEL_*`` overrides; its log goes to ``tmp_path/<name>.log``. Every worker
    started here is stopped at teardown (SIGTERM, then SIGKILL after a timeout), by its own pid.
    """
    started: list[WorkerProcess] = []

    def start(
        module: str, *, name: str | None = None, env: Mapping[str, str] | None = None
    ) -> WorkerProcess:
        name = name or f"{module.rsplit('.', 1)[-1]}-{len(started)}"
        worker = start_worker(module, redis_url=redis_url, log_dir=tmp_path, name=name, env=env)
        started.append(worker)
        return worker

    try:
        yield start
    finally:
        for worker in started:  # signal all first, so their grace periods overlap
            worker.signal(signal.SIGTERM)
        for worker in started:
            worker.stop(timeout_s=5.0)
