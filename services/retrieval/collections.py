"""Collections: the durable store plus one in-memory vector index per collection.

Every write goes store first (committed), then index, under the store's lock, so
search never sees an index ahead of or behind the store for long. At start each
index is loaded from its snapshot when the snapshot's generation matches the
store, else rebuilt from the stored vectors (after a crash, say).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from services.retrieval.settings import RetrievalSettings
from services.retrieval.store import Change, Collection, DocStore, NewDocument
from services.retrieval.vectors import VectorIndex
from shared.errors import BabelError, ErrorCode
from shared.messages.retrieval import CollectionInfo
from shared.telemetry import get_logger

log = get_logger(__name__)

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def check_name(name: str) -> None:
    if not _NAME.fullmatch(name):
        raise BabelError(
            ErrorCode.INVALID_ARGUMENT,
            "collection names are 1-64 letters, digits, '_', '.', '-' (starting alphanumeric)",
            field="name",
        )


class CollectionManager:
    def __init__(self, settings: RetrievalSettings, data_dir: Path) -> None:
        self._settings = settings
        self._data_dir = data_dir
        self.store = DocStore(data_dir / "retrieval.sqlite3")
        self._indexes: dict[int, VectorIndex] = {}
        self._dirty: set[int] = set()

    def _snapshot_path(self, collection: Collection) -> Path:
        return self._data_dir / "indexes" / f"{collection.id}.faiss"

    def _new_index(self, dim: int) -> VectorIndex:
        return VectorIndex(
            dim,
            self._settings.exact_max_chunks,
            self._settings.ivf_nprobe_fraction,
            self._settings.ivf_min_scanned,
        )

    # ------------------------------------------------------------------ lifecycle
    def recover(self) -> None:
        """Load or rebuild every collection's index so that it matches the store."""
        for collection in self.store.collections():
            index = self._new_index(collection.dim)
            loaded = index.load(self._snapshot_path(collection))
            if not loaded or index.generation != collection.generation:
                started = time.perf_counter()
                ids, vectors = self.store.vectors(collection)
                index.rebuild(ids, vectors, collection.generation)
                self._dirty.add(collection.id)
                log.info(
                    "rebuilt index from the store",
                    collection=collection.name,
                    chunks=len(ids),
                    snapshot_found=loaded,
                    seconds=round(time.perf_counter() - started, 3),
                )
            self._indexes[collection.id] = index

    def snapshot(self) -> int:
        """Write the snapshots of changed collections; returns how many were written."""
        written = 0
        with self.store.lock:
            for collection in self.store.collections():
                index = self._indexes.get(collection.id)
                if index is not None and collection.id in self._dirty:
                    index.save(self._snapshot_path(collection))
                    self._dirty.discard(collection.id)
                    written += 1
        return written

    async def snapshot_loop(self) -> None:
        while True:
            await asyncio.sleep(self._settings.snapshot_interval_s)
            await asyncio.to_thread(self.snapshot)

    def close(self) -> None:
        self.snapshot()
        self.store.close()

    # ------------------------------------------------------------------ collections
    def create(self, name: str, model: str, dim: int, call_id: str = "") -> CollectionInfo:
        """A new, empty collection (or the one this call created, delivered again)."""
        check_name(name)
        collection = self.store.create_collection(name, model, dim, call_id)
        if collection.id not in self._indexes:
            self._indexes[collection.id] = self._new_index(dim)
        return self.describe(name)

    def get(self, name: str) -> Collection:
        return self.store.collection(name)

    def index(self, collection: Collection) -> VectorIndex:
        return self._indexes[collection.id]

    def describe(self, name: str) -> CollectionInfo:
        collection = self.store.collection(name)
        documents, chunks, languages = self.store.stats(collection)
        index = self._indexes[collection.id]
        snapshot = self._snapshot_path(collection)
        return CollectionInfo(
            name=collection.name,
            model=collection.model,
            dim=collection.dim,
            documents=documents,
            chunks=chunks,
            languages=languages,
            index_type=f"faiss-{index.kind}",
            size_bytes=chunks * collection.dim * 4
            + (snapshot.stat().st_size if snapshot.exists() else 0),
            created_at=collection.created_at,
        )

    def list_all(self) -> list[CollectionInfo]:
        return [self.describe(c.name) for c in self.store.collections()]

    def delete(self, name: str) -> tuple[int, int]:
        with self.store.lock:
            collection = self.store.collection(name)
            counts = self.store.delete_collection(collection)
            self._indexes.pop(collection.id, None)
            self._dirty.discard(collection.id)
            for path in self._snapshot_path(collection).parent.glob(f"{collection.id}.*"):
                path.unlink(missing_ok=True)
        return counts

    # ------------------------------------------------------------------ writes
    def _follow(self, collection: Collection, change: Change) -> None:
        index = self._indexes[collection.id]
        outgrown = index.apply(change.removed, change.added, change.vectors, change.generation)
        if outgrown:
            ids, vectors = self.store.vectors(collection)
            index.rebuild(ids, vectors, change.generation)
            log.info("collection moved to an IVF index", collection=collection.name)
        self._dirty.add(collection.id)

    def upsert(self, collection: Collection, documents: Sequence[NewDocument]) -> Change:
        with self.store.lock:
            change = self.store.upsert(collection, documents)
            self._follow(collection, change)
        return change

    def delete_documents(self, collection: Collection, ids: Sequence[str]) -> Change:
        with self.store.lock:
            change = self.store.delete_documents(collection, ids)
            self._follow(collection, change)
        return change

    # ------------------------------------------------------------------ reads
    def dense(
        self, collection: Collection, query: np.ndarray, k: int, allowed: np.ndarray | None
    ) -> list[tuple[int, float]]:
        with self.store.lock:
            return self._indexes[collection.id].search(query[None, :], k, allowed)[0]
