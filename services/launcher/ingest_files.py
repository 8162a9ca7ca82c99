"""Which files ``babelstack ingest`` sends: discovery, type by extension, document ids.

The types are those the retrieval service extracts text from (``POST .../files``): text,
Markdown, HTML and PDF, recognised by extension. A document's id is its path relative to the
folder *above* the argument it was found under (``docs/guide/setup.md`` for the argument
``docs``; ``setup.md`` for the argument ``docs/guide/setup.md``), so ids do not depend on
the working directory and re-ingesting a file replaces its document (the API upserts by id).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

MEDIA_TYPES = {
    ".txt": "text/plain",
    ".text": "text/plain",
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".html": "text/html",
    ".htm": "text/html",
    ".xhtml": "application/xhtml+xml",
    ".pdf": "application/pdf",
}
"""Extension → the media type sent with the upload (what the retrieval service accepts)."""

SUPPORTED = ".txt .md .html .pdf"
MAX_ID_CHARS = 256
"""The retrieval service's limit on document ids."""

_TEXT_TYPES = frozenset({"text/plain", "text/markdown", "text/html", "application/xhtml+xml"})
_UTF8_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class Candidate:
    """A file found under the arguments: sent when ``skip`` is None, else reported."""

    path: Path
    document_id: str
    media_type: str | None
    skip: str | None = None


@dataclass(frozen=True)
class Discovery:
    candidates: list[Candidate]
    unsearched_folders: int
    """Subfolders not entered (no ``--recursive``)."""


def media_type_of(path: Path) -> str | None:
    return MEDIA_TYPES.get(path.suffix.lower())


def unsupported_reason(path: Path) -> str:
    suffix = path.suffix.lower()
    what = suffix if suffix else "no extension"
    return f"unsupported type ({what}); supported: {SUPPORTED}"


def _walk(folder: Path, recursive: bool) -> tuple[list[Path], int]:
    """Files under ``folder``, sorted; hidden entries are left out, links to folders too."""
    found: list[Path] = []
    unsearched = 0
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        if not recursive:
            unsearched += len(dirs)
            dirs.clear()
        found.extend(Path(root) / f for f in sorted(files) if not f.startswith("."))
    return found, unsearched


def _document_id(path: Path, folder: Path) -> str:
    """``path`` relative to the folder above ``folder`` (links are not followed: a linked
    file keeps the name it has in the folder)."""
    base = Path(os.path.abspath(folder)).parent
    return Path(os.path.abspath(path)).relative_to(base).as_posix()


def discover(arguments: Iterable[Path], *, recursive: bool) -> Discovery:
    """Every file of the arguments (files as given, folders walked), each with its id or why
    it is skipped. An argument that does not exist raises ``FileNotFoundError``."""
    candidates: list[Candidate] = []
    seen_paths: set[Path] = set()
    seen_ids: dict[str, Path] = {}
    unsearched = 0
    for argument in arguments:
        if argument.is_dir():
            files, skipped_dirs = _walk(argument, recursive)
            unsearched += skipped_dirs
        elif argument.exists():
            files = [argument]
        else:
            raise FileNotFoundError(f"no such file or folder: {argument}")
        for path in files:
            resolved = path.resolve()
            if resolved in seen_paths:
                continue
            seen_paths.add(resolved)
            document_id = _document_id(path, argument) if argument.is_dir() else path.name
            candidates.append(_candidate(path, document_id, seen_ids))
    return Discovery(candidates=candidates, unsearched_folders=unsearched)


def _candidate(path: Path, document_id: str, seen_ids: dict[str, Path]) -> Candidate:
    media_type = media_type_of(path)
    if not path.is_file():
        return Candidate(path, document_id, media_type, "not a regular file")
    if media_type is None:
        return Candidate(path, document_id, None, unsupported_reason(path))
    if len(document_id) > MAX_ID_CHARS:
        return Candidate(path, document_id, media_type, f"id longer than {MAX_ID_CHARS} chars")
    if document_id in seen_ids:
        return Candidate(
            path, document_id, media_type, f"same document id as {seen_ids[document_id]}"
        )
    seen_ids[document_id] = path
    return Candidate(path, document_id, media_type)


def size_skip_reason(size: int, max_bytes: int) -> str | None:
    """Why a file of ``size`` bytes is not read (too large, empty), or None."""
    if size > max_bytes:
        return f"too large ({_mib(size)}; the limit is {_mib(max_bytes)})"
    if size == 0:
        return "empty"
    return None


def content_skip_reason(data: bytes, media_type: str) -> str | None:
    """Why these bytes are not sent (a text file of whitespace only), or None."""
    if media_type in _TEXT_TYPES and not data.removeprefix(_UTF8_BOM).strip():
        return "empty"
    return None


def _mib(n_bytes: int) -> str:
    return f"{n_bytes / 2**20:.1f} MiB"


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
