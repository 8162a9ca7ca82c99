"""Settings of translation in the tasks service (prefix ``BABEL_TRANSLATION_``)."""

from __future__ import annotations

from typing import ClassVar, Literal

from shared.settings import BaseSettings


class TranslationSettings(BaseSettings, frozen=True, kw_only=True):
    env_prefix: ClassVar[str] = "BABEL_TRANSLATION_"
    backend: Literal["llm", "seq2seq", "off"] = "llm"
    """``llm``: the generation service's model; ``seq2seq``: a translation model in this
    process (NLLB-200, M2M100 or Marian, by id or path); ``off``: no translation."""
    model: str = ""
    """``seq2seq``: a Hugging Face id (in the local HF cache) or a folder.
    ``llm``: the generation service's model id; empty for its default model."""
    languages: tuple[str, ...] = ()
    """``llm``: the language codes offered (empty: every language the service names)."""
    pair: str = ""
    """``seq2seq`` with a one-pair model (Marian): ``source-target``, e.g. ``de-en``."""
    max_texts: int = 128
    max_text_chars: int = 10_000
    max_sentence_chars: int = 400
    """Longer sentences are cut (at a space) before they go to the model."""
    max_alternatives: int = 3
    llm_concurrency: int = 32
    """Sentences sent to the generation service at once (its engine batches them)."""
    seq2seq_batch_size: int = 16
    seq2seq_device: str = "cpu"
    seq2seq_beams: int = 1
    """1: greedy; alternatives use ``alternatives + 1`` beams."""
    seq2seq_threads: int = 0
    """torch threads; 0 leaves torch's default."""
