"""Child processes that die with their parent and are stopped by process id."""

from __future__ import annotations

import contextlib
import ctypes
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def child_preexec() -> None:
    """In the child, before exec: ask Linux to SIGTERM it when its parent dies."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    stopped: bool = field(default=False)

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None


def spawn(name: str, argv: Sequence[str], env: Mapping[str, str], log_dir: Path) -> Child:
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    log = log_path.open("ab")
    process = subprocess.Popen(
        list(argv), env=dict(env), stdout=log, stderr=subprocess.STDOUT, preexec_fn=child_preexec
    )
    return Child(name=name, process=process, log_path=log_path)


def stop_all(children: Sequence[Child], grace_s: float) -> None:
    """SIGTERM every child (in the order given), wait up to ``grace_s``, then SIGKILL."""
    for child in children:
        if child.alive():
            child.process.send_signal(signal.SIGTERM)
    for child in children:
        try:
            child.process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            child.process.kill()
            child.process.wait()
        child.stopped = True
