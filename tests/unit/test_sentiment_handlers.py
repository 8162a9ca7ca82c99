"""The sentiment handler with a deterministic fake backend: scores, sentences, validation."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from services.tasks.sentiment.handlers import SentimentHandlers
from services.tasks.sentiment.settings import SentimentSettings
from shared.errors import BabelError, ErrorCode
from shared.messages.sentiment import SentimentRequest
from shared.rpc.handlers import RequestContext

CONTEXT = RequestContext(request_id="r", deadline=1e12, worker="w", deliveries=1)


class FakeSentimentBackend:
    """'good' → positive, 'bad' → negative, anything else neutral; records its calls."""

    model = "fake-sentiment"

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    async def warm_up(self) -> None:
        return None

    async def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(list(texts))
        rows = []
        for text in texts:
            good, bad = text.count("good"), text.count("bad")
            if good > bad:
                rows.append([0.1, 0.1, 0.8])
            elif bad > good:
                rows.append([0.7, 0.2, 0.1])
            else:
                rows.append([0.1, 0.8, 0.1])
        return np.array(rows)


def _handlers(**settings: int) -> tuple[SentimentHandlers, FakeSentimentBackend]:
    backend = FakeSentimentBackend()
    return SentimentHandlers(backend, SentimentSettings(**settings)), backend


async def test_one_sentence_text_gets_label_score_and_magnitude() -> None:
    handlers, backend = _handlers()
    reply = await handlers.analyze(SentimentRequest(texts=("A good day",)), CONTEXT)
    (result,) = reply.results
    assert result.label == "positive"
    assert result.score == pytest.approx(0.7)
    assert result.magnitude == pytest.approx(0.9)
    assert result.sentences is None
    assert reply.model == "fake-sentiment"
    assert backend.calls == [["A good day"]]  # no separate sentence call for one sentence


async def test_sentences_are_scored_in_the_same_backend_call() -> None:
    handlers, backend = _handlers()
    text = "The food was good. The service was bad. We left at nine."
    request = SentimentRequest(texts=(text, "Just bad"), sentences=True)
    reply = await handlers.analyze(request, CONTEXT)
    assert len(backend.calls) == 1
    first, second = reply.results
    assert first.label == "neutral"  # the whole text: one good, one bad
    assert first.sentences is not None
    assert [s.label for s in first.sentences] == ["positive", "negative", "neutral"]
    assert [text[s.start : s.end] for s in first.sentences] == [s.text for s in first.sentences]
    assert first.magnitude == pytest.approx(0.9 + 0.8 + 0.2)
    assert second.label == "negative"
    assert second.sentences is not None
    assert len(second.sentences) == 1
    assert second.score == pytest.approx(-0.6)


@pytest.mark.parametrize(
    ("texts", "field", "message"),
    [
        ((), "texts", "at least one text"),
        (("fine", "   "), "texts[1]", "empty"),
        (("x" * 101,), "texts[0]", "at most 100"),
        (("a", "b", "c", "d"), "texts", "at most 3"),
    ],
)
async def test_bad_input_is_refused(texts: tuple[str, ...], field: str, message: str) -> None:
    handlers, backend = _handlers(max_text_chars=100, max_texts=3)
    with pytest.raises(BabelError) as caught:
        await handlers.analyze(SentimentRequest(texts=texts), CONTEXT)
    assert caught.value.code == ErrorCode.INVALID_ARGUMENT
    assert caught.value.field == field
    assert message in str(caught.value)
    assert backend.calls == []
