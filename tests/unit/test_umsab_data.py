"""The UMSAB copy the package ships: complete, licensed, and the bytes heads were trained on."""

from __future__ import annotations

from collections import Counter

from services.launcher.train_cli import DEFAULT_DATA
from services.tasks.sentiment.umsab import LANGUAGES, UMSAB_DATA, data_hash, load_split

TRAIN_SHA256 = "0b41cdbae65fdcb32a817d08008a5cb2c1286de95fcd78b5426c9bb3cbb99e33"
"""``data_hash`` of the train split as copied, unchanged, from XLM-T's UMSAB: heads record it,
and a head trained on the same bytes counts as up to date. A change means every head retrains."""


def test_train_sentiment_defaults_to_the_copy_inside_the_package() -> None:
    assert DEFAULT_DATA == UMSAB_DATA
    assert UMSAB_DATA.parent.parent.name == "sentiment"  # services/tasks/sentiment/data/umsab
    assert (UMSAB_DATA / "LICENSE.txt").read_text().lstrip().startswith("Apache License")
    assert (UMSAB_DATA / "README.md").is_file()


def test_every_language_has_its_train_and_val_examples() -> None:
    for split, per_language in (("train", 1839), ("val", 324)):
        loaded = load_split(UMSAB_DATA, split)
        assert Counter(loaded.languages) == dict.fromkeys(LANGUAGES.values(), per_language)
        assert set(loaded.labels) == {0, 1, 2}
        assert all(text.strip() for text in loaded.texts)


def test_the_train_split_keeps_the_bytes_heads_were_trained_on() -> None:
    assert data_hash(UMSAB_DATA, "train") == TRAIN_SHA256
