"""``babelstack train sentiment``: the UMSAB head on frozen embeddings, deterministic.

Texts are normalised (``tweets.normalize_tweet``) and embedded with the ``query: `` prefix;
the embeddings of each split are cached in the head's folder, keyed by the data's hash,
the model and the normalisation, so training again is quick. Only the train split trains;
the val split is measured and recorded.
"""

from __future__ import annotations

import io
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from services.tasks.heads import Head, HeadConfig, train_head
from services.tasks.sentiment.artifact import HeadRecord, SplitMetrics, save_head
from services.tasks.sentiment.tweets import normalize_tweet
from services.tasks.sentiment.umsab import LABELS, Split, data_hash, load_split
from shared.atomic import write_atomic
from shared.messages.retrieval import InputType
from shared.models.embedder import Embedder
from shared.progress import SILENT, Progress

NORMALIZATION = "tweet"
EMBED_CHUNK = 64
"""Texts per ``encode`` call between progress reports: a multiple of the embedder's batch
size (32), so the batches, and with them the vectors, are those of one call on all texts."""
INPUT_TYPE: InputType = "query"
DEFAULT_CONFIG = HeadConfig(
    hidden=512,
    dropout=0.1,
    epochs=10,
    batch_size=32,
    lr=1e-3,
    weight_decay=0.01,
    label_smoothing=0.1,
    balanced=True,
    seeds=(0, 1, 2, 3, 4),
)
"""Chosen by 5-fold cross-validation on the train split (``bench/sentiment_eval.py``)."""


def macro_f1(truth: np.ndarray, predicted: np.ndarray, classes: int = len(LABELS)) -> float:
    scores = []
    for c in range(classes):
        tp = float(np.sum((predicted == c) & (truth == c)))
        fp = float(np.sum((predicted == c) & (truth != c)))
        fn = float(np.sum((predicted != c) & (truth == c)))
        scores.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores))


def split_metrics(
    truth: np.ndarray, predicted: np.ndarray, languages: Sequence[str]
) -> SplitMetrics:
    langs = np.asarray(languages)
    per_language = {
        lang: round(100 * macro_f1(truth[langs == lang], predicted[langs == lang]), 2)
        for lang in sorted(set(languages))
    }
    return SplitMetrics(
        examples=len(truth),
        accuracy=round(100 * float(np.mean(truth == predicted)), 2),
        macro_f1=round(100 * macro_f1(truth, predicted), 2),
        per_language_macro_f1=per_language,
    )


def embed_texts(
    embedder: Embedder, texts: Sequence[str], progress: Progress, description: str
) -> np.ndarray:
    """``embedder.encode`` on ``texts``, shortest first in chunks of :data:`EMBED_CHUNK`
    (sorted as the embedder sorts them itself), counted on a progress bar."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    vectors = np.zeros((len(texts), embedder.dim), dtype=np.float32)
    with progress.task(description, total=len(texts), unit="texts") as advance:
        for start in range(0, len(order), EMBED_CHUNK):
            rows = order[start : start + EMBED_CHUNK]
            chunk, _ = embedder.encode([texts[i] for i in rows], INPUT_TYPE)
            vectors[rows] = chunk
            advance(len(rows))
    return vectors


def split_features(
    embedder: Embedder,
    data: Path,
    split: str,
    cache_folder: Path,
    log: bool = True,
    progress: Progress = SILENT,
) -> tuple[Split, np.ndarray]:
    """The split and its embeddings (computed once, then read from ``cache_folder``)."""
    loaded = load_split(data, split)
    key = f"{data_hash(data, split)[:16]}-{embedder.name}-{NORMALIZATION}-{INPUT_TYPE}"
    path = cache_folder / f"features-{split}-{key}.npy"
    if path.is_file():
        vectors = np.load(path)
        if vectors.shape[0] == len(loaded.texts):
            return loaded, vectors
    started = time.perf_counter()
    texts = [normalize_tweet(t) for t in loaded.texts]
    vectors = embed_texts(embedder, texts, progress, f"embedding {split}")
    if log:
        print(f"embedded {split}: {len(vectors)} texts in {time.perf_counter() - started:.0f} s")
    buffer = io.BytesIO()
    np.save(buffer, vectors)
    write_atomic(path, buffer.getvalue())
    return loaded, vectors


def evaluate(head: Head, split: Split, vectors: np.ndarray) -> SplitMetrics:
    predicted = head.predict_proba(vectors).argmax(axis=1)
    return split_metrics(np.asarray(split.labels), predicted, split.languages)


def train_sentiment(
    embedder: Embedder,
    data: Path,
    folder: Path,
    config: HeadConfig = DEFAULT_CONFIG,
    measure_val: bool = True,
    progress: Progress = SILENT,
) -> HeadRecord:
    """Train on UMSAB's train split, measure train (and val), save into ``folder``."""
    started = time.perf_counter()
    train, train_vectors = split_features(embedder, data, "train", folder, progress=progress)
    head = train_head(train_vectors, train.labels, LABELS, config, progress=progress)
    val_metrics = None
    if measure_val:
        val, val_vectors = split_features(embedder, data, "val", folder, progress=progress)
        val_metrics = evaluate(head, val, val_vectors)
    record = HeadRecord(
        name=folder.name,
        embedding_model=embedder.name,
        input_type=INPUT_TYPE,
        normalization=NORMALIZATION,
        data=str(data),
        data_sha256=data_hash(data, "train"),
        train_examples=len(train.labels),
        config=config,
        train=evaluate(head, train, train_vectors),
        val=val_metrics,
        trained_at=datetime.now(UTC).isoformat(timespec="seconds"),
        train_seconds=round(time.perf_counter() - started, 1),
    )
    save_head(folder, record, head)
    return record


def is_up_to_date(
    folder: Path, data: Path, model: str, config: HeadConfig = DEFAULT_CONFIG
) -> bool:
    """Whether ``folder`` holds a head trained on this data, model and config."""
    from services.tasks.sentiment.artifact import load_head
    from shared.errors import BabelError

    try:
        record, _ = load_head(folder)
    except BabelError:
        return False
    try:
        same_data = record.data_sha256 == data_hash(data, "train")
    except OSError:
        return False
    return (
        same_data
        and record.embedding_model == model
        and record.config == config
        and record.normalization == NORMALIZATION
    )
