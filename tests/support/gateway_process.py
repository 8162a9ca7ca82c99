"""The HTTP gateway as a real uvicorn subprocess: started on a free port, stopped by its own pid.

``start_gateway`` runs ``python -m services.gateway`` with ``REDIS_URL`` and
``BABEL_GATEWAY_PORT`` set (plus any ``BABEL_*`` overrides; the parent's are scrubbed, as
for workers) and returns once ``/healthz`` answers 200. ``wait_ready`` polls ``/readyz``.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from services.launcher.processes import child_preexec
from services.launcher.redis_server import free_port
from tests.support.processes import REPO_ROOT, WorkerProcess, worker_env

_START_ATTEMPTS = 3
"""A free port can be taken between ``free_port()`` and uvicorn's bind; try another then."""


@dataclass
class GatewayProcess:
    """One ``python -m services.gateway`` child listening on ``127.0.0.1:port``."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    env: dict[str, str] = field(repr=False)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def assert_alive(self) -> None:
        if not self.alive():
            raise AssertionError(
                f"gateway {self.name} (pid {self.pid}) exited with {self.process.returncode}; "
                f"log {self.log_path}:\n{self.log_tail()}"
            )

    def stop(self, timeout_s: float = 10.0) -> int:
        """SIGTERM (uvicorn shuts down gracefully), wait, then SIGKILL; return the exit status."""
        if self.alive():
            self.process.terminate()
            try:
                return self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.wait()


def _spawn(name: str, env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "services.gateway"],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=child_preexec,
        )


def _wait_healthy(gateway: GatewayProcess, timeout_s: float) -> bool:
    """True once ``/healthz`` answers 200; False if the process exited first."""
    give_up = time.monotonic() + timeout_s
    with httpx.Client(base_url=gateway.base_url, timeout=1.0) as client:
        while True:
            if not gateway.alive():
                return False
            try:
                if client.get("/healthz").status_code == 200:
                    return True
            except httpx.TransportError:
                pass
            if time.monotonic() > give_up:
                gateway.stop()
                raise AssertionError(
                    f"gateway {gateway.name} did not answer /healthz within {timeout_s} s; "
                    f"log {gateway.log_path}:\n{gateway.log_tail()}"
                )
            time.sleep(0.05)


def start_gateway(
    *,
    redis_url: str,
    log_dir: Path,
    name: str = "gateway",
    env: Mapping[str, Any] | None = None,
    timeout_s: float = 20.0,
) -> GatewayProcess:
    """Start the gateway on a free port and wait until ``/healthz`` answers."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    for _ in range(_START_ATTEMPTS):
        port = free_port()
        overrides = {key: str(value) for key, value in (env or {}).items()}
        defaults = {"BABEL_GATEWAY_PORT": str(port), "BABEL_GATEWAY_SERVICES": "tasks"}
        full_env = worker_env(redis_url, {**defaults, **overrides})
        gateway = GatewayProcess(
            name=name,
            port=port,
            process=_spawn(name, full_env, log_path),
            log_path=log_path,
            env=full_env,
        )
        if _wait_healthy(gateway, timeout_s):
            return gateway
        if "address already in use" not in gateway.log_text().lower():
            gateway.assert_alive()  # raises, with the log tail
    raise AssertionError(f"gateway {name} found no free port in {_START_ATTEMPTS} tries")


def wait_ready(
    gateway: GatewayProcess,
    *,
    timeout_s: float = 30.0,
    watch: Iterable[WorkerProcess] = (),
) -> dict[str, Any]:
    """Poll ``/readyz`` until it answers 200; return its body.

    Fails early, with logs, if the gateway or a watched worker process exits meanwhile.
    """
    watched = list(watch)
    give_up = time.monotonic() + timeout_s
    last: httpx.Response | None = None
    with httpx.Client(base_url=gateway.base_url, timeout=2.0) as client:
        while True:
            gateway.assert_alive()
            for worker in watched:
                worker.assert_alive()
            last = client.get("/readyz")
            if last.status_code == 200:
                body: dict[str, Any] = last.json()
                return body
            if time.monotonic() > give_up:
                logs = "".join(f"\n--- {w.name} log:\n{w.log_tail()}" for w in watched)
                raise AssertionError(
                    f"/readyz of {gateway.name} not 200 within {timeout_s} s: "
                    f"{last.status_code} {last.text}\n--- gateway log:\n{gateway.log_tail()}{logs}"
                )
            time.sleep(0.05)
