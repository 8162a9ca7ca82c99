"""Start and stop the embedded stack: Redis, each service worker and the gateway."""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from services.launcher.cores import available_cores, plan_cores, with_nice
from services.launcher.processes import Child, spawn, stop_all
from services.launcher.redis_server import (
    RedisServer,
    forget_redis_url,
    start_redis,
    write_redis_url,
)
from shared.errors import BabelError, ErrorCode
from shared.progress import SILENT, Progress, StatusBoard
from shared.settings import RedisSettings

SERVICE_MODULES: dict[str, str] = {
    "generation": "services.generation",
    "retrieval": "services.retrieval",
    "tasks": "services.tasks",
}
"""Every model service the launcher can run, by name, in start order (the slowest first)."""


@dataclass
class StackConfig:
    host: str
    port: int
    services: Sequence[str]
    state_dir: Path
    ready_timeout_s: float
    grace_s: float = 25.0
    share_cores: bool = True
    """Give vLLM and the other services cores of their own (:mod:`services.launcher.cores`)."""


@dataclass
class Stack:
    config: StackConfig
    redis_url: str
    redis: RedisServer | None = None
    children: list[Child] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://{self.config.host}:{self.config.port}"

    def stop(self) -> None:
        """Gateway first (no new work), then workers (finish in flight), then Redis."""
        stop_all(list(reversed(self.children)), grace_s=self.config.grace_s)
        if self.redis is not None:
            self.redis.stop()
            forget_redis_url(self.config.state_dir)


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex((host, port)) != 0


def read_readiness(base_url: str, timeout_s: float = 2.0) -> tuple[int, dict[str, object]]:
    """GET /readyz; (status, JSON body), or (0, {"error": ...}) when nothing answers."""
    try:
        with urllib.request.urlopen(f"{base_url}/readyz", timeout=timeout_s) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return 0, {"error": str(exc)}


def readiness_states(
    status: int, body: Mapping[str, object], services: Sequence[str]
) -> dict[str, str]:
    """Each service's state and the gateway's from one ``/readyz`` answer (``status`` 0: none).

    ``starting`` until the gateway answers, then ``loading`` until a service has a ready
    worker, then ``ready``.
    """
    if status == 0:
        return {name: "starting" for name in (*services, "gateway")}
    reported = body.get("services")
    states = {}
    for name in services:
        entry = reported.get(name) if isinstance(reported, dict) else None
        ready = isinstance(entry, dict) and entry.get("ready") is True
        states[name] = "ready" if ready else "loading"
    states["gateway"] = "ready"
    return states


def start_stack(
    config: StackConfig,
    environ: Mapping[str, str],
    say: Callable[[str], None],
    progress: Progress = SILENT,
) -> Stack:
    unknown = [name for name in config.services if name not in SERVICE_MODULES]
    if unknown:
        raise BabelError(
            ErrorCode.INVALID_ARGUMENT,
            f"unknown service(s) {unknown}; known: {sorted(SERVICE_MODULES)}",
            field="services",
        )
    if not _port_free(config.host, config.port):
        raise BabelError(
            ErrorCode.CONFLICT, f"port {config.port} on {config.host} is in use; pick --port"
        )
    logs = config.state_dir / "logs"
    external = environ.get("REDIS_URL")
    stack = Stack(config=config, redis_url=external or "")
    try:
        if not external:
            password = RedisSettings.from_env(environ).password
            stack.redis = start_redis(config.state_dir / "redis", password=password)
            stack.redis_url = stack.redis.url
            write_redis_url(config.state_dir, stack.redis_url)  # for `babelstack keys`
            auth = ", AUTH on" if password else ""
            say(f"redis      {stack.redis_url} (pid {stack.redis.pid}{auth})")
        else:
            say(f"redis      {external} (from REDIS_URL)")
        env = {
            **environ,
            "REDIS_URL": stack.redis_url,
            "BABEL_GATEWAY_HOST": config.host,
            "BABEL_GATEWAY_PORT": str(config.port),
            "BABEL_GATEWAY_SERVICES": ",".join(config.services),
            "BABEL_RETRIEVAL_DATA_DIR": environ.get(
                "BABEL_RETRIEVAL_DATA_DIR", str(config.state_dir / "data" / "retrieval")
            ),
            "BABEL_BATCH_DIR": environ.get("BABEL_BATCH_DIR", str(config.state_dir / "batch")),
            "BABEL_TASKS_DATA_DIR": environ.get(
                "BABEL_TASKS_DATA_DIR", str(config.state_dir / "data" / "tasks")
            ),
        }
        plan = plan_cores(available_cores() if config.share_cores else [], config.services, environ)
        say(plan.describe())
        for name in config.services:
            argv = with_nice([sys.executable, "-m", SERVICE_MODULES[name]], name, plan)
            child = spawn(name, argv, {**env, **plan.env.get(name, {})}, logs)
            stack.children.append(child)
            say(f"{name:<10} pid {child.pid}, log {child.log_path}")
        batch = spawn("batch", [sys.executable, "-m", "services.batch"], env, logs)
        stack.children.append(batch)  # the Celery worker of batch jobs (loads no model)
        say(f"{'batch':<10} pid {batch.pid}, log {batch.log_path}")
        gateway = spawn("gateway", [sys.executable, "-m", "services.gateway"], env, logs)
        stack.children.append(gateway)
        say(f"{'gateway':<10} pid {gateway.pid}, log {gateway.log_path}")
        with progress.board([*config.services, "gateway"]) as board:
            _wait_ready(stack, board)
    except BaseException:
        stack.stop()
        raise
    return stack


def _wait_ready(stack: Stack, board: StatusBoard) -> None:
    """Poll ``/readyz`` until every service is ready, showing each one's state on ``board``."""
    started = time.monotonic()
    give_up = started + stack.config.ready_timeout_s
    ready_after: dict[str, float] = {}
    while time.monotonic() < give_up:
        for child in stack.children:
            if not child.alive():
                board.update(child.name, "exited", f"code {child.process.returncode}")
                raise BabelError(
                    ErrorCode.UNAVAILABLE,
                    f"{child.name} exited with code {child.process.returncode}; "
                    f"see {child.log_path}",
                )
        status, body = read_readiness(stack.base_url, timeout_s=1.0)
        elapsed = time.monotonic() - started
        for name, state in readiness_states(status, body, stack.config.services).items():
            if state == "ready":
                ready_after.setdefault(name, elapsed)
            board.update(name, state, f"{ready_after.get(name, elapsed):.0f} s")
        if status == 200:
            return
        time.sleep(0.25)
    raise BabelError(
        ErrorCode.DEADLINE_EXCEEDED,
        f"the stack was not ready within {stack.config.ready_timeout_s:.0f} s "
        f"(see {stack.config.state_dir / 'logs'})",
    )


def run_until_stopped(stack: Stack, say: Callable[[str], None]) -> int:
    """Block until SIGINT/SIGTERM or a child's death; stop everything; return an exit code."""
    stopping: list[int] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stopping.append(signum)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    code = 0
    try:
        while not stopping:
            dead = [child for child in stack.children if not child.alive()]
            if dead:
                for child in dead:
                    say(
                        f"{child.name} exited with code {child.process.returncode}; "
                        f"see {child.log_path}"
                    )
                code = 1
                break
            time.sleep(0.2)
    finally:
        say("stopping ...")
        stack.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        say("stopped")
    return code


def default_state_dir() -> Path:
    return Path(os.environ.get("BABEL_STATE_DIR", ".babelstack"))
