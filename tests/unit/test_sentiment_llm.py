"""The LLM sentiment backend against a fake generation client (no engine)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from services.tasks.sentiment.llm import LlmSentiment, label_shares
from services.tasks.sentiment.settings import SentimentSettings
from shared.errors import BabelError, ErrorCode
from shared.messages.generation import Choice, GenerateRequest, GenerateResponse, Usage


class FakeGenerationClient:
    """Answers each text with the labels given for it, one choice per label."""

    def __init__(self, answers: dict[str, list[str]], *, alive: bool = True) -> None:
        self.answers = answers
        self.alive = alive
        self.requests: list[GenerateRequest] = []

    async def available(self) -> bool:
        return self.alive

    async def generate(self, request: GenerateRequest, *, deadline: float) -> GenerateResponse:
        self.requests.append(request)
        assert request.messages is not None
        labels = self.answers[request.messages[-1].content]
        return GenerateResponse(
            model="fake",
            choices=tuple(
                Choice(index=i, text=f'"{label}"', finish_reason="stop")
                for i, label in enumerate(labels)
            ),
            usage=Usage(prompt_tokens=1, completion_tokens=len(labels)),
        )


def test_label_shares() -> None:
    shares = label_shares(['"positive"', '"positive"', '"neutral"', '"negative"', "garbage"])
    assert shares.tolist() == [0.25, 0.25, 0.5]
    with pytest.raises(BabelError):
        label_shares(["nothing"])


def test_greedy_by_default_and_the_engine_is_held_to_the_labels() -> None:
    client = FakeGenerationClient({"great": ["positive"], "awful": ["negative"]})
    backend = LlmSentiment(client, SentimentSettings(backend="llm"))
    probabilities = asyncio.run(backend.probabilities(["great", "awful"]))
    assert np.array_equal(probabilities, [[0, 0, 1], [1, 0, 0]])
    sampling = client.requests[0].sampling
    assert sampling.n == 1
    assert sampling.temperature == 0.0
    assert sampling.json_schema == {"enum": ["negative", "neutral", "positive"]}


def test_several_samples_give_shares() -> None:
    client = FakeGenerationClient({"meh": ["neutral", "neutral", "negative", "positive"]})
    backend = LlmSentiment(client, SentimentSettings(backend="llm", llm_samples=4))
    probabilities = asyncio.run(backend.probabilities(["meh"]))
    assert probabilities.tolist() == [[0.25, 0.5, 0.25]]
    assert client.requests[0].sampling.n == 4


def test_no_generation_worker_is_unavailable() -> None:
    backend = LlmSentiment(FakeGenerationClient({}, alive=False), SentimentSettings())
    with pytest.raises(BabelError) as caught:
        asyncio.run(backend.probabilities(["x"]))
    assert caught.value.code == ErrorCode.UNAVAILABLE
