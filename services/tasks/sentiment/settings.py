"""Settings of sentiment in the tasks service (prefix ``BABEL_SENTIMENT_``)."""

from __future__ import annotations

from typing import ClassVar, Literal

from shared.settings import BaseSettings

DEFAULT_HEAD = "sentiment-umsab-e5-small"


class SentimentSettings(BaseSettings, frozen=True, kw_only=True):
    env_prefix: ClassVar[str] = "BABEL_SENTIMENT_"
    backend: Literal["head", "off"] = "head"
    """``head``: a classifier head on the tasks service's embeddings, trained by
    ``babelstack train sentiment``; ``off``: no sentiment. An LLM backend (the generation
    service) plugs in behind :class:`services.tasks.sentiment.backend.SentimentBackend`."""
    head: str = DEFAULT_HEAD
    """The head's folder in the model cache (``BABEL_MODELS_DIR``), or a path."""
    max_texts: int = 256
    max_text_chars: int = 10_000
    max_sentences: int = 200
    """Sentences scored per text (the rest count for nothing in the magnitude)."""
    max_sentence_chars: int = 1_000
