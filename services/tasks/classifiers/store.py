"""Custom classifiers on disk: ``<data_dir>/classifiers/<name>.msgpack``, one file each.

A file holds the classifier's description and head weights; it is written once, whole
(temp file + fsync + hard link, so two workers creating the same name cannot both win),
and read back by every worker that sharing the folder, reloaded when it changes. It also
names the RPC call that created it, so that the same call delivered again (its worker died
before replying, and another took it over) finds its own classifier instead of a conflict.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import msgspec

from services.tasks.heads import Head, HeadWeights
from shared.atomic import create_atomic
from shared.errors import BabelError, ErrorCode
from shared.messages.classifiers import ClassifierInfo

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
SUFFIX = ".msgpack"


class StoredClassifier(msgspec.Struct, frozen=True, kw_only=True):
    info: ClassifierInfo
    weights: HeadWeights
    created_by: str = ""
    """The id of the RPC call that created it (empty in files written before it was kept)."""


@dataclass(frozen=True)
class _Loaded:
    stamp: tuple[int, int, int]
    info: ClassifierInfo
    head: Head


def check_name(name: str) -> None:
    if not NAME.fullmatch(name):
        raise BabelError(
            ErrorCode.INVALID_ARGUMENT,
            "a classifier name is 1-64 letters, digits, '-' or '_', starting with a letter "
            "or digit",
            field="name",
        )


class ClassifierStore:
    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._loaded: dict[str, _Loaded] = {}

    def _path(self, name: str) -> Path:
        check_name(name)
        return self._folder / f"{name}{SUFFIX}"

    def exists(self, name: str) -> bool:
        return self._path(name).is_file()

    def created_by_call(self, name: str, call_id: str) -> ClassifierInfo | None:
        """The classifier ``name`` if the call ``call_id`` created it, else None."""
        try:
            stored = msgspec.msgpack.decode(self._path(name).read_bytes(), type=StoredClassifier)
        except FileNotFoundError:
            return None
        return stored.info if call_id and stored.created_by == call_id else None

    def create(self, info: ClassifierInfo, head: Head, call_id: str = "") -> None:
        stored = StoredClassifier(info=info, weights=head.weights, created_by=call_id)
        if not create_atomic(self._path(info.name), msgspec.msgpack.encode(stored)):
            raise BabelError(
                ErrorCode.CONFLICT, f"classifier {info.name!r} already exists", field="name"
            )

    def get(self, name: str) -> tuple[ClassifierInfo, Head]:
        path = self._path(name)
        try:
            stat = path.stat()
        except FileNotFoundError:
            self._loaded.pop(name, None)
            raise BabelError(ErrorCode.NOT_FOUND, f"no classifier {name!r}") from None
        stamp = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        loaded = self._loaded.get(name)
        if loaded is None or loaded.stamp != stamp:
            try:
                stored = msgspec.msgpack.decode(path.read_bytes(), type=StoredClassifier)
            except FileNotFoundError:
                raise BabelError(ErrorCode.NOT_FOUND, f"no classifier {name!r}") from None
            loaded = _Loaded(stamp=stamp, info=stored.info, head=Head(stored.weights))
            self._loaded[name] = loaded
        return loaded.info, loaded.head

    def list(self) -> list[ClassifierInfo]:
        if not self._folder.is_dir():
            return []
        infos = []
        for path in sorted(self._folder.glob(f"*{SUFFIX}")):
            name = path.name.removesuffix(SUFFIX)
            if not NAME.fullmatch(name):
                continue
            try:
                infos.append(self.get(name)[0])
            except BabelError:  # deleted meanwhile
                continue
        return infos

    def delete(self, name: str) -> None:
        path = self._path(name)
        self._loaded.pop(name, None)
        try:
            path.unlink()
        except FileNotFoundError:
            raise BabelError(ErrorCode.NOT_FOUND, f"no classifier {name!r}") from None
