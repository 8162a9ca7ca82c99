"""The ``llm`` backend: each sentence is one greedy chat request to the generation service."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

from services.tasks.generation_client import GenerationClient
from services.tasks.translation.backend import all_pairs
from services.tasks.translation.prompt import (
    STOP,
    build_messages,
    clean_translation,
    max_tokens_for,
)
from services.tasks.translation.settings import TranslationSettings
from shared.errors import BabelError, ErrorCode
from shared.languages import LANGUAGES
from shared.messages.generation import GenerateRequest, GenerateResponse, Sampling


class LlmTranslator:
    backend = "llm"

    def __init__(self, client: GenerationClient, settings: TranslationSettings) -> None:
        self._client = client
        self._settings = settings
        codes = settings.languages or tuple(LANGUAGES)
        self._pairs = all_pairs(codes)
        self._limit = asyncio.Semaphore(max(1, settings.llm_concurrency))

    @property
    def model(self) -> str:
        return self._settings.model or "generation-default"

    def languages(self) -> Mapping[str, tuple[str, ...]]:
        return self._pairs

    async def warm_up(self) -> None:
        """Nothing to load: the model lives in the generation service."""

    async def close(self) -> None:
        """The Redis connection belongs to whoever built the client."""

    async def translate(
        self,
        sentences: Sequence[str],
        source: str,
        target: str,
        *,
        alternatives: int,
        deadline: float,
    ) -> list[tuple[str, ...]]:
        if not await self._client.available():
            raise BabelError(
                ErrorCode.UNAVAILABLE,
                "translation needs the generation service, which has no live worker",
                retryable=True,
                retry_after_s=5.0,
            )
        jobs = [
            self._one(sentence, source, target, alternatives=alternatives, deadline=deadline)
            for sentence in sentences
        ]
        return list(await asyncio.gather(*jobs))

    async def _one(
        self, sentence: str, source: str, target: str, *, alternatives: int, deadline: float
    ) -> tuple[str, ...]:
        messages = build_messages(sentence, source, target)
        cap = max_tokens_for(sentence)
        model = self._settings.model or None
        greedy = GenerateRequest(
            model=model,
            messages=messages,
            sampling=Sampling(max_tokens=cap, temperature=0.0, stop=STOP, seed=0),
        )
        async with self._limit:
            best = await self._client.generate(greedy, deadline=deadline)
        found = [_cleaned(best, sentence)[0]]
        if alternatives > 0:
            sampled = GenerateRequest(
                model=model,
                messages=messages,
                sampling=Sampling(
                    max_tokens=cap, temperature=0.8, top_p=0.95, stop=STOP, seed=1, n=alternatives
                ),
            )
            async with self._limit:
                others = await self._client.generate(sampled, deadline=deadline)
            found.extend(_cleaned(others, sentence))
        return tuple(found)


def _cleaned(response: GenerateResponse, sentence: str) -> list[str]:
    return [
        clean_translation(choice.text, sentence, truncated=choice.finish_reason == "length")
        for choice in response.choices
    ]
