"""A throw-away stack of chosen services for the translation and langid benchmarks.

Redis (the launcher's ``start_redis``), ``python -m <module>`` for each service and the
gateway, on a free port, in a scratch folder; ready when ``/readyz`` answers 200;
stopped (by their own pids) on the way out, always. Logs are kept when it failed.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from services.launcher.processes import Child, spawn, stop_all
from services.launcher.redis_server import free_port, start_redis
from services.launcher.stack import read_readiness

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "bench" / "data"
"""The benchmarks' evaluation sets (``bench/data/README.md``)."""
MODULES = {
    "tasks": "services.tasks",
    "generation": "services.generation",
    "retrieval": "services.retrieval",
}


@contextmanager
def services_stack(
    services: tuple[str, ...],
    extra_env: Mapping[str, str] | None = None,
    say: Callable[[str], None] = print,
    ready_timeout_s: float = 600.0,
) -> Iterator[str]:
    """Start Redis, ``services`` and the gateway; yield the gateway's base URL."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    folder = Path(tempfile.mkdtemp(prefix="babel-bench-"))
    redis = start_redis(folder / "redis")
    port = free_port()
    extra = dict(extra_env or {})
    env = {k: v for k, v in os.environ.items() if not k.startswith("BABEL_") and k != "REDIS_URL"}
    env.update(
        {
            "HF_HUB_OFFLINE": "1",
            "BABEL_LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(REPO),
            "BABEL_SENTIMENT_BACKEND": "off",  # these benchmarks need no sentiment head
            **extra,
            "REDIS_URL": redis.url,
            "BABEL_GATEWAY_PORT": str(port),
            "BABEL_GATEWAY_SERVICES": ",".join(services),
        }
    )
    children: list[Child] = []
    ok = False
    try:
        for name in services:
            children.append(spawn(name, [sys.executable, "-m", MODULES[name]], env, folder))
        children.append(spawn("gateway", [sys.executable, "-m", "services.gateway"], env, folder))
        base_url = f"http://127.0.0.1:{port}"
        started = time.perf_counter()
        while read_readiness(base_url)[0] != 200:
            dead = [c.name for c in children if not c.alive()]
            if dead or time.perf_counter() - started > ready_timeout_s:
                raise RuntimeError(f"stack not ready ({dead or 'timeout'}); logs in {folder}")
            time.sleep(0.5)
        say(f"stack ({', '.join(services)}) ready in {time.perf_counter() - started:.1f} s")
        yield base_url
        ok = True
    finally:
        stop_all(list(reversed(children)), grace_s=30.0)
        redis.stop()
        if ok:
            shutil.rmtree(folder, ignore_errors=True)
        else:
            say(f"logs kept in {folder}")
