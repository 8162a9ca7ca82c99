"""Service worker subprocesses for tests: started with ``python -m``, stopped by their own pid."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from services.launcher.processes import kill_group

REPO_ROOT = Path(__file__).resolve().parents[2]

_PR_SET_PDEATHSIG = 1

# Variables of the parent that would leak into a worker and change what a test sets up.
_SCRUBBED_PREFIXES = ("BABEL_",)
_SCRUBBED_NAMES = ("REDIS_URL",)
_KEPT_NAMES = ("BABEL_MODELS_DIR",)
"""Where the prepared models are is the machine's, not the test's: workers keep it."""


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM it if the test run dies (Linux only)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def worker_env(redis_url: str, overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a worker: the parent's minus BABEL_* (but BABEL_MODELS_DIR) and
    REDIS_URL, plus ``overrides``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key in _KEPT_NAMES
        or (key not in _SCRUBBED_NAMES and not key.startswith(_SCRUBBED_PREFIXES))
    }
    pythonpath = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(REPO_ROOT) + (os.pathsep + pythonpath if pythonpath else "")
    env["PYTHONUNBUFFERED"] = "1"
    env["REDIS_URL"] = redis_url
    env["BABEL_LOG_JSON"] = "false"
    env.update({key: str(value) for key, value in (overrides or {}).items()})
    return env


@dataclass
class WorkerProcess:
    """One ``python -m <module>`` child; every signal goes to its own pid only."""

    name: str
    module: str
    process: subprocess.Popen[bytes]
    log_path: Path
    env: dict[str, str] = field(repr=False)

    @property
    def pid(self) -> int:
        return self.process.pid

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
                f"worker {self.name} (pid {self.pid}) exited with {self.process.returncode}; "
                f"log {self.log_path}:\n{self.log_tail()}"
            )

    def signal(self, signum: int) -> None:
        if self.alive():
            self.process.send_signal(signum)

    def kill(self) -> None:
        """SIGKILL, and reap it (and what it started)."""
        self.signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        kill_group(self.pid)

    def wait(self, timeout_s: float) -> int:
        return self.process.wait(timeout=timeout_s)

    def stop(self, timeout_s: float = 10.0) -> int:
        """SIGTERM, wait up to ``timeout_s``, then SIGKILL; return the exit status."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
        code = self.process.wait()
        kill_group(self.pid)
        return code


def start_worker(
    module: str,
    *,
    redis_url: str,
    log_dir: Path,
    name: str | None = None,
    env: Mapping[str, str] | None = None,
    prefix: Sequence[str] = (),
) -> WorkerProcess:
    """Start ``python -m module`` from the repository root with its log in ``log_dir``;
    ``prefix`` goes before the command (``nice -n 5``: it execs, so the pid is Python's)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    name = name or module.rsplit(".", 1)[-1]
    log_path = log_dir / f"{name}.log"
    full_env = worker_env(redis_url, env)
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [*prefix, sys.executable, "-m", module],
            cwd=REPO_ROOT,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
            start_new_session=True,
        )
    return WorkerProcess(name=name, module=module, process=process, log_path=log_path, env=full_env)


StartWorker = Callable[..., WorkerProcess]
"""Type of the ``start_service_worker`` fixture: ``start(module, name=None, env=None)``."""


def descendants(pid: int) -> list[int]:
    """Process ids of every process below ``pid`` (children, their children, ...), from /proc."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found
