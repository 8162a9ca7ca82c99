"""Sentiment by the generation service's LLM (``BABEL_SENTIMENT_BACKEND=llm``).

Each text is one chat request whose answer the engine restricts to one of the three labels
(a JSON-schema enum). ``llm_samples`` answers are sampled per text in one request (``n``,
fixed seed, so a text always gets the same answer); the probabilities are the shares of
the labels among them. With ``llm_samples=1`` the answer is greedy and the probabilities
are 0 or 1.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence

import numpy as np

from services.tasks.generation_client import GenerationClient
from services.tasks.sentiment.settings import SentimentSettings
from services.tasks.sentiment.umsab import LABELS
from shared.errors import BabelError, ErrorCode
from shared.messages.generation import ChatMessage, GenerateRequest, Sampling

SYSTEM = (
    "You judge the sentiment of texts in any language. Read the text and answer with "
    "exactly one word: negative, neutral or positive."
)


def label_shares(answers: Sequence[str]) -> np.ndarray:
    """P(negative), P(neutral), P(positive) as the shares of the answers (JSON strings)."""
    counts = np.zeros(len(LABELS), dtype=np.float64)
    for answer in answers:
        try:
            label = json.loads(answer)
        except ValueError:
            continue
        if label in LABELS:
            counts[LABELS.index(label)] += 1
    if counts.sum() == 0:
        raise BabelError(ErrorCode.INTERNAL, "the model gave no sentiment label")
    return counts / counts.sum()


class LlmSentiment:
    def __init__(self, client: GenerationClient, settings: SentimentSettings) -> None:
        self._client = client
        self._settings = settings
        self._limit = asyncio.Semaphore(max(1, settings.llm_concurrency))

    @property
    def model(self) -> str:
        return f"llm:{self._settings.llm_model or 'generation-default'}"

    async def warm_up(self) -> None:
        """Nothing to load: the model lives in the generation service."""

    async def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        if not await self._client.available():
            raise BabelError(
                ErrorCode.UNAVAILABLE,
                "LLM sentiment needs the generation service, which has no live worker",
                retryable=True,
                retry_after_s=5.0,
            )
        deadline = time.time() + self._settings.llm_timeout_s
        rows = await asyncio.gather(*(self._one(text, deadline) for text in texts))
        return np.vstack(rows)

    async def _one(self, text: str, deadline: float) -> np.ndarray:
        samples = self._settings.llm_samples
        request = GenerateRequest(
            model=self._settings.llm_model,
            messages=(
                ChatMessage(role="system", content=SYSTEM),
                ChatMessage(role="user", content=text),
            ),
            sampling=Sampling(
                max_tokens=8,
                temperature=0.0 if samples == 1 else 0.7,
                seed=0,
                n=samples,
                json_schema={"enum": list(LABELS)},
            ),
        )
        async with self._limit:
            reply = await self._client.generate(request, deadline=deadline)
        return label_shares([choice.text for choice in reply.choices])
