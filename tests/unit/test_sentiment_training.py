"""UMSAB loading, macro-F1, and ``train sentiment`` end to end with a fake embedder."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from services.tasks.heads import HeadConfig
from services.tasks.sentiment.artifact import load_head
from services.tasks.sentiment.training import (
    is_up_to_date,
    macro_f1,
    split_features,
    train_sentiment,
)
from services.tasks.sentiment.umsab import LANGUAGES, load_split
from shared.errors import BabelError
from shared.messages.retrieval import InputType

WORDS = {0: "awful", 1: "tuesday", 2: "lovely"}
CONFIG = HeadConfig(epochs=60)


class FakeEmbedder:
    """Deterministic vectors: a direction per sentiment word plus a hash of the text."""

    name = "fake-embedder"
    dim = 16

    def __init__(self) -> None:
        self.encoded = 0

    def warm_up(self) -> None:
        return None

    def encode(self, texts: Sequence[str], input_type: InputType) -> tuple[np.ndarray, list[int]]:
        self.encoded += len(texts)
        rows = []
        for text in texts:
            rng = np.random.default_rng(zlib.crc32(text.encode()))
            row = 0.1 * rng.normal(size=self.dim)
            for label, word in WORDS.items():
                row[label] += text.count(word)
            rows.append(row / np.linalg.norm(row))
        return np.array(rows, dtype=np.float32), [len(t.split()) for t in texts]


def _write_umsab(root: Path, per_label: int = 4) -> Path:
    for folder in LANGUAGES:
        (root / folder).mkdir(parents=True)
        for split in ("train", "val"):
            texts, labels = [], []
            for label, word in WORDS.items():
                for i in range(per_label):
                    texts.append(f"@someone {folder} {split} {i} it was {word} \\u2019")
                    labels.append(str(label))
            (root / folder / f"{split}_text.txt").write_text("\n".join(texts) + "\n")
            (root / folder / f"{split}_labels.txt").write_text("\n".join(labels) + "\n")
    return root


def test_load_split_reads_every_language(tmp_path: Path) -> None:
    split = load_split(_write_umsab(tmp_path), "train")
    assert len(split.texts) == len(LANGUAGES) * 12
    assert sorted(set(split.languages)) == sorted(LANGUAGES.values())
    assert split.labels[:4] == [0, 0, 0, 0]


def test_load_split_refuses_mismatched_files(tmp_path: Path) -> None:
    root = _write_umsab(tmp_path)
    (root / "german" / "val_labels.txt").write_text("0\n1\n")
    with pytest.raises(BabelError, match="german/val"):
        load_split(root, "val")


def test_macro_f1() -> None:
    truth = np.array([0, 0, 1, 1, 2, 2])
    assert macro_f1(truth, truth) == 1.0
    assert macro_f1(truth, np.array([0, 0, 1, 1, 2, 1])) == pytest.approx((1 + 0.8 + 2 / 3) / 3)


def test_train_sentiment_saves_a_head_and_caches_features(tmp_path: Path) -> None:
    data = _write_umsab(tmp_path / "umsab")
    folder = tmp_path / "models" / "sentiment-test"
    embedder = FakeEmbedder()
    record = train_sentiment(embedder, data, folder, CONFIG)
    assert record.train.macro_f1 == 100.0
    assert record.val is not None
    assert record.val.macro_f1 == 100.0
    assert set(record.val.per_language_macro_f1) == set(LANGUAGES.values())
    assert record.embedding_model == "fake-embedder"
    loaded_record, head = load_head(folder)
    assert loaded_record == record
    assert head.labels == ("negative", "neutral", "positive")
    assert is_up_to_date(folder, data, "fake-embedder", CONFIG)
    assert not is_up_to_date(folder, data, "other-model", CONFIG)
    assert not is_up_to_date(folder, data, "fake-embedder", HeadConfig(epochs=61))

    encoded = embedder.encoded
    split_features(embedder, data, "train", folder, log=False)
    assert embedder.encoded == encoded  # read back from the cache
    again = train_sentiment(FakeEmbedder(), data, tmp_path / "again", CONFIG)
    assert again.train == record.train  # deterministic


def test_missing_head_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(BabelError, match="babelstack train sentiment"):
        load_head(tmp_path)
