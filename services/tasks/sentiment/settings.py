"""Settings of sentiment in the tasks service (prefix ``BABEL_SENTIMENT_``)."""

from __future__ import annotations

from typing import ClassVar, Literal

from shared.settings import BaseSettings

DEFAULT_HEAD = "sentiment-umsab-e5-small"


class SentimentSettings(BaseSettings, frozen=True, kw_only=True):
    env_prefix: ClassVar[str] = "BABEL_SENTIMENT_"
    backend: Literal["head", "llm", "off"] = "head"
    """``head``: a classifier head on the tasks service's embeddings, trained by
    ``babelstack train sentiment``; ``llm``: the generation service's model is asked;
    ``off``: no sentiment."""
    head: str = DEFAULT_HEAD
    """The head's folder in the model cache (``BABEL_MODELS_DIR``), or a path."""
    max_texts: int = 256
    max_text_chars: int = 10_000
    max_sentences: int = 200
    """Sentences scored per text (the rest count for nothing in the magnitude)."""
    max_sentence_chars: int = 1_000
    llm_model: str | None = None
    """``llm``: the generation model to ask (None: the service's default)."""
    llm_samples: int = 1
    """``llm``: 1 = one greedy answer (probabilities 0 or 1); more = answers sampled per text
    (temperature 0.7, fixed seed), probabilities = the labels' shares among them."""
    llm_concurrency: int = 16
    llm_timeout_s: float = 120.0
