"""Sentiment backends: probabilities of negative / neutral / positive for each text.

The default backend is a head trained on frozen embeddings (``babelstack train
sentiment``); ``sentiment/llm.py`` asks the generation service's LLM instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from services.tasks.heads import Head
from services.tasks.sentiment.artifact import load_head
from services.tasks.sentiment.tweets import normalize_tweet
from services.tasks.sentiment.umsab import LABELS
from shared.errors import BabelError, ErrorCode
from shared.models.embedder import BatchingEmbedder


class SentimentBackend(Protocol):
    @property
    def model(self) -> str:
        """What the replies name as the model."""
        ...

    async def warm_up(self) -> None: ...

    async def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """One row per text: P(negative), P(neutral), P(positive) (``LABELS`` order)."""
        ...


class HeadSentiment:
    """A classifier head on the shared embeddings (texts normalised as in training)."""

    def __init__(self, embedder: BatchingEmbedder, folder: Path) -> None:
        self._embedder = embedder
        self._folder = folder
        self._head: Head | None = None
        self._columns: list[int] = []
        self._model = folder.name

    @property
    def model(self) -> str:
        return self._model

    async def warm_up(self) -> None:
        record, head = await asyncio.to_thread(load_head, self._folder)
        embedding_model = self._embedder.embedder.name
        if record.embedding_model != embedding_model:
            raise BabelError(
                ErrorCode.UNAVAILABLE,
                f"sentiment head {self._folder} was trained on {record.embedding_model!r} "
                f"embeddings, but the tasks service embeds with {embedding_model!r}; "
                "run 'babelstack train sentiment' with the same model",
            )
        if sorted(head.labels) != sorted(LABELS):
            raise BabelError(
                ErrorCode.UNAVAILABLE, f"sentiment head labels {head.labels} are not {LABELS}"
            )
        self._columns = [head.labels.index(label) for label in LABELS]
        self._model = f"{record.name}+{embedding_model}"
        self._head = head

    async def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        if self._head is None:
            raise BabelError(ErrorCode.UNAVAILABLE, "sentiment head not loaded yet", retryable=True)
        vectors, _ = await self._embedder.embed([normalize_tweet(t) for t in texts], "query")
        return self._head.predict_proba(vectors)[:, self._columns]
