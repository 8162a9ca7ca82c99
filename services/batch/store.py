"""The batch store: uploaded files, batch records and chunk results in one folder.

A local folder by default; in compose/Kubernetes a volume every gateway and Celery worker
mounts (ReadWriteMany). Every write is atomic (temp file + rename), so a reader sees a whole
record or none; read-modify-write of a batch record holds an ``flock`` on its lock file.
Ids sort by creation time, newest last, so listing pages by id.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import msgspec

from services.batch.records import (
    BatchObject,
    BatchPlan,
    ChunkResult,
    FileObject,
    PlannedLine,
    RequestCounts,
)
from shared.atomic import create_atomic, write_atomic
from shared.errors import BabelError, ErrorCode

_json = msgspec.json.Encoder()
_file_decoder = msgspec.json.Decoder(FileObject)
_batch_decoder = msgspec.json.Decoder(BatchObject)
_plan_decoder = msgspec.msgpack.Decoder(BatchPlan)
_chunk_in_decoder = msgspec.msgpack.Decoder(list[PlannedLine])
_chunk_out_decoder = msgspec.msgpack.Decoder(ChunkResult)
_counts_decoder = msgspec.json.Decoder(RequestCounts)


def new_id(prefix: str) -> str:
    """``prefix`` + creation time (ns, hex, sortable) + 8 random hex digits."""
    return f"{prefix}{time.time_ns():016x}{uuid.uuid4().hex[:8]}"


def _safe(object_id: str) -> str:
    """An id as a file name; anything that could leave the folder is simply unknown."""
    if not object_id or "/" in object_id or object_id.startswith(".") or "\0" in object_id:
        raise BabelError(ErrorCode.NOT_FOUND, f"no such object: {object_id!r}")
    return object_id


class BatchStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._files = root / "files"
        self._batches = root / "batches"
        self._keys = root / "idempotency"

    # ------------------------------------------------------------------ files
    def _file_meta(self, file_id: str) -> Path:
        return self._files / f"{_safe(file_id)}.json"

    def file_path(self, file_id: str) -> Path:
        return self._files / f"{_safe(file_id)}.jsonl"

    def put_file(self, file: FileObject, content: bytes) -> FileObject:
        write_atomic(self.file_path(file.id), content)
        write_atomic(self._file_meta(file.id), _json.encode(file))
        return file

    def get_file(self, file_id: str) -> FileObject:
        try:
            return _file_decoder.decode(self._file_meta(file_id).read_bytes())
        except FileNotFoundError:
            raise BabelError(ErrorCode.NOT_FOUND, f"no file {file_id!r}", field="file_id") from None

    def file_content(self, file_id: str) -> bytes:
        self.get_file(file_id)
        return self.file_path(file_id).read_bytes()

    def delete_file(self, file_id: str) -> bool:
        self.get_file(file_id)
        self._file_meta(file_id).unlink(missing_ok=True)
        self.file_path(file_id).unlink(missing_ok=True)
        return True

    def list_files(self) -> list[FileObject]:
        if not self._files.is_dir():
            return []
        names = sorted(p.stem for p in self._files.glob("*.json"))
        found = []
        for name in names:
            with contextlib.suppress(BabelError):
                found.append(self.get_file(name))
        return found

    # ------------------------------------------------------------------ batches
    def _record(self, batch_id: str) -> Path:
        return self._batches / f"{_safe(batch_id)}.json"

    def _folder(self, batch_id: str) -> Path:
        return self._batches / _safe(batch_id)

    def put_batch(self, batch: BatchObject) -> BatchObject:
        write_atomic(self._record(batch.id), _json.encode(batch))
        return batch

    def get_batch(self, batch_id: str) -> BatchObject:
        try:
            return _batch_decoder.decode(self._record(batch_id).read_bytes())
        except FileNotFoundError:
            raise BabelError(ErrorCode.NOT_FOUND, f"no batch {batch_id!r}") from None

    def batch_ids(self) -> list[str]:
        if not self._batches.is_dir():
            return []
        return sorted(p.stem for p in self._batches.glob("*.json"))

    @contextlib.contextmanager
    def _locked(self, batch_id: str) -> Iterator[None]:
        lock = self._batches / f"{_safe(batch_id)}.lock"
        lock.parent.mkdir(parents=True, exist_ok=True)
        with open(lock, "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def update_batch(
        self, batch_id: str, change: Callable[[BatchObject], BatchObject | None]
    ) -> BatchObject:
        """Apply ``change`` under the record's lock; it returns the new record or None (keep)."""
        with self._locked(batch_id):
            current = self.get_batch(batch_id)
            changed = change(current)
            if changed is None:
                return current
            return self.put_batch(changed)

    # ------------------------------------------------------------------ cancel marker
    def mark_cancelled(self, batch_id: str) -> None:
        write_atomic(self._folder(batch_id) / "cancel", b"1")

    def cancelled(self, batch_id: str) -> bool:
        return (self._folder(batch_id) / "cancel").exists()

    # ------------------------------------------------------------------ plan and chunks
    def put_plan(self, batch_id: str, plan: BatchPlan, chunks: list[list[PlannedLine]]) -> None:
        folder = self._folder(batch_id)
        for index, lines in enumerate(chunks):
            write_atomic(folder / "in" / f"{index}.msgpack", msgspec.msgpack.encode(lines))
        write_atomic(folder / "plan.msgpack", msgspec.msgpack.encode(plan))

    def get_plan(self, batch_id: str) -> BatchPlan | None:
        try:
            return _plan_decoder.decode((self._folder(batch_id) / "plan.msgpack").read_bytes())
        except FileNotFoundError:
            return None

    def chunk_input(self, batch_id: str, index: int) -> list[PlannedLine]:
        raw = (self._folder(batch_id) / "in" / f"{index}.msgpack").read_bytes()
        return _chunk_in_decoder.decode(raw)

    def put_chunk_result(self, batch_id: str, result: ChunkResult) -> None:
        """Replace the chunk's results whole: a redelivered chunk never duplicates a line.
        Then its counts (what progress reads), so a counted chunk always has its results."""
        folder = self._folder(batch_id)
        write_atomic(folder / "out" / f"{result.chunk}.msgpack", msgspec.msgpack.encode(result))
        counts = RequestCounts(completed=result.completed, failed=result.failed)
        write_atomic(folder / "done" / f"{result.chunk}.json", _json.encode(counts))

    def chunk_counts(self, batch_id: str) -> list[RequestCounts]:
        """Counts of every finished chunk (small files: cheap enough for each progress read)."""
        done = self._folder(batch_id) / "done"
        if not done.is_dir():
            return []
        return [_counts_decoder.decode(p.read_bytes()) for p in done.glob("*.json")]

    def chunk_result(self, batch_id: str, index: int) -> ChunkResult | None:
        try:
            raw = (self._folder(batch_id) / "out" / f"{index}.msgpack").read_bytes()
        except FileNotFoundError:
            return None
        return _chunk_out_decoder.decode(raw)

    def finished_chunks(self, batch_id: str) -> list[int]:
        done = self._folder(batch_id) / "done"
        if not done.is_dir():
            return []
        return sorted(int(p.stem) for p in done.glob("*.json"))

    def drop_work(self, batch_id: str) -> None:
        """Remove a finished batch's intermediate files (its record and output files stay)."""
        for part in ("in", "out"):
            shutil.rmtree(self._folder(batch_id) / part, ignore_errors=True)

    # ------------------------------------------------------------------ idempotency keys
    def claim_key(self, scope: str, key: str, object_id: str) -> str:
        """The id ``key`` stands for: ``object_id`` if this call claimed it, else the first's."""
        digest = hashlib.sha256(key.encode()).hexdigest()
        path = self._keys / f"{scope}-{digest}"
        if create_atomic(path, object_id.encode()):
            return object_id
        return path.read_text()

    def release_key(self, scope: str, key: str) -> None:
        digest = hashlib.sha256(key.encode()).hexdigest()
        (self._keys / f"{scope}-{digest}").unlink(missing_ok=True)


def store_of(root: Path) -> BatchStore:
    root.mkdir(parents=True, exist_ok=True)
    os.makedirs(root / "files", exist_ok=True)
    return BatchStore(root)
