"""The trained sentiment head in the model cache: ``<models>/<head>/head.msgpack``.

The file holds the weights and the training record together (one atomic write);
``training.json`` beside it is the same record for people. ``features-*.npy`` files cache
the UMSAB embeddings so that training again with the same data and model is quick.
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from services.tasks.heads import Head, HeadConfig, HeadWeights
from shared.atomic import write_atomic
from shared.errors import BabelError, ErrorCode

HEAD_FILE = "head.msgpack"
RECORD_FILE = "training.json"


class SplitMetrics(msgspec.Struct, frozen=True, kw_only=True):
    examples: int
    accuracy: float
    macro_f1: float
    per_language_macro_f1: dict[str, float]


class HeadRecord(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    embedding_model: str
    input_type: str
    """The prefix kind the features were embedded with (``query``)."""
    normalization: str
    """How texts are normalised before embedding (``tweet``: see ``tweets.py``)."""
    data: str
    data_sha256: str
    train_examples: int
    config: HeadConfig
    train: SplitMetrics
    val: SplitMetrics | None
    trained_at: str
    train_seconds: float


class HeadArtifact(msgspec.Struct, frozen=True, kw_only=True):
    record: HeadRecord
    weights: HeadWeights


def head_folder(models_root: Path, head: str) -> Path:
    """A name in the model cache, or a path to a folder."""
    if "/" in head or head.startswith((".", "~")):
        return Path(head).expanduser()
    return models_root / head


def save_head(folder: Path, record: HeadRecord, head: Head) -> None:
    artifact = HeadArtifact(record=record, weights=head.weights)
    write_atomic(folder / HEAD_FILE, msgspec.msgpack.encode(artifact))
    write_atomic(folder / RECORD_FILE, msgspec.json.format(msgspec.json.encode(record)) + b"\n")


def load_head(folder: Path) -> tuple[HeadRecord, Head]:
    path = folder / HEAD_FILE
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise BabelError(
            ErrorCode.UNAVAILABLE,
            f"no sentiment head at {path}; run 'babelstack train sentiment' "
            "(or set BABEL_SENTIMENT_BACKEND=off)",
        ) from None
    try:
        artifact = msgspec.msgpack.decode(raw, type=HeadArtifact)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise BabelError(
            ErrorCode.UNAVAILABLE,
            f"sentiment head {path} is unreadable ({exc}); run 'babelstack train sentiment'",
        ) from exc
    return artifact.record, Head(artifact.weights)
