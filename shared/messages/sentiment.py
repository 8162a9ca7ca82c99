"""Sentiment payloads (served by the tasks service)."""

from __future__ import annotations

from typing import Literal

from shared.messages.base import Message, Method

SentimentLabel = Literal["negative", "neutral", "positive"]


class SentimentRequest(Message, frozen=True, kw_only=True):
    texts: tuple[str, ...]
    sentences: bool = False
    """Also score each sentence of each text."""


class SentimentProbabilities(Message, frozen=True, kw_only=True):
    negative: float
    neutral: float
    positive: float


class SentenceSentiment(Message, frozen=True, kw_only=True):
    text: str
    start: int
    """Character offsets into the request's text: ``text[start:end]``."""
    end: int
    label: SentimentLabel
    probabilities: SentimentProbabilities
    score: float
    """``positive - negative``, in [-1, 1]."""
    magnitude: float
    """Strength of feeling, ``1 - neutral``, in [0, 1]."""


class SentimentResult(Message, frozen=True, kw_only=True, omit_defaults=True):
    label: SentimentLabel
    probabilities: SentimentProbabilities
    score: float
    """The whole text's ``positive - negative``, in [-1, 1]."""
    magnitude: float
    """Sum of the sentences' magnitudes, in [0, sentences]: longer, more emotional text
    scores higher, whatever the direction (as in Google Cloud Natural Language)."""
    sentences: tuple[SentenceSentiment, ...] | None = None
    """Present when the request asked for sentences."""


class SentimentResponse(Message, frozen=True, kw_only=True):
    results: tuple[SentimentResult, ...]
    model: str


ANALYZE_SENTIMENT: Method[SentimentRequest, SentimentResponse] = Method(
    "tasks", "sentiment", SentimentRequest, SentimentResponse
)
