"""Checking labelled examples, and training a classifier with a held-out validation split."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence

import numpy as np

from services.tasks.classifiers.settings import ClassifierSettings
from services.tasks.heads import Head, train_head
from shared.errors import BabelError, ErrorCode
from shared.messages.classifiers import LabelCount, LabelledExample, Validation


def check_examples(
    examples: Sequence[LabelledExample], settings: ClassifierSettings
) -> tuple[LabelCount, ...]:
    """The labels (sorted) and their counts; BabelError if the set cannot train a classifier."""
    if len(examples) > settings.max_examples:
        raise BabelError(
            ErrorCode.INVALID_ARGUMENT,
            f"{len(examples)} examples; at most {settings.max_examples}",
            field="examples",
        )
    for i, example in enumerate(examples):
        if not example.text.strip():
            raise BabelError(
                ErrorCode.INVALID_ARGUMENT, "text is empty", field=f"examples[{i}].text"
            )
        if len(example.text) > settings.max_text_chars:
            raise BabelError(
                ErrorCode.INVALID_ARGUMENT,
                f"text has {len(example.text)} characters; at most {settings.max_text_chars}",
                field=f"examples[{i}].text",
            )
        if not example.label.strip():
            raise BabelError(
                ErrorCode.INVALID_ARGUMENT, "label is empty", field=f"examples[{i}].label"
            )
    counts = Counter(example.label for example in examples)
    if len(counts) < 2:
        raise BabelError(
            ErrorCode.NOT_ENOUGH_EXAMPLES,
            f"a classifier needs at least 2 labels, with at least "
            f"{settings.min_examples_per_label} examples each; got {len(counts)} label(s)",
            field="examples",
        )
    if len(counts) > settings.max_labels:
        raise BabelError(
            ErrorCode.INVALID_ARGUMENT,
            f"{len(counts)} labels; at most {settings.max_labels}",
            field="examples",
        )
    short = sorted(label for label, n in counts.items() if n < settings.min_examples_per_label)
    if short:
        named = ", ".join(f"{label!r} has {counts[label]}" for label in short)
        raise BabelError(
            ErrorCode.NOT_ENOUGH_EXAMPLES,
            f"each label needs at least {settings.min_examples_per_label} examples: {named}",
            field="examples",
        )
    return tuple(LabelCount(label=label, examples=counts[label]) for label in sorted(counts))


def holdout_split(targets: Sequence[int], fraction: float, seed: int = 0) -> list[bool]:
    """Per example, whether it is held out: ``fraction`` of each label, at least one."""
    rng = random.Random(seed)
    held = [False] * len(targets)
    by_label: dict[int, list[int]] = {}
    for i, target in enumerate(targets):
        by_label.setdefault(target, []).append(i)
    for rows in by_label.values():
        count = max(1, round(len(rows) * fraction))
        for i in rng.sample(rows, min(count, len(rows) - 1)):
            held[i] = True
    return held


def fit_classifier(
    vectors: np.ndarray,
    targets: Sequence[int],
    labels: Sequence[str],
    settings: ClassifierSettings,
) -> tuple[Head, Validation]:
    """Validation accuracy of a head trained without the held-out examples; then the head
    that is kept, trained on every example."""
    held = np.array(holdout_split(targets, settings.holdout_fraction))
    y = np.asarray(targets)
    probe = train_head(vectors[~held], y[~held], labels, settings.head)
    predicted = probe.predict_proba(vectors[held]).argmax(axis=1)
    validation = Validation(
        accuracy=round(float((predicted == y[held]).mean()), 4),
        held_out=int(held.sum()),
        trained_on=int((~held).sum()),
    )
    return train_head(vectors, y, labels, settings.head), validation
