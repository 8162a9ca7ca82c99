"""Sentence embeddings in the tasks service: the features of sentiment and custom classifiers.

One model per worker (multilingual-e5-small by default), shared by both through one
:class:`~shared.models.embedder.BatchingEmbedder`. Heads are trained on ``query: ``
vectors, so both training and prediction embed with ``input_type="query"``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

from shared.models.cache import E5_SMALL, ModelCacheSettings, resolve_model_path
from shared.models.embedder import (
    BatchingEmbedder,
    SentenceTransformerEmbedder,
    default_prefixes,
)
from shared.settings import BaseSettings, load_settings


class FeatureSettings(BaseSettings, frozen=True, kw_only=True):
    env_prefix: ClassVar[str] = "BABEL_TASKS_EMBEDDING_"
    model: str = E5_SMALL
    """A name prepared in the model cache, a sentence-transformers folder or an HF id."""
    device: str = "auto"
    threads: int = 0
    """Torch CPU threads; 0 keeps torch's default."""
    batch_size: int = 32
    max_wait_ms: float = 2.0
    max_queued: int = 4_096
    """Interactive texts (sentiment, predictions) waiting for the model; more get 503
    overloaded. Classifier training is fed in slices behind them."""


def build_features(environ: Mapping[str, str]) -> BatchingEmbedder:
    """Cheap: the model loads in ``embedder.embedder.warm_up()``."""
    settings = load_settings(FeatureSettings, environ)
    cache = load_settings(ModelCacheSettings, environ)
    model = SentenceTransformerEmbedder(
        settings.model,
        resolve_model_path(settings.model, cache.root, "BABEL_TASKS_EMBEDDING_MODEL"),
        device=settings.device,
        threads=settings.threads,
        batch_size=settings.batch_size,
        prefixes=default_prefixes(settings.model),
    )
    return BatchingEmbedder(
        model, settings.batch_size, settings.max_wait_ms, max_queued=settings.max_queued
    )


def feature_model_name(environ: Mapping[str, str]) -> str:
    return load_settings(FeatureSettings, environ).model


def model_cache_root(environ: Mapping[str, str]) -> Path:
    return load_settings(ModelCacheSettings, environ).root
