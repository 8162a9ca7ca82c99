"""The durable store: collections, documents, chunks with their vectors, and a
per-collection FTS5 table for BM25 — all in one SQLite file.

SQLite is the source of truth. A write commits (WAL, synchronous=FULL) before the
service acknowledges it; the FAISS index is rebuilt from the stored vectors
whenever its snapshot is older than the collection's ``generation``.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from services.retrieval.filters import SqlFilter, json_type
from shared.errors import BabelError, ErrorCode
from shared.rpc.handlers import serving_context

SCHEMA = """
CREATE TABLE IF NOT EXISTS collections (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    model TEXT NOT NULL,
    dim INTEGER NOT NULL,
    created_at REAL NOT NULL,
    generation INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS documents (
    collection_id INTEGER NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
    id TEXT NOT NULL,
    metadata TEXT NOT NULL,
    chars INTEGER NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (collection_id, id)
);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    collection_id INTEGER NOT NULL,
    document_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    start INTEGER NOT NULL,
    "end" INTEGER NOT NULL,
    text TEXT NOT NULL,
    language TEXT NOT NULL,
    vector BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_by_document ON chunks (collection_id, document_id);
CREATE TABLE IF NOT EXISTS collection_calls (
    collection_id INTEGER PRIMARY KEY REFERENCES collections(id) ON DELETE CASCADE,
    call_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS fields (
    collection_id INTEGER NOT NULL,
    field TEXT NOT NULL,
    type TEXT NOT NULL,
    PRIMARY KEY (collection_id, field, type)
);
"""


SQL_VARIABLES = 500
"""Bound parameters per statement: far below SQLite's limit (999 in older builds)."""


def batched(values: Sequence[Any], size: int = SQL_VARIABLES) -> Iterator[list[Any]]:
    """``values`` in lists of at most ``size``: one statement each, never past the limit."""
    for start in range(0, len(values), size):
        yield list(values[start : start + size])


@dataclass(frozen=True, slots=True)
class Collection:
    id: int
    name: str
    model: str
    dim: int
    created_at: float
    generation: int

    @property
    def fts(self) -> str:
        return f"fts_{self.id}"


@dataclass(frozen=True, slots=True)
class NewChunk:
    idx: int
    start: int
    end: int
    text: str
    language: str
    tokens: str
    """Space-separated BM25 tokens."""


@dataclass(frozen=True, slots=True)
class NewDocument:
    id: str
    metadata: dict[str, Any]
    chars: int
    chunks: Sequence[NewChunk]
    vectors: np.ndarray


@dataclass(frozen=True, slots=True)
class StoredChunk:
    id: int
    document_id: str
    idx: int
    start: int
    end: int
    text: str
    language: str
    metadata: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Change:
    """What a committed write did, for the vector index to follow."""

    generation: int
    removed: np.ndarray
    added: np.ndarray
    vectors: np.ndarray
    documents: int
    replaced: int


class DocStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(SCHEMA)
        self.lock = threading.RLock()

    def close(self) -> None:
        with self.lock:
            self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self.lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            caller = serving_context()  # set by the RPC dispatcher, carried into threads
            if caller is not None and caller.remaining_s() <= 0:
                self._db.execute("ROLLBACK")  # the client has its 504: store nothing
                raise BabelError(
                    ErrorCode.DEADLINE_EXCEEDED,
                    "the request's deadline passed before its change was stored; nothing was "
                    "changed",
                    retryable=True,
                )
            self._db.execute("COMMIT")

    # ------------------------------------------------------------------ collections
    def create_collection(self, name: str, model: str, dim: int, call_id: str = "") -> Collection:
        """Create ``name``; 409 if it exists, unless the RPC call ``call_id`` created it (the
        same call delivered again after its worker died): then it is returned as created."""
        with self._transaction() as db:
            existing = db.execute(
                "SELECT c.id, k.call_id FROM collections c "
                "LEFT JOIN collection_calls k ON k.collection_id = c.id WHERE c.name = ?",
                (name,),
            ).fetchone()
            if existing is not None:
                if not (call_id and existing[1] == call_id):
                    raise BabelError(
                        ErrorCode.CONFLICT, f"collection {name!r} already exists", field="name"
                    )
                return self.collection(name)
            cursor = db.execute(
                "INSERT INTO collections (name, model, dim, created_at) VALUES (?, ?, ?, ?)",
                (name, model, dim, time.time()),
            )
            collection_id = int(cursor.lastrowid or 0)
            if call_id:
                db.execute(
                    "INSERT INTO collection_calls (collection_id, call_id) VALUES (?, ?)",
                    (collection_id, call_id),
                )
            db.execute(
                f"CREATE VIRTUAL TABLE fts_{collection_id} "
                'USING fts5(tokens, tokenize = "unicode61 remove_diacritics 0 '
                "categories 'L* M* N* Co'\")"
            )
        return self.collection(name)

    def collection(self, name: str) -> Collection:
        with self.lock:
            row = self._db.execute(
                "SELECT id, name, model, dim, created_at, generation FROM collections "
                "WHERE name = ?",
                (name,),
            ).fetchone()
        if row is None:
            raise BabelError(
                ErrorCode.NOT_FOUND, f"collection {name!r} does not exist", field="collection"
            )
        return Collection(*row)

    def collections(self) -> list[Collection]:
        with self.lock:
            rows = self._db.execute(
                "SELECT id, name, model, dim, created_at, generation FROM collections ORDER BY name"
            ).fetchall()
        return [Collection(*row) for row in rows]

    def delete_collection(self, collection: Collection) -> tuple[int, int]:
        with self._transaction() as db:
            documents, chunks = self._counts(collection)
            db.execute("DELETE FROM chunks WHERE collection_id = ?", (collection.id,))
            db.execute("DELETE FROM fields WHERE collection_id = ?", (collection.id,))
            db.execute("DELETE FROM collection_calls WHERE collection_id = ?", (collection.id,))
            db.execute("DELETE FROM documents WHERE collection_id = ?", (collection.id,))
            db.execute("DELETE FROM collections WHERE id = ?", (collection.id,))
            db.execute(f"DROP TABLE IF EXISTS {collection.fts}")
        return documents, chunks

    def _counts(self, collection: Collection) -> tuple[int, int]:
        documents = self._db.execute(
            "SELECT count(*) FROM documents WHERE collection_id = ?", (collection.id,)
        ).fetchone()[0]
        chunks = self._db.execute(
            "SELECT count(*) FROM chunks WHERE collection_id = ?", (collection.id,)
        ).fetchone()[0]
        return int(documents), int(chunks)

    def stats(self, collection: Collection) -> tuple[int, int, dict[str, int]]:
        with self.lock:
            documents, chunks = self._counts(collection)
            languages = dict(
                self._db.execute(
                    "SELECT language, count(*) FROM chunks WHERE collection_id = ? "
                    "GROUP BY language ORDER BY count(*) DESC",
                    (collection.id,),
                ).fetchall()
            )
        return documents, chunks, languages

    def field_types(self, collection: Collection) -> dict[str, set[str]]:
        with self.lock:
            rows = self._db.execute(
                "SELECT field, type FROM fields WHERE collection_id = ?", (collection.id,)
            ).fetchall()
        types: dict[str, set[str]] = {}
        for field, kind in rows:
            types.setdefault(field, set()).add(kind)
        return types

    # ------------------------------------------------------------------ writes
    def _remove_documents(
        self, db: sqlite3.Connection, collection: Collection, ids: Sequence[str]
    ) -> tuple[list[int], int]:
        removed: list[int] = []
        existed = 0
        for document_id in ids:
            chunk_ids = [
                row[0]
                for row in db.execute(
                    "SELECT id FROM chunks WHERE collection_id = ? AND document_id = ?",
                    (collection.id, document_id),
                )
            ]
            removed.extend(chunk_ids)
            existed += db.execute(
                "DELETE FROM documents WHERE collection_id = ? AND id = ?",
                (collection.id, document_id),
            ).rowcount
        for batch in batched(removed):
            marks = ",".join("?" * len(batch))
            db.execute(f"DELETE FROM chunks WHERE id IN ({marks})", batch)
            db.execute(f"DELETE FROM {collection.fts} WHERE rowid IN ({marks})", batch)
        return removed, existed

    def _bump(self, db: sqlite3.Connection, collection: Collection) -> int:
        db.execute(
            "UPDATE collections SET generation = generation + 1 WHERE id = ?", (collection.id,)
        )
        return int(
            db.execute(
                "SELECT generation FROM collections WHERE id = ?", (collection.id,)
            ).fetchone()[0]
        )

    def upsert(self, collection: Collection, documents: Sequence[NewDocument]) -> Change:
        """Replace each document (by id) with its new chunks, in one transaction."""
        added: list[int] = []
        vectors: list[np.ndarray] = []
        with self._transaction() as db:
            removed, replaced = self._remove_documents(db, collection, [d.id for d in documents])
            now = time.time()
            for document in documents:
                db.execute(
                    "INSERT INTO documents (collection_id, id, metadata, chars, updated_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (
                        collection.id,
                        document.id,
                        json.dumps(document.metadata),
                        document.chars,
                        now,
                    ),
                )
                for field, value in document.metadata.items():
                    db.execute(
                        "INSERT OR IGNORE INTO fields (collection_id, field, type) "
                        "VALUES (?, ?, ?)",
                        (collection.id, field, json_type(value)),
                    )
                for chunk, vector in zip(document.chunks, document.vectors, strict=True):
                    cursor = db.execute(
                        'INSERT INTO chunks (collection_id, document_id, idx, start, "end", text, '
                        "language, vector) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            collection.id,
                            document.id,
                            chunk.idx,
                            chunk.start,
                            chunk.end,
                            chunk.text,
                            chunk.language,
                            vector.astype(np.float32).tobytes(),
                        ),
                    )
                    chunk_id = int(cursor.lastrowid or 0)
                    db.execute(
                        f"INSERT INTO {collection.fts} (rowid, tokens) VALUES (?, ?)",
                        (chunk_id, chunk.tokens),
                    )
                    added.append(chunk_id)
                    vectors.append(vector)
            generation = self._bump(db, collection)
        return Change(
            generation=generation,
            removed=np.asarray(removed, dtype=np.int64),
            added=np.asarray(added, dtype=np.int64),
            vectors=np.asarray(vectors, dtype=np.float32).reshape(len(added), collection.dim),
            documents=len(documents),
            replaced=replaced,
        )

    def delete_documents(self, collection: Collection, ids: Sequence[str]) -> Change:
        with self._transaction() as db:
            removed, existed = self._remove_documents(db, collection, ids)
            generation = self._bump(db, collection)
        empty = np.zeros(0, dtype=np.int64)
        return Change(
            generation=generation,
            removed=np.asarray(removed, dtype=np.int64),
            added=empty,
            vectors=np.zeros((0, collection.dim), dtype=np.float32),
            documents=existed,
            replaced=0,
        )

    # ------------------------------------------------------------------ reads
    def vectors(self, collection: Collection) -> tuple[np.ndarray, np.ndarray]:
        """Every chunk id and vector of a collection (to rebuild its index)."""
        with self.lock:
            rows = self._db.execute(
                "SELECT id, vector FROM chunks WHERE collection_id = ? ORDER BY id",
                (collection.id,),
            ).fetchall()
        ids = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
        vectors = np.frombuffer(b"".join(row[1] for row in rows), dtype=np.float32)
        return ids, vectors.reshape(len(rows), collection.dim)

    def chunks(self, ids: Sequence[int]) -> dict[int, StoredChunk]:
        rows: list[Any] = []
        with self.lock:
            for batch in batched([int(i) for i in ids]):
                marks = ",".join("?" * len(batch))
                rows += self._db.execute(
                    f'SELECT c.id, c.document_id, c.idx, c.start, c."end", c.text, c.language, '
                    f"d.metadata FROM chunks c JOIN documents d "
                    f"ON d.collection_id = c.collection_id AND d.id = c.document_id "
                    f"WHERE c.id IN ({marks})",
                    batch,
                ).fetchall()
        return {
            row[0]: StoredChunk(
                id=row[0],
                document_id=row[1],
                idx=row[2],
                start=row[3],
                end=row[4],
                text=row[5],
                language=row[6],
                metadata=json.loads(row[7]),
            )
            for row in rows
        }

    def documents(
        self, collection: Collection, after: str | None, limit: int
    ) -> list[tuple[str, int, int, str, float, str]]:
        """One page of documents by id: (id, chars, chunks, languages, updated_at, metadata);
        ``languages`` is comma-separated."""
        with self.lock:
            rows = self._db.execute(
                "SELECT d.id, d.chars, count(c.id),"
                " coalesce(group_concat(DISTINCT c.language), ''), d.updated_at, d.metadata"
                " FROM (SELECT * FROM documents WHERE collection_id = ?"
                " AND id > ? ORDER BY id LIMIT ?) d LEFT JOIN chunks c"
                " ON c.collection_id = d.collection_id AND c.document_id = d.id"
                " GROUP BY d.id ORDER BY d.id",
                (collection.id, after or "", limit),
            ).fetchall()
        return [tuple(row) for row in rows]

    def document_chunks(
        self, collection: Collection, document_id: str, first: int, limit: int
    ) -> tuple[int, list[tuple[int, int, int, str, str]]]:
        """(chunks of the document, [(idx, start, end, text, language)] from ``first``)."""
        with self.lock:
            total = self._db.execute(
                "SELECT count(*) FROM chunks WHERE collection_id = ? AND document_id = ?",
                (collection.id, document_id),
            ).fetchone()[0]
            rows = self._db.execute(
                'SELECT idx, start, "end", text, language FROM chunks WHERE collection_id = ?'
                " AND document_id = ? AND idx >= ? ORDER BY idx LIMIT ?",
                (collection.id, document_id, first, limit),
            ).fetchall()
        return int(total), [tuple(row) for row in rows]

    def _conditions(
        self, collection: Collection, sql_filter: SqlFilter | None, languages: Sequence[str]
    ) -> tuple[str, list[Any]]:
        where = ["c.collection_id = ?"]
        params: list[Any] = [collection.id]
        if sql_filter is not None:
            where.append(f"({sql_filter.where})")
            params.extend(sql_filter.params)
        if languages:
            where.append(f"c.language IN ({','.join('?' * len(languages))})")
            params.extend(languages)
        return " AND ".join(where), params

    def allowed(
        self, collection: Collection, sql_filter: SqlFilter | None, languages: Sequence[str]
    ) -> np.ndarray:
        where, params = self._conditions(collection, sql_filter, languages)
        with self.lock:
            rows = self._db.execute(
                f"SELECT c.id FROM chunks c JOIN documents d "
                f"ON d.collection_id = c.collection_id AND d.id = c.document_id WHERE {where}",
                params,
            ).fetchall()
        return np.asarray([row[0] for row in rows], dtype=np.int64)

    def bm25(
        self,
        collection: Collection,
        match: str,
        k: int,
        sql_filter: SqlFilter | None,
        languages: Sequence[str],
    ) -> list[tuple[int, float]]:
        """Best ``k`` chunks by FTS5's BM25 (higher is better)."""
        where, params = self._conditions(collection, sql_filter, languages)
        fts = collection.fts
        with self.lock:
            rows = self._db.execute(
                f"SELECT c.id, -bm25({fts}) AS score FROM {fts} "
                f"JOIN chunks c ON c.id = {fts}.rowid "
                f"JOIN documents d ON d.collection_id = c.collection_id AND d.id = c.document_id "
                f"WHERE {fts} MATCH ? AND {where} ORDER BY score DESC LIMIT ?",
                [match, *params, k],
            ).fetchall()
        return [(int(row[0]), float(row[1])) for row in rows]

    def size_bytes(self) -> int:
        return sum(
            p.stat().st_size for p in self.path.parent.glob(self.path.name + "*") if p.is_file()
        )
