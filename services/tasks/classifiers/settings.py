"""Settings of custom classifiers in the tasks service (prefix ``BABEL_CLASSIFIERS_``).

Where they are kept is the tasks service's ``BABEL_TASKS_DATA_DIR``.
"""

from __future__ import annotations

from typing import ClassVar

from services.tasks.heads import HeadConfig
from shared.settings import BaseSettings


class ClassifierSettings(BaseSettings, frozen=True, kw_only=True):
    env_prefix: ClassVar[str] = "BABEL_CLASSIFIERS_"
    enabled: bool = True
    min_examples_per_label: int = 3
    """Each label needs this many examples: at least one is held out for validation."""
    max_examples: int = 5_000
    max_labels: int = 100
    max_text_chars: int = 10_000
    max_texts: int = 256
    """Texts per prediction request."""
    holdout_fraction: float = 0.2
    """Share of each label's examples held out to measure validation accuracy (at least 1)."""
    head: HeadConfig = HeadConfig(epochs=200, lr=0.01, weight_decay=0.01)
    """Softmax regression: with a dozen examples a linear head transfers across
    languages best (see ``bench/sentiment_eval.py`` for the sentiment head)."""
