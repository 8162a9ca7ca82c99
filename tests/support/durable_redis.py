"""A Redis server of a test's own with the append-only file on, that the test can kill and
start again on the same port and data directory (what a restarted Redis pod or container
does). Started and stopped by its own pid.

``appendfsync everysec``, the setting of compose.yaml and the Kubernetes manifests: Redis
appends every write to the AOF (``write()``) before it sends the reply, so a killed Redis
*process* loses nothing it acknowledged (unless a slow disk's background ``fsync`` made it
hold the append back, at most 2 s; not on a test machine's idle disk). The once-a-second
``fsync`` bounds the loss to about a second only when the whole machine fails, which a test
cannot stage; ``always`` would cover that too, at a large cost per write.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import redis

from services.launcher.processes import child_preexec
from services.launcher.redis_server import find_server_binary, free_port


@dataclass
class DurableRedis:
    """One redis-server process at a time on ``port``, its AOF in ``directory``."""

    port: int
    directory: Path
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout_s: float = 15.0) -> None:
        """Start the server (replaying its AOF, if any) and wait until it answers PING."""
        assert self.process is None or self.process.poll() is not None, "already running"
        self.directory.mkdir(parents=True, exist_ok=True)
        log = (self.directory / "redis.log").open("ab")
        self.process = subprocess.Popen(
            [
                find_server_binary(),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.directory),
                "--appendonly",
                "yes",
                "--appendfsync",
                "everysec",
                "--save",
                "",
                "--daemonize",
                "no",
                "--maxmemory",
                "512mb",
                "--maxmemory-policy",
                "noeviction",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=child_preexec,
        )
        self.starts += 1
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=0.2)
        give_up = time.monotonic() + timeout_s
        try:
            while True:
                if self.process.poll() is not None:
                    raise AssertionError(f"redis-server exited; see {self.directory}/redis.log")
                try:
                    if client.ping():
                        return
                except redis.ConnectionError:
                    pass
                except redis.ResponseError as exc:  # LOADING: still replaying the AOF
                    if "LOADING" not in str(exc):
                        raise
                if time.monotonic() > give_up:
                    raise AssertionError(f"redis-server did not answer within {timeout_s} s")
                time.sleep(0.02)
        finally:
            client.close()

    def kill(self) -> None:
        """SIGKILL: no shutdown, no last save; what is in the AOF is all that survives."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def forget_everything(self) -> None:
        """Delete the data directory's AOF (the server must be down): the next start is an
        empty Redis, like one restarted without a persistent volume."""
        assert self.process is None or self.process.poll() is not None, "still running"
        shutil.rmtree(self.directory / "appendonlydir", ignore_errors=True)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_durable_redis(directory: Path) -> DurableRedis:
    server = DurableRedis(port=free_port(), directory=directory)
    server.start()
    return server
