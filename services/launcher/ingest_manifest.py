"""What ``babelstack ingest`` has sent to a collection, so a re-run skips unchanged files.

The API upserts documents by id, so re-sending a file is always correct; the manifest only
saves the embedding work. It records, per document id, the SHA-256 of the file's bytes and of
the metadata sent with it, for one gateway URL and one collection *as created at* a time: a
collection deleted and created again (another ``created_at``) starts an empty manifest. It
is a JSON file in ``<state dir>/ingest/`` (written atomically); losing it costs a re-upload,
nothing else. A document deleted through the API behind the manifest's back is not noticed:
``--force`` sends everything again.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.atomic import write_atomic

VERSION = 1
SAVE_EVERY_S = 2.0
"""Saving after every file would rewrite a large manifest once per file."""

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def manifest_path(state_dir: Path, base_url: str, collection: str) -> Path:
    """One file per gateway and collection: ``<state>/ingest/<collection>-<url hash>.json``."""
    url_hash = hashlib.sha256(base_url.rstrip("/").encode()).hexdigest()[:12]
    name = _UNSAFE.sub("_", collection)[:80] or "collection"
    return state_dir / "ingest" / f"{name}-{url_hash}.json"


def fingerprint(metadata: dict[str, Any]) -> str:
    """The SHA-256 of the metadata as sent (keys sorted), to notice a changed ``--metadata``."""
    encoded = json.dumps(metadata, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(encoded.encode()).hexdigest()


@dataclass
class Manifest:
    path: Path
    base_url: str
    collection: str
    created_at: float
    documents: dict[str, dict[str, Any]] = field(default_factory=dict)
    _saved_at: float = 0.0
    _dirty: bool = False

    @classmethod
    def load(cls, path: Path, base_url: str, collection: str, created_at: float) -> Manifest:
        """The manifest at ``path`` if it is for this very collection, else an empty one.

        A file that is not a manifest of this version (damaged, hand-edited) counts as
        absent: the price is a re-upload.
        """
        fresh = cls(path=path, base_url=base_url, collection=collection, created_at=created_at)
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return fresh
        if not (
            isinstance(raw, dict)
            and raw.get("version") == VERSION
            and raw.get("collection") == collection
            and raw.get("created_at") == created_at
            and isinstance(raw.get("documents"), dict)
        ):
            return fresh
        fresh.documents = {
            str(key): value for key, value in raw["documents"].items() if isinstance(value, dict)
        }
        return fresh

    def unchanged(self, document_id: str, sha256: str, metadata_hash: str) -> bool:
        entry = self.documents.get(document_id)
        return (
            entry is not None
            and entry.get("sha256") == sha256
            and entry.get("metadata") == metadata_hash
        )

    def record(self, document_id: str, sha256: str, metadata_hash: str, chunks: int) -> None:
        self.documents[document_id] = {
            "sha256": sha256,
            "metadata": metadata_hash,
            "chunks": chunks,
        }
        self._dirty = True
        if time.monotonic() - self._saved_at >= SAVE_EVERY_S:
            self.save()

    def save(self) -> None:
        if not self._dirty and self.path.exists():
            return
        body = {
            "version": VERSION,
            "gateway": self.base_url,
            "collection": self.collection,
            "created_at": self.created_at,
            "documents": self.documents,
        }
        write_atomic(self.path, json.dumps(body, indent=1, ensure_ascii=False).encode())
        self._saved_at = time.monotonic()
        self._dirty = False
