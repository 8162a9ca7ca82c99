"""Custom classifiers: example checks, the held-out split, the store on disk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from services.tasks.classifiers.settings import ClassifierSettings
from services.tasks.classifiers.store import ClassifierStore
from services.tasks.classifiers.training import check_examples, fit_classifier, holdout_split
from services.tasks.heads import Head, HeadConfig
from shared.errors import BabelError, ErrorCode
from shared.messages.classifiers import (
    ClassifierInfo,
    LabelCount,
    LabelledExample,
    Validation,
)

SETTINGS = ClassifierSettings(min_examples_per_label=3, head=HeadConfig(epochs=50))


def _examples(**counts: int) -> list[LabelledExample]:
    return [
        LabelledExample(text=f"{label} text {i}", label=label)
        for label, n in counts.items()
        for i in range(n)
    ]


def test_check_examples_counts_labels() -> None:
    counts = check_examples(_examples(spam=3, ham=4), SETTINGS)
    assert counts == (LabelCount(label="ham", examples=4), LabelCount(label="spam", examples=3))


def test_one_label_is_refused_with_what_is_needed() -> None:
    with pytest.raises(BabelError, match="at least 2 labels, with at least 3 examples each"):
        check_examples(_examples(spam=5), SETTINGS)


def test_too_few_examples_name_the_label_and_the_minimum() -> None:
    with pytest.raises(BabelError) as caught:
        check_examples(_examples(spam=5, ham=2), SETTINGS)
    assert caught.value.code == ErrorCode.NOT_ENOUGH_EXAMPLES
    assert "at least 3 examples" in str(caught.value)
    assert "'ham' has 2" in str(caught.value)


@pytest.mark.parametrize(
    ("example", "field"),
    [
        (LabelledExample(text="  ", label="ham"), "examples[0].text"),
        (LabelledExample(text="fine", label=""), "examples[0].label"),
    ],
)
def test_empty_text_or_label_is_refused(example: LabelledExample, field: str) -> None:
    with pytest.raises(BabelError) as caught:
        check_examples([example, *_examples(spam=3, ham=3)], SETTINGS)
    assert caught.value.field == field


def test_holdout_keeps_at_least_one_of_each_label_for_training() -> None:
    targets = [0] * 3 + [1] * 10
    held = holdout_split(targets, 0.2)
    assert sum(held[:3]) == 1  # 20 % of 3 rounds to 1
    assert sum(held[3:]) == 2
    assert holdout_split(targets, 0.2) == held  # deterministic


def _trained(name: str) -> tuple[ClassifierInfo, np.ndarray, Head]:
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.normal(2, 0.2, (6, 8)), rng.normal(-2, 0.2, (6, 8))]).astype("f4")
    head, validation = fit_classifier(x, [0] * 6 + [1] * 6, ["a", "b"], SETTINGS)
    assert validation == Validation(accuracy=1.0, held_out=2, trained_on=10)
    info = ClassifierInfo(
        name=name,
        description="",
        labels=(LabelCount(label="a", examples=6), LabelCount(label="b", examples=6)),
        examples=12,
        validation=validation,
        embedding_model="fake",
        created_at="2025-01-01T00:00:00+00:00",
        train_seconds=0.1,
    )
    return info, x, head


def test_store_creates_lists_reloads_and_deletes(tmp_path: Path) -> None:
    info, x, head = _trained("topics")
    store = ClassifierStore(tmp_path / "classifiers")
    store.create(info, head)
    with pytest.raises(BabelError) as conflict:
        store.create(info, head)
    assert conflict.value.code == ErrorCode.CONFLICT
    other = ClassifierStore(tmp_path / "classifiers")  # another worker, or after a restart
    loaded_info, loaded_head = other.get("topics")
    assert loaded_info == info
    np.testing.assert_array_equal(loaded_head.predict_proba(x), head.predict_proba(x))
    assert [i.name for i in other.list()] == ["topics"]
    store.delete("topics")
    with pytest.raises(BabelError) as missing:
        other.get("topics")
    assert missing.value.code == ErrorCode.NOT_FOUND
    assert other.list() == []


def test_store_knows_the_call_that_created_a_classifier(tmp_path: Path) -> None:
    info, _, head = _trained("topics")
    store = ClassifierStore(tmp_path / "classifiers")
    assert store.created_by_call("topics", "call-1") is None  # nothing there yet
    store.create(info, head, "call-1")
    other = ClassifierStore(tmp_path / "classifiers")  # the worker that takes the call over
    assert other.created_by_call("topics", "call-1") == info
    assert other.created_by_call("topics", "call-2") is None
    assert other.created_by_call("topics", "") is None


@pytest.mark.parametrize("name", ["", "../x", ".hidden", "a/b", "x" * 65, "naïve"])
def test_bad_names_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(BabelError) as caught:
        ClassifierStore(tmp_path).exists(name)
    assert caught.value.field == "name"
