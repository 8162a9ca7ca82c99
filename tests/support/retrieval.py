"""Retrieval workers for tests: environment, start, wait until ready; a hand-made PDF.

A retrieval worker (``python -m services.retrieval``) loads the prepared embedding model
from the model cache, offline. ``worker_env`` scrubs every ``BABEL_*`` variable of the test
run, so the cache directory (``BABEL_MODELS_DIR``, when the run sets one) is passed on here
explicitly; otherwise the worker uses the default cache, ``~/.cache/babelstack/models``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec
import redis

from shared.messages.system import WorkerInfo
from shared.models.cache import E5_SMALL, ModelCacheSettings
from shared.rpc.keys import Keys
from tests.support.processes import WorkerProcess, start_worker

SERVICE = "retrieval"
MODEL = E5_SMALL
LOAD_TIMEOUT_S = 120.0
"""Loading the model takes 5-10 s on a laptop; leave room for a slow, busy machine."""

_decoder = msgspec.msgpack.Decoder(WorkerInfo)


def model_cache_dir() -> Path:
    """Where the prepared models are: the run's ``BABEL_MODELS_DIR``, else the default."""
    configured = os.environ.get("BABEL_MODELS_DIR")
    return Path(configured).expanduser() if configured else ModelCacheSettings().root


def retrieval_env(data_dir: Path, overrides: Mapping[str, Any] | None = None) -> dict[str, str]:
    """``BABEL_*`` settings of a retrieval worker on ``data_dir``, offline, plus ``overrides``."""
    env = {
        "BABEL_RETRIEVAL_DATA_DIR": str(data_dir),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    if configured := os.environ.get("BABEL_MODELS_DIR"):
        env["BABEL_MODELS_DIR"] = configured
    env.update({key: str(value) for key, value in (overrides or {}).items()})
    return env


def start_retrieval_worker(
    *,
    redis_url: str,
    data_dir: Path,
    log_dir: Path,
    name: str,
    env: Mapping[str, Any] | None = None,
) -> WorkerProcess:
    """Start ``python -m services.retrieval`` on ``data_dir`` (returns at once; see below)."""
    return start_worker(
        "services.retrieval",
        redis_url=redis_url,
        log_dir=log_dir,
        name=name,
        env=retrieval_env(data_dir, env),
    )


def wait_worker_ready(
    redis_url: str,
    worker: WorkerProcess,
    *,
    service: str = SERVICE,
    timeout_s: float = LOAD_TIMEOUT_S,
    keys: Keys | None = None,
) -> WorkerInfo:
    """Block until this worker process (by pid) publishes a ``ready`` heartbeat.

    Fails early, with the log tail, if the process exits meanwhile.
    """
    keys = keys or Keys()
    give_up = time.monotonic() + timeout_s
    client = redis.Redis.from_url(redis_url)
    try:
        while True:
            worker.assert_alive()
            for key in client.scan_iter(match=keys.heartbeat_pattern(service), count=100):
                raw: Any = client.get(key)
                if raw is None:
                    continue
                info = _decoder.decode(raw)
                if info.pid == worker.pid and info.state == "ready":
                    return info
            if time.monotonic() > give_up:
                raise AssertionError(
                    f"worker {worker.name} not ready within {timeout_s} s; "
                    f"log {worker.log_path}:\n{worker.log_tail()}"
                )
            time.sleep(0.1)
    finally:
        client.close()
