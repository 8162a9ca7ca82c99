"""One retrieval process per data directory: an exclusive lock on ``<data_dir>/.lock``.

The retrieval service is the one writer of its SQLite store and FAISS snapshots. A second
process on the same folder (a second replica on a shared volume, a forgotten worker) would
write snapshots over the first one's, so it refuses to start instead. The lock is an
``flock`` on a file in the folder: the kernel drops it when the holder exits, however it
exits (SIGKILL included), so no stale lock is ever left behind. The file holds the holder's
host and pid, for the message the second process prints.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from pathlib import Path

from shared.errors import BabelError, ErrorCode

LOCK_FILE = ".lock"


class DataDirLock:
    """Held from :meth:`acquire` until :meth:`release` or the end of the process."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, or raise ``conflict`` naming the folder and who holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise BabelError(
                ErrorCode.CONFLICT,
                f"the retrieval data directory {self.path.parent} is in use by another "
                f"retrieval process ({holder}); run one retrieval worker per data directory "
                "(BABEL_RETRIEVAL_DATA_DIR)",
                field="BABEL_RETRIEVAL_DATA_DIR",
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"host={socket.gethostname()} pid={os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def _read_holder(fd: int) -> str:
    with contextlib.suppress(OSError):
        text = os.pread(fd, 200, 0).decode(errors="replace").strip()
        if text:
            return text
    return "holder unknown"
