"""RPC handler of sentiment: validate, score texts and their sentences in one backend call."""

from __future__ import annotations

import asyncio

import numpy as np

from services.tasks.sentiment.backend import SentimentBackend
from services.tasks.sentiment.settings import SentimentSettings
from services.tasks.sentiment.umsab import LABELS
from services.tasks.texts import check_texts
from shared.messages.sentiment import (
    ANALYZE_SENTIMENT,
    SentenceSentiment,
    SentimentLabel,
    SentimentProbabilities,
    SentimentRequest,
    SentimentResponse,
    SentimentResult,
)
from shared.rpc.handlers import HandlerRegistry, RequestContext
from shared.text.sentences import Span, sentence_spans


def _scores(row: np.ndarray) -> tuple[SentimentLabel, SentimentProbabilities, float, float]:
    """Label, probabilities, score (positive - negative) and magnitude (1 - neutral)."""
    negative, neutral, positive = (round(float(p), 4) for p in row)
    label: SentimentLabel = LABELS[int(np.argmax(row))]  # type: ignore[assignment]
    probabilities = SentimentProbabilities(negative=negative, neutral=neutral, positive=positive)
    return label, probabilities, round(positive - negative, 4), round(1.0 - neutral, 4)


class SentimentHandlers:
    def __init__(self, backend: SentimentBackend, settings: SentimentSettings) -> None:
        self._backend = backend
        self._settings = settings

    def register(self, registry: HandlerRegistry) -> None:
        registry.add_unary(ANALYZE_SENTIMENT, self.analyze)

    def _validate(self, request: SentimentRequest) -> None:
        check_texts(
            request.texts,
            max_texts=self._settings.max_texts,
            max_text_chars=self._settings.max_text_chars,
        )

    def _sentences(self, text: str) -> list[Span]:
        spans = sentence_spans(text, max_chars=self._settings.max_sentence_chars)
        return spans[: self._settings.max_sentences]

    async def analyze(
        self, request: SentimentRequest, context: RequestContext
    ) -> SentimentResponse:
        self._validate(request)
        spans = await asyncio.to_thread(lambda: [self._sentences(t) for t in request.texts])
        # One backend call: every text, then the sentences of texts that have several.
        inputs = list(request.texts)
        for text, text_spans in zip(request.texts, spans, strict=True):
            if len(text_spans) > 1:
                inputs.extend(text[start:end] for start, end in text_spans)
        rows = await self._backend.probabilities(inputs)
        next_row = len(request.texts)
        results = []
        for i, (text, text_spans) in enumerate(zip(request.texts, spans, strict=True)):
            label, probabilities, score, _ = _scores(rows[i])
            sentences = []
            if len(text_spans) > 1:
                sentence_rows = rows[next_row : next_row + len(text_spans)]
                next_row += len(text_spans)
            else:
                sentence_rows = rows[i : i + 1]
            for (start, end), row in zip(text_spans, sentence_rows, strict=True):
                s_label, s_probabilities, s_score, s_magnitude = _scores(row)
                sentences.append(
                    SentenceSentiment(
                        text=text[start:end],
                        start=start,
                        end=end,
                        label=s_label,
                        probabilities=s_probabilities,
                        score=s_score,
                        magnitude=s_magnitude,
                    )
                )
            results.append(
                SentimentResult(
                    label=label,
                    probabilities=probabilities,
                    score=score,
                    magnitude=round(sum(s.magnitude for s in sentences), 4),
                    sentences=tuple(sentences) if request.sentences else None,
                )
            )
        return SentimentResponse(results=tuple(results), model=self._backend.model)
